// Reference backward for correctness checks: plain fp32, no tiling, no tensor cores, and its own softmax
// (it never reads the forward's LSE), so it is an independent path to dQ, dK and dV. Two kernels: one
// block per query row computes that row's P and dS (kept in global scratch) and dQ; then one block per
// key row sums dK and dV over every query row of every query head that shares its KV head.
// Slow by design; compiled once per process with reference.cuh.
#pragma once

#include "fa2/bwd/bwd_params.h"
#include "fa2/reference.cuh"

// grid (seqlen_q, heads_q, batch), fa2_reference::kThreads threads, dynamic smem (2 * head_dim + seqlen_k)
// floats. o_ref: the reference forward's fp32 O, [batch, heads_q, seqlen_q, head_dim]. Writes dq_ref
// (same layout) and, per row, P and dS over every key: p_rows, ds_rows [batch, heads_q, seqlen_q, seqlen_k].
extern "C" __global__ void __launch_bounds__(fa2_reference::kThreads)
    fa2_reference_backward_rows(const fa2::BwdParams p, int head_dim, int causal, int bf16, const float* o_ref,
                                float* dq_ref, float* p_rows, float* ds_rows, const fa2::ReferenceVariant variant,
                                const fa2::UserModParams user) {
  using namespace fa2_reference;
  extern __shared__ float shared[];
  __shared__ float scratch[kThreads / 32];
  float* q_row = shared;
  float* do_row = shared + head_dim;
  float* weights = shared + 2 * head_dim;  // scores, then P
  const int row = blockIdx.x, head = blockIdx.y, batch = blockIdx.z;
  const int head_kv = head / (p.heads_q / p.heads_kv);
  const unsigned short* q = static_cast<const unsigned short*>(p.q) + batch * p.q_batch_stride +
                            head * p.q_head_stride + row * p.q_row_stride;
  const unsigned short* dout = static_cast<const unsigned short*>(p.dout) + batch * p.do_batch_stride +
                               head * p.do_head_stride + row * p.do_row_stride;
  const unsigned short* k =
      static_cast<const unsigned short*>(p.k) + batch * p.k_batch_stride + head_kv * p.k_head_stride;
  const unsigned short* v =
      static_cast<const unsigned short*>(p.v) + batch * p.v_batch_stride + head_kv * p.v_head_stride;
  const long long out_row = (static_cast<long long>(batch) * p.heads_q + head) * p.seqlen_q + row;
  const UserMods mods(user);
  for (int d = threadIdx.x; d < head_dim; d += kThreads) {
    q_row[d] = load_16bit(q, d, bf16);
    do_row[d] = load_16bit(dout, d, bf16);
  }
  __syncthreads();

  const long long last_visible = causal ? static_cast<long long>(row) + p.seqlen_k - p.seqlen_q : p.seqlen_k - 1;
  const float minus_inf = -__int_as_float(0x7f800000);
  float local_max = minus_inf;
  for (int key = threadIdx.x; key < p.seqlen_k; key += kThreads) {
    float score = minus_inf;
    float tanh_value = 0.f, derivative = 1.f;
    if (key <= last_visible && in_window(variant, row, key, p.seqlen_q, p.seqlen_k) &&
        user_visible(mods, batch, head, row, key, p.seqlen_q, p.seqlen_k)) {
      float dot = 0.f;
      for (int d = 0; d < head_dim; ++d) dot += q_row[d] * load_16bit(k, key * p.k_row_stride + d, bf16);
      score = logit(dot * p.softmax_scale, variant, batch, head, row, key, p.seqlen_q, p.seqlen_k, tanh_value);
      score = user_logit(mods, score, batch, head, row, key, p.seqlen_q, p.seqlen_k, derivative);
    }
    // d(logit) / d(scaled score): softcapping's 1 - tanh^2 times score_mod's derivative, parked in this row's dS
    // until dS is formed below (the same thread handles the same keys there).
    ds_rows[out_row * p.seqlen_k + key] = (1.f - tanh_value * tanh_value) * derivative;
    weights[key] = score;
    local_max = fmaxf(local_max, score);
  }
  const float row_max = block_reduce(local_max, scratch, true);
  float local_sum = 0.f;
  for (int key = threadIdx.x; key < p.seqlen_k; key += kThreads) {
    const float weight = row_max == minus_inf ? 0.f : expf(weights[key] - row_max);
    weights[key] = weight;
    local_sum += weight;
  }
  const float row_sum = block_reduce(local_sum, scratch, false);

  // D = dO . O with the fp32 O of the reference forward.
  float local_dot = 0.f;
  for (int d = threadIdx.x; d < head_dim; d += kThreads) local_dot += do_row[d] * o_ref[out_row * head_dim + d];
  const float dpsum = block_reduce(local_dot, scratch, false);

  for (int key = threadIdx.x; key < p.seqlen_k; key += kThreads) {
    const float prob = row_sum > 0.f ? weights[key] / row_sum : 0.f;
    float dprob = 0.f;
    for (int d = 0; d < head_dim; ++d) dprob += do_row[d] * load_16bit(v, key * p.v_row_stride + d, bf16);
    weights[key] = prob;
    p_rows[out_row * p.seqlen_k + key] = prob;
    ds_rows[out_row * p.seqlen_k + key] *= prob * (dprob - dpsum);
  }
  __syncthreads();
  for (int d = threadIdx.x; d < head_dim; d += kThreads) {
    float acc = 0.f;
    for (int key = 0; key < p.seqlen_k; ++key)
      acc += ds_rows[out_row * p.seqlen_k + key] * load_16bit(k, key * p.k_row_stride + d, bf16);
    dq_ref[out_row * head_dim + d] = acc * p.softmax_scale;
  }
}

// grid (seqlen_k, heads_kv, batch), fa2_reference::kThreads threads. dk_ref, dv_ref:
// [batch, heads_kv, seqlen_k, head_dim] fp32.
extern "C" __global__ void __launch_bounds__(fa2_reference::kThreads)
    fa2_reference_backward_keys(const fa2::BwdParams p, int head_dim, int bf16, const float* p_rows,
                                const float* ds_rows, float* dk_ref, float* dv_ref) {
  using namespace fa2_reference;
  const int key = blockIdx.x, head_kv = blockIdx.y, batch = blockIdx.z;
  const int group = p.heads_q / p.heads_kv;
  const long long out_row = (static_cast<long long>(batch) * p.heads_kv + head_kv) * p.seqlen_k + key;
  for (int d = threadIdx.x; d < head_dim; d += kThreads) {
    float dk = 0.f, dv = 0.f;
    for (int g = 0; g < group; ++g) {
      const int head = head_kv * group + g;
      const unsigned short* q =
          static_cast<const unsigned short*>(p.q) + batch * p.q_batch_stride + head * p.q_head_stride;
      const unsigned short* dout =
          static_cast<const unsigned short*>(p.dout) + batch * p.do_batch_stride + head * p.do_head_stride;
      const long long rows = (static_cast<long long>(batch) * p.heads_q + head) * p.seqlen_q;
      for (int row = 0; row < p.seqlen_q; ++row) {
        const long long at = (rows + row) * p.seqlen_k + key;
        dv += p_rows[at] * load_16bit(dout, row * p.do_row_stride + d, bf16);
        dk += ds_rows[at] * load_16bit(q, row * p.q_row_stride + d, bf16);
      }
    }
    dk_ref[out_row * head_dim + d] = dk * p.softmax_scale;
    dv_ref[out_row * head_dim + d] = dv;
  }
}

// fp32 [batch, heads, seqlen, head_dim] -> 16-bit through (batch, head, row) strides: the reference
// forward's O as the backward's input. grid (seqlen, heads, batch), fa2_reference::kThreads threads.
extern "C" __global__ void __launch_bounds__(fa2_reference::kThreads)
    fa2_reference_store_16bit(const float* src, unsigned short* dst, int head_dim, long long batch_stride,
                              long long head_stride, long long row_stride, int bf16) {
  const int row = blockIdx.x, head = blockIdx.y, batch = blockIdx.z;
  const long long in = ((static_cast<long long>(batch) * gridDim.y + head) * gridDim.x + row) * head_dim;
  unsigned short* out = dst + batch * batch_stride + head * head_stride + row * row_stride;
  for (int d = threadIdx.x; d < head_dim; d += fa2_reference::kThreads)
    out[d] = fa2_reference::store_16bit(src[in + d], bf16);
}
