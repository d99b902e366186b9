// The built-in variants (sliding window, softcap, ALiBi) without a GPU: flash-attn's window rules, the variant
// in names, hashes, problem keys and the cache, the generated source (default configs untouched), argument
// errors naming the value, the C ABI's pre-variant struct size, and every variant default compiling with NVRTC.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "api/tune_resolution.hpp"
#include "autotune/cache.hpp"
#include "autotune/problem_shape.hpp"
#include "codegen/emit.hpp"
#include "codegen/tile_config.hpp"
#include "common/error.hpp"
#include "common/variant.hpp"
#include "fa2jit/fa2jit.h"
#include "fa2jit/fa2jit.hpp"
#include "runtime/args_check.hpp"
#include "runtime/params_builder.hpp"
#include "tests/support/cache_fixtures.hpp"
#include "tests/support/compile_check.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace {

using fa2::Arch;
using fa2::DType;
using fa2::Family;
using fa2::Variant;
using fa2::VariantArgs;

VariantArgs window(int left, int right) {
  VariantArgs args;
  args.window_left = left;
  args.window_right = right;
  return args;
}

using fa2::cache_test::contains;

// Aligned stand-ins for device pointers: the argument checks look at alignment only.
alignas(256) unsigned char g_tensor[256];
alignas(16) float g_slopes[64];

fa2::FwdArgs forward_args() {
  fa2::FwdArgs args;
  args.q = args.k = args.v = args.o = g_tensor;
  args.batch = 2;
  args.heads_q = 8;
  args.heads_kv = 2;
  args.seqlen_q = 100;
  args.seqlen_k = 130;
  args.head_dim = 64;
  args.q_strides = args.o_strides = fa2::bshd_strides(100, 8, 64);
  args.k_strides = args.v_strides = fa2::bshd_strides(130, 2, 64);
  return args;
}

std::string forward_error(const fa2::FwdArgs& args) {
  try {
    fa2::check_forward_args(args);
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Argument);
    return error.what();
  }
  return {};
}

const Variant kKinds[] = {{true, false, false}, {false, true, false}, {false, false, true}, {true, true, true}};

}  // namespace

TEST_SUITE("variants") {

TEST_CASE("flash-attn's window rules: causal windows, unbounded sides, no window") {
  // (-1, -1): none; (-1, 0): flash-attn's causal; (L, 0): causal with a window; causal forces right = 0.
  fa2::EffectiveMask none = fa2::effective_mask(false, window(-1, -1), 100, 100);
  CHECK_FALSE(none.causal);
  CHECK_FALSE(none.window);
  fa2::EffectiveMask causal = fa2::effective_mask(false, window(-1, 0), 100, 100);
  CHECK(causal.causal);
  CHECK_FALSE(causal.window);
  fa2::EffectiveMask sliding = fa2::effective_mask(false, window(16, 0), 100, 100);
  CHECK(sliding.causal);
  CHECK(sliding.window);
  CHECK(sliding.left == 16);
  CHECK(sliding.right == 0);
  fa2::EffectiveMask forced = fa2::effective_mask(true, window(16, 8), 100, 100);
  CHECK(forced.causal);
  CHECK(forced.right == 0);
  fa2::EffectiveMask both = fa2::effective_mask(false, window(16, 8), 100, 100);
  CHECK_FALSE(both.causal);
  CHECK(both.window);
  CHECK(both.left == 16);
  CHECK(both.right == 8);
  // A side that reaches every key of every row is unbounded, and both unbounded is no window at all.
  CHECK(fa2::effective_mask(false, window(129, 8), 100, 130).left == -1);
  CHECK(fa2::effective_mask(false, window(16, 99), 100, 130).right == -1);
  CHECK_FALSE(fa2::effective_mask(false, window(129, 99), 100, 130).window);
  CHECK(fa2::effective_mask(false, window(128, 98), 100, 130).window);
  CHECK(fa2::variant_of(false, window(16, 8), 100, 100) == Variant{true, false, false});
  VariantArgs cap;
  cap.softcap = 30.f;
  cap.alibi_slopes = g_slopes;
  CHECK(fa2::variant_of(true, cap, 100, 100) == Variant{false, true, true});
}

TEST_CASE("variant tags round trip; names and hashes differ per kind and keep the default's") {
  std::set<std::string> tags, names, hashes;
  const fa2::TileConfig plain = fa2::default_config(128, DType::bf16, true, Arch::sm_90a);
  CHECK(plain.name() == "fa2_fwd_wgmma_d128_bf16_causal_m128n64w8s2b2_sm90a");  // unchanged by variants
  CHECK(fa2::variant_tag(Variant{}).empty());
  for (const Variant& kind : kKinds) {
    const std::string tag = fa2::variant_tag(kind);
    CHECK(fa2::parse_variant_tag(tag) == kind);
    tags.insert(tag);
    for (Family family : {Family::fwd, Family::bwd}) {
      const fa2::TileConfig config = fa2::default_config(family, 128, DType::bf16, true, Arch::sm_90a, false, 0, kind);
      CHECK(config.variant == kind);
      CHECK(contains(config.name(), "_causal_" + tag + "_"));
      CHECK_FALSE(config.validate().has_value());
      names.insert(config.name());
      hashes.insert(config.hash());
    }
  }
  CHECK(fa2::variant_tag({true, true, true}) == "win_cap_alibi");
  CHECK(tags.size() == 4);
  CHECK(names.size() == 8);
  CHECK(hashes.size() == 8);
  for (const char* bad : {"cap_win", "win_win", "window", "win_", "_cap"}) CHECK_FALSE(fa2::parse_variant_tag(bad));
}

TEST_CASE("the generated source names the variant only when there is one") {
  for (Family family : {Family::fwd, Family::bwd})
    for (Arch arch : {Arch::sm_80, Arch::sm_90a}) {
      const std::string plain = fa2::emit(fa2::default_config(family, 128, DType::bf16, false, arch));
      CHECK_FALSE(contains(plain, "Variant"));
      const std::string variant =
          fa2::emit(fa2::default_config(family, 128, DType::bf16, false, arch, false, 0, Variant{true, true, false}));
      CHECK(contains(variant, "fa2::ScoreVariant</*window*/ true, /*softcap*/ true, /*alibi*/ false>"));
      CHECK(contains(variant, "const fa2::VariantParams variant"));
      CHECK(contains(variant, "(params, variant);"));
    }
}

TEST_CASE("variants are refused where a family or scheme has none yet") {
  fa2::TileConfig kvc = fa2::default_config(Family::kvc, 128, DType::bf16, true, Arch::sm_90a);
  kvc.variant.softcap = true;
  REQUIRE(kvc.validate().has_value());
  CHECK(contains(*kvc.validate(), "not supported yet by the kvc family"));
  fa2::TileConfig tma = fa2::with_scheme(fa2::default_config(128, DType::bf16, false, Arch::sm_90a), fa2::Scheme::tma_ws);
  tma.variant.window = true;
  REQUIRE(tma.validate().has_value());
  CHECK(contains(*tma.validate(), "not supported yet by scheme tma_ws"));
}

TEST_CASE("problem keys carry the variant kind exactly and the window bucketed") {
  fa2::ProblemShape shape;
  shape.seqlen_q = shape.seqlen_k = 4096;
  const std::string plain = fa2::ProblemClass::of(shape).key();
  std::set<std::string> keys{plain};
  for (const Variant& kind : kKinds) {
    fa2::ProblemShape s = shape;
    VariantArgs args = kind.window ? window(256, 0) : VariantArgs{};
    args.softcap = kind.softcap ? 30.f : 0.f;
    s.set_variant(false, args, kind.alibi);
    CHECK(s.variant() == kind);
    keys.insert(fa2::ProblemClass::of(s).key());
  }
  CHECK(keys.size() == 5);
  fa2::ProblemShape windowed = shape;
  windowed.set_variant(false, window(200, 0), false);
  CHECK(windowed.causal);
  CHECK(fa2::ProblemClass::of(windowed).key() == "bf16 d128 causal gqa1 bshd q4096 k4096 bh32 win256x0");
  fa2::ProblemShape near = shape;
  near.set_variant(true, window(250, -1), false);
  CHECK(fa2::ProblemClass::of(near) == fa2::ProblemClass::of(windowed));  // one bucket, and causal makes right 0
  fa2::ProblemShape two_sided = shape;
  two_sided.set_variant(false, window(-1, 100), false);
  CHECK(fa2::ProblemClass::of(two_sided).key() == "bf16 d128 full gqa1 bshd q4096 k4096 bh32 wininfx128");
  // The window's FLOPs: each row sees at most left + 1 keys.
  CHECK(windowed.flops() < 0.1 * shape.flops());
  // A cached winner for another variant kind is not used for this class.
  fa2::TileConfig winner = fa2::default_config(128, DType::bf16, true, Arch::sm_90a);
  CHECK(contains(fa2::winner_mismatch(winner, windowed, Arch::sm_90a), "variants"));
  winner.variant.window = true;
  CHECK(fa2::winner_mismatch(winner, windowed, Arch::sm_90a).empty());
}

TEST_CASE("the cache keeps a config's variant; rows from before variants read as none") {
  using fa2::cache_test::CachedKernel;
  using fa2::cache_test::MeasurementStatus;
  using fa2::cache_test::TempDir;
  using fa2::cache_test::TuningRecord;
  using fa2::cache_test::make_kernel;
  using fa2::cache_test::make_measurement;
  using fa2::cache_test::make_tuning;
  using fa2::cache_test::raw_exec;
  using fa2::cache_test::cache_error_of;
  using fa2::cache_test::kDropV5Columns;
  using fa2::Cache;
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  CachedKernel kernel = make_kernel("k");
  kernel.config.variant = Variant{true, false, true};
  TuningRecord tuning = make_tuning("t", {make_measurement(MeasurementStatus::ok, 0)});
  tuning.winner.variant = Variant{false, true, false};
  tuning.measurements[0].config.variant = Variant{true, true, true};
  {
    Cache cache = Cache::open(path);
    cache.put_kernels({kernel, make_kernel("plain", 1)});
    cache.put_tuning(tuning);
    CHECK(cache.find_kernel("k")->config == kernel.config);
    const auto found = cache.find_tuning("t", true);
    REQUIRE(found.has_value());
    CHECK(found->winner.variant == tuning.winner.variant);
    CHECK(found->measurements.at(0).config.variant == Variant{true, true, true});
  }
  // Back to schema v4 (no variant column), then migrated again: every row reads as no variant.
  raw_exec(path, std::string(kDropV5Columns) + "PRAGMA user_version = 4;");
  Cache cache = Cache::open(path);
  CHECK(cache.info().schema_version == Cache::kSchemaVersion);
  CHECK_FALSE(cache.find_kernel("k")->config.variant.any());
  CHECK(cache.find_kernel("plain")->config == make_kernel("plain", 1).config);
  // A variant tag no release writes is refused by name.
  raw_exec(path, "UPDATE kernels SET variant = 'cap_win' WHERE cubin_key = 'plain'");
  CHECK(contains(cache_error_of([&] { cache.find_kernel("plain"); }), "unknown variant 'cap_win'"));
}

TEST_CASE("bad variant values are argument errors naming the value and what is allowed") {
  fa2::FwdArgs args = forward_args();
  CHECK(forward_error(args).empty());
  args.variant = window(-2, 0);
  CHECK(contains(forward_error(args), "window_left -2 must be -1 (unbounded) or a number of keys >= 0"));
  args.variant = window(4, -7);
  CHECK(contains(forward_error(args), "window_right -7"));
  args.variant = VariantArgs{};
  args.variant.softcap = -1.f;
  CHECK(contains(forward_error(args), "softcap -1 must be finite and > 0, or 0"));
  args.variant.softcap = 0.f;  // flash-attn's "off"
  CHECK(forward_error(args).empty());
  args.variant.alibi_slopes = g_slopes;
  args.variant.alibi_slopes_batch_stride = 3;
  CHECK(contains(forward_error(args), "alibi_slopes_batch_stride 3 must be 0"));
  args.variant.alibi_slopes_batch_stride = 8;
  CHECK(forward_error(args).empty());
  args.variant.alibi_slopes = reinterpret_cast<const float*>(reinterpret_cast<const char*>(g_slopes) + 2);
  CHECK(contains(forward_error(args), "alibi_slopes"));
  CHECK(contains(forward_error(args), "4-byte aligned"));
  args.variant = VariantArgs{};
  args.variant.alibi_slopes_batch_stride = 8;
  CHECK(contains(forward_error(args), "without alibi_slopes"));

  fa2::BwdArgs backward;
  backward.q = backward.k = backward.v = backward.o = backward.dout = backward.dq = backward.dk = backward.dv = g_tensor;
  backward.lse = g_slopes;
  backward.batch = 1;
  backward.heads_q = backward.heads_kv = 2;
  backward.seqlen_q = backward.seqlen_k = 64;
  backward.head_dim = 64;
  backward.q_strides = backward.k_strides = backward.v_strides = backward.o_strides = backward.dout_strides =
      backward.dq_strides = backward.dk_strides = backward.dv_strides = fa2::bshd_strides(64, 2, 64);
  backward.variant.softcap = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(fa2::check_backward_args(backward), doctest::Contains("softcap nan"), fa2::Error);

  // The KV-cache entry has no variants yet: refused by name, never ignored.
  fa2::KvcacheArgs kvc;
  kvc.q = kvc.k_cache = kvc.v_cache = kvc.o = g_tensor;
  kvc.batch = 1;
  kvc.heads_q = kvc.heads_kv = 2;
  kvc.seqlen_q = 1;
  kvc.seqlen_k = 64;
  kvc.head_dim = 64;
  kvc.q_strides = kvc.o_strides = fa2::bshd_strides(1, 2, 64);
  kvc.k_strides = kvc.v_strides = fa2::bshd_strides(64, 2, 64);
  CHECK_NOTHROW(fa2::check_kvcache_args(kvc));
  kvc.variant = window(32, 0);
  CHECK_THROWS_WITH_AS(fa2::check_kvcache_args(kvc), doctest::Contains("not supported yet by forward_with_kvcache"),
                       fa2::Error);
}

TEST_CASE("the kernel's variant params: unbounded sides reach every key, softcap moves the scale into tanh") {
  float scale = 0.125f, scale_log2 = 0.125f * 1.44269504f;
  VariantArgs args = window(-1, 5);
  args.softcap = 20.f;
  args.alibi_slopes = g_slopes;
  args.alibi_slopes_batch_stride = 8;
  const fa2::VariantParams params = fa2::make_variant_params(args, false, 100, 130, scale, scale_log2);
  CHECK(params.window_left == 130);
  CHECK(params.window_right == 5);
  CHECK(params.softcap_scale == doctest::Approx(0.125 / 20));
  CHECK(scale == 20.f);
  CHECK(scale_log2 == doctest::Approx(20 * 1.44269504));
  CHECK(params.alibi_scale == doctest::Approx(1.0 / 20));
  CHECK(params.alibi_batch_stride == 8);
  float causal_scale = 0.125f, causal_log2 = 0.18f;
  const fa2::VariantParams causal = fa2::make_variant_params(window(7, 9), true, 100, 130, causal_scale, causal_log2);
  CHECK(causal.window_left == 7);
  CHECK(causal.window_right == 0);
  CHECK(causal_scale == 0.125f);  // no softcap: the call's scale
}

TEST_CASE("C ABI: the variant fields are read, and a struct from before them is still accepted") {
  fa2_forward_args args;
  fa2_forward_args_init(&args);
  CHECK(args.window == 0);
  CHECK(args.softcap == 0.f);
  CHECK(args.alibi_slopes == nullptr);
  // The pre-variant size: everything up to the first variant field, and the library takes it (the call then
  // fails on its null tensors, not on the size).
  const std::size_t old_size = offsetof(fa2_forward_args, window);
  CHECK(old_size == offsetof(fa2_forward_args, cache_path) + sizeof(const char*));
  char name[256];
  args.struct_size = static_cast<int>(old_size);
  args.window_left = -5;  // past the caller's struct: never read
  args.window = 1;
  CHECK(fa2_forward_config_name(&args, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "q is a null pointer"));
  args.struct_size = static_cast<int>(old_size) + 4;
  CHECK(fa2_forward_config_name(&args, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "struct_size"));
  // With the current size the window is read and checked.
  args.struct_size = sizeof(args);
  CHECK(fa2_forward_config_name(&args, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "q is a null pointer"));
  args.q = args.k = args.v = args.o = g_tensor;
  args.batch = 1;
  args.heads_q = args.heads_kv = 2;
  args.seqlen_q = args.seqlen_k = 64;
  args.head_dim = 64;
  args.q_row_stride = args.k_row_stride = args.v_row_stride = args.o_row_stride = 128;
  args.q_head_stride = args.k_head_stride = args.v_head_stride = args.o_head_stride = 64;
  args.q_batch_stride = args.k_batch_stride = args.v_batch_stride = args.o_batch_stride = 64 * 128;
  CHECK(fa2_forward_config_name(&args, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "window_left -5"));
  fa2_backward_args backward;
  fa2_backward_args_init(&backward);
  backward.struct_size = static_cast<int>(offsetof(fa2_backward_args, window));
  size_t bytes = 0;
  CHECK(fa2_backward_workspace_size(&backward, &bytes) == FA2_ERROR_ARGUMENT);
  CHECK_FALSE(contains(fa2_last_error(), "struct_size"));
  fa2_kvcache_args kvc;
  fa2_kvcache_args_init(&kvc);
  kvc.struct_size = static_cast<int>(offsetof(fa2_kvcache_args, window)) - 8;
  CHECK(fa2_kvcache_config_name(&kvc, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "struct_size"));
}

TEST_CASE("fa2-tune: --window, --softcap and --alibi select the variant; bad values are refused while parsing") {
  using fa2::test::run;
  const fa2::test::Run emitted = run("emit --pass bwd --head-dim 64 --arch sm_80 --window 128,0 --softcap 30 --alibi");
  CHECK(emitted.status == 0);
  CHECK(contains(emitted.output, "fa2_bwd_mma_d64_bf16_causal_win_cap_alibi_"));  // (128, 0) is causal
  CHECK(contains(emitted.output, "fa2::ScoreVariant</*window*/ true, /*softcap*/ true, /*alibi*/ true>"));
  const fa2::test::Run two_sided = run("emit --head-dim 128 --window 64,64");
  CHECK(contains(two_sided.output, "_full_win_"));
  const fa2::test::Run bad_window = run("emit --window 12");
  CHECK(bad_window.status > 100);
  CHECK(contains(bad_window.output, "'12' is not L,R"));
  CHECK(run("emit --window -2,0").status > 100);
  CHECK(run("emit --softcap -1").status > 100);
  const fa2::test::Run kvc = run("emit --pass kvc --softcap 30");
  CHECK(kvc.status == 2);  // a config that does not validate
  CHECK(contains(kvc.output, "not supported yet by the kvc family"));
}

TEST_CASE("every variant's default config compiles for sm_80 and sm_90a (forward without spills)") {
  std::vector<fa2::TileConfig> forward, backward;
  for (Arch arch : {Arch::sm_80, Arch::sm_90a})
    for (int d : {64, 128, 256})
      for (const Variant& kind : kKinds) {
        const bool causal = kind.window;  // the sliding window as flash-attn's models use it
        forward.push_back(fa2::default_config(Family::fwd, d, DType::bf16, causal, arch, false, 0, kind));
        backward.push_back(fa2::default_config(Family::bwd, d, DType::fp16, causal, arch, false, 0, kind));
      }
  // The deterministic backward with a window (its dQ turns count from the first key block that adds).
  backward.push_back(fa2::default_config(Family::bwd, 128, DType::bf16, true, Arch::sm_90a, true, 0, kKinds[3]));
  backward.push_back(fa2::default_config(Family::bwd, 96, DType::bf16, false, Arch::sm_80, true, 0, kKinds[0]));
  // The overlapped wgmma forward takes the variants too.
  fa2::TileConfig overlap = fa2::default_config(Family::fwd, 128, DType::bf16, true, Arch::sm_90a, false, 0, kKinds[3]);
  overlap.scheme = fa2::Scheme::wgmma_overlap;
  forward.push_back(overlap);
  for (const fa2::TileConfig& config : forward) CHECK(config.blocks_per_sm == 1);
  fa2::testing::check_compiles_without_spills(forward);
  // The backward defaults' rule: within the tuner's spill limit (sm_80 d256 and sm_90a d64 spill a little
  // without variants too).
  fa2::testing::check_compiles_within_spill_limit(backward);
}

}  // TEST_SUITE
