// The append step of the KV-cache forward (flash_attn_with_kvcache's k and v): the new keys and values of
// each sequence are written into its cache rows cache_seqlens[b] .. cache_seqlens[b] + seqlen_new - 1, through
// the block table when the cache is paged, before the attention kernel reads them (same stream).
#pragma once

#include "fa2/kvc/kvc_params.h"
#include "fa2/ptx.cuh"

namespace fa2 {

// One thread per 16-byte chunk of one new row of one KV head: it copies that chunk of K and of V.
template <int kHeadDim>
__device__ __forceinline__ void kvc_append_kernel(const KvcParams& params) {
  constexpr int kChunks = kHeadDim / 8;  // 16-bit elements, 8 per chunk
  // The attention kernel may be scheduled at once: it waits for these rows before it reads the cache.
  trigger_dependent_grids();
  const long long chunk = static_cast<long long>(blockIdx.x) * kKvcAppendThreads + threadIdx.x;
  const long long total = static_cast<long long>(params.batch) * params.seqlen_new * params.heads_kv * kChunks;
  if (chunk >= total) return;
  const int column = static_cast<int>(chunk % kChunks) * 8;
  const int head = static_cast<int>((chunk / kChunks) % params.heads_kv);
  const long long new_rows = chunk / (static_cast<long long>(kChunks) * params.heads_kv);
  const int row = static_cast<int>(new_rows % params.seqlen_new);
  const int batch = static_cast<int>(new_rows / params.seqlen_new);

  // A position at or past the capacity is not written (the attention clamps its key count there too), and
  // neither is a row whose block table entry lies outside the cache: the host cannot check device values,
  // and a write there would corrupt memory the caller does not expect to change. 64-bit: cache_seqlens[b]
  // near 2^31 must not wrap to a valid row.
  const long long position = static_cast<long long>(params.cache_seqlens[batch]) + row;
  if (position < 0 || position >= params.seqlen_k) return;
  long long k_row, v_row;  // element offsets of the cache row (batch or page, then row in it)
  if (params.block_table != nullptr) {
    const long long page = params.block_table[static_cast<long long>(batch) * params.block_table_stride +
                                              (position >> params.page_shift)];
    if (page < 0 || page >= params.num_pages) return;
    const long long in_page = position & (params.page_size - 1);
    k_row = page * params.k_batch_stride + in_page * params.k_row_stride;
    v_row = page * params.v_batch_stride + in_page * params.v_row_stride;
  } else {
    k_row = batch * params.k_batch_stride + position * params.k_row_stride;
    v_row = batch * params.v_batch_stride + position * params.v_row_stride;
  }
  // The cache is the caller's writable memory; KvcParams holds it const for the attention kernel's sake.
  auto* k_cache = static_cast<unsigned short*>(const_cast<void*>(params.k));
  auto* v_cache = static_cast<unsigned short*>(const_cast<void*>(params.v));
  const auto* k_new = static_cast<const unsigned short*>(params.k_new);
  const auto* v_new = static_cast<const unsigned short*>(params.v_new);
  const long long k_from = batch * params.k_new_batch_stride + row * params.k_new_row_stride +
                           head * params.k_new_head_stride + column;
  const long long v_from = batch * params.v_new_batch_stride + row * params.v_new_row_stride +
                           head * params.v_new_head_stride + column;
  *reinterpret_cast<uint4*>(k_cache + k_row + head * params.k_head_stride + column) =
      *reinterpret_cast<const uint4*>(k_new + k_from);
  *reinterpret_cast<uint4*>(v_cache + v_row + head * params.v_head_stride + column) =
      *reinterpret_cast<const uint4*>(v_new + v_from);
}

}  // namespace fa2
