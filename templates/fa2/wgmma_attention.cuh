// The two products of attention on Hopper's warpgroup MMA, shared by the forward and the KV-cache forward:
// S = Q K^T with both operands read from swizzled shared tiles, and O += P V with P (16-bit) from registers.
// The accumulators come back in the mma.sync C layout (per warp: 16 rows, [tiles of 8 columns][4]), so
// masking and the online softmax of the mma.sync kernels apply unchanged. Cfg supplies kHeadDim, kBlockM,
// kBlockN, kNTiles (kBlockN / 8), kDTiles (kHeadDim / 8) and kBf16.
#pragma once

#include "fa2/ptx.cuh"
#include "fa2/wgmma.cuh"

namespace fa2 {

// P (the softmax's probabilities in S's accumulators) as the 16-bit A fragments of O += P V: two
// neighbouring 8-column tiles of S make one 16-column k-step of the product.
template <class Cfg>
__device__ __forceinline__ void pack_probabilities(const float (&s)[Cfg::kNTiles][4],
                                                   unsigned (&p)[Cfg::kBlockN / 16][4]) {
#pragma unroll
  for (int k16 = 0; k16 < Cfg::kBlockN / 16; ++k16) {
    p[k16][0] = pack_16bit<Cfg::kBf16>(s[2 * k16][0], s[2 * k16][1]);
    p[k16][1] = pack_16bit<Cfg::kBf16>(s[2 * k16][2], s[2 * k16][3]);
    p[k16][2] = pack_16bit<Cfg::kBf16>(s[2 * k16 + 1][0], s[2 * k16 + 1][1]);
    p[k16][3] = pack_16bit<Cfg::kBf16>(s[2 * k16 + 1][2], s[2 * k16 + 1][3]);
  }
}

// S = Q K^T for the warpgroup's 64 rows against one K tile: head_dim / 16 wgmma k-steps.
template <class Cfg>
__device__ __forceinline__ void wgmma_scores(float (&s)[Cfg::kNTiles][4], unsigned q_rows, unsigned k_tile) {
#pragma unroll
  for (int k16 = 0; k16 < Cfg::kHeadDim / 16; ++k16) {
    const unsigned page = k16 / 4, step = (k16 % 4) * 32;
    Wgmma<Cfg::kBlockN, Cfg::kBf16>::ss(s, kmajor_descriptor(q_rows + page * Cfg::kBlockM * 128 + step),
                                        kmajor_descriptor(k_tile + page * Cfg::kBlockN * 128 + step), k16 > 0);
  }
}

// O += P V: P (16-bit) from registers in the mma A layout, V N-major from shared memory.
template <class Cfg>
__device__ __forceinline__ void wgmma_output(float (&o)[Cfg::kDTiles][4], const unsigned (&p)[Cfg::kBlockN / 16][4],
                                             unsigned v_tile) {
#pragma unroll
  for (int k16 = 0; k16 < Cfg::kBlockN / 16; ++k16)
    Wgmma<Cfg::kHeadDim, Cfg::kBf16>::rs(o, p[k16], nmajor_descriptor(v_tile + k16 * 16 * 128, Cfg::kBlockN * 128),
                                         1);
}

}  // namespace fa2
