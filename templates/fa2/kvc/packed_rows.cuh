// Which rows, keys and outputs one block of the KV-cache forward owns. Packed row p of a (batch, KV head)
// is query position p / group of query head head_kv * group + p % group (group = heads_q / heads_kv):
// query-major, so the rows of one 16-row mma tile share a few query positions and a causal mask cuts them
// nearly alike.
#pragma once

#include "fa2/kvc/kvc_params.h"

namespace fa2 {

template <class Cfg>
struct KvcBlock {
  int m_block;
  int split;
  int head_kv;
  int batch;
  int group;
  int m0;          // first packed row
  int rows_valid;  // packed rows of the block that exist
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
    rows_valid = params.packed_rows - m0 < Cfg::kBlockM ? params.packed_rows - m0 : Cfg::kBlockM;
    // A cache length past the cache's capacity is clamped to it (the host cannot see device values).
    int keys = params.cache_seqlens != nullptr ? params.cache_seqlens[batch] : params.seqlen_k;
    seqlen_k = keys < 0 ? 0 : (keys > params.seqlen_k ? params.seqlen_k : keys);

    int visible = seqlen_k;
    if (Cfg::kCausal) {
      // The block's last row sees keys up to its query position + seqlen_k - seqlen_q (bottom-right).
      const int last_query = (m0 + rows_valid - 1) / group;
      const int end = last_query + 1 + seqlen_k - params.seqlen_q;
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
    const int end = m0 / group + 1 + seqlen_k - params.seqlen_q;
    return end < seqlen_k ? end : seqlen_k;
  }

  // Row 0 of the block's K (or V) head: of the sequence when contiguous, of page 0 when paged.
  __device__ __forceinline__ const unsigned short* cache_head(const void* cache, long long batch_stride,
                                                              long long head_stride, const KvcParams& params) const {
    const long long sequence = params.block_table == nullptr ? batch * batch_stride : 0;
    return static_cast<const unsigned short*>(cache) + sequence + head_kv * head_stride;
  }
  // The block table row of the sequence (null when contiguous).
  __device__ __forceinline__ const int* pages(const KvcParams& params) const {
    return params.block_table == nullptr
               ? nullptr
               : params.block_table + static_cast<long long>(batch) * params.block_table_stride;
  }
};

}  // namespace fa2
