#include "runtime/kernel_memo.hpp"

#include <fmt/format.h>

#include "autotune/cache.hpp"
#include "autotune/kernel_store.hpp"
#include "codegen/emit.hpp"
#include "runtime/launch.hpp"

namespace fa2 {

KernelMemo& KernelMemo::instance() {
  static KernelMemo memo;
  return memo;
}

const ContextDevice& KernelMemo::device(CUcontext context) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = devices_.find(context);
  if (found != devices_.end()) return found->second;
  ContextDevice entry;
  driver::check(driver::api().CtxGetDevice(&entry.device), "cuCtxGetDevice");
  entry.info = driver::device_info(entry.device);
  entry.arch = arch_for_compute_capability(entry.info.cc_major, entry.info.cc_minor);
  return devices_.emplace(context, std::move(entry)).first->second;
}

const LoadedKernel& KernelMemo::kernel(const TileConfig& config, CUcontext context, Cache* cache) {
  const std::string key = fmt::format("{}/{}", static_cast<const void*>(context), config.hash());
  // One lock over lookup and compile: two threads asking for the same new kernel compile it once.
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = kernels_.find(key);
  if (found != kernels_.end()) return *found->second;
  auto loaded = std::make_unique<LoadedKernel>();
  loaded->config = config;
  std::optional<CachedKernel> cached = cache ? cache->find_kernel(cubin_key(config)) : std::nullopt;
  std::optional<CompiledKernel> compiled;
  if (cached) {
    ++stats_.cubins_loaded;
    loaded->resources = cached->resources;
    loaded->module = Module::load(cached->cubin);
  } else {
    compiled = compile_source(emit(config), config.name(), config.arch);
    ++stats_.compiles;
    loaded->resources = compiled->resources;
    loaded->module = Module::load(compiled->cubin);
  }
  loaded->function = loaded->module.function(config.name());
  complete_resources(loaded->resources, loaded->function);
  prepare_function(loaded->function, config);
  if (compiled && cache) {
    CachedKernel entry = cached_kernel_of(config, std::move(*compiled));
    entry.resources = loaded->resources;
    cache->put_kernels({entry});
  }
  return *kernels_.emplace(key, std::move(loaded)).first->second;
}

RuntimeStats KernelMemo::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  RuntimeStats stats = stats_;
  stats.dispatch_hits = dispatch_hits_.load(std::memory_order_relaxed);
  return stats;
}

void KernelMemo::count_resolution(bool tuned) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.resolutions;
  if (tuned) ++stats_.tunings;
}

}  // namespace fa2
