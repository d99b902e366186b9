// Kernel parameters of the FA2 backward, shared verbatim by the host (C++) and the device (NVRTC) so
// the two sides can never disagree on the layout. Plain C types only: NVRTC sees no std headers.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FA2_BWD_HOST_DEVICE __host__ __device__
#else
#define FA2_BWD_HOST_DEVICE
#endif

namespace fa2 {

// The preprocess and dQ-convert kernels: kBwdRowThreads threads per block, one warp per row at a time,
// kBwdRowsPerBlock query rows of one (batch, head) per block.
constexpr int kBwdRowThreads = 256;
constexpr int kBwdRowsPerBlock = 64;

struct BwdParams {
  const void* q;     // [batch, seqlen_q, heads_q, head_dim] through the strides below (16-bit)
  const void* k;     // [batch, seqlen_k, heads_kv, head_dim]
  const void* v;     // [batch, seqlen_k, heads_kv, head_dim]
  const void* o;     // [batch, seqlen_q, heads_q, head_dim]: the forward's output
  const void* dout;  // dLoss/dO, shaped like o
  const float* lse;  // [batch, heads_q, seqlen_q], natural log: the forward's
  void* dq;          // written: shaped like q, k, v
  void* dk;
  void* dv;

  // Workspace, laid out by the host (runtime/params_builder.cpp).
  float* dq_accum;    // [batch, heads_q, seqlen_q, head_dim] fp32, zeroed by the preprocess kernel
  float* dpsum;       // D = rowsum(dO * O): [batch, heads_q, seqlen_q] fp32, written by the preprocess kernel
  int* dq_semaphore;  // deterministic: [batch, heads_q, semaphore_stride], key blocks done per query block

  // Strides in elements; the last dimension is contiguous.
  long long q_batch_stride, q_head_stride, q_row_stride;
  long long k_batch_stride, k_head_stride, k_row_stride;
  long long v_batch_stride, v_head_stride, v_row_stride;
  long long o_batch_stride, o_head_stride, o_row_stride;
  long long do_batch_stride, do_head_stride, do_row_stride;
  long long dq_batch_stride, dq_head_stride, dq_row_stride;
  long long dk_batch_stride, dk_head_stride, dk_row_stride;
  long long dv_batch_stride, dv_head_stride, dv_row_stride;

  int batch;
  int heads_q;
  int heads_kv;
  int seqlen_q;
  int seqlen_k;
  int semaphore_stride;      // entries per (batch, head) in dq_semaphore: ceil(seqlen_q / 16)
  int pairs_per_wave;        // (batch, KV head) pairs whose key blocks are dispatched together (key_block.cuh)
  // The call's scale of QK^T: dQ's and dK's fp32 factor, with softcap too (make_bwd_variant_params).
  float softmax_scale;
  // The recomputed logits' factor times log2(e), for the exp2 form: softmax_scale's, or with softcap the cap's.
  float softmax_scale_log2;
};

// The (key block, batch, KV head) of the main kernel's block `block` in its one-dimensional grid: groups of
// `pairs_per_wave` (batch, KV head) pairs, the key block the slowest index inside a group (key_block.cuh
// says why). Shared with the host so a CPU test can check that the order covers every block once.
struct KeyBlockIndex {
  int n_block, batch, head_kv;
};
FA2_BWD_HOST_DEVICE inline KeyBlockIndex key_block_index(int block, int batch, int heads_kv, int key_blocks,
                                                         int pairs_per_wave) {
  const int pairs = batch * heads_kv;
  const int first_pair = block / (pairs_per_wave * key_blocks) * pairs_per_wave;
  const int rest = pairs - first_pair;
  const int wave_pairs = pairs_per_wave < rest ? pairs_per_wave : rest;  // the last group may be short
  const int index = block - first_pair * key_blocks;
  const int pair = first_pair + index % wave_pairs;
  return {index / wave_pairs, pair / heads_kv, pair % heads_kv};
}

}  // namespace fa2
