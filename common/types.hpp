// The facts of each arch that sizing a kernel needs, on top of the public DType and Arch. The bottom of
// the internal layers: codegen, runtime, autotune and the API all speak these.
#pragma once

#include <optional>

#include "fa2jit/types.hpp"

namespace fa2 {

// The arch of a device from its compute capability (e.g. 9.0 -> sm_90a), if fa2jit targets it.
std::optional<Arch> arch_for_compute_capability(int major, int minor);
int compute_capability(Arch arch);   // 80, 86, 89, 90
int max_smem_per_block(Arch arch);   // opt-in dynamic shared memory limit, bytes
int smem_per_sm(Arch arch);          // shared memory of one SM, bytes (1 KB of it reserved per block)
int max_threads_per_sm(Arch arch);

// Every head dim fa2jit supports: the multiples of 32 up to 256.
bool is_supported_head_dim(int head_dim);

}  // namespace fa2
