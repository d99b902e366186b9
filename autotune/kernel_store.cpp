#include "autotune/kernel_store.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <cstdint>
#include <cstring>

#include "codegen/emit.hpp"
#include "common/fnv1a.hpp"
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

std::optional<CachedKernel> find_usable_kernel(const Cache& cache, const TileConfig& config, std::string* rejection) {
  const std::string key = cubin_key(config);
  std::optional<CachedKernel> row = cache.find_kernel(key);
  if (!row) return std::nullopt;
  std::string why = cached_kernel_rejection(*row, config, key);
  if (why.empty()) return row;
  if (rejection) *rejection = std::move(why);
  return std::nullopt;
}

}  // namespace fa2
