// Kernel parameters of the FA2 forward, shared verbatim by the host (C++) and the device (NVRTC)
// so the two sides can never disagree on the layout. Plain C types only: NVRTC sees no std headers.
#pragma once

namespace fa2 {

struct FwdParams {
  const void* q;  // [batch, seqlen_q, heads_q, head_dim] through the strides below (16-bit)
  const void* k;  // [batch, seqlen_k, heads_kv, head_dim]
  const void* v;  // [batch, seqlen_k, heads_kv, head_dim]
  void* o;        // [batch, seqlen_q, heads_q, head_dim]
  float* lse;     // [batch, heads_q, seqlen_q], natural log; may be null

  // Strides in elements; the last dimension is contiguous.
  long long q_batch_stride, q_head_stride, q_row_stride;
  long long k_batch_stride, k_head_stride, k_row_stride;
  long long v_batch_stride, v_head_stride, v_row_stride;
  long long o_batch_stride, o_head_stride, o_row_stride;

  int batch;
  int heads_q;
  int heads_kv;
  int seqlen_q;
  int seqlen_k;
  float softmax_scale;       // applied to QK^T
  float softmax_scale_log2;  // softmax_scale * log2(e), for the exp2 form
};

}  // namespace fa2
