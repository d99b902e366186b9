// Kernel parameters of the built-in variants (sliding window, softcap, ALiBi), shared verbatim by the host
// (runtime/params_builder.cpp) and the device. A second by-value argument of the kernels compiled with a
// variant, after FwdParams or BwdParams: kernels without one keep their signature, and so their code.
// Plain C types only: NVRTC sees no std headers.
#pragma once

#include "fa2/variant/user_mod_params.h"

namespace fa2 {

struct VariantParams {
  // Query row i (i' = i + seqlen_k - seqlen_q) sees keys i' - window_left .. i' + window_right. The host
  // writes an unbounded side as seqlen_k (left) or seqlen_q (right), which reach every key, and 0 on the right
  // when causal; the kernel never needs to tell "unbounded" apart.
  int window_left;
  int window_right;
  // Softcap: the unscaled score s becomes tanh(s * softcap_scale), softcap_scale = softmax_scale / cap, and the
  // softmax scale the kernel applies becomes cap (FwdParams/BwdParams::softmax_scale), so the logit is
  // cap * tanh(softmax_scale * s / cap) as in flash-attn 2.6.
  float softcap_scale;
  // ALiBi: slopes[batch * alibi_batch_stride + head] * alibi_scale is subtracted from the unscaled score per
  // key of distance; alibi_scale = 1 / the kernel's softmax scale, so the bias lands on the scaled logit.
  float alibi_scale;
  const float* alibi_slopes;
  long long alibi_batch_stride;
  // The user modifications' values (score_mod, mask_mod, extra arrays), read by kernels compiled with them.
  UserModParams user;
};

}  // namespace fa2
