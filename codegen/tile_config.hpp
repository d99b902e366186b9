// The built-in config of each family, beside the public TileConfig (fa2jit/tile_config.hpp) whose
// validation, derived sizes, name and hash codegen/tile_config.cpp implements with the family rules.
#pragma once

#include "common/types.hpp"
#include "fa2jit/tile_config.hpp"

namespace fa2 {

// The built-in config of a family per (head_dim, dtype, causal, arch, deterministic), used until the
// tuner has chosen one. packed_rows (kvc only): seqlen_q x query heads per KV head, 0 for a decode step.
TileConfig default_config(Family family, int head_dim, DType dtype, bool causal, Arch arch,
                          bool deterministic = false, int packed_rows = 0);
// The forward's built-in config.
inline TileConfig default_config(int head_dim, DType dtype, bool causal, Arch arch) {
  return default_config(Family::fwd, head_dim, dtype, causal, arch);
}

}  // namespace fa2
