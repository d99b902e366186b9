// Masking of a warp's score fragments: keys past the end of the sequence, and (causal) keys after the
// query's diagonal. Causal is aligned bottom-right as in FlashAttention >= 2.1: query row r sees key c
// iff c <= r + seqlen_k - seqlen_q.
#pragma once

#include "fa2/ptx.cuh"

namespace fa2 {

// s[mt][j][e] holds (row, col) = (row0 + mt*16 + lane/4 + 8*(e/2), col0 + j*8 + 2*(lane%4) + e%2),
// the mma C layout.
template <bool kCausal, int kMTiles, int kNTiles>
__device__ __forceinline__ void mask_scores(float (&s)[kMTiles][kNTiles][4], int row0, int col0, int seqlen_q,
                                            int seqlen_k, int lane) {
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int j = 0; j < kNTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = row0 + mt * 16 + lane / 4 + 8 * (e / 2);
        const int col = col0 + j * 8 + 2 * (lane % 4) + (e % 2);
        const bool hidden = col >= seqlen_k || (kCausal && col > row + seqlen_k - seqlen_q);
        if (hidden) s[mt][j][e] = negative_infinity();
      }
    }
  }
}

}  // namespace fa2
