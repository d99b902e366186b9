// fa2-tune info: what this machine and this build would use: the GPU (if any), NVRTC, the cache file
// and the template set. The first thing to ask for when a cached kernel is not being reused.
#include <fmt/core.h>

#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/support.hpp"
#include "runtime/driver.hpp"
#include "runtime/embedded_templates.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2::cli {
namespace {

void row(const char* key, const std::string& value) { fmt::print("{:<16}{}\n", key, value); }

void print_device() {
  std::string why;
  if (!driver::available(&why)) {
    row("device", "no GPU: " + first_line(why));
    return;
  }
  const driver::DeviceInfo d = driver::device_info(driver::ensure_context());
  const auto arch = arch_for_compute_capability(d.cc_major, d.cc_minor);
  row("device", d.name);
  row("compute", fmt::format("sm_{}{} ({})", d.cc_major, d.cc_minor, arch ? arch_name(*arch) : "not a fa2jit target"));
  row("SMs", std::to_string(d.sm_count));
  row("smem per block", fmt::format("{} bytes (opt-in)", d.max_smem_optin));
  row("L2", fmt::format("{} bytes", d.l2_cache_bytes));
  row("driver", fmt::format("CUDA {}.{}", d.driver_version / 1000, d.driver_version % 1000 / 10));
}

void print_cache(const GlobalOptions& global) {
  row("cache", cache_path(global));
  const std::optional<Cache> cache = open_existing_cache(global);
  if (!cache) {
    row("", "(not created yet)");
    return;
  }
  const CacheInfo info = cache->info();
  if (cache->layers().size() > 1)
    for (const CacheInfo& layer : cache->layer_info()) {
      const bool writes = layer.path == cache->path() && cache->writable();
      row("layer", fmt::format("{} ({}; {} kernels, {} tunings)", layer.path, writes ? "takes writes" : "read-only",
                               layer.kernels, layer.tunings));
    }
  row("cache size", fmt::format("{} bytes", info.bytes));
  row("schema", fmt::format("version {} (this build: {})", info.schema_version, Cache::kSchemaVersion));
  // Per family from the listings (no cubins read): which passes this cache can serve without compiling.
  std::vector<Family> kernel_families, tuning_families;
  for (const CachedKernel& k : cache->list_kernels()) kernel_families.push_back(k.config.family);
  for (const TuningRecord& t : cache->list_tunings()) tuning_families.push_back(t.winner.family);
  auto with_families = [](int count, const std::vector<Family>& families) {
    return count > 0 ? fmt::format("{} ({})", count, family_counts(families)) : std::to_string(count);
  };
  row("kernels", with_families(info.kernels, kernel_families));
  row("tunings", with_families(info.tunings, tuning_families));
  row("measurements", std::to_string(info.measurements));
}

}  // namespace

Command setup_info(CLI::App& app, const GlobalOptions& global) {
  CLI::App* sub = app.add_subcommand("info", "Show the GPU, NVRTC, cache file and template set in use");
  return {sub, [&global] { return run_info(global); }};
}

int run_info(const GlobalOptions& global) {
  print_device();
  row("nvrtc", nvrtc_version());
  row("templates", template_set_hash(active_templates()));
  print_cache(global);
  return kOk;
}

}  // namespace fa2::cli
