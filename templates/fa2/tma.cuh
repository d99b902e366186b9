// The Tensor Memory Accelerator (sm_90): whole tiles copied global -> shared by one thread, described by a
// tensor map the host encodes with cuTensorMapEncodeTiled (runtime/tma_maps.cpp) and passes as a
// `const __grid_constant__` kernel parameter, so the map stays in parameter space and its address is valid
// for the TMA unit. Rows outside the map's bounds are filled with zeros, and the bytes counted towards the
// mbarrier include them.
#pragma once

#include "fa2/tma_descriptor.h"

namespace fa2 {

// Brings the map into the TMA unit's descriptor cache ahead of the first load.
__device__ __forceinline__ void tma_prefetch_descriptor(const TmaDescriptor& map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<unsigned long long>(&map)) : "memory");
}

// Loads the box of a 4-D map whose first element is at coordinates (c0, c1, c2, c3), innermost first, into
// shared memory at `smem_dst` (laid out and swizzled as the map says), completing its bytes on `barrier`.
__device__ __forceinline__ void tma_load_4d(const TmaDescriptor& map, unsigned smem_dst, unsigned barrier, int c0,
                                            int c1, int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, "
      "%6}], [%2];\n" ::"r"(smem_dst),
      "l"(reinterpret_cast<unsigned long long>(&map)), "r"(barrier), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}

}  // namespace fa2
