// Reference kernels for correctness checks: a plain fp32 attention forward (one block per query row,
// no tiling, no online softmax, no tensor cores: an independent path to the same function) and a
// hash-based random fill. Slow by design; compiled once per process.
#pragma once

#include "fa2/fwd/fwd_params.h"
#include "fa2/variant/reference_variant.h"
#include "fa2/variant/user_mods.cuh"

// The user modifications' struct (codegen/snippet_source.hpp), defined by the including source before this
// header when the reference is compiled for a call's snippets (autotune/reference.cpp).
#ifndef FA2_REFERENCE_USER_MODS
#define FA2_REFERENCE_USER_MODS fa2::NoUserMods
#endif

namespace fa2_reference {

using UserMods = FA2_REFERENCE_USER_MODS;

// score_mod on the logit (after softcap and ALiBi), with its derivative; the logit itself without one. Templates,
// so that `if constexpr` drops the calls of the functions a struct without those snippets lacks.
template <class Mods>
__device__ __forceinline__ float user_logit(const Mods& mods, float logit, int batch, int head, int row, int key,
                                            int seqlen_q, int seqlen_k, float& derivative) {
  derivative = 1.f;
  if constexpr (Mods::kScoreMod)
    return fa2::user_score(mods, logit, batch, head, row, key, seqlen_q, seqlen_k, derivative);
  return logit;
}

// Whether mask_mod shows (row, key); true without one.
template <class Mods>
__device__ __forceinline__ bool user_visible(const Mods& mods, int batch, int head, int row, int key,
                                             int seqlen_q, int seqlen_k) {
  if constexpr (Mods::kMaskMod) return mods.mask_mod(batch, head, row, key, seqlen_q, seqlen_k);
  return true;
}

__device__ __forceinline__ float load_16bit(const unsigned short* base, long long index, bool bf16) {
  const unsigned short bits = base[index];
  if (bf16) return __uint_as_float(static_cast<unsigned>(bits) << 16);
  float value;
  asm("cvt.f32.f16 %0, %1;" : "=f"(value) : "h"(bits));
  return value;
}

__device__ __forceinline__ unsigned short store_16bit(float value, bool bf16) {
  unsigned short bits;
  if (bf16)
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(bits) : "f"(value));
  else
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(value));
  return bits;
}

constexpr int kThreads = 128;

__device__ float block_reduce(float value, float* scratch, bool is_max) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, value, offset);
    value = is_max ? fmaxf(value, other) : value + other;
  }
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  float total = scratch[0];
  for (int w = 1; w < kThreads / 32; ++w) total = is_max ? fmaxf(total, scratch[w]) : total + scratch[w];
  __syncthreads();
  return total;
}

// The logit of (row, key) from its scaled score q . k * scale, by the variants' definition: softcapping first,
// then the ALiBi bias on the bottom-right aligned distance. `tanh_value`: the softcap's tanh (its derivative
// is 1 - tanh^2), 0 without softcap.
__device__ __forceinline__ float logit(float scaled, const fa2::ReferenceVariant& variant, int batch, int head,
                                       long long row, long long key, int seqlen_q, int seqlen_k, float& tanh_value) {
  tanh_value = 0.f;
  if (variant.softcap > 0.f) {
    tanh_value = tanhf(scaled / variant.softcap);
    scaled = variant.softcap * tanh_value;
  }
  if (variant.alibi_slopes != nullptr) {
    const long long distance = row + seqlen_k - seqlen_q - key;
    scaled -= variant.alibi_slopes[batch * variant.alibi_batch_stride + head] *
              static_cast<float>(distance < 0 ? -distance : distance);
  }
  return scaled;
}

// Whether `row` sees `key` beyond the causal mask: inside its window.
__device__ __forceinline__ bool in_window(const fa2::ReferenceVariant& variant, long long row, long long key,
                                          int seqlen_q, int seqlen_k) {
  if (!variant.window) return true;
  const long long diagonal = row + seqlen_k - seqlen_q;
  return (variant.window_left < 0 || key >= diagonal - variant.window_left) &&
         (variant.window_right < 0 || key <= diagonal + variant.window_right);
}

}  // namespace fa2_reference

// grid (seqlen_q, heads_q, batch), kThreads threads, dynamic smem (head_dim + seqlen_k) floats.
// o_ref: [batch, heads_q, seqlen_q, head_dim] fp32; lse_ref: [batch, heads_q, seqlen_q].
extern "C" __global__ void __launch_bounds__(fa2_reference::kThreads)
    fa2_reference_forward(const fa2::FwdParams p, int head_dim, int causal, int bf16, float* o_ref, float* lse_ref,
                          const fa2::ReferenceVariant variant, const fa2::UserModParams user) {
  using namespace fa2_reference;
  extern __shared__ float shared[];
  __shared__ float scratch[kThreads / 32];
  float* q_row = shared;
  float* scores = shared + head_dim;
  const int row = blockIdx.x, head = blockIdx.y, batch = blockIdx.z;
  const int head_kv = head / (p.heads_q / p.heads_kv);
  const UserMods mods(user);
  const unsigned short* q = static_cast<const unsigned short*>(p.q) + batch * p.q_batch_stride +
                            head * p.q_head_stride + row * p.q_row_stride;
  const unsigned short* k =
      static_cast<const unsigned short*>(p.k) + batch * p.k_batch_stride + head_kv * p.k_head_stride;
  const unsigned short* v =
      static_cast<const unsigned short*>(p.v) + batch * p.v_batch_stride + head_kv * p.v_head_stride;
  for (int d = threadIdx.x; d < head_dim; d += kThreads) q_row[d] = load_16bit(q, d, bf16);
  __syncthreads();

  // Bottom-right aligned causal: query `row` sees keys [0, row + seqlen_k - seqlen_q].
  const long long last_visible = causal ? static_cast<long long>(row) + p.seqlen_k - p.seqlen_q : p.seqlen_k - 1;
  float local_max = -__int_as_float(0x7f800000);
  for (int key = threadIdx.x; key < p.seqlen_k; key += kThreads) {
    float score = -__int_as_float(0x7f800000);
    if (key <= last_visible && in_window(variant, row, key, p.seqlen_q, p.seqlen_k) &&
        user_visible(mods, batch, head, row, key, p.seqlen_q, p.seqlen_k)) {
      float dot = 0.f;
      for (int d = 0; d < head_dim; ++d) dot += q_row[d] * load_16bit(k, key * p.k_row_stride + d, bf16);
      float tanh_value, derivative;
      score = logit(dot * p.softmax_scale, variant, batch, head, row, key, p.seqlen_q, p.seqlen_k, tanh_value);
      score = user_logit(mods, score, batch, head, row, key, p.seqlen_q, p.seqlen_k, derivative);
    }
    scores[key] = score;
    local_max = fmaxf(local_max, score);
  }
  const float row_max = block_reduce(local_max, scratch, true);

  float local_sum = 0.f;
  for (int key = threadIdx.x; key < p.seqlen_k; key += kThreads) {
    const float weight = row_max == -__int_as_float(0x7f800000) ? 0.f : expf(scores[key] - row_max);
    scores[key] = weight;
    local_sum += weight;
  }
  const float row_sum = block_reduce(local_sum, scratch, false);
  __syncthreads();

  const long long out_row = (static_cast<long long>(batch) * p.heads_q + head) * p.seqlen_q + row;
  for (int d = threadIdx.x; d < head_dim; d += kThreads) {
    float acc = 0.f;
    for (int key = 0; key < p.seqlen_k; ++key) acc += scores[key] * load_16bit(v, key * p.v_row_stride + d, bf16);
    o_ref[out_row * head_dim + d] = row_sum > 0.f ? acc / row_sum : 0.f;
  }
  if (threadIdx.x == 0) lse_ref[out_row] = row_sum > 0.f ? row_max + logf(row_sum) : __int_as_float(0x7f800000);
}

// Uniform values in [-1, 1) from a hash of (seed, index): fresh inputs per check, no host round trip.
extern "C" __global__ void fa2_fill_random(unsigned short* out, long long count, unsigned long long seed, int bf16) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    unsigned long long x = seed ^ (static_cast<unsigned long long>(i) * 0x9E3779B97F4A7C15ull);
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    const float uniform = static_cast<float>(x >> 40) * (1.f / 16777216.f) * 2.f - 1.f;
    out[i] = fa2_reference::store_16bit(uniform, bf16);
  }
}
