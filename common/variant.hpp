// A call's mask after flash-attn's rules for windows (flash_api.cpp: mha_fwd), the one place where the causal
// flag and VariantArgs' window meet: every layer that needs the effective mask (the problem class, the kernel
// parameters, the reference) asks here.
#pragma once

#include "fa2jit/variant.hpp"

namespace fa2 {

struct EffectiveMask {
  bool causal = false;
  bool window = false;  // a window hides keys that causal alone (or no mask) would show
  int left = -1;        // with window: keys before the diagonal a row sees; -1 unbounded
  int right = -1;       // with window: keys after it; -1 unbounded, 0 when causal
};

// causal forces the right side to 0; a right side of 0 is causal itself ((-1, 0) is flash-attn's causal); a side
// that reaches every key of every row (left >= seqlen_k - 1, right >= seqlen_q - 1) is unbounded; with both sides
// unbounded there is no window.
EffectiveMask effective_mask(bool causal, const VariantArgs& variant, int seqlen_q, int seqlen_k);

// The user modifications a call's kernel is compiled for: its snippets and its extra arrays' names and types.
UserMods user_mods_of(const VariantArgs& variant);

// The variants a call's kernel is compiled for.
Variant variant_of(bool causal, const VariantArgs& variant, int seqlen_q, int seqlen_k);

}  // namespace fa2
