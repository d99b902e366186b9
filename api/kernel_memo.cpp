#include "api/kernel_memo.hpp"

#include <fmt/format.h>

#include "autotune/cache.hpp"
#include "autotune/kernel_store.hpp"
#include "codegen/emit.hpp"
#include "common/error.hpp"

namespace fa2 {

KernelMemo& KernelMemo::instance() {
  static KernelMemo memo;
  return memo;
}

const LoadedKernel& KernelMemo::kernel(const TileConfig& config, CUcontext context, Cache* cache) {
  const std::string key = fmt::format("{}/{}", static_cast<const void*>(context), config.hash());
  // One lock over lookup and compile: two threads asking for the same new kernel compile it once.
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = kernels_.find(key);
  if (found != kernels_.end()) return *found->second;
  auto loaded = std::make_unique<LoadedKernel>();
  if (cache && load_cached(*loaded, config, *cache, cubin_key(config))) {
    ++stats_.cubins_loaded;
  } else {
    CompiledKernel compiled = compile_source(emit(config), config.name(), config.arch);
    ++stats_.compiles;
    loaded->resources = compiled.resources;
    loaded->module = KernelModule::load(config, compiled.cubin);
    complete_resources(loaded->resources, loaded->module.main());
    if (cache) store(*loaded, std::move(compiled), *cache);
  }
  return *kernels_.emplace(key, std::move(loaded)).first->second;
}

bool KernelMemo::load_cached(LoadedKernel& loaded, const TileConfig& config, Cache& cache, const std::string& key) {
  std::optional<CachedKernel> cached;
  try {
    cached = cache.find_kernel(key);
  } catch (const Error& error) {
    if (error.stage() != Stage::Cache) throw;
    note_cache_fault(fmt::format("{}; compiling {} instead", error.what(), config.name()));
    return false;
  }
  if (!cached) return false;
  std::string rejection = cached_kernel_rejection(*cached, config, key);
  if (rejection.empty()) {
    try {
      loaded.module = KernelModule::load(config, cached->cubin);
      loaded.resources = cached->resources;
      complete_resources(loaded.resources, loaded.module.main());
      return true;
    } catch (const Error& error) {
      // Any refusal counts: if the driver itself is at fault, loading the fresh compile fails too and
      // that error is thrown; a module that half-loaded is never used.
      loaded.module = KernelModule();
      const std::string message = error.what();
      rejection = "the driver refused it: " + message.substr(0, message.find('\n'));
    }
  }
  ++stats_.cubins_rejected;
  note_cache_fault(fmt::format("the cached cubin '{}' in {} was not loaded ({}); compiling it again to replace it", key,
                               cache.path(), rejection));
  return false;
}

void KernelMemo::store(const LoadedKernel& loaded, CompiledKernel&& compiled, Cache& cache) {
  CachedKernel entry = cached_kernel_of(loaded.config(), std::move(compiled));
  entry.resources = loaded.resources;
  try {
    cache.put_kernels({entry});  // replaces a rejected row under the same key
  } catch (const Error& error) {
    if (error.stage() != Stage::Cache) throw;
    note_cache_fault(fmt::format("{}; {} is used without being stored", error.what(), loaded.config().name()));
  }
}

void KernelMemo::note_cache_fault(std::string message) {
  ++stats_.cache_faults;
  last_cache_fault_ = std::move(message);
}

void KernelMemo::record_cache_fault(const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  note_cache_fault(message);
}

std::string KernelMemo::last_cache_fault() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_cache_fault_;
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
