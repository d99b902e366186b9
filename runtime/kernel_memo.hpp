// The in-process memo of loaded kernels: a config is compiled and loaded once per CUDA context, and
// every later call with the same config launches the loaded function.
#pragma once

#include <cuda.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "codegen/tile_config.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/driver.hpp"
#include "runtime/module.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2 {

struct LoadedKernel {
  TileConfig config;
  Module module;
  CUfunction function = nullptr;
  ResourceUsage resources;
};

// What forward() needs to know of the current context's device, read once per context.
struct ContextDevice {
  CUdevice device = 0;
  driver::DeviceInfo info;
  std::optional<Arch> arch;  // empty when fa2jit has no kernels for this compute capability
};

class KernelMemo {
 public:
  static KernelMemo& instance();

  // The device behind `context` (the current one).
  const ContextDevice& device(CUcontext context);
  // The kernel for `config` loaded in `context` (the current one), compiled and loaded on first use.
  const LoadedKernel& kernel(const TileConfig& config, CUcontext context);
  RuntimeStats stats() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<CUcontext, ContextDevice> devices_;
  std::unordered_map<std::string, std::unique_ptr<LoadedKernel>> kernels_;  // context + config hash
  RuntimeStats stats_;
};

}  // namespace fa2
