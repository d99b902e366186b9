// Configs beyond the defaults against the fp32 reference on odd shapes: what the tuner may pick must be
// as correct as what the defaults are. Uses the tuner's own check (measure_config), which poisons the
// outputs first. The tma_ws schemes joined the tuner's sweep once these passed on a GPU (H200, 2026-12-06).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "autotune/forward_check.hpp"
#include "autotune/kernel_store.hpp"
#include "autotune/problem_bench.hpp"
#include "autotune/tuner.hpp"
#include "codegen/emit.hpp"
#include "runtime/driver.hpp"
#include "runtime/kernel_module.hpp"
#include "runtime/module.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace {

// A family's sm_90a default at `head_dim` with other tiles (blocks_per_sm 0: the default's).
fa2::TileConfig tiled(fa2::Family family, int head_dim, fa2::DType dtype, fa2::Scheme scheme, int block_m,
                      int block_n, int warps, int stages, int blocks_per_sm = 0) {
  fa2::TileConfig c = fa2::default_config(family, head_dim, dtype, false, fa2::Arch::sm_90a);
  c.scheme = scheme;
  c.block_m = block_m;
  c.block_n = block_n;
  c.warps = warps;
  c.stages = stages;
  if (blocks_per_sm > 0) c.blocks_per_sm = blocks_per_sm;
  return c;
}

fa2::TileConfig config(int head_dim, bool causal, int block_m, int block_n, int warps, int stages,
                       fa2::Scheme scheme = fa2::Scheme::mma_sync, fa2::DType dtype = fa2::DType::bf16,
                       int blocks_per_sm = 1) {
  fa2::TileConfig c =
      tiled(fa2::Family::fwd, head_dim, dtype, scheme, block_m, block_n, warps, stages, blocks_per_sm);
  c.causal = causal;
  return c;
}

// A problem of `c`'s family, head dim, dtype, mask and determinism: batch 2 and the given sizes.
fa2::ProblemShape shape_of(const fa2::TileConfig& c, int seqlen_q, int seqlen_k, int heads_q = 8, int heads_kv = 2) {
  fa2::ProblemShape shape;
  shape.family = c.family;
  shape.deterministic = c.deterministic;
  shape.head_dim = c.head_dim;
  shape.dtype = c.dtype;
  shape.causal = c.causal;
  shape.batch = 2;
  shape.heads_q = heads_q;
  shape.heads_kv = heads_kv;
  shape.seqlen_q = seqlen_q;
  shape.seqlen_k = seqlen_k;
  return shape;
}

// The tuner's own check of the compiled `c` on `shape`: the reference comparison and one timed run.
fa2::Measurement check_once(const fa2::TileConfig& c, const fa2::CompiledKernel& kernel,
                            const fa2::ProblemShape& shape) {
  fa2::TimingOptions once;
  once.warmup = 1;
  once.repeats = 1;
  once.min_repeats = 1;
  const std::unique_ptr<fa2::ProblemBench> bench = fa2::make_problem_bench(shape, 1);
  return fa2::measure_config(c, fa2::cubin_key(c), kernel.cubin, kernel.resources, *bench, once,
                             /*allow_spills*/ true);
}

}  // namespace

TEST_CASE("non-default configs match the reference on odd shapes") {
  // Every block_m, block_n and stage count of the search space appears at least once.
  const std::vector<fa2::TileConfig> configs = {
      config(64, false, 256, 32, 8, 3),  config(128, false, 128, 128, 8, 2), config(128, false, 64, 64, 4, 1),
      config(256, false, 64, 32, 4, 2),  config(96, false, 128, 64, 8, 3),   config(160, false, 64, 128, 4, 1),
      // wgmma: head dims 64..256, one and two warpgroups, widths from 32 to 192, 1..3 stages, fp16.
      config(64, false, 128, 128, 8, 2, fa2::Scheme::wgmma), config(64, false, 64, 192, 4, 3, fa2::Scheme::wgmma),
      config(128, false, 128, 64, 8, 2, fa2::Scheme::wgmma), config(128, false, 64, 96, 4, 1, fa2::Scheme::wgmma),
      config(128, false, 128, 128, 8, 2, fa2::Scheme::wgmma, fa2::DType::fp16),
      config(192, false, 128, 64, 8, 1, fa2::Scheme::wgmma), config(256, false, 128, 32, 8, 2, fa2::Scheme::wgmma),
      config(256, false, 64, 64, 4, 1, fa2::Scheme::wgmma, fa2::DType::fp16),
      // wgmma_overlap: V one tile behind K, with one, two and three stages.
      config(64, false, 128, 64, 8, 2, fa2::Scheme::wgmma_overlap),
      config(128, false, 128, 96, 8, 1, fa2::Scheme::wgmma_overlap, fa2::DType::fp16),
      config(128, false, 64, 128, 4, 3, fa2::Scheme::wgmma_overlap),
      config(256, false, 128, 64, 8, 2, fa2::Scheme::wgmma_overlap),
      // Two blocks per SM: registers capped at 128, with the few spilled bytes the tuner accepts.
      config(128, false, 128, 64, 8, 2, fa2::Scheme::wgmma, fa2::DType::bf16, 2),
      config(128, false, 128, 32, 8, 1, fa2::Scheme::wgmma, fa2::DType::fp16, 2),
      config(64, false, 128, 128, 8, 2, fa2::Scheme::wgmma, fa2::DType::bf16, 2),
  };
  // seqlens not multiples of any tile, both orders, fewer keys than one tile, GQA 4:1.
  const std::vector<std::pair<int, int>> seqlens = {{509, 509}, {300, 777}, {777, 300}, {65, 17}, {1, 200}};
  for (fa2::TileConfig c : configs)
    for (bool causal : {false, true}) {
      c.causal = causal;
      const fa2::CompiledKernel kernel = fa2::compile_source(fa2::emit(c), c.name(), c.arch);
      for (auto [seqlen_q, seqlen_k] : seqlens) {
        const fa2::ProblemShape shape = shape_of(c, seqlen_q, seqlen_k);
        const fa2::Measurement m = check_once(c, kernel, shape);
        INFO(c.name(), " on ", shape.describe(), ": ", m.reason);
        CHECK(m.status == fa2::MeasurementStatus::ok);
        CHECK(m.o_rel_error <= fa2::o_tolerance(shape.dtype));
      }
    }
}

TEST_CASE("tma_ws configs match the reference on odd shapes, both layouts, GQA and MQA") {
  // The warp-specialized forward: two and three consumer warpgroups, one to three stages, the odd key-tile
  // widths (80, 112, 176), every head dim it takes, both dtypes, without and with the softmax/P V overlap, and
  // with the consumer warpgroups taking turns (ping-pong, two and three of them).
  using fa2::Scheme;
  const std::vector<fa2::TileConfig> configs = {
      config(64, false, 128, 128, 12, 2, Scheme::tma_ws),
      config(64, false, 192, 128, 16, 2, Scheme::tma_ws, fa2::DType::fp16),
      config(128, false, 128, 176, 12, 2, Scheme::tma_ws),
      config(128, false, 128, 128, 12, 3, Scheme::tma_ws, fa2::DType::fp16),
      config(128, false, 128, 80, 12, 1, Scheme::tma_ws),
      config(192, false, 128, 112, 12, 2, Scheme::tma_ws),
      config(256, false, 128, 80, 12, 2, Scheme::tma_ws),
      config(256, false, 128, 64, 12, 2, Scheme::tma_ws, fa2::DType::fp16),
      config(64, false, 128, 128, 12, 2, Scheme::tma_ws_overlap),
      config(64, false, 192, 128, 16, 1, Scheme::tma_ws_overlap, fa2::DType::fp16),
      config(128, false, 128, 176, 12, 2, Scheme::tma_ws_overlap, fa2::DType::fp16),
      config(192, false, 128, 112, 12, 2, Scheme::tma_ws_overlap),
      config(256, false, 128, 80, 12, 2, Scheme::tma_ws_overlap),
      config(64, false, 128, 128, 12, 2, Scheme::tma_ws_pingpong),
      config(64, false, 192, 128, 16, 2, Scheme::tma_ws_pingpong, fa2::DType::fp16),
      config(128, false, 128, 128, 12, 2, Scheme::tma_ws_pingpong),
      config(128, false, 128, 176, 12, 2, Scheme::tma_ws_pingpong, fa2::DType::fp16),
      config(192, false, 128, 112, 12, 2, Scheme::tma_ws_pingpong),
      config(256, false, 128, 80, 12, 2, Scheme::tma_ws_pingpong),
  };
  struct Case {
    int seqlen_q, seqlen_k, heads_q, heads_kv;
  };
  // Not multiples of any tile, both orders (causal with seqlen_q > seqlen_k has blocks that see no key), fewer
  // keys than one tile, one query row; GQA 4:1 and MQA (one KV head: a map dimension of size 1).
  const std::vector<Case> cases = {{509, 509, 8, 2}, {300, 777, 8, 2}, {777, 300, 8, 2},
                                   {65, 17, 8, 2},   {1, 200, 8, 2},   {129, 1000, 4, 1}};
  for (fa2::TileConfig c : configs)
    for (bool causal : {false, true}) {
      c.causal = causal;
      REQUIRE_FALSE(c.validate().has_value());
      const fa2::CompiledKernel kernel = fa2::compile_source(fa2::emit(c), c.name(), c.arch);
      for (fa2::Layout layout : {fa2::Layout::bshd, fa2::Layout::bhsd})
        for (const Case& k : cases) {
          fa2::ProblemShape shape = shape_of(c, k.seqlen_q, k.seqlen_k, k.heads_q, k.heads_kv);
          shape.layout = layout;
          const fa2::Measurement m = check_once(c, kernel, shape);
          INFO(c.name(), " on ", shape.describe(), ": ", m.reason);
          CHECK(m.status == fa2::MeasurementStatus::ok);
          CHECK(m.o_rel_error <= fa2::o_tolerance(shape.dtype));
          MESSAGE(fmt::format("{} on {}: O {:.2e}", c.name(), shape.describe(), m.o_rel_error));
        }
    }
}

TEST_CASE("the tuner gates and times the tma_ws candidates beside the wgmma ones") {
  fa2::ProblemShape shape = shape_of(config(128, true, 128, 64, 8, 2, fa2::Scheme::wgmma), 2048, 2048, 16, 4);
  const fa2::TuningRecord record = fa2::tune(shape, nullptr);
  const double seconds = record.tune_seconds;
  MESSAGE(fmt::format("tuned {} in {:.1f} s: winner {} ({:.3f} ms)", shape.describe(), seconds, record.winner.name(),
                      record.time_ms));
  int tma_ws = 0, overlap = 0;
  for (const fa2::Measurement& m : record.measurements) {
    // The space crosses block_m with warps; validate() rejects the pairs that do not match (block_m = 64 rows
    // per consumer warpgroup) before anything is built. Every built candidate must pass the gate.
    if (!fa2::is_tma_ws(m.config.scheme) || m.status == fa2::MeasurementStatus::invalid) continue;
    ++(m.config.scheme == fa2::Scheme::tma_ws ? tma_ws : overlap);
    INFO(m.config.name(), ": ", m.reason);
    CHECK(m.status == fa2::MeasurementStatus::ok);
    MESSAGE(fmt::format("{}: {} {:.3f} ms, O {:.2e}", m.config.name(), fa2::measurement_status_name(m.status),
                        m.time_ms, m.o_rel_error));
  }
  CHECK(tma_ws >= 5);
  CHECK(overlap >= 5);
  WARN_MESSAGE(seconds < 10.0, "tuning one class took ", seconds, " s (the budget is 10 s)");
}

TEST_CASE("a kernel built for two blocks per SM keeps two resident; one built for one keeps one") {
  fa2::driver::ensure_context();
  // d128 128x64, 2 stages: 99 KB of shared memory. Built for one block, ptxas takes over 128 registers
  // and the second block cannot fit; built for two, both the registers and the shared memory do.
  for (int blocks_per_sm : {1, 2}) {
    const fa2::TileConfig c =
        config(128, false, 128, 64, 8, 2, fa2::Scheme::wgmma, fa2::DType::bf16, blocks_per_sm);
    const fa2::CompiledKernel kernel = fa2::compile_source(fa2::emit(c), c.name(), c.arch);
    const fa2::KernelModule module = fa2::KernelModule::load(c, kernel.cubin);
    const CUfunction function = module.main();
    int resident = 0;
    fa2::driver::check(fa2::driver::api().OccupancyMaxActiveBlocksPerMultiprocessor(&resident, function,
                                                                                    c.threads(), c.smem_bytes()),
                       "cuOccupancyMaxActiveBlocksPerMultiprocessor");
    INFO(c.name(), ": ", kernel.resources.registers, " registers");
    CHECK(resident == blocks_per_sm);
  }
}

TEST_CASE("non-default backward configs match the reference on odd shapes") {
  // The operand choice (wgmma_ss: P^T and dS^T from shared memory), one warpgroup, the d256 kernel at 128
  // query rows per step, mma_sync at 128 keys, each with atomics and the ordered dQ reduction.
  auto backward = [](int head_dim, fa2::Scheme scheme, int block_m, int block_n, int warps, int stages,
                     fa2::DType dtype) {
    return tiled(fa2::Family::bwd, head_dim, dtype, scheme, block_m, block_n, warps, stages);
  };
  const std::vector<fa2::TileConfig> configs = {
      backward(64, fa2::Scheme::wgmma_ss, 128, 128, 8, 2, fa2::DType::bf16),
      backward(128, fa2::Scheme::wgmma_ss, 64, 128, 8, 2, fa2::DType::fp16),
      backward(128, fa2::Scheme::wgmma_ss, 64, 64, 4, 1, fa2::DType::bf16),
      backward(128, fa2::Scheme::wgmma, 64, 64, 4, 2, fa2::DType::bf16),
      backward(256, fa2::Scheme::wgmma, 128, 64, 8, 1, fa2::DType::bf16),
      backward(64, fa2::Scheme::mma_sync, 128, 128, 8, 1, fa2::DType::fp16),
  };
  const std::vector<std::pair<int, int>> seqlens = {{509, 509}, {300, 777}, {777, 300}, {1, 200}};
  for (fa2::TileConfig c : configs)
    for (bool causal : {false, true})
      for (bool deterministic : {false, true}) {
        c.causal = causal;
        c.deterministic = deterministic;
        REQUIRE_FALSE(c.validate().has_value());
        const fa2::CompiledKernel kernel = fa2::compile_source(fa2::emit(c), c.name(), c.arch);
        for (auto [seqlen_q, seqlen_k] : seqlens) {
          const fa2::ProblemShape shape = shape_of(c, seqlen_q, seqlen_k);
          const fa2::Measurement m = check_once(c, kernel, shape);
          INFO(c.name(), " on ", shape.describe(), ": ", m.reason);
          CHECK(m.status == fa2::MeasurementStatus::ok);
        }
      }
}

TEST_CASE("non-default kvcache configs match the reference on odd shapes") {
  // The chunked-prefill wgmma scheme beyond its defaults (128-key tiles, one stage, one block per SM, d192,
  // fp16, forced splits) and the mma.sync prefill tiles, on contiguous and paged caches, GQA 4:1 and MQA.
  auto kvcache = [](int head_dim, fa2::Scheme scheme, int block_m, int block_n, int warps, int stages,
                    int blocks_per_sm, int splits, fa2::DType dtype) {
    fa2::TileConfig c =
        tiled(fa2::Family::kvc, head_dim, dtype, scheme, block_m, block_n, warps, stages, blocks_per_sm);
    c.splits = splits;
    return c;
  };
  const std::vector<fa2::TileConfig> configs = {
      kvcache(128, fa2::Scheme::wgmma, 128, 128, 8, 2, 1, 0, fa2::DType::bf16),
      kvcache(64, fa2::Scheme::wgmma, 128, 64, 8, 1, 2, 3, fa2::DType::fp16),
      kvcache(192, fa2::Scheme::wgmma, 128, 64, 8, 2, 1, 0, fa2::DType::bf16),
      kvcache(256, fa2::Scheme::wgmma, 64, 64, 4, 2, 1, 1, fa2::DType::bf16),
      kvcache(128, fa2::Scheme::mma_sync, 64, 128, 4, 2, 1, 0, fa2::DType::bf16),
  };
  struct Case {
    int seqlen_q, seqlen_k, heads_q, heads_kv, page_size;
  };
  const std::vector<Case> cases = {{300, 777, 8, 2, 0}, {77, 1000, 8, 2, 16}, {129, 129, 4, 1, 64}, {1, 200, 8, 2, 0}};
  for (fa2::TileConfig c : configs)
    for (bool causal : {false, true}) {
      c.causal = causal;
      REQUIRE_FALSE(c.validate().has_value());
      const fa2::CompiledKernel kernel = fa2::compile_source(fa2::emit(c), c.name(), c.arch);
      for (const Case& k : cases) {
        fa2::ProblemShape shape = shape_of(c, k.seqlen_q, k.seqlen_k, k.heads_q, k.heads_kv);
        shape.page_size = k.page_size;
        const fa2::Measurement m = check_once(c, kernel, shape);
        INFO(c.name(), " on ", shape.describe(), ": ", m.reason);
        CHECK(m.status == fa2::MeasurementStatus::ok);
        CHECK(m.o_rel_error <= fa2::o_tolerance(shape.dtype));
        MESSAGE(fmt::format("{} on {}: O {:.2e}", c.name(), shape.describe(), m.o_rel_error));
      }
    }
}
