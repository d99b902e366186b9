#include "codegen/variant_source.hpp"

#include <fmt/format.h>

#include "codegen/snippet_source.hpp"

namespace fa2 {

std::string variant_template_argument(const Variant& variant) {
  if (!variant.any()) return {};
  return fmt::format(", fa2::ScoreVariant</*window*/ {}, /*softcap*/ {}, /*alibi*/ {}{}>", variant.window,
                     variant.softcap, variant.alibi, variant.user.any() ? std::string(", ") + kUserModsType : "");
}

std::string variant_kernel_parameter(const Variant& variant) {
  return variant.any() ? ", const fa2::VariantParams variant" : "";
}

std::string variant_call_argument(const Variant& variant) { return variant.any() ? ", variant" : ""; }

}  // namespace fa2
