// Asynchronous global -> shared copies of the KV-cache forward, 16 bytes per cp.async into swizzled tiles:
// the block's packed query rows (gathered across the group's heads), and tiles of cache rows, contiguous or
// looked up page by page.
#pragma once

#include "fa2/kvc/packed_rows.cuh"
#include "fa2/ptx.cuh"
#include "fa2/smem_tile.cuh"

namespace fa2 {

// Packed rows [m0, m0 + kRows) of the block's Q; rows past rows_valid are zero-filled.
template <class Cfg>
__device__ __forceinline__ void copy_packed_q_async(unsigned smem_q, const KvcBlock<Cfg>& block,
                                                    const KvcParams& params, int thread) {
  using Tile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;
  constexpr int kChunksPerRow = Cfg::kHeadDim / 8;
  constexpr int kChunks = Cfg::kBlockM * kChunksPerRow;
  const unsigned short* q_batch =
      static_cast<const unsigned short*>(params.q) + block.sequence_offset(params.q_batch_stride, params.q_row_stride);
#pragma unroll
  for (int i = 0; i < (kChunks + Cfg::kThreads - 1) / Cfg::kThreads; ++i) {
    const int chunk = thread + i * Cfg::kThreads;
    if (kChunks % Cfg::kThreads == 0 || chunk < kChunks) {
      const int row = chunk / kChunksPerRow;
      const int col = (chunk % kChunksPerRow) * 8;
      const bool valid = row < block.rows_valid;
      const int packed = block.m0 + (valid ? row : 0);
      const unsigned short* src = q_batch + block.query_of(packed) * params.q_row_stride +
                                  block.head_of(packed) * params.q_head_stride + col;
      cp_async_16(Tile::address(smem_q, row, col), src, valid ? 16 : 0);
    }
  }
}

// Cache rows [n0, n0 + kRows) of one head into the tile at smem_base; rows at or past keys_valid (relative to
// n0) are zero-filled and read nothing. `head` is row 0 of the head (page 0 when paged). With a block table,
// key j is row j % page_size of page pages[j / page_size], pages page_stride elements apart.
template <int kRows, int kCols, int kThreads>
__device__ __forceinline__ void copy_cache_rows_async(unsigned smem_base, const unsigned short* head,
                                                      long long row_stride, long long page_stride, const int* pages,
                                                      int page_shift, int n0, int keys_valid, int thread) {
  using Tile = SmemTile<kRows, kCols>;
  asm volatile("" : "+r"(thread));  // recompute the chunk offsets per tile (see copy_tile_async)
  constexpr int kChunksPerRow = kCols / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  const int page_mask = (1 << page_shift) - 1;
#pragma unroll
  for (int i = 0; i < (kChunks + kThreads - 1) / kThreads; ++i) {
    const int chunk = thread + i * kThreads;
    if (kChunks % kThreads == 0 || chunk < kChunks) {
      const int row = chunk / kChunksPerRow;
      const int col = (chunk % kChunksPerRow) * 8;
      const bool valid = row < keys_valid;
      long long offset = 0;
      if (valid) {
        const int key = n0 + row;
        offset = pages == nullptr ? key * row_stride
                                  : pages[key >> page_shift] * page_stride + (key & page_mask) * row_stride;
      }
      cp_async_16(Tile::address(smem_base, row, col), head + offset + col, valid ? 16 : 0);
    }
  }
}

}  // namespace fa2
