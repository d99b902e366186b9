// Kernel parameters of the KV-cache forward (decode and chunked prefill against a cache), shared verbatim by
// the host (C++) and the device (NVRTC). Plain C types only: NVRTC sees no std headers.
#pragma once

namespace fa2 {

// The combine kernel: one warp per (batch, query head, query row), kKvcCombineWarps warps per block.
constexpr int kKvcCombineWarps = 4;
// The most key splits a launch may use (the combine kernel keeps one weight per split in registers).
constexpr int kKvcMaxSplits = 128;
// The append kernel: one thread per 16-byte chunk of a new K row and the same chunk of its V row.
constexpr int kKvcAppendThreads = 128;

struct KvcParams {
  const void* q;  // [batch, seqlen_q, heads_q, head_dim] through the strides below (16-bit)
  // The cache. Contiguous: [batch, capacity, heads_kv, head_dim], page_size 0. Paged: [num_pages, page_size,
  // heads_kv, head_dim], batch stride = page stride, and sequence b's key j lives in page
  // block_table[b * block_table_stride + j / page_size] at row j % page_size.
  const void* k;
  const void* v;
  void* o;     // [batch, seqlen_q, heads_q, head_dim]
  float* lse;  // [batch, heads_q, seqlen_q], natural log; may be null

  const int* cache_seqlens;  // [batch]: keys of each sequence; null: seqlen_k for every sequence
  const int* block_table;    // [batch, block_table_stride]; null: contiguous cache
  // Variable-length batches (each null when not used). cu_seqlens_q [batch + 1]: sequence b's queries are rows
  // cu_seqlens_q[b] .. cu_seqlens_q[b + 1] of q and o (their batch strides unused), seqlen_q is the longest,
  // and the LSE is [heads_q, total_q]. cu_seqlens_k [batch + 1]: likewise for the keys of k and v (a
  // contiguous cache only; seqlen_k is the longest).
  const int* cu_seqlens_q;
  const int* cu_seqlens_k;
  int total_q;
  // Keys and values appended before attending (null when none; see KvcacheArgs::k_new): the append kernel
  // writes row j of sequence b at cache row cache_seqlens[b] + j, and the attention sees seqlen_new more keys.
  const void* k_new;
  const void* v_new;
  long long k_new_batch_stride, k_new_head_stride, k_new_row_stride;
  long long v_new_batch_stride, v_new_head_stride, v_new_row_stride;
  int seqlen_new;
  int block_table_stride;
  int page_size;
  int page_shift;  // log2(page_size)
  int num_pages;   // paged: pages in k and v; the append kernel writes only inside them

  // Split-KV scratch (used when num_splits > 1): per split, O normalized by the split's own sum and its
  // natural-log LSE (-inf where the split saw no key), [split][batch][heads_q][seqlen_q][head_dim | 1].
  float* o_partial;
  float* lse_partial;
  int num_splits;

  // Strides in elements; the last dimension is contiguous.
  long long q_batch_stride, q_head_stride, q_row_stride;
  long long k_batch_stride, k_head_stride, k_row_stride;
  long long v_batch_stride, v_head_stride, v_row_stride;
  long long o_batch_stride, o_head_stride, o_row_stride;

  int batch;
  int heads_q;
  int heads_kv;
  int seqlen_q;
  int seqlen_k;  // keys of a sequence when cache_seqlens is null; the most any sequence may have otherwise
  int packed_rows;  // seqlen_q * (heads_q / heads_kv): the most rows of one (batch, KV head), packed query-major
  float softmax_scale;
  float softmax_scale_log2;
};

}  // namespace fa2
