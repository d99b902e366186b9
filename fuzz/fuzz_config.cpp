// libFuzzer target: TileConfig from arbitrary fields (of either kernel family, deterministic or not) and
// the name parsers from arbitrary strings. Contract checked: validate(), name() and hash() work on any
// config; a config that validates also emits, naming every entry point of its module, and one that does
// not makes emit() throw fa2::Error (Stage::Config). Any other exception, a crash, or a sanitizer report
// is a finding.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>

#include "codegen/emit.hpp"
#include "codegen/tile_config.hpp"
#include "fa2jit/fa2jit.hpp"
#include "common/error.hpp"

namespace {

// A finding libFuzzer records as a crash, with a line saying which contract broke.
[[noreturn]] void finding(const char* what, const fa2::TileConfig& config) {
  std::fprintf(stderr, "fuzz_config: %s: family=%s deterministic=%d head_dim=%d causal=%d block_m=%d block_n=%d "
               "warps=%d stages=%d blocks_per_sm=%d splits=%d\n",
               what, fa2::family_name(config.family), config.deterministic, config.head_dim, config.causal,
               config.block_m, config.block_n, config.warps, config.stages, config.blocks_per_sm, config.splits);
  std::abort();
}

// Mostly near the accepted values (so valid configs are common and emit() runs), sometimes any int.
int field(FuzzedDataProvider& data) {
  switch (data.ConsumeIntegralInRange(0, 3)) {
    case 0: return data.ConsumeIntegral<int>();
    case 1: return 16 * data.ConsumeIntegralInRange(-1, 17);
    default: return data.ConsumeIntegralInRange(-2, 300);
  }
}

template <class Enum>
Enum pick(FuzzedDataProvider& data, std::initializer_list<Enum> values) {
  return *(values.begin() + data.ConsumeIntegralInRange<std::size_t>(0, values.size() - 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  FuzzedDataProvider data(bytes, size);

  fa2::TileConfig config;
  config.head_dim = field(data);
  config.dtype = pick(data, {fa2::DType::fp16, fa2::DType::bf16});
  config.causal = data.ConsumeBool();
  config.block_m = field(data);
  config.block_n = field(data);
  config.warps = field(data);
  config.stages = field(data);
  config.arch = pick(data, {fa2::Arch::sm_80, fa2::Arch::sm_86, fa2::Arch::sm_89, fa2::Arch::sm_90a});
  config.blocks_per_sm = data.ConsumeBool() ? data.ConsumeIntegralInRange(-1, 5) : data.ConsumeIntegral<int>();
  // Consumed after the fields above, so those decode from the older seeds as before. A deterministic
  // forward is among the inputs on purpose: validate() must refuse it.
  config.family = pick(data, {fa2::Family::fwd, fa2::Family::bwd, fa2::Family::kvc});
  config.deterministic = data.ConsumeBool();
  // Key splits, likewise after the older fields: any family may be handed some, only kvc may keep them.
  config.splits = data.ConsumeBool() ? data.ConsumeIntegralInRange(-1, 130) : 0;
  // The per-SM limits answer any config (register_cap() 0 for one validate() rejects anyway).
  if (config.register_cap() < 0 || config.register_cap() > 255 || fa2::smem_per_sm(config.arch) <= 0 ||
      fa2::max_threads_per_sm(config.arch) <= 0)
    finding("per-SM limit out of range", config);

  // The parsers see arbitrary text; what they accept must name a value that prints back the same.
  const std::string dtype_text = data.ConsumeRandomLengthString(16);
  if (auto dtype = fa2::parse_dtype(dtype_text)) {
    config.dtype = *dtype;
    if (fa2::parse_dtype(fa2::dtype_name(*dtype)) != dtype) finding("dtype name does not parse back", config);
  }
  const std::string arch_text = data.ConsumeRandomLengthString(16);
  if (auto arch = fa2::parse_arch(arch_text)) {
    config.arch = *arch;
    if (fa2::parse_arch(fa2::arch_name(*arch)) != arch) finding("arch name does not parse back", config);
  }
  const std::string scheme_text = data.ConsumeRandomLengthString(16);
  if (auto scheme = fa2::parse_scheme(scheme_text)) config.scheme = *scheme;
  const std::string policy_text = data.ConsumeRandomLengthString(16);
  if (auto policy = fa2::parse_tune_policy(policy_text)) {
    if (fa2::parse_tune_policy(fa2::tune_policy_name(*policy)) != policy)
      finding("tune policy name does not parse back", config);
  }
  const std::string family_text = data.ConsumeRandomLengthString(16);
  if (auto family = fa2::parse_family(family_text)) {
    config.family = *family;
    if (fa2::parse_family(fa2::family_name(*family)) != family) finding("family name does not parse back", config);
  }
  const int major = data.ConsumeIntegral<int>();
  const int minor = data.ConsumeIntegral<int>();
  if (auto arch = fa2::arch_for_compute_capability(major, minor)) {
    (void)fa2::compute_capability(*arch);
    (void)fa2::max_smem_per_block(*arch);
  }

  const std::optional<std::string> reason = config.validate();
  const std::string name = config.name();
  const std::string hash = config.hash();
  if (hash.size() != 16) finding("hash is not 16 hex digits", config);
  fa2::TileConfig copy = config;
  if (copy != config || copy.hash() != hash || copy.name() != name) finding("equal configs differ", config);

  try {
    const std::string source = fa2::emit(config);
    if (reason) finding("an invalid config emitted", config);
    if (source.find(name) == std::string::npos) finding("the source does not name its kernel", config);
    // The loader looks every entry point up by name: the backward's helpers as much as its main kernel.
    for (const std::string& entry : config.entry_points())
      if (source.find(entry + "(") == std::string::npos) finding("the source lacks an entry point", config);
    // Derived sizes are only meaningful (and only overflow-free) for a config that validates.
    (void)config.smem_bytes();
    (void)config.accumulator_registers();
  } catch (const fa2::Error& error) {
    if (!reason) finding("a valid config failed to emit", config);
    if (error.stage() != fa2::Stage::Config) finding("emit failed at a stage other than Config", config);
  }

  // Every supported problem of either family has a built-in config, and it must validate and be of that
  // family and determinism.
  if (fa2::is_supported_head_dim(config.head_dim)) {
    const bool deterministic = config.family == fa2::Family::bwd && config.deterministic;
    const fa2::TileConfig fallback =
        fa2::default_config(config.family, config.head_dim, config.dtype, config.causal, config.arch, deterministic);
    if (fallback.validate()) finding("default_config does not validate", fallback);
    if (fallback.family != config.family || fallback.deterministic != deterministic)
      finding("default_config is of another family or determinism", fallback);
  }
  return 0;
}
