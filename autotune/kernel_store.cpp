#include "autotune/kernel_store.hpp"

#include "codegen/emit.hpp"
#include "codegen/fnv1a.hpp"
#include "runtime/embedded_templates.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2 {

std::string cubin_key(const TileConfig& config) {
  Fnv1a hash;
  hash.add_field(emit(config));
  for (const std::string& option : compile_options(config.arch)) hash.add_field(option);
  hash.add_field(template_set_hash(active_templates()));
  return config.name() + "@" + arch_name(config.arch) + "@nvrtc" + nvrtc_version() + "@" + hash.hex();
}

CachedKernel cached_kernel_of(const TileConfig& config, CompiledKernel&& compiled) {
  CachedKernel entry;
  entry.cubin_key = cubin_key(config);
  entry.config = config;
  entry.nvrtc_version = nvrtc_version();
  entry.template_hash = template_set_hash(active_templates());
  entry.cubin = std::move(compiled.cubin);
  entry.resources = compiled.resources;
  entry.compile_ms = compiled.compile_ms;
  return entry;
}

}  // namespace fa2
