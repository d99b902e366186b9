#include "fa2jit/user_mods.hpp"

#include <fmt/format.h>

#include <cctype>

#include "common/fnv1a.hpp"

namespace fa2 {

const char* extra_type_name(ExtraType type) {
  switch (type) {
    case ExtraType::i32: return "int32";
    case ExtraType::i64: return "int64";
    case ExtraType::f32: return "float32";
    case ExtraType::u8: return "uint8";
  }
  return "unknown";
}

std::optional<ExtraType> parse_extra_type(const std::string& text) {
  for (ExtraType type : {ExtraType::i32, ExtraType::i64, ExtraType::f32, ExtraType::u8})
    if (text == extra_type_name(type)) return type;
  return std::nullopt;
}

std::string UserMods::digest() const {
  if (score_mod.empty() && mask_mod.empty()) return stored_digest;
  // Length-prefixed fields, so text moved from one snippet to another changes the digest.
  Fnv1a hash;
  hash.add_field(score_mod).add_field(score_mod_grad).add_field(mask_mod);
  for (const ExtraArrayDecl& extra : extras) hash.add_field(extra.name).add_field(extra_type_name(extra.type));
  return hash.hex().substr(0, 8);
}

namespace {

bool is_identifier(const std::string& name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

bool is_blank(const std::string& text) {
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::optional<std::string> validate_user_mods(const UserMods& mods) {
  if (!mods.score_mod_grad.empty() && mods.score_mod.empty())
    return std::string("score_mod_grad is given without score_mod: it is score_mod's derivative");
  for (auto [text, what] : {std::pair<const std::string*, const char*>{&mods.score_mod, "score_mod"},
                            {&mods.score_mod_grad, "score_mod_grad"},
                            {&mods.mask_mod, "mask_mod"}})
    if (!text->empty() && is_blank(*text)) return fmt::format("{} is blank: pass an expression or leave it empty", what);
  if (static_cast<int>(mods.extras.size()) > kMaxExtraArrays)
    return fmt::format("{} extra arrays given: at most {}", mods.extras.size(), kMaxExtraArrays);
  if (!mods.extras.empty() && mods.score_mod.empty() && mods.mask_mod.empty())
    return std::string("extra arrays are given without score_mod or mask_mod to read them");
  // The snippet functions' own names: an array of one of these names would hide the parameter.
  static const char* const kReserved[] = {"score", "batch", "head", "q_idx", "kv_idx", "seqlen_q", "seqlen_k",
                                          "Score", "params"};
  for (std::size_t i = 0; i < mods.extras.size(); ++i) {
    const std::string& name = mods.extras[i].name;
    if (!is_identifier(name))
      return fmt::format("extra array name '{}' is not a C identifier (letters, digits and '_', not starting with a "
                         "digit)",
                         name);
    if (name.size() >= 2 && name[0] == '_' && (name[1] == '_' || std::isupper(static_cast<unsigned char>(name[1]))))
      return fmt::format("extra array name '{}' is reserved in C++ (a leading '__' or '_' and a capital)", name);
    for (const char* reserved : kReserved)
      if (name == reserved)
        return fmt::format("extra array name '{}' is a parameter of the snippets: pick another name", name);
    for (std::size_t j = 0; j < i; ++j)
      if (mods.extras[j].name == name) return fmt::format("extra array name '{}' is given twice", name);
  }
  return std::nullopt;
}

}  // namespace fa2
