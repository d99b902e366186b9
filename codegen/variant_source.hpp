// The pieces of generated source that carry a config's variants (fa2jit/variant.hpp) into the kernels: an extra
// template argument of the config type and an extra kernel parameter with their values. Both are empty for a
// config without variants, so its source, name and code stay what they were before variants existed.
#pragma once

#include <string>

#include "fa2jit/variant.hpp"

namespace fa2 {

// ", fa2::ScoreVariant</*window*/ true, /*softcap*/ false, /*alibi*/ false>" (after the config's last template
// argument), or "" without variants.
std::string variant_template_argument(const Variant& variant);
// ", const fa2::VariantParams variant" (after the kernel's params), or "".
std::string variant_kernel_parameter(const Variant& variant);
// ", variant" (after params in the call of the kernel template), or "".
std::string variant_call_argument(const Variant& variant);

}  // namespace fa2
