// Helpers over accumulator fragments (the mma C layout: [m tile][n tile][4] floats per thread), shared by
// the kernels of every family and scheme.
#pragma once

namespace fa2 {

template <int kMTiles, int kNTiles>
__device__ __forceinline__ void zero_accumulators(float (&c)[kMTiles][kNTiles][4]) {
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) c[mt][nt][e] = 0.f;
}

}  // namespace fa2
