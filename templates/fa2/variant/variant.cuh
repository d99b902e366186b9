// The built-in variants on the device: which are compiled in (ScoreVariant, a member type of every family's
// config) and the per-block state that applies them to a score (ScoreMod). Every kernel reaches the variants
// through these and the family helpers beside them (fwd_scores.cuh, bwd_scores.cuh), inside `if constexpr`,
// so a kernel compiled without a variant is the code it was before variants existed.
#pragma once

#include "fa2/variant/user_mods.cuh"
#include "fa2/variant/variant_params.h"

namespace fa2 {

// User_: the generated struct of the user's snippets (user_mods.cuh), NoUserMods without them.
template <bool kWindow_, bool kSoftcap_, bool kAlibi_, class User_ = NoUserMods>
struct ScoreVariant {
  using User = User_;
  static constexpr bool kWindow = kWindow_;
  static constexpr bool kSoftcap = kSoftcap_;
  static constexpr bool kAlibi = kAlibi_;
  static constexpr bool kScoreMod = User::kScoreMod;
  static constexpr bool kMaskMod = User::kMaskMod;
  static constexpr bool kAny = kWindow || kSoftcap || kAlibi || kScoreMod || kMaskMod;
  // every score changes, not only masked ones
  static constexpr bool kModifiesScores = kSoftcap || kAlibi || kScoreMod;
  // the backward multiplies dS by a derivative of the score change (tanh's, score_mod's)
  static constexpr bool kScoreGradient = kSoftcap || kScoreMod;
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
  // The user modifications: their arrays, and what their functions take besides the score and positions.
  typename V::User user;
  int batch = 0, head = 0, seqlen_q = 0, seqlen_k = 0;
  float score_scale = 1.f, inv_score_scale = 1.f;

  __device__ __forceinline__ ScoreMod(const VariantParams& params, int batch_, int head_, int seqlen_q_,
                                      int seqlen_k_)
      : user(params.user) {
    if constexpr (V::kScoreMod || V::kMaskMod) {
      batch = batch_;
      head = head_;
      seqlen_q = seqlen_q_;
      seqlen_k = seqlen_k_;
      score_scale = params.user.score_scale;
      inv_score_scale = params.user.inv_score_scale;
    }
    if constexpr (V::kAny) {
      offset = seqlen_k_ - seqlen_q_;
      left = params.window_left;
      right = params.window_right;
      softcap_scale = params.softcap_scale;
      if constexpr (V::kAlibi)
        alibi_slope = params.alibi_slopes[batch_ * params.alibi_batch_stride + head_] * params.alibi_scale;
    }
  }

  // The unscaled score s of (row, key) after softcapping, the ALiBi bias and score_mod (on the scaled logit).
  __device__ __forceinline__ float apply(float s, int row, int key) const {
    if constexpr (V::kSoftcap) s = tanh_approx(s * softcap_scale);
    if constexpr (V::kAlibi) {
      const int distance = row + offset - key;
      s -= alibi_slope * static_cast<float>(distance < 0 ? -distance : distance);
    }
    if constexpr (V::kScoreMod)
      s = user.template score_mod<float>(s * score_scale, batch, head, clamp_row(row), clamp_key(key), seqlen_q,
                                         seqlen_k) *
          inv_score_scale;
    return s;
  }

  // Whether mask_mod shows (row, key); true without one.
  __device__ __forceinline__ bool visible(int row, int key) const {
    if constexpr (V::kMaskMod) return user.mask_mod(batch, head, clamp_row(row), clamp_key(key), seqlen_q, seqlen_k);
    return true;
  }

  // The kernels compute whole tiles, past the ends of the sequences too, and hide those scores afterwards: the
  // snippets see the last row or key in their place, so an index into a per-position extra array stays inside.
  __device__ __forceinline__ int clamp_row(int row) const { return row < seqlen_q ? row : seqlen_q - 1; }
  __device__ __forceinline__ int clamp_key(int key) const { return key < seqlen_k ? key : seqlen_k - 1; }

  // apply(), and with softcap tanh's derivative 1 - tanh^2 in `tanh_gradient` (the backward's dS is multiplied
  // by it; the chain rule's softcap_scale reaches dQ and dK through their fp32 factor, BwdParams::softmax_scale),
  // times score_mod's derivative at the logit; 1 without either, a constant the compiler folds away.
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
    if constexpr (V::kScoreMod) {
      float derivative;
      s = user_score(user, s * score_scale, batch, head, clamp_row(row), clamp_key(key), seqlen_q, seqlen_k,
                     derivative) *
          inv_score_scale;
      tanh_gradient *= derivative;
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
