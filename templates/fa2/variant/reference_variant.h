// The built-in variants as the reference kernels take them (templates/fa2/reference.cuh), shared verbatim by the
// host (autotune/reference.cpp) and the device: the call's values after flash-attn's window rules, with none of
// the kernels' rewriting (no scale folded into the cap, no unbounded side turned into a length), so the reference
// stays an independent path to the definition in fa2jit/variant.hpp. Plain C types only.
#pragma once

namespace fa2 {

struct ReferenceVariant {
  int window;        // nonzero: keys outside [i' - window_left, i' + window_right] are hidden
  int window_left;   // -1: unbounded
  int window_right;  // -1: unbounded
  float softcap;     // > 0: logit = softcap * tanh(logit / softcap); 0: off
  const float* alibi_slopes;  // null: no ALiBi
  long long alibi_batch_stride;
};

}  // namespace fa2
