#include "autotune/search_space.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "autotune/tuner.hpp"
#include "common/fnv1a.hpp"
#include "runtime/embedded_templates.hpp"

namespace fa2 {

const SearchSpace& search_space(Family family, Scheme scheme) {
  // Backward: 64 or 128 query rows per step and keys per block (FA2's tiles are among them), 4 or 8 warps
  // (wgmma: one or two warpgroups of 64 keys each), Q/dO single- or double-buffered.
  static const SearchSpace backward{
      /*block_m*/ {64, 128},
      /*block_n*/ {64, 128},
      /*warps*/ {4, 8},
      /*stages*/ {1, 2},
      /*blocks_per_sm*/ {1},
  };
  if (family == Family::bwd) return backward;
  // KV cache: 16 packed rows (decode: four key warps share each tile) or 64 (chunked prefill: four row
  // warps), tiles of 64 or 128 keys, two or three in flight, one or two blocks per SM; the launch's split
  // heuristic, no split, or 16 splits.
  static const SearchSpace kvcache{
      /*block_m*/ {16, 64},
      /*block_n*/ {64, 128},
      /*warps*/ {4},
      /*stages*/ {2, 3},
      /*blocks_per_sm*/ {1, 2},
      /*splits*/ {0, 1, 16},
  };
  // KV cache, chunked prefill on sm_90a: the forward's wgmma tiles (two warpgroups, 64 or 128 keys).
  static const SearchSpace kvcache_wgmma{
      /*block_m*/ {128},
      /*block_n*/ {64, 128},
      /*warps*/ {8},
      /*stages*/ {2},
      /*blocks_per_sm*/ {1, 2},
      /*splits*/ {0},
  };
  if (family == Family::kvc) return scheme == Scheme::wgmma ? kvcache_wgmma : kvcache;
  // mma_sync: 16 or 32 query rows per warp (block_m / warps), K/V tiles of 32..128 keys, 1..3 stages.
  static const SearchSpace mma_sync{
      /*block_m*/ {64, 128, 256},
      /*block_n*/ {32, 64, 128},
      /*warps*/ {4, 8},
      /*stages*/ {1, 2, 3},
      /*blocks_per_sm*/ {1},
  };
  // wgmma: two warpgroups (one, block_m 64, lost by 10-25% at every probed point), key tiles of 32..128
  // (wider ones lost at every head dim), one or two K/V stages; one or two blocks per SM (two won by up
  // to 1.30x on short sequences, where a lone block's prologue and epilogue are exposed; validate()
  // keeps two only where O + S + 32 working registers fit in 128). See bench/NOTES.md.
  static const SearchSpace wgmma{
      /*block_m*/ {128},
      /*block_n*/ {32, 64, 96, 128},
      /*warps*/ {8},
      /*stages*/ {1, 2},
      /*blocks_per_sm*/ {1, 2},
  };
  // wgmma_overlap holds S and P at once: at two blocks per SM it spilled more and lost to wgmma in the
  // d128 probe (284 vs 299 TFLOP/s at 128x32), so it stays at one.
  static const SearchSpace wgmma_overlap{
      /*block_m*/ {128},
      /*block_n*/ {32, 64, 96, 128},
      /*warps*/ {8},
      /*stages*/ {1, 2},
      /*blocks_per_sm*/ {1},
  };
  // tma_ws and tma_ws_overlap: two consumer warpgroups (block_m 128) or three (192), FA3's key tiles among
  // widths 64..176, two stages. validate() pairs block_m with warps and drops what does not fit the registers
  // or the shared memory: two to ten configs per head dim and scheme, so a class still tunes in seconds (one
  // d128 class with all four forward schemes: 3.7 s on the H200, bench/NOTES.md).
  static const SearchSpace tma_ws{
      /*block_m*/ {128, 192},
      /*block_n*/ {64, 80, 112, 128, 176},
      /*warps*/ {12, 16},
      /*stages*/ {2},
      /*blocks_per_sm*/ {1},
  };
  switch (scheme) {
    case Scheme::mma_sync: return mma_sync;
    case Scheme::wgmma: return wgmma;
    case Scheme::wgmma_overlap: return wgmma_overlap;
    case Scheme::wgmma_ss: return mma_sync;  // backward-only: the backward's space is returned above
    case Scheme::tma_ws:
    case Scheme::tma_ws_overlap:
    case Scheme::tma_ws_pingpong: return tma_ws;
  }
  return mma_sync;
}

std::string scheme_layout_mismatch(Scheme scheme, Layout layout) {
  if (is_tma_ws(scheme) && layout == Layout::strided)
    return fmt::format("scheme {} loads through TMA tensor maps, which serve the packed layouts (bshd, bhsd) "
                       "only, not strided tensors",
                       scheme_name(scheme));
  return {};
}

std::vector<Scheme> tuned_schemes(Family family, Arch arch, int head_dim, Layout layout) {
  if (family == Family::fwd && arch == Arch::sm_90a && head_dim % 64 == 0) {
    std::vector<Scheme> schemes{Scheme::wgmma, Scheme::wgmma_overlap};
    // tma_ws_overlap is built and kept for experiments but not swept: tma_ws_pingpong (the same kernel with
    // turns) beat it at every measured point (bench/NOTES.md, 2026-12-06), on the same configs.
    for (Scheme warp_specialized : {Scheme::tma_ws, Scheme::tma_ws_pingpong})
      if (scheme_layout_mismatch(warp_specialized, layout).empty()) schemes.push_back(warp_specialized);
    return schemes;
  }
  // The wgmma backward: head dims 64 and 128 (64 keys per warpgroup), 256 (the head dim split in two).
  // wgmma_ss (P^T and dS^T from shared memory instead of registers) joins the d64/d128 sweep once it has run
  // on a GPU: it compiles (with fewer spills) but has not been measured or checked there yet.
  if (family == Family::bwd && arch == Arch::sm_90a && (head_dim == 64 || head_dim == 128 || head_dim == 256))
    return {Scheme::wgmma, Scheme::mma_sync};
  // The KV cache's wgmma scheme is for chunked prefill (128-row blocks); decode classes measure it and lose.
  if (family == Family::kvc && arch == Arch::sm_90a && head_dim % 64 == 0) return {Scheme::mma_sync, Scheme::wgmma};
  return {Scheme::mma_sync};
}

namespace {

// One point of a space for `problem` on `arch`: buildable, or rejected with the reason.
Candidate candidate_of(const ProblemClass& problem, Arch arch, int max_smem_per_block, TileConfig config) {
  config.family = problem.family;
  config.head_dim = problem.head_dim;
  config.dtype = problem.dtype;
  config.causal = problem.causal;
  config.variant = problem.variant;
  config.arch = arch;
  Candidate candidate{config, ""};
  if (auto reason = config.validate())
    candidate.rejection = *reason;
  else if (max_smem_per_block > 0 && config.smem_bytes() > max_smem_per_block)
    candidate.rejection = fmt::format("needs {} bytes of shared memory, the device allows {}", config.smem_bytes(),
                                      max_smem_per_block);
  return candidate;
}

}  // namespace

std::vector<Candidate> enumerate_candidates(const ProblemClass& problem, Arch arch, int max_smem_per_block,
                                            std::optional<Scheme> only_scheme) {
  std::vector<Candidate> candidates;
  const std::vector<Scheme> schemes = only_scheme ? std::vector<Scheme>{*only_scheme}
                                                 : tuned_schemes(problem.family, arch, problem.head_dim, problem.layout);
  // The ordered dQ reduction satisfies every backward class; atomics only those that allow them.
  const std::vector<bool> reductions = problem.family != Family::bwd ? std::vector<bool>{false}
                                       : problem.deterministic        ? std::vector<bool>{true}
                                                                      : std::vector<bool>{false, true};
  TileConfig point;
  for (Scheme scheme : schemes) {
    point.scheme = scheme;
    const SearchSpace& space = search_space(problem.family, scheme);
    for (bool deterministic : reductions) {
      point.deterministic = deterministic;
      for (int block_m : space.block_m) {
        point.block_m = block_m;
        for (int block_n : space.block_n) {
          point.block_n = block_n;
          for (int warps : space.warps) {
            point.warps = warps;
            for (int stages : space.stages) {
              point.stages = stages;
              for (int blocks_per_sm : space.blocks_per_sm) {
                point.blocks_per_sm = blocks_per_sm;
                for (int splits : space.splits) {
                  point.splits = splits;
                  candidates.push_back(candidate_of(problem, arch, max_smem_per_block, point));
                }
              }
            }
          }
        }
      }
    }
  }
  return candidates;
}

std::vector<TileConfig> buildable_configs(const ProblemClass& problem, Arch arch, int max_smem_per_block,
                                          std::optional<Scheme> scheme) {
  std::vector<TileConfig> configs;
  for (Candidate& candidate : enumerate_candidates(problem, arch, max_smem_per_block, scheme))
    if (candidate.rejection.empty()) configs.push_back(candidate.config);
  return configs;
}

std::string search_space_hash(const ProblemClass& problem, Arch arch) {
  Fnv1a hash;
  hash.add_field(template_set_hash(active_templates()));
  hash.add_field(std::to_string(kMaxTunedLocalBytes));  // which candidates the tuner times at all
  for (const Candidate& candidate : enumerate_candidates(problem, arch))
    hash.add_field(candidate.config.name()).add_field(candidate.rejection);
  return hash.hex();
}

TileConfig fa2_static_config(Family family, int head_dim, DType dtype, bool causal, Arch arch, bool deterministic) {
  // FA2's split-KV kernel has no equivalent in this family's terms (it tiles 64 query rows of one head, not
  // packed heads): the built-in config stands in as the baseline.
  if (family == Family::kvc) return default_config(family, head_dim, dtype, causal, arch);
  if (family == Family::bwd) {
    // flash_bwd_launch_template.h (sm80 and H100): 8 warps, Q/dO double-buffered, mma.sync.
    TileConfig config = default_config(family, head_dim, dtype, causal, arch, deterministic);
    config.scheme = Scheme::mma_sync;
    config.warps = 8;
    config.stages = 2;
    config.block_m = head_dim <= 64 ? 128 : 64;
    config.block_n = head_dim <= 128 ? 128 : 64;
    return config;
  }
  TileConfig config;
  config.head_dim = head_dim;
  config.dtype = dtype;
  config.causal = causal;
  config.arch = arch;
  config.stages = 2;
  config.warps = 4;
  if (head_dim <= 64) {
    config.block_m = 128;
    config.block_n = 128;
  } else if (head_dim <= 128) {
    config.block_m = 128;
    config.block_n = 64;
  } else {
    config.block_m = 64;
    config.block_n = 64;
  }
  return config;
}

}  // namespace fa2
