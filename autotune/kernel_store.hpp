// Identity of a compiled kernel: a cubin is stored and looked up under a key that covers everything
// that could change its machine code, so a cubin is never loaded under a different key.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autotune/cache.hpp"
#include "codegen/tile_config.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2 {

// hash(generated source, NVRTC options, template set hash) + arch + NVRTC version, e.g.
// "fa2_fwd_mma_d128_bf16_causal_m128n64w8s2_sm90a@sm_90a@nvrtc13.0@3f2a9c...".
std::string cubin_key(const TileConfig& config);

// The cache row of a freshly compiled kernel (its cubin moves in).
CachedKernel cached_kernel_of(const TileConfig& config, CompiledKernel&& compiled);

// Why the cache's row for `key` must not be loaded as `config` (an empty or malformed cubin, another
// config, NVRTC or template set than this build's), or "" when it may be handed to the driver.
// Checked before cuModuleLoadData, which takes no size and would read past a truncated blob.
std::string cached_kernel_rejection(const CachedKernel& row, const TileConfig& config, const std::string& key);

// Why `cubin` is not a whole 64-bit ELF image (what NVRTC writes), or "" when its headers and every
// section lie inside it.
std::string cubin_rejection(const std::vector<char>& cubin);

// The cache's row for `config` when it may be handed to the driver; nullopt when there is none, or when
// it is rejected (then *rejection, if given, says why). Every path that loads a cached cubin goes through here.
std::optional<CachedKernel> find_usable_kernel(const Cache& cache, const TileConfig& config,
                                              std::string* rejection = nullptr);

}  // namespace fa2
