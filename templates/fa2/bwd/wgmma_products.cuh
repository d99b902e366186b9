// The pieces of one step of the backward that both wgmma kernels (bwd_kernel_wgmma.cuh, and
// bwd_kernel_wgmma_wide.cuh for head dims over 128) build from: the products with keys as rows, the
// softmax gradient on their accumulators, and accumulators turned into 16-bit A fragments or stored to
// shared memory as the A operand of dV and dK.
#pragma once

#include "fa2/bwd/bwd_params.h"
#include "fa2/bwd/key_block.cuh"
#include "fa2/ptx.cuh"
#include "fa2/smem_tile.cuh"
#include "fa2/variant/variant.cuh"
#include "fa2/wgmma.cuh"

namespace fa2 {

// acc = A B^T over the head dim, both K-major in shared memory: A 64 rows of a key tile (K or V) starting at
// `key_rows`, B kQueries rows of a query tile (Q or dO) starting at `query_rows` (both within the first
// 64-column page of their tiles). Gives S^T or dP^T for those keys and queries.
template <class Cfg, int kQueries>
__device__ __forceinline__ void wgmma_keys_by_queries(float (&acc)[kQueries / 8][4], unsigned key_rows,
                                                      unsigned query_rows) {
#pragma unroll
  for (int k16 = 0; k16 < Cfg::kHeadDim / 16; ++k16) {
    const unsigned page = k16 / 4, step = (k16 % 4) * 32;
    Wgmma<kQueries, Cfg::kBf16>::ss(acc, kmajor_descriptor(key_rows + page * Cfg::kBlockN * 128 + step),
                                    kmajor_descriptor(query_rows + page * Cfg::kBlockM * 128 + step), k16 > 0);
  }
}

// acc += A B: A (the warpgroup's 64 keys x the step's queries) from registers, B a query tile (dO or Q),
// N-major in shared memory. Gives dV or dK.
template <class Cfg>
__device__ __forceinline__ void wgmma_keys_by_head_dim(float (&acc)[Cfg::kHeadDim / 8][4],
                                                       const unsigned (&a)[Cfg::kBlockM / 16][4], unsigned query_tile) {
#pragma unroll
  for (int k16 = 0; k16 < Cfg::kBlockM / 16; ++k16)
    Wgmma<Cfg::kHeadDim, Cfg::kBf16>::rs(acc, a[k16], nmajor_descriptor(query_tile + k16 * 16 * 128, Cfg::kBlockM * 128),
                                         1);
}

// acc += A B over the step's queries, A from shared memory: 64 keys of P^T or dS^T (keys x queries, K-major,
// `key_rows` the address of their first row in the tile's first 64-query page), B `kCols` head-dim columns
// of a query tile (dO or Q), N-major from `query_pages`. Gives dV or dK (or, at d256, half of them).
template <class Cfg, int kCols>
__device__ __forceinline__ void wgmma_shared_keys_by_head_dim(float (&acc)[kCols / 8][4], unsigned key_rows,
                                                              unsigned query_pages) {
#pragma unroll
  for (int k16 = 0; k16 < Cfg::kBlockM / 16; ++k16)
    Wgmma<kCols, Cfg::kBf16>::ss_n(acc, kmajor_descriptor(key_rows + (k16 / 4) * Cfg::kBlockN * 128 + (k16 % 4) * 32),
                                   nmajor_descriptor(query_pages + k16 * 16 * 128, Cfg::kBlockM * 128), 1);
}

// P^T = exp2(S^T * scale_log2 - LSE * log2 e) on visible pairs (0 elsewhere) and dS^T = P^T * (dP^T - D),
// in place, for the thread's two key rows (key0, key0 + 8) and kQueries query columns from col0 of the step.
// With a variant S^T is first softcapped and biased (`mod`), and dS^T takes tanh's derivative with softcap (only
// that: the scale / cap of the chain rule is in dQ's and dK's fp32 factor, so the 16-bit dS^T keeps its range).
template <class Cfg, int kQueries>
__device__ __forceinline__ void softmax_gradient(float (&s)[kQueries / 8][4], float (&dp)[kQueries / 8][4],
                                                 const float* lse_rows, const float* dpsum_rows, int key0, int m0,
                                                 int col0, const BwdParams& params,
                                                 const ScoreMod<typename Cfg::Variant>& mod, int lane) {
  using V = typename Cfg::Variant;
  constexpr float kLog2e = 1.44269504088896340736f;
#pragma unroll
  for (int j = 0; j < kQueries / 8; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int col = col0 + j * 8 + 2 * (lane % 4) + e;  // the query within the step
      const float lse_log2 = lse_rows[col] * kLog2e;  // +inf for a row that saw no key: P = 0
      const float dpsum = dpsum_rows[col];
      // Applied on every step, not only where KeyBlock::needs_mask says a pair is hidden (it is exact either
      // way): the branch made ptxas spill 160-176 bytes in the non-causal d64 128 x 128 kernel (NVRTC 13.0),
      // over the tuner's limit; without it, 68-96.
      int last_key = KeyBlock<Cfg>::last_key(m0 + col, params);
      int first_key = 0;
      if constexpr (V::kWindow) {
        first_key = mod.first_key(m0 + col);
        last_key = last_key < mod.last_key(m0 + col) ? last_key : mod.last_key(m0 + col);
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float score = s[j][2 * h + e], tanh_gradient;
        if constexpr (V::kModifiesScores) score = mod.apply(score, m0 + col, key0 + 8 * h, tanh_gradient);
        float p = exp2_approx(score * params.softmax_scale_log2 - lse_log2);
        bool hidden = key0 + 8 * h > last_key;
        if constexpr (V::kWindow) hidden = hidden || key0 + 8 * h < first_key;
        if constexpr (V::kMaskMod) hidden = hidden || !mod.visible(m0 + col, key0 + 8 * h);
        if (hidden) p = 0.f;
        s[j][2 * h + e] = p;
        float ds = p * (dp[j][2 * h + e] - dpsum);
        if constexpr (V::kScoreMod) {
          if (hidden) tanh_gradient = 0.f;  // score_mod may be inf or NaN where nothing is seen
        }
        if constexpr (V::kScoreGradient) ds *= tanh_gradient;
        dp[j][2 * h + e] = ds;
      }
    }
}

// Accumulators (the mma C layout) as 16-bit A fragments for k16 steps over their columns.
template <bool kBf16, int kCols>
__device__ __forceinline__ void pack_a_fragments(const float (&c)[kCols / 8][4], unsigned (&a)[kCols / 16][4]) {
#pragma unroll
  for (int k16 = 0; k16 < kCols / 16; ++k16) {
    a[k16][0] = pack_16bit<kBf16>(c[2 * k16][0], c[2 * k16][1]);
    a[k16][1] = pack_16bit<kBf16>(c[2 * k16][2], c[2 * k16][3]);
    a[k16][2] = pack_16bit<kBf16>(c[2 * k16 + 1][0], c[2 * k16 + 1][1]);
    a[k16][3] = pack_16bit<kBf16>(c[2 * k16 + 1][2], c[2 * k16 + 1][3]);
  }
}

// Accumulator pairs (rows key_row, key_row + 8; kCols columns from col0) stored 16-bit into `tile`.
template <class Tile, bool kBf16, int kCols>
__device__ __forceinline__ void store_pairs(unsigned tile, const float (&c)[kCols / 8][4], int key_row, int col0,
                                            int lane) {
#pragma unroll
  for (int j = 0; j < kCols / 8; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h)
      store_shared_32(Tile::address(tile, key_row + 8 * h, col0 + j * 8 + 2 * (lane % 4)),
                      pack_16bit<kBf16>(c[j][2 * h], c[j][2 * h + 1]));
}

}  // namespace fa2
