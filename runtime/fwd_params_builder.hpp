// FwdArgs (the public, validated description of a call) -> FwdParams (the kernel's by-value argument).
#pragma once

#include "fa2/fwd_params.h"
#include "fa2jit/fa2jit.hpp"

namespace fa2 {

// The softmax scale a call uses: the given one, else 1/sqrt(head_dim).
float softmax_scale_of(const FwdArgs& args);

FwdParams make_fwd_params(const FwdArgs& args);

}  // namespace fa2
