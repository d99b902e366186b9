// TileConfig: the single source of a generated kernel's parameters. Everything the generator, the
// compiler, the launcher and the tuner need is either a field here or derived here, in one place; the
// rules that differ between kernel families live with each family inside the library.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fa2jit/types.hpp"
#include "fa2jit/variant.hpp"

namespace fa2 {

// A kernel family is one pass of attention with its own templates (templates/fa2/<family>/), rules,
// search space and correctness check. A family's module may hold several kernels (entry_points()).
// fwd: O = softmax(Q K^T) V and the LSE (FA2 paper, Algorithm 1).
// bwd: dQ, dK, dV from Q, K, V, O, LSE and dO (FA2 paper, Algorithm 2): a preprocess kernel, the main
//      kernel over key blocks, and a kernel that converts the fp32 dQ accumulator.
// kvc: the forward of new queries against a KV cache, contiguous or paged (decode, chunked prefill): the
//      query heads of a KV head packed into the rows of one block, the keys split over blocks, and a kernel
//      that combines the splits.
enum class Family { fwd, bwd, kvc };
const char* family_name(Family family);  // "fwd" | "bwd" | "kvc"
std::optional<Family> parse_family(const std::string& text);

// mma_sync: mma.sync m16n8k16 + ldmatrix + cp.async (sm_80 and later).
// wgmma: the same algorithm on Hopper's warpgroup MMA (sm_90a only), one warpgroup per 64 rows.
// wgmma_overlap: wgmma with the softmax of one key tile overlapping the P V product of the previous one.
// wgmma_ss (backward, d64 and d128): wgmma with P^T and dS^T read by dV and dK from shared memory instead of
// held in registers, which operands stay resident being the difference (templates/fa2/bwd/bwd_kernel_wgmma.cuh).
// tma_ws (forward): warp-specialized wgmma, a producer warpgroup loading K/V by TMA into an
// mbarrier ring and two or three consumer warpgroups of 64 rows (templates/fa2/fwd/fwd_kernel_tma_ws.cuh);
// warps counts the producer's 4. tma_ws_overlap: the same with wgmma_overlap's softmax/P V overlap in each
// consumer warpgroup. tma_ws_pingpong: tma_ws_overlap with the consumer warpgroups taking turns at the tensor
// cores (named barriers), so one's softmax runs under another's GEMMs. Tuned for packed layouts, never a
// built-in default (autotune/search_space.hpp).
enum class Scheme { mma_sync, wgmma, wgmma_overlap, wgmma_ss, tma_ws, tma_ws_overlap, tma_ws_pingpong };
bool is_wgmma(Scheme scheme);   // any of the wgmma schemes (the tma_ws ones included)
bool is_tma_ws(Scheme scheme);  // tma_ws, tma_ws_overlap or tma_ws_pingpong
// "mma_sync" | "wgmma" | "wgmma_overlap" | "wgmma_ss" | "tma_ws" | "tma_ws_overlap" | "tma_ws_pingpong"
const char* scheme_name(Scheme scheme);
std::optional<Scheme> parse_scheme(const std::string& text);

// The most key splits a kvc launch may use (templates/fa2/kvc/kvc_params.h, kKvcMaxSplits).
constexpr int kMaxKeySplits = 128;

struct TileConfig {
  Family family = Family::fwd;
  int head_dim = 128;
  DType dtype = DType::bf16;
  bool causal = false;
  // fwd: query rows per thread block (wgmma: 16 per warp, 64 per warpgroup).
  // bwd: query rows per step of a key block's walk over the queries.
  int block_m = 128;
  // fwd: key/value rows per tile. bwd: key/value rows per thread block (their dK, dV stay in registers).
  int block_n = 64;
  int warps = 4;
  // fwd: K/V tiles resident in shared memory (1 = no prefetch). bwd: Q/dO tiles likewise.
  int stages = 2;
  Arch arch = Arch::sm_90a;
  Scheme scheme = Scheme::mma_sync;
  // Blocks the kernel is compiled to keep resident per SM (__launch_bounds__'s minimum): 2 caps registers
  // at 65536 / (2 * threads), so short sequences get a second block to hide each block's prologue and
  // epilogue behind. Must fit the SM's threads, shared memory and registers together.
  int blocks_per_sm = 1;
  // bwd: the key blocks add their dQ contributions in a fixed order (a semaphore per query block) instead
  // of with float atomics, so the gradients are bitwise reproducible. Always false for fwd.
  bool deterministic = false;
  // kvc: blocks the keys of one (row block, KV head, batch) are split over, merged by the combine kernel;
  // 0: chosen at launch from the SM count and the problem's size. Always 0 for the other families.
  int splits = 0;
  // The built-in variants compiled in (sliding window, softcap, ALiBi; fa2jit/variant.hpp): fwd and bwd only, not
  // with the tma_ws schemes yet. Their values are kernel arguments, so one kernel serves every window size.
  Variant variant;

  // Derived values; the family-specific ones come from the family's rules (codegen/family.hpp).
  int threads() const { return warps * 32; }
  int rows_per_warp() const { return block_m / warps; }          // fwd: query rows each warp owns
  int m_tiles_per_warp() const { return rows_per_warp() / 16; }  // fwd: 16-row mma tiles per warp
  int smem_bytes() const;              // dynamic shared memory of one block of the main kernel
  int accumulator_registers() const;   // fp32 accumulator registers per thread, a spill predictor
  // Registers per thread ptxas may use with blocks_per_sm resident; the tma_ws schemes: per consumer thread,
  // after the producer warpgroup has handed its registers over (setmaxnreg).
  int register_cap() const;
  // The module's kernel symbols, the main (tuned) kernel first; the others are the family's helpers.
  std::vector<std::string> entry_points() const;

  // Why this config cannot be built, or nullopt when it can.
  std::optional<std::string> validate() const;

  // Stable readable name, also the main kernel's symbol: fa2_fwd_mma_d128_bf16_causal_m128n64w4s2_sm90a
  // (fa2_fwd_wgmma_..., fa2_fwd_wgmmao_..., fa2_fwd_tmaws_... and fa2_fwd_tmawso_... for the wgmma
  // schemes; ...s2b2_... for 2 blocks per SM; fa2_bwd_..._causal_det_... for a deterministic backward;
  // ..._m16n64w4s3b2k8_... for a kvc config with 8 key splits; ..._causal_win_cap_alibi_... with variants).
  std::string name() const;
  // 16 hex digits over every field; stable across runs and machines.
  std::string hash() const;

  bool operator==(const TileConfig& other) const;
  bool operator!=(const TileConfig& other) const { return !(*this == other); }
};

}  // namespace fa2
