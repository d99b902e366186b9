// One warp's tile of a GEMM whose operands both sit in swizzled shared-memory tiles (smem_tile.cuh),
// on mma.sync m16n8k16. Each operand may be stored either way round: ldmatrix's .trans turns a tile stored
// [k][rows] into the same fragments as one stored [rows][k]. This is what lets the backward multiply by
// P^T, dS^T, Q, dO and K without ever writing a transposed copy.
#pragma once

#include "fa2/fragments.cuh"
#include "fa2/ptx.cuh"

namespace fa2 {

// c[mt][nt] += A[a_row0 + 16 mt .., 0 .. kK) * B[0 .. kK, b_col0 + 8 nt ..) for the warp's output tile.
// A is stored [rows][k] in ATile at a_base, or [k][rows] when kATransposed; B is stored [cols][k] in BTile,
// or [k][cols] when kBTransposed. a_row0, b_col0 and kNTiles * 8 are multiples of 16.
template <bool kBf16, int kMTiles, int kNTiles, int kK, class ATile, bool kATransposed, class BTile,
          bool kBTransposed>
__device__ __forceinline__ void warp_gemm(float (&c)[kMTiles][kNTiles][4], unsigned a_base, int a_row0,
                                          unsigned b_base, int b_col0, int lane) {
  static_assert(kK % 16 == 0 && kNTiles % 2 == 0, "whole 16 x 16 steps of k and of the output columns");
  // The swizzled fragment addresses are invariant across a kernel's outer loop; hoisted out of it, they
  // would all stay live beside the accumulators (dozens of registers). Laundering the offsets here makes
  // each product recompute them, a few integer instructions per ldmatrix.
  asm volatile("" : "+r"(a_row0), "+r"(b_col0), "+r"(lane));
#pragma unroll
  for (int k16 = 0; k16 < kK / 16; ++k16) {
    // A: one x4 load is a 16 x 16 fragment (rows g and g+8, k columns 2t.. and 2t+8..).
    unsigned a[kMTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
      if constexpr (kATransposed)
        ldmatrix_x4_trans(a[mt], ATile::fragment_address(a_base, k16 * 16, a_row0 + mt * 16,
                                                         (lane / 16) * 8 + lane % 8, ((lane / 8) % 2) * 8));
      else
        ldmatrix_x4(a[mt], ATile::fragment_address(a_base, a_row0 + mt * 16, k16 * 16, lane % 16, (lane / 16) * 8));
    }
    // B: one x4 load covers two 8-column tiles at this k step: b[0], b[1] for the first, b[2], b[3] the second.
#pragma unroll
    for (int nt = 0; nt < kNTiles; nt += 2) {
      unsigned b[4];
      if constexpr (kBTransposed)
        ldmatrix_x4_trans(b, BTile::fragment_address(b_base, k16 * 16, b_col0 + nt * 8, lane % 16, (lane / 16) * 8));
      else
        ldmatrix_x4(b, BTile::fragment_address(b_base, b_col0 + nt * 8, k16 * 16, (lane / 16) * 8 + lane % 8,
                                               ((lane / 8) % 2) * 8));
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        mma_m16n8k16<kBf16>(c[mt][nt], a[mt], b[0], b[1]);
        mma_m16n8k16<kBf16>(c[mt][nt + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

}  // namespace fa2
