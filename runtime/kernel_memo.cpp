#include "runtime/kernel_memo.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <cstdint>
#include <cstring>

#include "autotune/cache.hpp"
#include "autotune/kernel_store.hpp"
#include "codegen/emit.hpp"
#include "runtime/embedded_templates.hpp"
#include "runtime/error.hpp"
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

std::string cubin_rejection(const std::vector<char>& cubin) {
  const std::size_t size = cubin.size();
  Elf64_Ehdr header;
  if (size < sizeof(header)) return fmt::format("its cubin of {} bytes is shorter than an ELF header", size);
  std::memcpy(&header, cubin.data(), sizeof(header));
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64)
    return "its cubin is not a 64-bit ELF image";
  // Overflow-free "offset + count * entry <= size": the counts are 16-bit, the offsets come from the blob.
  auto table_fits = [size](std::uint64_t offset, std::uint64_t count, std::uint64_t entry) {
    return offset <= size && count * entry <= size - offset;
  };
  if (header.e_shentsize != sizeof(Elf64_Shdr) || !table_fits(header.e_shoff, header.e_shnum, sizeof(Elf64_Shdr)))
    return fmt::format("its cubin of {} bytes is truncated: the section table ends past it", size);
  if (!table_fits(header.e_phoff, header.e_phnum, header.e_phentsize))
    return fmt::format("its cubin of {} bytes is truncated: the program header table ends past it", size);
  for (unsigned i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr section;
    std::memcpy(&section, cubin.data() + header.e_shoff + i * sizeof(Elf64_Shdr), sizeof(section));
    if (section.sh_type != SHT_NOBITS && !table_fits(section.sh_offset, 1, section.sh_size))
      return fmt::format("its cubin of {} bytes is truncated: section {} ends past it", size, i);
  }
  return {};
}

std::string cached_kernel_rejection(const CachedKernel& row, const TileConfig& config, const std::string& key) {
  if (row.cubin_key != key) return fmt::format("its key is '{}'", row.cubin_key);
  if (row.config != config) return fmt::format("its row is for {}", row.config.name());
  if (row.nvrtc_version != nvrtc_version())
    return fmt::format("it was built by NVRTC {}, this is NVRTC {}", row.nvrtc_version, nvrtc_version());
  const std::string templates = template_set_hash(active_templates());
  if (row.template_hash != templates)
    return fmt::format("it was built from templates {}, these are {}", row.template_hash, templates);
  return cubin_rejection(row.cubin);
}

const LoadedKernel& KernelMemo::kernel(const TileConfig& config, CUcontext context, Cache* cache) {
  const std::string key = fmt::format("{}/{}", static_cast<const void*>(context), config.hash());
  // One lock over lookup and compile: two threads asking for the same new kernel compile it once.
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = kernels_.find(key);
  if (found != kernels_.end()) return *found->second;
  auto loaded = std::make_unique<LoadedKernel>();
  loaded->config = config;
  if (cache && load_cached(*loaded, *cache, cubin_key(config))) {
    ++stats_.cubins_loaded;
  } else {
    CompiledKernel compiled = compile_source(emit(config), config.name(), config.arch);
    ++stats_.compiles;
    loaded->resources = compiled.resources;
    loaded->module = Module::load(compiled.cubin);
    loaded->function = loaded->module.function(config.name());
    complete_resources(loaded->resources, loaded->function);
    if (cache) store(*loaded, std::move(compiled), *cache);
  }
  prepare_function(loaded->function, config);
  return *kernels_.emplace(key, std::move(loaded)).first->second;
}

bool KernelMemo::load_cached(LoadedKernel& loaded, Cache& cache, const std::string& key) {
  std::optional<CachedKernel> cached;
  try {
    cached = cache.find_kernel(key);
  } catch (const Error& error) {
    if (error.stage() != Stage::Cache) throw;
    note_cache_fault(fmt::format("{}; compiling {} instead", error.what(), loaded.config.name()));
    return false;
  }
  if (!cached) return false;
  std::string rejection = cached_kernel_rejection(*cached, loaded.config, key);
  if (rejection.empty()) {
    try {
      loaded.module = Module::load(cached->cubin);
      loaded.function = loaded.module.function(loaded.config.name());
      loaded.resources = cached->resources;
      complete_resources(loaded.resources, loaded.function);
      return true;
    } catch (const Error& error) {
      // Any refusal counts: if the driver itself is at fault, loading the fresh compile fails too and
      // that error is thrown; a module that half-loaded is never used.
      loaded.function = nullptr;
      loaded.module = Module();
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
  CachedKernel entry = cached_kernel_of(loaded.config, std::move(compiled));
  entry.resources = loaded.resources;
  try {
    cache.put_kernels({entry});  // replaces a rejected row under the same key
  } catch (const Error& error) {
    if (error.stage() != Stage::Cache) throw;
    note_cache_fault(fmt::format("{}; {} is used without being stored", error.what(), loaded.config.name()));
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
