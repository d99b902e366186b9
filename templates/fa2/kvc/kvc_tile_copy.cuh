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

// The cache rows one thread copies of a K/V tile: chunk c = thread + i * kThreads is 16 bytes of row
// c / kChunksPerRow.
template <int kRows, int kCols, int kThreads>
struct CacheRowCopy {
  static constexpr int kChunksPerRow = kCols / 8;
  static constexpr int kChunks = kRows * kChunksPerRow;
  static constexpr int kPerThread = (kChunks + kThreads - 1) / kThreads;

  // Row of the thread's i-th chunk; kRows when the chunk does not exist (kChunks not a multiple of kThreads).
  __device__ __forceinline__ static int row_of(int thread, int i) {
    const int chunk = thread + i * kThreads;
    return kChunks % kThreads == 0 || chunk < kChunks ? chunk / kChunksPerRow : kRows;
  }
};

// With a block table: the page of each of the thread's rows of the tile at key n0, read a tile ahead of its
// copy so that the lookup's latency hides under a tile of compute instead of stalling the copy's issue. An
// entry outside [0, num_pages) becomes page 0: a bad block table (device values the host cannot check) gives
// wrong numbers, never a read outside the cache. (Here, not in the copy: a check per copied row slowed the
// one-block-per-SM decode by 12%.)
template <int kRows, int kCols, int kThreads>
__device__ __forceinline__ void load_page_ids(int (&ids)[CacheRowCopy<kRows, kCols, kThreads>::kPerThread],
                                              const int* pages, int page_shift, int num_pages, int n0,
                                              int keys_valid, int thread) {
  using Copy = CacheRowCopy<kRows, kCols, kThreads>;
#pragma unroll
  for (int i = 0; i < Copy::kPerThread; ++i) {
    const int row = Copy::row_of(thread, i);
    const int id = row < keys_valid ? __ldg(pages + ((n0 + row) >> page_shift)) : 0;
    ids[i] = static_cast<unsigned>(id) < static_cast<unsigned>(num_pages) ? id : 0;
  }
}

// Cache rows [n0, n0 + kRows) of one head's K and V into their tiles; rows at or past keys_valid (relative
// to n0) are zero-filled and read nothing. k_head/v_head point at row 0 of the head (page 0 when paged).
// Contiguous (paged false; page_ids unread): key j at j * row_stride. Paged: key j is row j % page_size of
// its page from page_ids (load_page_ids for this n0), pages page_stride elements apart.
// K and V share the row arithmetic and the page lookups.
template <int kRows, int kCols, int kThreads>
__device__ __forceinline__ void copy_kv_rows_async(
    unsigned smem_k, unsigned smem_v, const unsigned short* k_head, const unsigned short* v_head,
    long long k_row_stride, long long v_row_stride, long long k_page_stride, long long v_page_stride,
    bool paged, const int (&page_ids)[CacheRowCopy<kRows, kCols, kThreads>::kPerThread], int page_shift, int n0,
    int keys_valid, int thread) {
  using Tile = SmemTile<kRows, kCols>;
  using Copy = CacheRowCopy<kRows, kCols, kThreads>;
  asm volatile("" : "+r"(thread));  // recompute the chunk offsets per tile (see copy_tile_async)
  const int page_mask = (1 << page_shift) - 1;
#pragma unroll
  for (int i = 0; i < Copy::kPerThread; ++i) {
    const int row = Copy::row_of(thread, i);
    if (row >= kRows) continue;
    const int col = ((thread + i * kThreads) % Copy::kChunksPerRow) * 8;
    const bool valid = row < keys_valid;
    long long k_offset = 0, v_offset = 0;
    if (valid) {
      const int key = n0 + row;
      if (!paged) {
        k_offset = key * k_row_stride;
        v_offset = key * v_row_stride;
      } else {
        const long long page = page_ids[i];
        const int in_page = key & page_mask;
        k_offset = page * k_page_stride + in_page * k_row_stride;
        v_offset = page * v_page_stride + in_page * v_row_stride;
      }
    }
    cp_async_16(Tile::address(smem_k, row, col), k_head + k_offset + col, valid ? 16 : 0);
    cp_async_16(Tile::address(smem_v, row, col), v_head + v_offset + col, valid ? 16 : 0);
  }
}

// The K/V tiles of a block's split, streamed into its stage slots (K in smem_k, V in smem_v, one tile each
// per slot): cache rows of its (batch, KV head), contiguous or through the block table, with the page ids of
// the next tile loaded a tile ahead. Shared by the mma.sync and the wgmma kernels: start() once, then
// advance_to() each tile in order.
template <class Cfg>
class KvcTileStream {
 public:
  using RowCopy = CacheRowCopy<Cfg::kBlockN, Cfg::kHeadDim, Cfg::kThreads>;
  using KVTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;

  __device__ __forceinline__ KvcTileStream(const KvcBlock<Cfg>& block, const KvcParams& params, unsigned smem_k,
                                           unsigned smem_v, int thread)
      : block_(block), params_(params), smem_k_(smem_k), smem_v_(smem_v), thread_(thread) {
    k_head_ = block.cache_head(params.k, params.k_batch_stride, params.k_row_stride, params.k_head_stride, params);
    v_head_ = block.cache_head(params.v, params.v_batch_stride, params.v_row_stride, params.v_head_stride, params);
    pages_ = block.pages(params);
    load_page_ids_of(block.tile_begin);
  }

  // Prologue: the block's packed Q rows into smem_q, then the first kStages - 1 tiles, one commit group each
  // (Q rides in the first).
  __device__ __forceinline__ void start(unsigned smem_q) {
    copy_packed_q_async<Cfg>(smem_q, block_, params_, thread_);
    if constexpr (Cfg::kStages == 1) {
      cp_async_commit();
    } else {
#pragma unroll
      for (int stage = 0; stage < Cfg::kStages - 1; ++stage) {
        if (block_.tile_begin + stage < block_.tile_end) load(block_.tile_begin + stage, stage);
        cp_async_commit();
      }
    }
  }

  // Makes `tile` (and Q) resident for every thread and returns its slot; on return every thread is done with
  // the previous tile, whose slot (kStages > 1) already takes the copy of tile + kStages - 1. kAsyncProxy:
  // the tiles are read by wgmma (the async proxy), so the landed copies are fenced into it before the barrier.
  template <bool kAsyncProxy>
  __device__ __forceinline__ int advance_to(int tile) {
    constexpr int kStages = Cfg::kStages;
    const int step = tile - block_.tile_begin;
    int slot = 0;
    if constexpr (kStages == 1) {
      __syncthreads();  // every thread is done with the previous tile
      load(tile, 0);
      cp_async_commit();
      cp_async_wait<0>();
    } else {
      cp_async_wait<kStages - 2>();  // this tile (and Q) have landed for this thread...
      slot = step % kStages;
    }
    if constexpr (kAsyncProxy) fence_proxy_async();
    __syncthreads();  // ...and for every thread
    if constexpr (kStages > 1) {
      if (tile + kStages - 1 < block_.tile_end) load(tile + kStages - 1, (step + kStages - 1) % kStages);
      cp_async_commit();  // always commit, so the group count per iteration stays fixed
    }
    return slot;
  }

 private:
  // Starts the copy of `tile` (the next tile in order: its page ids were loaded by the previous call) into
  // `slot`, then looks up the pages of tile + 1.
  __device__ __forceinline__ void load(int tile, int slot) {
    const int n0 = tile * Cfg::kBlockN;
    copy_kv_rows_async<Cfg::kBlockN, Cfg::kHeadDim, Cfg::kThreads>(
        smem_k_ + slot * KVTile::kBytes, smem_v_ + slot * KVTile::kBytes, k_head_, v_head_, params_.k_row_stride,
        params_.v_row_stride, params_.k_batch_stride, params_.v_batch_stride, pages_ != nullptr, next_page_ids_,
        params_.page_shift, n0, block_.seqlen_k - n0, thread_);
    load_page_ids_of(tile + 1);
  }

  __device__ __forceinline__ void load_page_ids_of(int tile) {
    if (pages_ != nullptr && tile < block_.tile_end)
      load_page_ids<Cfg::kBlockN, Cfg::kHeadDim, Cfg::kThreads>(next_page_ids_, pages_, params_.page_shift,
                                                                params_.num_pages, tile * Cfg::kBlockN,
                                                                block_.seqlen_k - tile * Cfg::kBlockN, thread_);
  }

  const KvcBlock<Cfg>& block_;
  const KvcParams& params_;
  const unsigned smem_k_, smem_v_;
  const int thread_;
  const unsigned short* k_head_;
  const unsigned short* v_head_;
  const int* pages_;  // the sequence's block table row; null when the cache is contiguous
  int next_page_ids_[RowCopy::kPerThread];
};

}  // namespace fa2
