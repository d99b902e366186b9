// Validation of forward() arguments: every rule the kernel relies on, checked before anything touches
// the GPU, with a message naming the bad value and what is allowed.
#pragma once

#include "fa2jit/fa2jit.hpp"

namespace fa2 {

// Throws fa2::Error(Stage::Argument, "forward", ...) for the first rule `args` breaks.
void check_forward_args(const FwdArgs& args);

}  // namespace fa2
