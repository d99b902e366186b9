// The in-process memo of loaded kernels: a config is loaded once per CUDA context (from the cache's
// cubin when there is one under its cubin key, else compiled, and then stored), and every later use of
// the same config gets the loaded module.
#pragma once

#include <cuda.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "codegen/tile_config.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/kernel_module.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2 {

class Cache;

struct LoadedKernel {
  KernelModule module;
  ResourceUsage resources;  // of the main kernel
  const TileConfig& config() const { return module.config; }
};

class KernelMemo {
 public:
  static KernelMemo& instance();

  // The kernel module for `config` loaded in `context` (the current one). On first use its cubin comes
  // from `cache` when that holds it, else it is compiled (and stored in `cache`, if given). A cache that
  // cannot be read or written, or a cached cubin that is rejected (see cached_kernel_rejection) or that
  // the driver refuses, is a cache fault: counted, and the config compiled (and its row replaced).
  const LoadedKernel& kernel(const TileConfig& config, CUcontext context, Cache* cache = nullptr);

  // Counters shared with the dispatcher.
  RuntimeStats stats() const;
  void count_resolution(bool tuned);
  void count_dispatch_hit() { dispatch_hits_.fetch_add(1, std::memory_order_relaxed); }
  void record_cache_fault(const std::string& message);
  std::string last_cache_fault() const;

 private:
  bool load_cached(LoadedKernel& loaded, const TileConfig& config, Cache& cache, const std::string& key);  // under mutex_
  void store(const LoadedKernel& loaded, CompiledKernel&& compiled, Cache& cache);  // under mutex_
  void note_cache_fault(std::string message);                                      // under mutex_

  std::atomic<std::size_t> dispatch_hits_{0};
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<LoadedKernel>> kernels_;  // context + config hash
  RuntimeStats stats_;
  std::string last_cache_fault_;
};

}  // namespace fa2
