// The built-in variants on the device: which are compiled in (ScoreVariant, a member type of every family's
// config) and the per-block state that applies them to a score (ScoreMod). Every kernel reaches the variants
// through these and the family helpers beside them (fwd_scores.cuh, bwd_scores.cuh), inside `if constexpr`,
// so a kernel compiled without a variant is the code it was before variants existed.
#pragma once

#include "fa2/variant/variant_params.h"

namespace fa2 {

template <bool kWindow_, bool kSoftcap_, bool kAlibi_>
struct ScoreVariant {
  static constexpr bool kWindow = kWindow_;
  static constexpr bool kSoftcap = kSoftcap_;
  static constexpr bool kAlibi = kAlibi_;
  static constexpr bool kAny = kWindow || kSoftcap || kAlibi;
  static constexpr bool kModifiesScores = kSoftcap || kAlibi;  // every score changes, not only masked ones
};
using NoVariant = ScoreVariant<false, false, false>;

// tanh on the SFU (sm_75 and later), FlashAttention's choice for softcapping: its error (a relative 2^-11)
// moves a logit cap * tanh(.) by far less than rounding P to 16 bits does at the logits softcapping keeps small.
__device__ __forceinline__ float tanh_approx(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// One block's variant state for its (batch, query head): the window bounds relative to the diagonal, the
// softcap factor and the ALiBi slope in units of the unscaled score. Rows and keys are sequence indices.
template <class V>
struct ScoreMod {
  int offset = 0;  // seqlen_k - seqlen_q: row i's diagonal key is i + offset
  int left = 0;
  int right = 0;
  float softcap_scale = 0.f;
  float alibi_slope = 0.f;

  __device__ __forceinline__ ScoreMod(const VariantParams& params, int batch, int head, int seqlen_q, int seqlen_k) {
    if constexpr (V::kAny) {
      offset = seqlen_k - seqlen_q;
      left = params.window_left;
      right = params.window_right;
      softcap_scale = params.softcap_scale;
      if constexpr (V::kAlibi)
        alibi_slope = params.alibi_slopes[batch * params.alibi_batch_stride + head] * params.alibi_scale;
    }
  }

  // The unscaled score s of (row, key) after softcapping and the ALiBi bias.
  __device__ __forceinline__ float apply(float s, int row, int key) const {
    if constexpr (V::kSoftcap) s = tanh_approx(s * softcap_scale);
    if constexpr (V::kAlibi) {
      const int distance = row + offset - key;
      s -= alibi_slope * static_cast<float>(distance < 0 ? -distance : distance);
    }
    return s;
  }

  // apply(), and with softcap tanh's derivative 1 - tanh^2 in `tanh_gradient` (the backward's dS is multiplied
  // by it; the chain rule's softcap_scale reaches dQ and dK through their fp32 factor, BwdParams::softmax_scale);
  // 1 without softcap, a constant the compiler folds away.
  __device__ __forceinline__ float apply(float s, int row, int key, float& tanh_gradient) const {
    tanh_gradient = 1.f;
    if constexpr (V::kSoftcap) {
      s = tanh_approx(s * softcap_scale);
      tanh_gradient = 1.f - s * s;
    }
    if constexpr (V::kAlibi) {
      const int distance = row + offset - key;
      s -= alibi_slope * static_cast<float>(distance < 0 ? -distance : distance);
    }
    return s;
  }

  // The window's first and last key of `row` (not yet clamped to the sequence).
  __device__ __forceinline__ int first_key(int row) const { return row + offset - left; }
  __device__ __forceinline__ int last_key(int row) const { return row + offset + right; }
  __device__ __forceinline__ bool in_window(int row, int key) const {
    return key >= first_key(row) && key <= last_key(row);
  }
};

}  // namespace fa2
