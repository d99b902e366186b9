// FlashAttention 2.6's built-in attention variants: a sliding window, softcapping and ALiBi. A kernel is
// compiled for which of them are on (Variant, a field of TileConfig and so of every kernel and tuning key);
// their values (window sizes, the cap, the slopes) are arguments of each call (VariantArgs), so one kernel
// serves every window size.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fa2jit/user_mods.hpp"

namespace fa2 {

// The variants a kernel is compiled for.
struct Variant {
  bool window = false;   // keys outside a band around the (bottom-right aligned) diagonal are hidden
  bool softcap = false;  // scores pass through cap * tanh(score / cap)
  bool alibi = false;    // a per-head linear bias on the query-key distance
  UserMods user;         // score_mod / mask_mod snippets and their extra arrays (fa2jit/user_mods.hpp)

  bool any() const { return window || softcap || alibi || user.any(); }
  bool operator==(const Variant& o) const {
    return window == o.window && softcap == o.softcap && alibi == o.alibi && user == o.user;
  }
  bool operator!=(const Variant& o) const { return !(*this == o); }
};

// "win", "cap", "alibi", "umod<digest>" joined by '_' ("win_cap_alibi", "cap_umod1f2e3d4c"), or "" for none: the
// suffix kernel names carry. A parsed "umod" tag gives UserMods with only stored_digest set.
std::string variant_tag(const Variant& variant);
// The Variant a tag names, or nullopt for a tag variant_tag() does not write.
std::optional<Variant> parse_variant_tag(const std::string& tag);

// A call's variant values, with flash-attn's meaning (flash_attn_func's window_size, softcap, alibi_slopes).
// With scale the softmax scale, s = q . k, and query row i aligned bottom-right (i' = i + seqlen_k - seqlen_q),
// the score of key j is
//   logit = softcap > 0 ? softcap * tanh(scale * s / softcap) : scale * s      (softcapping first)
//           - slope[batch][head] * |i' - j|                                    (ALiBi, when slopes are given)
// and key j is visible when i' - window_left <= j <= i' + window_right (a side of -1 is unbounded; causal makes
// window_right 0). A row that sees no key gets O = 0 and LSE = +inf. The defaults turn everything off.
struct VariantArgs {
  int window_left = -1;   // keys before the diagonal a query sees; -1: all of them
  int window_right = -1;  // keys after the diagonal a query sees; -1: all of them (0 with causal)
  float softcap = 0.f;    // > 0: the cap; 0: off (flash-attn's default)
  // Device fp32 slopes, [heads_q] (batch stride 0) or [batch, heads_q] (batch stride heads_q or more, in
  // elements), 4-byte aligned; null: no ALiBi. The bias is added after softcapping; the slopes get no gradient.
  const float* alibi_slopes = nullptr;
  long long alibi_slopes_batch_stride = 0;
  // User modifications (fa2jit/user_mods.hpp): applied after softcap and ALiBi, on the scaled logit; a hidden
  // pair counts as a masked one (a row that sees no key gets O = 0 and LSE = +inf). Empty: off.
  std::string score_mod;
  std::string score_mod_grad;
  std::string mask_mod;
  std::vector<ExtraArray> extra;  // at most kMaxExtraArrays, names unique
};

}  // namespace fa2
