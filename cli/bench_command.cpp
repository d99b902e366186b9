// fa2-tune bench: on one concrete shape of either pass, time the cached tuning winner (and a config given
// by tile flags) against the built-in default config and FlashAttention-2's static tile choice, each
// checked against the fp32 reference first: the one-command answer to "did tuning pay off here?".
#include <fmt/core.h>

#include <memory>
#include <optional>
#include <string>

#include "autotune/kernel_store.hpp"
#include "autotune/problem_bench.hpp"
#include "autotune/search_space.hpp"
#include "autotune/tuner.hpp"
#include "cli/commands.hpp"
#include "cli/support.hpp"
#include "cli/table.hpp"
#include "codegen/emit.hpp"
#include "runtime/driver.hpp"
#include "common/error.hpp"

namespace fa2::cli {
namespace {

struct Contender {
  const char* which;
  TileConfig config;
};

ProblemShape shape_of(const BenchOptions& options) {
  const auto dtype = parse_dtype(options.dtype);
  if (!dtype) throw Error(Stage::Argument, "", fmt::format("unknown dtype '{}'", options.dtype));
  const auto layout = parse_layout(options.layout);
  if (!layout) throw Error(Stage::Argument, "", fmt::format("unknown layout '{}'", options.layout));
  ProblemShape shape;
  shape.family = family_of(options.pass);
  shape.deterministic = options.pass.deterministic;
  shape.dtype = *dtype;
  shape.head_dim = options.head_dim;
  shape.causal = options.causal;
  shape.batch = options.batch;
  shape.heads_q = options.heads;
  shape.heads_kv = options.heads_kv > 0 ? options.heads_kv : options.heads;
  shape.seqlen_q = options.seqlen_q;
  shape.seqlen_k = options.seqlen_k;
  shape.layout = *layout;
  shape.page_size = page_size_for(shape.family, options.page_size);
  shape.set_variant(options.causal, variant_args_of(options.pass), options.pass.alibi);
  if (shape.heads_q % shape.heads_kv != 0)
    throw Error(Stage::Argument, "",
                fmt::format("--heads {} is not a multiple of --heads-kv {}", shape.heads_q, shape.heads_kv));
  return shape;
}

// The cubin from the cache when it is there (built or tuned before), else compiled now.
// Kernels spilling over the tuner's limit are timed too: here the point is to see what they cost.
Measurement measure(const TileConfig& config, const std::optional<Cache>& cache, ProblemBench& bench,
                    const TimingOptions& timing) {
  if (const auto reason = config.validate()) {
    Measurement m;
    m.config = config;
    m.status = MeasurementStatus::invalid;
    m.reason = *reason;
    return m;
  }
  const std::string key = cubin_key(config);
  if (const std::optional<CachedKernel> cached = cache ? find_usable_kernel(*cache, config) : std::nullopt)
    return measure_config(config, key, cached->cubin, cached->resources, bench, timing, /*allow_spills=*/true);
  try {
    const CompiledKernel kernel = compile_source(emit(config), config.name(), config.arch);
    return measure_config(config, key, kernel.cubin, kernel.resources, bench, timing, /*allow_spills=*/true);
  } catch (const Error& error) {
    if (error.stage() != Stage::Compile) throw;
    Measurement m;
    m.config = config;
    m.status = MeasurementStatus::compile_failed;
    m.reason = first_line(error.what());
    return m;
  }
}

// The tune flags of `shape`'s pass, for the hint when it has no tuning yet.
std::string tune_flags(const ProblemShape& shape) {
  const std::string variants =
      fmt::format("{}{}{}", shape.window ? fmt::format(" --window {},{}", shape.window_left, shape.window_right) : "",
                  shape.softcap > 0.f ? fmt::format(" --softcap {}", shape.softcap) : "", shape.alibi ? " --alibi" : "");
  if (shape.family == Family::fwd) return variants;
  return fmt::format(" --pass {}{}{}", family_name(shape.family), shape.deterministic ? " --deterministic" : "",
                     variants);
}

std::string status_text(const Measurement& m) {
  if (m.status != MeasurementStatus::ok) return std::string(measurement_status_name(m.status)) + ": " + m.reason;
  const ResourceUsage& r = m.resources;
  return r.spills() ? fmt::format("ok (spills {} B stored, {} B loaded, {} B local)", r.spill_store_bytes,
                                  r.spill_load_bytes, r.stack_frame_bytes)
                    : "ok";
}

}  // namespace

Command setup_bench(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<BenchOptions>();
  const ProblemShape shape;
  options->head_dim = shape.head_dim;
  options->batch = shape.batch;
  options->heads = shape.heads_q;
  options->seqlen_q = shape.seqlen_q;
  options->seqlen_k = shape.seqlen_k;
  const TimingOptions timing;
  options->warmup = timing.warmup;
  options->repeats = timing.repeats;

  CLI::App* sub = app.add_subcommand(
      "bench", "Time the cached winner, the built-in config and FA2's static choice on one shape (GPU)");
  add_pass_flags(sub, options->pass);
  add_kernel_flags(sub, options->head_dim, options->dtype, options->causal);
  add_variant_flags(sub, options->pass);
  add_size_flags(sub, options->batch, options->heads, options->heads_kv, options->seqlen_q, options->seqlen_k);
  sub->add_option("--layout", options->layout, "Memory layout of Q, K, V and O")
      ->check(CLI::IsMember({"bshd", "bhsd"}))
      ->capture_default_str();
  sub->add_option("--warmup", options->warmup, "Untimed runs before timing")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--repeats", options->repeats, "Timed runs (the median is reported)")
      ->check(positive_int())
      ->capture_default_str();
  add_tile_flags(sub, options->tile);
  add_page_size_flag(sub, options->page_size);
  return {sub, [options, &global] { return run_bench(*options, global); }};
}

int run_bench(const BenchOptions& options, const GlobalOptions& global) {
  const ProblemShape shape = shape_of(options);
  if (!gpu_usable("bench")) return kGpuRequired;

  const driver::DeviceInfo device = driver::device_info(driver::ensure_context());
  const auto arch = arch_for_compute_capability(device.cc_major, device.cc_minor);
  if (!arch)
    throw Error(Stage::Argument, "",
                fmt::format("{} (compute capability {}.{}) is not a target of fa2jit", device.name, device.cc_major,
                            device.cc_minor));

  const std::optional<Cache> cache = open_existing_cache(global);
  const ProblemClass problem = ProblemClass::of(shape);
  std::vector<Contender> contenders;
  std::optional<TuningRecord> tuned;
  if (cache) tuned = cache->find_tuning(tuning_key(current_device_fingerprint(), problem));
  if (tuned)
    contenders.push_back({"tuned", tuned->winner});
  else
    fmt::print(stderr, "no tuning of '{}' for this device in {}: skipping the tuned row (see `fa2-tune tune{}`)\n",
               problem.key(), cache_path(global), tune_flags(shape));
  const TileConfig built_in =
      default_config(shape.family, shape.head_dim, shape.dtype, shape.causal, *arch, shape.deterministic,
                     problem.packed_rows(), shape.variant());
  TileConfig fa2 =
      fa2_static_config(shape.family, shape.head_dim, shape.dtype, shape.causal, *arch, shape.deterministic);
  fa2.variant = shape.variant();
  if (options.tile.any()) contenders.push_back({"given", apply_tile_flags(options.tile, built_in)});
  // FA2's static choice can be the built-in config itself (a backward default taken from FA2's table, a
  // forward default that matches FA2's tiles): then one row named for both, not one kernel timed twice as
  // if they were two.
  if (built_in == fa2) {
    contenders.push_back({"default = fa2", built_in});
  } else {
    contenders.push_back({"default", built_in});
    contenders.push_back({"fa2 static", fa2});
  }

  // As the tuner does: correctness on a small shape of the same class (the fp32 reference of a large
  // one takes minutes on the host), timing on the real shape.
  const std::unique_ptr<ProblemBench> bench = make_problem_bench(shape, rotation_sets(shape, device.l2_cache_bytes));
  const TimingOptions timing{options.warmup, options.repeats};
  std::vector<Measurement> results;
  for (const Contender& contender : contenders)
    results.push_back(measure(contender.config, cache, *bench, timing));

  // Speed-up over FA2's static choice (the last row): above 1 is faster.
  const Measurement& baseline = results.back();
  Table table({"which", "config", ">ms", ">TFLOP/s", ">vs fa2", "status"});
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Measurement& m = results[i];
    const bool ok = m.status == MeasurementStatus::ok;
    const bool comparable = ok && baseline.status == MeasurementStatus::ok;
    table.add({contenders[i].which, m.config.name(), ok ? fixed(m.time_ms, 3) : "-", ok ? fixed(m.tflops, 1) : "-",
               comparable ? fmt::format("{:.2f}x", baseline.time_ms / m.time_ms) : "-",
               status_text(m)});
  }
  fmt::print("{} on {}\n", shape.describe(), device.name);
  table.print();
  if (shape.family == Family::bwd)
    fmt::print("TFLOP/s of the backward count 2.5x the forward's FLOPs (five GEMMs to two, FA2's convention); "
               "ms include the preprocess and dQ conversion kernels\n");
  // A kernel that computes the wrong answer is a failure even in a benchmark.
  for (const Measurement& m : results)
    if (m.status == MeasurementStatus::incorrect) {
      fmt::print(stderr, "fa2-tune: {} gave wrong output: {}\n", m.config.name(), m.reason);
      return kCheckFailed;
    }
  return kOk;
}

}  // namespace fa2::cli
