// Validation of forward() and backward() arguments: every rule the kernels rely on, checked before
// anything touches the GPU, with a message naming the bad value and what is allowed.
#pragma once

#include "common/attention_args.hpp"

namespace fa2 {

// Throws fa2::Error(Stage::Argument, "forward", ...) for the first rule `args` breaks.
void check_forward_args(const FwdArgs& args);

// Throws fa2::Error(Stage::Argument, "backward", ...) for the first rule `args` breaks, including a
// caller's workspace smaller than backward_workspace_bytes(args).
void check_backward_args(const BwdArgs& args);

// Only the sizes of `args` (batch, heads, sequence lengths, head dim): enough to size its workspace.
void check_backward_sizes(const BwdArgs& args);

// Throws fa2::Error(Stage::Argument, "forward_with_kvcache", ...) for the first rule `args` breaks; the
// workspace is checked at launch, where the number of splits is known.
void check_kvcache_args(const KvcacheArgs& args);

}  // namespace fa2
