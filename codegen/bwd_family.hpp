// The backward family's derived shapes: how its warps tile the three kinds of GEMM of one step of a key
// block's walk over the queries. The emitter passes these to the device templates, so host and device
// never compute them twice.
#pragma once

#include <optional>

#include "codegen/tile_config.hpp"

namespace fa2 {

// warps_m x warps_n warps tile a rows x cols GEMM output; each warp owns one (rows / warps_m) x
// (cols / warps_n) tile whose sides are multiples of 16 (whole ldmatrix x4 loads of A and of B).
struct WarpGrid {
  int warps_m = 0;
  int warps_n = 0;
  bool operator==(const WarpGrid& o) const { return warps_m == o.warps_m && warps_n == o.warps_n; }
};

// The grid with the squarest warp tiles (the least shared memory read per k step: a tile reads its rows
// of A and its columns of B), ties going to more warps along the rows; nullopt when none fits.
std::optional<WarpGrid> squarest_warp_grid(int rows, int cols, int warps);

struct BwdWarpGrids {
  WarpGrid sdp;  // S = Q K^T and dP = dO V^T: block_m x block_n
  WarpGrid dkv;  // dV += P^T dO and dK += dS^T Q: block_n x head_dim
  WarpGrid dq;   // dQ = dS K: block_m x head_dim
};

// The warp grids of a backward config; nullopt when one of the three has none.
std::optional<BwdWarpGrids> bwd_warp_grids(const TileConfig& config);

}  // namespace fa2
