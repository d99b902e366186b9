// Which rows, keys and outputs one block of the KV-cache forward owns. Packed row p of a (batch, KV head)
// is query position p / group of query head head_kv * group + p % group (group = heads_q / heads_kv):
// query-major, so the rows of one 16-row mma tile share a few query positions and a causal mask cuts them
// nearly alike.
#pragma once

#include "fa2/kvc/kvc_params.h"
#include "fa2/ptx.cuh"

namespace fa2 {

template <class Cfg>
struct KvcBlock {
  int m_block;
  int split;
  int head_kv;
  int batch;
  int group;
  int m0;          // first packed row
  int rows_valid;  // packed rows of the block that exist (0 or less: none, in a shorter varlen sequence)
  int seqlen_q;    // query rows of this sequence
  int q_start;     // varlen: the sequence's first row in q and o; -1 for a padded batch
  int seqlen_k;    // keys of this sequence
  int tile_begin;  // the split's key tiles: [tile_begin, tile_end)
  int tile_end;

  __device__ __forceinline__ explicit KvcBlock(const KvcParams& params) {
    const int m_blocks = (params.packed_rows + Cfg::kBlockM - 1) / Cfg::kBlockM;
    m_block = blockIdx.x % m_blocks;
    split = blockIdx.x / m_blocks;
    head_kv = blockIdx.y;
    batch = blockIdx.z;
    group = params.heads_q / params.heads_kv;
    m0 = m_block * Cfg::kBlockM;
    q_start = params.cu_seqlens_q != nullptr ? params.cu_seqlens_q[batch] : -1;
    seqlen_q = params.cu_seqlens_q != nullptr ? params.cu_seqlens_q[batch + 1] - q_start : params.seqlen_q;
    const int packed_rows = seqlen_q * group;
    rows_valid = packed_rows - m0 < Cfg::kBlockM ? packed_rows - m0 : Cfg::kBlockM;
    // A cache length past the cache's capacity is clamped to it (the host cannot see device values); the
    // sum with the appended rows is taken in 64 bits so a length near 2^31 cannot wrap below the capacity.
    const long long keys = params.cu_seqlens_k != nullptr
                               ? params.cu_seqlens_k[batch + 1] - params.cu_seqlens_k[batch]
                           : params.cache_seqlens != nullptr
                               ? static_cast<long long>(params.cache_seqlens[batch]) + params.seqlen_new
                               : params.seqlen_k;
    seqlen_k = keys < 0 ? 0 : (keys > params.seqlen_k ? params.seqlen_k : static_cast<int>(keys));

    int visible = seqlen_k;
    if (Cfg::kCausal) {
      // The block's last row sees keys up to its query position + seqlen_k - seqlen_q (bottom-right).
      const int last_query = (m0 + rows_valid - 1) / group;
      const int end = last_query + 1 + seqlen_k - seqlen_q;
      visible = end < 0 ? 0 : (end < visible ? end : visible);
    }
    const int tiles = (visible + Cfg::kBlockN - 1) / Cfg::kBlockN;
    const int per_split = (tiles + params.num_splits - 1) / params.num_splits;
    tile_begin = split * per_split < tiles ? split * per_split : tiles;
    tile_end = tile_begin + per_split < tiles ? tile_begin + per_split : tiles;
  }

  __device__ __forceinline__ int query_of(int packed_row) const { return packed_row / group; }
  __device__ __forceinline__ int head_of(int packed_row) const { return head_kv * group + packed_row % group; }

  // The end of the keys no row of the block must have hidden: at and past it, keys run out or (causal) cross
  // the diagonal of the block's first query position, so a warp's slice reaching past it is masked.
  __device__ __forceinline__ int unmasked_end(const KvcParams& params) const {
    if (!Cfg::kCausal) return seqlen_k;
    const int end = m0 / group + 1 + seqlen_k - seqlen_q;
    return end < seqlen_k ? end : seqlen_k;
  }

  // Row 0 of the block's K (or V) head: of the sequence when contiguous (its first row when varlen), of page 0
  // when paged.
  __device__ __forceinline__ const unsigned short* cache_head(const void* cache, long long batch_stride,
                                                              long long row_stride, long long head_stride,
                                                              const KvcParams& params) const {
    const long long sequence = params.block_table != nullptr ? 0
                               : params.cu_seqlens_k != nullptr
                                   ? static_cast<long long>(params.cu_seqlens_k[batch]) * row_stride
                                   : batch * batch_stride;
    return static_cast<const unsigned short*>(cache) + sequence + head_kv * head_stride;
  }
  // Element offset of the sequence's query row 0 in q or o (head 0).
  __device__ __forceinline__ long long sequence_offset(long long batch_stride, long long row_stride) const {
    return q_start >= 0 ? static_cast<long long>(q_start) * row_stride : batch * batch_stride;
  }
  // Index of (head, query) of this sequence in the LSE: [batch, heads_q, seqlen_q], or [heads_q, total_q]
  // when varlen.
  __device__ __forceinline__ long long lse_index(int head, int query, const KvcParams& params) const {
    return q_start >= 0 ? static_cast<long long>(head) * params.total_q + q_start + query
                        : (static_cast<long long>(batch) * params.heads_q + head) * params.seqlen_q + query;
  }
  // The block table row of the sequence (null when contiguous).
  __device__ __forceinline__ const int* pages(const KvcParams& params) const {
    return params.block_table == nullptr
               ? nullptr
               : params.block_table + static_cast<long long>(batch) * params.block_table_stride;
  }
};

// Hides the scores of keys the warp's rows must not see: past the sequence, or (causal) past a row's diagonal.
template <class Cfg>
__device__ __forceinline__ void mask_packed_scores(float (&s)[1][Cfg::kNTiles][4], const KvcBlock<Cfg>& block,
                                                   int row0, int col0, int lane) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int query = block.query_of(block.m0 + row0 + lane / 4 + 8 * h);
    const int end = Cfg::kCausal ? min(block.seqlen_k, query + 1 + block.seqlen_k - block.seqlen_q) : block.seqlen_k;
#pragma unroll
    for (int j = 0; j < Cfg::kNTiles; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (col0 + j * 8 + 2 * (lane % 4) + e >= end) s[0][j][2 * h + e] = negative_infinity();
  }
}

}  // namespace fa2
