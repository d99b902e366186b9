// The launches of a loaded kernel module: grids, blocks, dynamic shared memory and the by-value params
// of each family's kernels.
#pragma once

#include <cuda.h>

#include "common/attention_args.hpp"
#include "runtime/kernel_module.hpp"

namespace fa2 {

// Enqueues the forward `kernel` on `stream`. `args` must have passed check_forward_args. Throws
// fa2::Error(Stage::Launch) on failure.
void launch_forward(const KernelModule& kernel, const FwdArgs& args, CUstream stream);

// Enqueues the backward's three kernels (preprocess, main, dQ convert) on `stream`. `args` must have passed
// check_backward_args; without a workspace one is taken from the driver's stream-ordered allocator and
// given back after the last kernel, in stream order. Throws fa2::Error(Stage::Launch or Stage::Driver).
void launch_backward(const KernelModule& kernel, const BwdArgs& args, CUstream stream);

// Enqueues the KV-cache forward (and, when it splits the keys, the combine kernel) on `stream`. `args` must
// have passed check_kvcache_args. A caller's workspace too small for the chosen splits is an argument error;
// without one, the partial results take stream-ordered memory from the driver. Throws fa2::Error.
void launch_kvcache(const KernelModule& kernel, const KvcacheArgs& args, CUstream stream);

}  // namespace fa2
