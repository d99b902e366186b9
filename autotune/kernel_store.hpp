// Identity of a compiled kernel: a cubin is stored and looked up under a key that covers everything
// that could change its machine code, so a cubin is never loaded under a different key.
#pragma once

#include <string>

#include "autotune/cache.hpp"
#include "codegen/tile_config.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2 {

// hash(generated source, NVRTC options, template set hash) + arch + NVRTC version, e.g.
// "fa2_fwd_mma_d128_bf16_causal_m128n64w8s2_sm90a@sm_90a@nvrtc13.0@3f2a9c...".
std::string cubin_key(const TileConfig& config);

// The cache row of a freshly compiled kernel (its cubin moves in).
CachedKernel cached_kernel_of(const TileConfig& config, CompiledKernel&& compiled);

}  // namespace fa2
