// The device behind each CUDA context, read once per context: what the dispatcher, the tuner and the
// reference kernels need to know of it (name, limits, and the arch fa2jit generates for it).
#pragma once

#include <cuda.h>

#include <optional>

#include "common/types.hpp"
#include "runtime/driver.hpp"

namespace fa2 {

struct ContextDevice {
  CUdevice device = 0;
  driver::DeviceInfo info;
  std::optional<Arch> arch;  // empty when fa2jit has no kernels for this compute capability
};

// The device of `context` (thread-safe; the entry lives as long as the process).
const ContextDevice& context_device(CUcontext context);

// The arch of the current context's device; throws fa2::Error(Stage::Driver, `api_call`, ...) naming the
// device and the supported compute capabilities when fa2jit has no kernels for it.
Arch current_arch(const char* api_call);

}  // namespace fa2
