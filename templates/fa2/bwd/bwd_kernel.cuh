// FlashAttention-2 backward on mma.sync (sm_80 and later), FA2 paper Algorithm 2. One thread block per
// (key block, KV head, batch): K and V of its kBlockN keys stay in shared memory and their dK, dV in
// registers while the block walks every query block of every query head that shares the KV head (so a
// GQA group's dK, dV are summed in registers, with no per-query-head copy). Per step of the walk:
//   S = Q K^T, P = exp2(S * scale_log2 - LSE * log2 e)     (the forward's softmax, recomputed)
//   dP = dO V^T, dS = P * (dP - D)                          (D = rowsum(dO * O), from the preprocess)
//   dV += P^T dO, dK += dS^T Q                              (P, dS through shared memory, transposed)
//   dQ += dS K                                              (into an fp32 accumulator, dq_accumulate.cuh)
// dK is scaled by softmax_scale once at the end, dQ by the convert kernel (bwd_rows.cuh).
#pragma once

#include "fa2/bwd/bwd_config.cuh"
#include "fa2/bwd/bwd_params.h"
#include "fa2/bwd/bwd_rows.cuh"
#include "fa2/bwd/dq_accumulate.cuh"
#include "fa2/bwd/key_block.cuh"
#include "fa2/ptx.cuh"
#include "fa2/smem_tile.cuh"
#include "fa2/variant/variant.cuh"
#include "fa2/warp_gemm.cuh"

namespace fa2 {

// P = exp2(s * scale_log2 - lse_log2) of the warp's S tile on visible (query, key) pairs, 0 elsewhere,
// stored 16-bit into the shared P tile and kept packed in `p` for dS: holding P as pairs of 16-bit values
// instead of floats frees half of S's registers before dP is computed (FA2's tiles spilled otherwise).
// The rounding is the one P gets anyway for dV += P^T dO, and dS is rounded to 16 bits right after.
// With a variant, s is first softcapped and biased (`mod`), and with softcap tanh's derivative goes to
// `tanh_gradient` for dS, packed as fp16 (whatever the dtype: it lies in [0, 1], where fp16 is finer).
template <class Cfg>
__device__ __forceinline__ void store_p(const float (&s)[Cfg::Sdp::kMTiles][Cfg::Sdp::kNTiles][4],
                                        unsigned (&p)[Cfg::Sdp::kMTiles][Cfg::Sdp::kNTiles][2],
                                        unsigned (&tanh_gradient)[Cfg::Sdp::kMTiles][Cfg::Sdp::kNTiles][2],
                                        const float* lse_rows, unsigned smem_p, int m0, int n0, bool needs_mask,
                                        const BwdParams& params, const ScoreMod<typename Cfg::Variant>& mod, int warp,
                                        int lane, bool user_masked = false) {
  using V = typename Cfg::Variant;
  using Sdp = typename Cfg::Sdp;
  using PTile = SmemTile<Cfg::kBlockM, Cfg::kBlockN>;
  constexpr float kLog2e = 1.44269504088896340736f;
  const int row0 = Sdp::row0(warp) + lane / 4;
  const int col0 = Sdp::col0(warp) + 2 * (lane % 4);
#pragma unroll
  for (int mt = 0; mt < Sdp::kMTiles; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + mt * 16 + 8 * h;         // within the query block
      const float lse_log2 = lse_rows[row] * kLog2e;  // +inf for a row that saw no key: P = 0
      const int last_key = KeyBlock<Cfg>::last_key(m0 + row, params);
#pragma unroll
      for (int nt = 0; nt < Sdp::kNTiles; ++nt) {
        const int col = col0 + nt * 8;  // within the key block
        float prob[2], gradient[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float score = s[mt][nt][2 * h + e];
          if constexpr (V::kModifiesScores) score = mod.apply(score, m0 + row, n0 + col + e, gradient[e]);
          prob[e] = exp2_approx(score * params.softmax_scale_log2 - lse_log2);
          bool hidden = n0 + col + e > last_key;
          if constexpr (V::kWindow) hidden = hidden || !mod.in_window(m0 + row, n0 + col + e);
          if constexpr (V::kMaskMod) hidden = hidden || (user_masked && !mod.visible(m0 + row, n0 + col + e));
          if (needs_mask && hidden) {
            prob[e] = 0.f;
            if constexpr (V::kScoreMod) gradient[e] = 0.f;  // score_mod may be inf or NaN where nothing is seen
          }
        }
        p[mt][nt][h] = pack_16bit<Cfg::kBf16>(prob[0], prob[1]);
        // fp16 for tanh's derivative in [0, 1]; bf16 (fp32's range) once score_mod's may be anything.
        if constexpr (V::kScoreGradient)
          tanh_gradient[mt][nt][h] = pack_16bit<V::kScoreMod>(gradient[0], gradient[1]);
        store_shared_32(PTile::address(smem_p, row, col), p[mt][nt][h]);
      }
    }
}

// dS = P * (dP - D) of the warp's tile, stored 16-bit into the shared dS tile; with softcap or score_mod times
// the score's derivative (tanh's: in [0, 1]; score_mod's: the user's), so with softcap alone dS keeps the
// plain kernel's range. The rest of the chain rule through
// cap * tanh(s * softcap_scale), cap * softcap_scale = the call's scale, is dQ's and dK's fp32 factor
// (BwdParams::softmax_scale): folded in here, scale / cap would shrink dS into fp16's subnormals at large caps.
template <class Cfg>
__device__ __forceinline__ void store_ds(const unsigned (&p)[Cfg::Sdp::kMTiles][Cfg::Sdp::kNTiles][2],
                                         const unsigned (&tanh_gradient)[Cfg::Sdp::kMTiles][Cfg::Sdp::kNTiles][2],
                                         const float (&dp)[Cfg::Sdp::kMTiles][Cfg::Sdp::kNTiles][4],
                                         const float* dpsum_rows, unsigned smem_ds, int warp, int lane) {
  using Sdp = typename Cfg::Sdp;
  using PTile = SmemTile<Cfg::kBlockM, Cfg::kBlockN>;
  const int row0 = Sdp::row0(warp) + lane / 4;
  const int col0 = Sdp::col0(warp) + 2 * (lane % 4);
#pragma unroll
  for (int mt = 0; mt < Sdp::kMTiles; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + mt * 16 + 8 * h;
      const float dpsum = dpsum_rows[row];
#pragma unroll
      for (int nt = 0; nt < Sdp::kNTiles; ++nt) {
        float prob[2];
        unpack_16bit<Cfg::kBf16>(p[mt][nt][h], prob[0], prob[1]);
        float ds0 = prob[0] * (dp[mt][nt][2 * h] - dpsum);
        float ds1 = prob[1] * (dp[mt][nt][2 * h + 1] - dpsum);
        if constexpr (Cfg::Variant::kScoreGradient) {
          float gradient[2];
          unpack_16bit<Cfg::Variant::kScoreMod>(tanh_gradient[mt][nt][h], gradient[0], gradient[1]);
          ds0 *= gradient[0];
          ds1 *= gradient[1];
        }
        store_shared_32(PTile::address(smem_ds, row, col0 + nt * 8), pack_16bit<Cfg::kBf16>(ds0, ds1));
      }
    }
}

// `variant`: the values of Cfg::Variant (not read without one).
template <class Cfg>
__device__ __forceinline__ void bwd_kernel(const BwdParams& params, const VariantParams& variant = VariantParams{}) {
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;  // Q and dO of a step
  using KTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;  // K and V of the block
  using PTile = SmemTile<Cfg::kBlockM, Cfg::kBlockN>;   // P and dS of a step
  using Sdp = typename Cfg::Sdp;
  using Dkv = typename Cfg::Dkv;
  using Dq = typename Cfg::Dq;
  constexpr int kStages = Cfg::kStages;
  constexpr int kBlockM = Cfg::kBlockM;

  extern __shared__ __align__(1024) unsigned char smem[];
  const unsigned smem_k = smem_address(smem);
  const unsigned smem_v = smem_k + KTile::kBytes;
  const unsigned smem_q = smem_v + KTile::kBytes;             // kStages Q slots
  const unsigned smem_do = smem_q + kStages * QTile::kBytes;  // kStages dO slots
  const unsigned smem_p = smem_do + kStages * QTile::kBytes;
  const unsigned smem_ds = smem_p + PTile::kBytes;
  const unsigned smem_rows = smem_ds + PTile::kBytes;  // per slot: the step's LSE rows, then its D rows
  const float* const rows = reinterpret_cast<const float*>(smem + (smem_rows - smem_k));

  const KeyBlock<Cfg> block(params, variant);
  const int thread = threadIdx.x, warp = thread / 32, lane = thread % 32;
  auto load = [&](int step, int slot) {
    block.load_step(params, step, smem_q + slot * QTile::kBytes, smem_do + slot * QTile::kBytes,
                    smem_rows + slot * 2 * kBlockM * 4, thread);
  };
  block.load_keys(params, smem_k, smem_v, thread);  // rides in the first group
  pipeline_prologue<kStages>(block.steps, load);

  float dk[Dkv::kMTiles][Dkv::kNTiles][4];
  float dv[Dkv::kMTiles][Dkv::kNTiles][4];
  zero_accumulators(dk);
  zero_accumulators(dv);

  for (int step = 0; step < block.steps; ++step) {
    const int slot = pipeline_advance<kStages, /*async proxy*/ false>(step, block.steps, load);
    const int m0 = block.m0(step);
    const unsigned q = smem_q + slot * QTile::kBytes;
    const unsigned dout = smem_do + slot * QTile::kBytes;
    const float* lse_rows = rows + slot * 2 * kBlockM;
    const ScoreMod<typename Cfg::Variant> mod(variant, block.batch, block.head(step), params.seqlen_q,
                                              params.seqlen_k);

    {  // S, then P into shared memory; dP, then dS into shared memory
      unsigned p[Sdp::kMTiles][Sdp::kNTiles][2];
      unsigned tanh_gradient[Sdp::kMTiles][Sdp::kNTiles][2];  // softcap and score_mod only
      {
        float s[Sdp::kMTiles][Sdp::kNTiles][4];
        zero_accumulators(s);
        warp_gemm<Cfg::kBf16, Sdp::kMTiles, Sdp::kNTiles, Cfg::kHeadDim, QTile, false, KTile, false>(
            s, q, Sdp::row0(warp), smem_k, Sdp::col0(warp), lane);
        const bool user_masked = block.masked_by_user(step);
        store_p<Cfg>(s, p, tanh_gradient, lse_rows, smem_p, m0, block.n0, block.needs_mask(m0, params) || user_masked,
                     params, mod, warp, lane, user_masked);
      }
      float dp[Sdp::kMTiles][Sdp::kNTiles][4];
      zero_accumulators(dp);
      warp_gemm<Cfg::kBf16, Sdp::kMTiles, Sdp::kNTiles, Cfg::kHeadDim, QTile, false, KTile, false>(
          dp, dout, Sdp::row0(warp), smem_v, Sdp::col0(warp), lane);
      store_ds<Cfg>(p, tanh_gradient, dp, lse_rows + kBlockM, smem_ds, warp, lane);
    }
    __syncthreads();  // P and dS of every warp are in shared memory

    warp_gemm<Cfg::kBf16, Dkv::kMTiles, Dkv::kNTiles, kBlockM, PTile, true, QTile, true>(
        dv, smem_p, Dkv::row0(warp), dout, Dkv::col0(warp), lane);
    warp_gemm<Cfg::kBf16, Dkv::kMTiles, Dkv::kNTiles, kBlockM, PTile, true, QTile, true>(
        dk, smem_ds, Dkv::row0(warp), q, Dkv::col0(warp), lane);

    float dq[Dq::kMTiles][Dq::kNTiles][4];
    zero_accumulators(dq);
    warp_gemm<Cfg::kBf16, Dq::kMTiles, Dq::kNTiles, Cfg::kBlockN, PTile, false, KTile, true>(
        dq, smem_ds, Dq::row0(warp), smem_k, Dq::col0(warp), lane);
    accumulate_dq<Cfg::kDeterministic, Dq, Cfg::kHeadDim>(block.dq_rows(params, step), dq, params.seqlen_q - m0,
                                                          block.semaphore(params, step), block.dq_turn(step, params),
                                                          warp, lane);
  }
  cp_async_wait<0>();  // no copy may still be landing when the block exits

  block.template store_gradients<Dkv>(params, dk, dv, warp, lane);
}

}  // namespace fa2
