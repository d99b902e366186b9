// More of the built-in variants on the GPU, beside test_variants.cpp:
//  - raw user windows (-1 sides, sides wider than the sequence, causal with a right side) through the public
//    forward() and backward(), against the reference given the window normalised by hand here, so the API's
//    normalisation (common/variant.cpp) is what is tested, not assumed;
//  - the forward's wgmma_overlap scheme with every variant (the built-in configs use wgmma, so only the tuner
//    would pick it), forced by compiling the config and launching it directly;
//  - the fp16 backward with softcap where scale / cap is far from 1, which once shrank the 16-bit dS into fp16's
//    subnormals (runtime/params_builder.hpp: make_bwd_variant_params).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <optional>
#include <string>

#include "api/checks.hpp"
#include "autotune/backward_check.hpp"
#include "autotune/forward_check.hpp"
#include "codegen/emit.hpp"
#include "codegen/tile_config.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/context_device.hpp"
#include "runtime/driver.hpp"
#include "runtime/kernel_module.hpp"
#include "runtime/launch.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "tests/support/reference_checks.hpp"

namespace {

using fa2::CheckSpec;
using fa2::DType;
using fa2::Family;
using fa2::ProblemShape;

void synchronize(const char* what) { fa2::driver::check(fa2::driver::api().CtxSynchronize(), what); }

ProblemShape base_shape(Family family, int head_dim, DType dtype, int seqlen_q, int seqlen_k, int heads_q,
                        int heads_kv) {
  ProblemShape shape;
  shape.family = family;
  shape.head_dim = head_dim;
  shape.dtype = dtype;
  shape.batch = 2;
  shape.heads_q = heads_q;
  shape.heads_kv = heads_kv;
  shape.seqlen_q = seqlen_q;
  shape.seqlen_k = seqlen_k;
  return shape;
}

// A window as a caller passes it, and what flash-attn's rules make of it, worked out by hand: causal forces the
// right side to 0; a right side of 0 is causal; a left side >= seqlen_k - 1 or a right side >= seqlen_q - 1 reaches
// every key of every row and is unbounded; both sides unbounded is no window. Row i's diagonal key is
// i + seqlen_k - seqlen_q.
struct RawWindow {
  const char* name;
  int seqlen_q, seqlen_k;
  bool causal;
  int left, right;  // passed to the API
  bool want_causal, want_window;
  int want_left, want_right;  // the reference's window (-1: unbounded), meaningful with want_window
};
const RawWindow kRawWindows[] = {
    // seqlen_q 300, seqlen_k 517: sides of 516 (left) and 299 (right) reach every key.
    {"causal with a right side", 300, 517, true, 100, 50, true, true, 100, 0},
    {"causal, right unbounded", 300, 517, true, 100, -1, true, true, 100, 0},
    {"(-1, 0) is causal", 300, 517, false, -1, 0, true, false, -1, -1},
    {"(L, 0) is a causal window", 300, 517, false, 40, 0, true, true, 40, 0},
    {"(-1, -1) with causal", 300, 517, true, -1, -1, true, false, -1, -1},
    {"both sides past the sequence", 300, 517, false, 5000, 5000, false, false, -1, -1},
    {"causal, left past the sequence", 300, 517, true, 5000, 7, true, false, -1, -1},
    {"left past the sequence", 300, 517, false, 5000, 7, false, true, -1, 7},
    {"right past the sequence", 300, 517, false, 40, 5000, false, true, 40, -1},
    // The bounds themselves, on shapes where the one key a bound hides is a large share of the output: one row
    // over 40 keys (any right side > 0 reaches every key), and three rows (a right side of 2 reaches every key).
    {"left = seqlen_k - 1 is unbounded", 1, 40, false, 39, 3, false, false, -1, -1},
    {"left = seqlen_k - 2 hides key 0", 1, 40, false, 38, 3, false, true, 38, -1},
    {"right = seqlen_q - 1 is unbounded", 3, 40, false, 10, 2, false, true, 10, -1},
    {"right = seqlen_q - 2 hides the last key from row 0", 3, 40, false, 10, 1, false, true, 10, 1},
};

// The shape the reference is given: the hand-normalised window, written into the fields directly (not through
// ProblemShape::set_variant, which asks the normalisation under test).
ProblemShape normalised_shape(Family family, const RawWindow& w, int head_dim, DType dtype) {
  ProblemShape shape = base_shape(family, head_dim, dtype, w.seqlen_q, w.seqlen_k, 8, 2);
  shape.causal = w.want_causal;
  shape.window = w.want_window;
  shape.window_left = w.want_window ? w.want_left : -1;
  shape.window_right = w.want_window ? w.want_right : -1;
  return shape;
}

void use_raw_window(const RawWindow& w, bool& causal, fa2::VariantArgs& variant) {
  causal = w.causal;
  variant.window_left = w.left;
  variant.window_right = w.right;
}

// The asserts of a forward result, as test_variants' cases get them.
void check_forward_result(const ProblemShape& shape, const std::string& kernel_name,
                          const fa2::OutputComparison& comparison) {
  CheckSpec spec;
  spec.shape = shape;
  fa2::ForwardCheckResult result;
  result.kernel_name = kernel_name;
  result.comparison = comparison;
  result.passed = comparison.passed();
  fa2::test::check_output(spec, result);
}

}  // namespace

TEST_SUITE("variants") {

TEST_CASE("variants: raw windows through forward() are normalised as flash-attn does") {
  for (const RawWindow& w : kRawWindows)
    for (DType dtype : {DType::bf16, DType::fp16}) {
      const ProblemShape shape = normalised_shape(Family::fwd, w, 128, dtype);
      SUBCASE(fmt::format("{}: ({}, {}){} on {}x{} {}", w.name, w.left, w.right, w.causal ? " causal" : "",
                          w.seqlen_q, w.seqlen_k, fa2::dtype_name(dtype))
                  .c_str()) {
        fa2::ProblemBuffers buffers(shape);
        const fa2::ReferenceOutputs reference(buffers);
        fa2::FwdArgs args = buffers.args();
        use_raw_window(w, args.causal, args.variant);
        args.tune_policy = fa2::TunePolicy::heuristic;
        const fa2::TileConfig config = fa2::forward_config(args);
        // The kernel the raw window selects is the normalised one's: causal and "_win" as worked out by hand.
        CHECK(config.causal == w.want_causal);
        CHECK(config.variant.window == w.want_window);
        fa2::forward(args);
        synchronize("cuCtxSynchronize(forward)");
        check_forward_result(shape, config.name(), fa2::compare_outputs(buffers, reference));
      }
    }
}

TEST_CASE("variants: raw windows through backward() are normalised as flash-attn does") {
  for (const RawWindow& w : kRawWindows) {
    const ProblemShape shape = normalised_shape(Family::bwd, w, 128, DType::bf16);
    SUBCASE(fmt::format("{}: ({}, {}){} on {}x{}", w.name, w.left, w.right, w.causal ? " causal" : "", w.seqlen_q,
                        w.seqlen_k)
                .c_str()) {
      fa2::BwdProblemBuffers buffers(shape);
      const fa2::BwdReferenceOutputs reference(buffers);  // O and LSE from the normalised window
      fa2::BwdArgs args = buffers.args();
      use_raw_window(w, args.causal, args.variant);
      args.tune_policy = fa2::TunePolicy::heuristic;
      const fa2::TileConfig config = fa2::backward_config(args);
      CHECK(config.causal == w.want_causal);
      CHECK(config.variant.window == w.want_window);
      fa2::backward(args);
      synchronize("cuCtxSynchronize(backward)");
      const fa2::GradientComparison c = fa2::compare_gradients(buffers, reference);
      INFO(shape.describe(), "  ", config.name(), "  ", c.summary());
      CHECK(c.unwritten_dq + c.unwritten_dk + c.unwritten_dv == 0);
      CHECK(c.dq_rel_error <= c.tolerance);
      CHECK(c.dk_rel_error <= c.tolerance);
      CHECK(c.dv_rel_error <= c.tolerance);
      MESSAGE(fmt::format("{:<60} {:<62} {}  {}", shape.describe(), config.name(), c.summary(),
                          c.passed() ? "ok" : "FAIL"));
    }
  }
}

TEST_CASE("variants: the wgmma_overlap forward matches the reference with every variant") {
  if (fa2::current_arch("wgmma_overlap test") != fa2::Arch::sm_90a) {
    MESSAGE("skipped: wgmma_overlap needs sm_90a");
    return;
  }
  struct Case {
    const char* name;
    bool causal;
    int window_left, window_right;
    float softcap;
    bool alibi;
  };
  const Case cases[] = {
      {"sliding causal", true, 100, -1, 0.f, false}, {"two-sided", false, 37, 90, 0.f, false},
      {"softcap", false, -1, -1, 1.5f, false},       {"alibi causal", true, -1, -1, 0.f, true},
      {"all", true, 64, -1, 5.f, true},
  };
  struct Tiles {
    int head_dim, block_m, block_n, warps, stages;
    DType dtype;
  };
  // Two warpgroups and one, every stage count, the head dims wgmma takes, both dtypes.
  const Tiles tiles[] = {{64, 128, 64, 8, 2, DType::bf16},
                         {128, 128, 64, 8, 2, DType::bf16},
                         {128, 64, 128, 4, 3, DType::fp16},
                         {256, 128, 64, 8, 1, DType::bf16}};
  struct Shape {
    int seqlen_q, seqlen_k, heads_q, heads_kv;
    fa2::Layout layout;
  };
  // Odd lengths, both orders, one query row; MHA, GQA 4:1 and MQA; both packed layouts.
  const Shape shapes[] = {{517, 517, 4, 4, fa2::Layout::bshd},
                          {257, 1000, 8, 2, fa2::Layout::bhsd},
                          {1000, 257, 4, 2, fa2::Layout::bshd},
                          {1, 300, 8, 1, fa2::Layout::bshd}};
  // Plain loops, not SUBCASEs (which re-enter the test case body): each config is compiled once and kept here.
  std::map<std::string, fa2::KernelModule> modules;
  for (const Tiles& t : tiles)
    for (const Case& c : cases)
      for (const Shape& s : shapes) {
        ProblemShape shape = base_shape(Family::fwd, t.head_dim, t.dtype, s.seqlen_q, s.seqlen_k, s.heads_q,
                                        s.heads_kv);
        shape.layout = s.layout;
        fa2::VariantArgs values;
        values.window_left = c.window_left;
        values.window_right = c.window_right;
        values.softcap = c.softcap;
        shape.set_variant(c.causal, values, c.alibi);
        fa2::TileConfig config = fa2::default_config(Family::fwd, t.head_dim, t.dtype, shape.causal,
                                                     fa2::Arch::sm_90a, false, 0, shape.variant());
        config.scheme = fa2::Scheme::wgmma_overlap;
        config.block_m = t.block_m;
        config.block_n = t.block_n;
        config.warps = t.warps;
        config.stages = t.stages;
        config.blocks_per_sm = 1;
        INFO(c.name, " ", config.name(), " on ", shape.describe());
        REQUIRE_FALSE(config.validate().has_value());
        auto module = modules.find(config.name());
        if (module == modules.end()) {
          const fa2::CompiledKernel kernel = fa2::compile_source(fa2::emit(config), config.name(), config.arch);
          module = modules.emplace(config.name(), fa2::KernelModule::load(config, kernel.cubin)).first;
        }
        // A scale of 1 puts the logits where the caps bend them (test_variants.cpp says why).
        const std::optional<float> scale = c.softcap > 0.f ? std::optional<float>(1.f) : std::nullopt;
        fa2::ProblemBuffers buffers(shape);
        const fa2::ReferenceOutputs reference(buffers, 0, scale);
        fa2::launch_forward(module->second, buffers.args(0, scale), nullptr);
        synchronize("cuCtxSynchronize(wgmma_overlap forward)");
        check_forward_result(shape, config.name(), fa2::compare_outputs(buffers, reference));
      }
}

TEST_CASE("variants: the fp16 backward with softcap keeps dS in range when scale / cap is far from 1") {
  // dS is stored to 16 bits before dQ += dS K and dK += dS^T Q. Scaled there by scale / cap, it was 1/565 of
  // the plain kernel's dS at Gemma 2's cap 50 and d128 (~3e-6 for 2000 keys: fp16 subnormals, ~1% error each)
  // and below fp16's smallest subnormal at cap 1000 and scale 0.02, where dQ and dK came out ~0. The opposite
  // direction (a small cap, a large scale) multiplied dS by up to 2 here: in range, kept as a guard.
  struct Case {
    const char* name;
    float softcap;
    float softmax_scale;  // 0: the default 1/sqrt(head_dim)
  };
  const Case cases[] = {{"Gemma 2's cap at the default scale", 50.f, 0.f},
                        {"a large cap, a small scale", 1000.f, 0.02f},
                        {"a small cap, a large scale", 0.5f, 1.f}};
  struct Shape {
    int seqlen_q, seqlen_k, heads_q, heads_kv;
    bool causal;
  };
  const Shape shapes[] = {{2048, 2048, 4, 2, false}, {1000, 1517, 4, 4, true}};
  // d96 runs the mma_sync backward on every arch (store_ds), d64 and d128 the wgmma ones on sm_90a.
  for (int head_dim : {64, 96, 128})
    for (const Case& c : cases)
      for (const Shape& s : shapes) {
        CheckSpec spec;
        spec.shape = base_shape(Family::bwd, head_dim, DType::fp16, s.seqlen_q, s.seqlen_k, s.heads_q, s.heads_kv);
        spec.shape.batch = 1;
        fa2::VariantArgs values;
        values.softcap = c.softcap;
        spec.shape.set_variant(s.causal, values, false);
        if (c.softmax_scale > 0.f) spec.softmax_scale = c.softmax_scale;
        SUBCASE(fmt::format("{} {}", c.name, spec.shape.describe()).c_str()) { fa2::test::check_backward_case(spec); }
      }
}

}  // TEST_SUITE
