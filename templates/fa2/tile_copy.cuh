// Cooperative, asynchronous global -> shared copy of one tile of rows, 16 bytes per cp.async.
#pragma once

#include "fa2/ptx.cuh"
#include "fa2/smem_tile.cuh"

namespace fa2 {

// Copies rows [0, kRows) of a row-major global tile (contiguous columns, `row_stride` elements between
// rows) into the swizzled shared tile at `smem_base`. Rows at or past `rows_valid` are zero-filled:
// row 0 is always valid, so the clamped source address stays inside the tensor. Offsets inside a tile
// are 32-bit (the host bounds row strides so that kRows * row_stride fits): they are loop invariants the
// compiler keeps in registers, and 64-bit ones would cost twice as many.
template <int kRows, int kCols, int kThreads>
__device__ __forceinline__ void copy_tile_async(unsigned smem_base, const unsigned short* global_tile,
                                                int row_stride, int rows_valid, int thread) {
  using Tile = SmemTile<kRows, kCols>;
  // Without this, the compiler hoists every chunk's offsets out of the key loop as invariants and keeps
  // them live next to the O accumulators (dozens of registers at d=256); recomputing them is a few
  // integer instructions per tile.
  asm volatile("" : "+r"(thread));
  constexpr int kChunksPerRow = kCols / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
#pragma unroll
  for (int i = 0; i < (kChunks + kThreads - 1) / kThreads; ++i) {
    const int chunk = thread + i * kThreads;
    if (kChunks % kThreads == 0 || chunk < kChunks) {
      const int row = chunk / kChunksPerRow;
      const int col = (chunk % kChunksPerRow) * 8;
      const bool valid = row < rows_valid;
      const unsigned short* src = global_tile + (valid ? row * row_stride : 0) + col;
      cp_async_16(Tile::address(smem_base, row, col), src, valid ? 16 : 0);
    }
  }
}

}  // namespace fa2
