#include "common/variant.hpp"

#include <algorithm>
#include <utility>

namespace fa2 {

std::string variant_tag(const Variant& variant) {
  std::string tag;
  for (auto [on, name] : {std::pair<bool, const char*>{variant.window, "win"}, {variant.softcap, "cap"},
                          {variant.alibi, "alibi"}})
    if (on) tag += (tag.empty() ? "" : "_") + std::string(name);
  if (variant.user.any()) tag += (tag.empty() ? "umod" : "_umod") + variant.user.digest();
  return tag;
}

std::optional<Variant> parse_variant_tag(const std::string& tag) {
  Variant variant;
  std::size_t start = 0;
  while (start < tag.size()) {
    const std::size_t end = std::min(tag.find('_', start), tag.size());
    const std::string part = tag.substr(start, end - start);
    if (part.size() == 12 && part.compare(0, 4, "umod") == 0 && variant.user.stored_digest.empty() &&
        part.find_first_not_of("0123456789abcdef", 4) == std::string::npos) {
      variant.user.stored_digest = part.substr(4);
      start = end + 1;
      if (end + 1 == tag.size()) return std::nullopt;
      continue;
    }
    bool* flag = part == "win" ? &variant.window : part == "cap" ? &variant.softcap : part == "alibi" ? &variant.alibi
                                                                                                    : nullptr;
    if (flag == nullptr || *flag) return std::nullopt;
    *flag = true;
    start = end + 1;
    if (end + 1 == tag.size()) return std::nullopt;  // a trailing '_'
  }
  if (variant_tag(variant) != tag) return std::nullopt;  // out of order
  return variant;
}

EffectiveMask effective_mask(bool causal, const VariantArgs& variant, int seqlen_q, int seqlen_k) {
  int left = variant.window_left, right = causal ? 0 : variant.window_right;
  if (left >= seqlen_k - 1) left = -1;
  if (right >= seqlen_q - 1 && right != 0) right = -1;
  EffectiveMask mask;
  mask.causal = causal || right == 0;
  mask.window = left >= 0 || right > 0;
  if (mask.window) {
    mask.left = left;
    mask.right = mask.causal ? 0 : right;
  }
  return mask;
}

Variant variant_of(bool causal, const VariantArgs& variant, int seqlen_q, int seqlen_k) {
  Variant kind;
  kind.window = effective_mask(causal, variant, seqlen_q, seqlen_k).window;
  kind.softcap = variant.softcap > 0.f;
  kind.alibi = variant.alibi_slopes != nullptr;
  kind.user = user_mods_of(variant);
  return kind;
}

UserMods user_mods_of(const VariantArgs& variant) {
  UserMods mods;
  mods.score_mod = variant.score_mod;
  mods.score_mod_grad = variant.score_mod_grad;
  mods.mask_mod = variant.mask_mod;
  for (const ExtraArray& extra : variant.extra) mods.extras.push_back(ExtraArrayDecl{extra.name, extra.type});
  return mods;
}

}  // namespace fa2
