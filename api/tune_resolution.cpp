#include "api/tune_resolution.hpp"

#include <fmt/format.h>

#include "autotune/search_space.hpp"
#include "common/error.hpp"

namespace fa2 {

std::string tune_command(const ProblemShape& shape, const std::string& cache_path) {
  return fmt::format("fa2-tune tune --pass {}{} --head-dim {} --dtype {} --causal {} --batch {} --heads {} "
                     "--heads-kv {} --seqlen {} --seqlen-k {}{}{}{}{}",
                     family_name(shape.family), shape.deterministic ? " --deterministic" : "", shape.head_dim,
                     dtype_name(shape.dtype), shape.causal ? "on" : "off", shape.batch, shape.heads_q, shape.heads_kv,
                     shape.seqlen_q, shape.seqlen_k,
                     shape.window ? fmt::format(" --window {},{}", shape.window_left, shape.window_right) : "",
                     shape.softcap > 0.f ? fmt::format(" --softcap {}", shape.softcap) : "",
                     shape.alibi ? " --alibi" : "", cache_path.empty() ? "" : fmt::format(" --db '{}'", cache_path));
}

namespace {

// The way out of a cache fault when no winner is in hand: the built-in config, which needs no cache.
TunedResolution without_cache(const ProblemShape& shape, Arch arch, const std::string& fault) {
  TunedResolution result;
  result.config = default_config(shape.family, shape.head_dim, shape.dtype, shape.causal, arch, shape.deterministic,
                                 ProblemClass::of(shape).packed_rows(), shape.variant());
  result.cache_fault = fmt::format("{}; using the built-in config {} without the cache", fault, result.config.name());
  return result;
}

}  // namespace

std::string winner_mismatch(const TileConfig& winner, const ProblemShape& shape, Arch arch) {
  if (winner.arch != arch)
    return fmt::format("its winner {} targets {}, but this device needs {}", winner.name(), arch_name(winner.arch),
                       arch_name(arch));
  if (winner.family != shape.family || winner.head_dim != shape.head_dim || winner.dtype != shape.dtype ||
      winner.causal != shape.causal)
    return fmt::format("its winner {} is not a {} d{} {} {} kernel", winner.name(), family_name(shape.family),
                       shape.head_dim, dtype_name(shape.dtype), shape.causal ? "causal" : "non-causal");
  if (winner.variant != shape.variant())
    return fmt::format("its winner {} is compiled for the variants '{}', but the call needs '{}'", winner.name(),
                       variant_tag(winner.variant), variant_tag(shape.variant()));
  if (shape.deterministic && !winner.deterministic)
    return fmt::format("its winner {} adds dQ with atomics, but the call asks for deterministic gradients",
                       winner.name());
  // A row edited or damaged into a config that cannot be built would fail later, at compile or launch.
  // With the call's snippets, which the row names by digest only (compared equal above).
  TileConfig complete = winner;
  if (complete.variant.user.any()) complete.variant.user = shape.user;
  if (const auto reason = complete.validate())
    return fmt::format("its winner {} is invalid: {}", winner.name(), *reason);
  // A row edited or damaged into a scheme the call's layout cannot take would fail at launch.
  if (const std::string mismatch = scheme_layout_mismatch(winner.scheme, shape.layout); !mismatch.empty())
    return fmt::format("its winner {} cannot serve this call: {}", winner.name(), mismatch);
  return {};
}

TunedResolution resolve_tuned(TunePolicy policy, const ProblemShape& shape, Arch arch, const std::string& tuning_key,
                              const std::string& requested_path, const TuneNow& tune_now) {
  const bool cache_only = policy == TunePolicy::cache_only;
  TunedResolution result;
  std::string path = requested_path;
  std::optional<TuningRecord> record;
  try {
    // A cache this process may not write is still read (a fleet's shipped tunings): never "defaults
    // because the file is read-only".
    result.cache = requested_path.empty() ? Cache::open_default() : Cache::open_layers({requested_path});
    path = result.cache->describe();
    record = result.cache->find_tuning(tuning_key);
    // A layer that could not be used (an older schema shipped read-only, a damaged file) is said once per
    // resolution, while the others serve.
    if (!result.cache->skipped().empty()) {
      std::string skipped;
      for (const std::string& reason : result.cache->skipped()) skipped += (skipped.empty() ? "" : "; ") + reason;
      result.cache_fault = fmt::format("cache layers skipped: {}; served from {}", skipped, path);
    }
  } catch (const Error& error) {
    // cache-only promises the tuned winner: without the cache it has nothing to give.
    if (error.stage() != Stage::Cache || cache_only) throw;
    return without_cache(shape, arch, error.what());
  }

  // A winner from another search space or other kernel templates (an older fa2jit) still runs correctly,
  // so cache-only keeps it; on-first-use tunes the class again over what this build can offer.
  if (record && !cache_only && record->space_hash != search_space_hash(ProblemClass::of(shape), arch))
    record.reset();
  if (record) {
    const std::string mismatch = winner_mismatch(record->winner, shape, arch);
    if (!mismatch.empty()) {
      const std::string fault = fmt::format("the tuning '{}' in {} is not usable: {}", tuning_key, path, mismatch);
      if (cache_only)
        throw Error(Stage::Cache, "forward", fmt::format("{}; tune it again with: {}", fault, tune_command(shape, result.cache->path())));
      result.cache_fault = fault + "; tuning it again";
      record.reset();
    }
  } else if (cache_only) {
    throw Error(Stage::Cache, "forward",
                fmt::format("FA2JIT_TUNE=cache-only and the cache {} has no tuning for '{}'; fill it with: {}", path,
                            tuning_key, tune_command(shape, result.cache->path())));
  }

  if (!record) {
    std::string store_fault;
    try {
      record = tune_now(*result.cache, &store_fault);
    } catch (const Error& error) {
      if (error.stage() != Stage::Cache) throw;
      return without_cache(shape, arch, error.what());
    }
    result.tuned = true;
    if (!store_fault.empty()) {
      // Writes fail (a full disk, a read-only file): the kernel is compiled without trying to store it too.
      result.cache_fault = fmt::format("{}; using the tuned winner {} without storing it", store_fault,
                                       record->winner.name());
      result.cache.reset();
    }
  }
  result.config = record->winner;
  // A cached winner keeps the snippets' digest, not their text (winner_mismatch compared the digests): the
  // call's snippets are the ones it was compiled from.
  if (result.config.variant.user.any()) result.config.variant.user = shape.user;
  return result;
}

}  // namespace fa2
