// Kernel parameters of the user modifications (fa2jit/user_mods.hpp), shared verbatim by the host
// (runtime/user_mod_params.cpp) and the device: the last member of VariantParams, so only kernels compiled with
// snippets read it. Plain C types only: NVRTC sees no std headers.
#pragma once

namespace fa2 {

constexpr int kUserModMaxExtras = 4;  // fa2jit/user_mods.hpp: kMaxExtraArrays

struct UserModParams {
  // The extra arrays, in the order of UserMods::extras; the generated struct casts each to its type.
  const void* extra[kUserModMaxExtras];
  // The kernel's softmax scale (after softcap's rewrite) and its inverse: score_mod sees the scaled logit
  // s * score_scale of the kernel's unscaled score s and hands back new_logit * inv_score_scale.
  float score_scale;
  float inv_score_scale;
  // mask_mod's tile lists, written by the module's "_bmask" kernel before the main kernel runs
  // (block_mask.cuh): per list a count, then that many entries, at tile_lists + index * list_stride. Null when
  // the kernel walks every tile of its causal/window range and masks each element (deterministic backward).
  const int* tile_lists;
  long long list_stride;
};

}  // namespace fa2
