// The tuner's search space per family and scheme: plain data, so adding a candidate value or a dimension
// is a local change here. Candidates are pruned by TileConfig::validate() and by the device's limits.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autotune/problem_shape.hpp"
#include "codegen/tile_config.hpp"

namespace fa2 {

struct SearchSpace {
  std::vector<int> block_m;
  std::vector<int> block_n;
  std::vector<int> warps;
  std::vector<int> stages;
  std::vector<int> blocks_per_sm;
  std::vector<int> splits = {0};  // kvc: key splits (0: the launch's heuristic)
};

const SearchSpace& search_space(Family family, Scheme scheme);

struct Candidate {
  TileConfig config;
  std::string rejection;  // empty when the config may be built on this device
};

// The schemes the tuner sweeps for a family and head dim on an arch, for tensors in `layout`. Forward: both
// wgmma variants where they apply (sm_90a, head dims that are whole 64-column pages), where they beat
// mma_sync at every measured point (bench/NOTES.md), and there too the warp-specialized tma_ws schemes for
// packed layouts (bshd, bhsd: every stride a positive multiple of 16 bytes, which TMA tensor maps need; a
// strided class may hold a broadcast stride of 0); mma_sync everywhere else. Backward: wgmma and mma_sync on
// sm_90a at head dims 64, 128 and 256, mma_sync everywhere else.
std::vector<Scheme> tuned_schemes(Family family, Arch arch, int head_dim, Layout layout = Layout::bshd);

// Why a config of `scheme` cannot serve tensors in `layout` (empty when it can): the tma_ws schemes load
// through tensor maps, which need the packed layouts' strides.
std::string scheme_layout_mismatch(Scheme scheme, Layout layout);

// Every point of the space of `scheme` (default: of each of tuned_schemes()) for `problem` (whose family
// it is) on `arch`, each either buildable or rejected with the reason. A backward class that does not ask
// for determinism sweeps both dQ reductions (atomics and the ordered one); one that does, only the
// ordered one. `max_smem_per_block` is the device's opt-in limit (0: use the arch's).
std::vector<Candidate> enumerate_candidates(const ProblemClass& problem, Arch arch, int max_smem_per_block = 0,
                                            std::optional<Scheme> scheme = std::nullopt);

// Only the buildable configs of enumerate_candidates().
std::vector<TileConfig> buildable_configs(const ProblemClass& problem, Arch arch, int max_smem_per_block = 0,
                                          std::optional<Scheme> scheme = std::nullopt);

// 16 hex digits over the kernel templates, the tuner's spill limit and every candidate (name and rejection)
// of the space for `problem` on `arch`: what a tuning swept. It changes when a release changes the kernels
// or the space, which makes the tunings of older releases stale.
std::string search_space_hash(const ProblemClass& problem, Arch arch);

// FlashAttention-2's static tile choice for H100 (flash_fwd_launch_template.h, flash_bwd_launch_template.h),
// expressed in this kernel's terms: the baseline the tuner must beat. Stages 2 (K/V, or the backward's
// Q/dO, double-buffered); the backward on mma_sync.
TileConfig fa2_static_config(Family family, int head_dim, DType dtype, bool causal, Arch arch,
                             bool deterministic = false);

}  // namespace fa2
