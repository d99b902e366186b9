// The built-in config of each family, beside the public TileConfig (fa2jit/tile_config.hpp) whose
// validation, derived sizes, name and hash codegen/tile_config.cpp implements with the family rules.
#pragma once

#include "common/types.hpp"
#include "fa2jit/tile_config.hpp"

namespace fa2 {

// The built-in config of a family per (head_dim, dtype, causal, arch, deterministic, variant), used until the
// tuner has chosen one. packed_rows (kvc only): seqlen_q x query heads per KV head, 0 for a decode step. The
// variants keep the tiles of the config without them (each compiles without spills: tests/cpu/test_variants.cpp).
TileConfig default_config(Family family, int head_dim, DType dtype, bool causal, Arch arch,
                          bool deterministic = false, int packed_rows = 0, Variant variant = {});
// Registers per thread of the tma_ws schemes' producer warpgroup and of each consumer warpgroup after setmaxnreg,
// for a block of `warps` warps (12 or 16): what the generated kernel asks for and TileConfig::register_cap().
struct WarpgroupRegisters {
  int producer;
  int consumer;
};
WarpgroupRegisters tma_ws_registers(int warps);

// `config` (a built-in one) switched to `scheme`, with that scheme's own tiles where the config's cannot
// build it: the starting point of the CLI's --scheme flag before the other tile flags apply. Only the tma_ws
// schemes have such tiles (warps 12, block_m 128, one block per SM and a key-tile width per head dim); any
// other scheme keeps the config's tiles.
TileConfig with_scheme(TileConfig config, Scheme scheme);

// The forward's built-in config.
inline TileConfig default_config(int head_dim, DType dtype, bool causal, Arch arch) {
  return default_config(Family::fwd, head_dim, dtype, causal, arch);
}

}  // namespace fa2
