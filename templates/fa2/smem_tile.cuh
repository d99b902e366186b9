// A [kRows x kCols] tile of 16-bit elements in shared memory, swizzled so that ldmatrix and
// cp.async touch all 32 banks. Columns are stored as pages of 64 (128 bytes per row, the TMA
// SWIZZLE_128B atom): within a page, the 16-byte chunk index is XORed with row % 8. A head dim that
// is an odd multiple of 32 ends in a 32-column page (64 bytes per row, two rows per 128-byte line),
// where the chunk is XORed with (row / 2) % 4 instead, which is conflict-free for the same reason.
#pragma once

namespace fa2 {

template <int kRows, int kCols>
struct SmemTile {
  static_assert(kCols % 32 == 0, "tile width must be a multiple of 32 columns");
  static constexpr int kBytes = kRows * kCols * 2;

  // Element offset of (row, col); col need not be a multiple of 8. For arbitrary (per-thread) indices.
  __device__ static __forceinline__ int offset(int row, int col) {
    const int page = col / 64;
    const bool full_page = kCols - page * 64 >= 64;
    const int chunk = (col % 64) / 8;
    const int swizzled = full_page ? (chunk ^ (row & 7)) : (chunk ^ ((row >> 1) & 3));
    const int width = full_page ? 64 : 32;
    return page * kRows * 64 + row * width + swizzled * 8 + (col & 7);
  }

  // Byte address of the 16-byte chunk at (row_tile + row_lane, col_tile + col_lane), for fragment loads in
  // unrolled loops: row_tile (a multiple of 8) and col_tile (a multiple of 8) are compile-time after
  // unrolling, row_lane and col_lane (a multiple of 8, staying inside col_tile's page) depend on the lane.
  // The swizzle then depends only on the lane and on col_tile % 64, so each address is one of a few
  // per-lane bases plus an immediate, instead of one live register per (row_tile, col_tile).
  __device__ static __forceinline__ unsigned fragment_address(unsigned base, int row_tile, int col_tile,
                                                              int row_lane, int col_lane) {
    const int page = col_tile / 64;
    const bool full_page = kCols - page * 64 >= 64;
    const int width = full_page ? 64 : 32;
    const int chunk = (col_tile % 64 + col_lane) / 8;
    const int swizzled = full_page ? (chunk ^ (row_lane & 7)) : (chunk ^ ((row_lane >> 1) & 3));
    const int lane_part = row_lane * width + swizzled * 8;
    const int tile_part = page * kRows * 64 + row_tile * width;
    return base + 2u * static_cast<unsigned>(tile_part + lane_part);
  }

  // Byte address of (row, col) in a tile that starts at shared address `base`.
  __device__ static __forceinline__ unsigned address(unsigned base, int row, int col) {
    return base + 2u * static_cast<unsigned>(offset(row, col));
  }
};

}  // namespace fa2
