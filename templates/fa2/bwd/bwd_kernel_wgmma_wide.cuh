// FlashAttention-2 backward on wgmma for head dims over 128 (sm_90a). bwd_kernel_wgmma.cuh gives each
// warpgroup 64 keys and the whole head dim, which at d256 would need 256 accumulator registers for dK and
// dV alone. Here the two warpgroups share the block's 64 keys and split the head dim: each computes S^T and
// dP^T for half of the step's queries, writes its P^T and dS^T to shared memory, and after one barrier
// multiplies the whole P^T and dS^T (K-major A from shared memory) into its half of dV, dK and dQ.
#pragma once

#include "fa2/bwd/bwd_config.cuh"
#include "fa2/bwd/bwd_params.h"
#include "fa2/bwd/bwd_rows.cuh"
#include "fa2/bwd/dq_accumulate.cuh"
#include "fa2/bwd/key_block.cuh"
#include "fa2/bwd/wgmma_products.cuh"
#include "fa2/fragments.cuh"
#include "fa2/ptx.cuh"
#include "fa2/smem_tile.cuh"
#include "fa2/wgmma.cuh"

namespace fa2 {

// `variant`: the values of Cfg::Variant (not read without one).
template <class Cfg>
__device__ __forceinline__ void bwd_kernel_wgmma_wide(const BwdParams& params,
                                                     const VariantParams& variant = VariantParams{}) {
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;  // Q and dO of a step
  using KTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;  // K and V of the block
  using PTile = SmemTile<Cfg::kBlockN, Cfg::kBlockM>;   // P^T and dS^T of a step: keys x queries
  using Dkv = typename Cfg::Dkv;
  using Dq = typename Cfg::Dq;
  constexpr int kStages = Cfg::kStages;
  constexpr int kBlockM = Cfg::kBlockM;
  constexpr int kBlockN = Cfg::kBlockN;
  constexpr int kHalfM = Cfg::kHalfM;

  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const unsigned raw = smem_address(smem_raw);
  const unsigned smem_k = swizzle_atom_aligned(raw);
  const unsigned smem_v = smem_k + KTile::kBytes;
  const unsigned smem_q = smem_v + KTile::kBytes;             // kStages Q slots
  const unsigned smem_do = smem_q + kStages * QTile::kBytes;  // kStages dO slots
  const unsigned smem_p = smem_do + kStages * QTile::kBytes;
  const unsigned smem_ds = smem_p + PTile::kBytes;
  const unsigned smem_rows = smem_ds + PTile::kBytes;  // per slot: the step's LSE rows, then its D rows
  const float* const rows = reinterpret_cast<const float*>(smem_raw + (smem_rows - raw));

  const KeyBlock<Cfg> block(params, variant);
  const int thread = threadIdx.x, warp = thread / 32, lane = thread % 32, warpgroup = warp / 4;
  auto load = [&](int step, int slot) {
    block.load_step(params, step, smem_q + slot * QTile::kBytes, smem_do + slot * QTile::kBytes,
                    smem_rows + slot * 2 * kBlockM * 4, thread);
  };
  block.load_keys(params, smem_k, smem_v, thread);  // rides in the first group
  pipeline_prologue<kStages>(block.steps, load);

  const int key_row = Dkv::row0(warp) + lane / 4;  // the thread's first key row; the second is +8
  const int query0 = warpgroup * kHalfM;           // the warpgroup's first query of S^T and dP^T
  // The warpgroup's half of the head dim: 64-column pages of Q, dO (B of dK, dV) and K (B of dQ).
  const unsigned half_pages = warpgroup * (Cfg::kHalfD / 64);

  float dk[1][Cfg::kHalfD / 8][4];
  float dv[1][Cfg::kHalfD / 8][4];
  zero_accumulators(dk);
  zero_accumulators(dv);

  for (int step = 0; step < block.steps; ++step) {
    const int slot = pipeline_advance<kStages, /*async proxy*/ true>(step, block.steps, load);
    const int m0 = block.m0(step);
    const unsigned q = smem_q + slot * QTile::kBytes;
    const unsigned dout = smem_do + slot * QTile::kBytes;
    const float* lse_rows = rows + slot * 2 * kBlockM;
    const ScoreMod<typename Cfg::Variant> mod(variant, block.batch, block.head(step), params.seqlen_q,
                                              params.seqlen_k);
    {
      float s[kHalfM / 8][4], dp[kHalfM / 8][4];
      wgmma_fence();
      wgmma_keys_by_queries<Cfg, kHalfM>(s, smem_k, q + query0 * 128);
      wgmma_keys_by_queries<Cfg, kHalfM>(dp, smem_v, dout + query0 * 128);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(s);
      fence_registers(dp);
      softmax_gradient<Cfg, kHalfM>(s, dp, lse_rows, lse_rows + kBlockM, block.n0 + key_row, m0, query0, params,
                                    mod, lane);
      store_pairs<PTile, Cfg::kBf16, kHalfM>(smem_p, s, key_row, query0, lane);
      store_pairs<PTile, Cfg::kBf16, kHalfM>(smem_ds, dp, key_row, query0, lane);
    }
    fence_proxy_async();  // the plain stores are read by wgmma next...
    __syncthreads();      // ...of both warpgroups
    // dQ = dS K, 64 query rows at a time (one accumulator's worth of registers): dS^T read M-major (queries
    // contiguous, a 64-query page per half), K's half N-major. The first half's products are committed before
    // dV and dK, so its fp32 atomics (the step's longest issue stall) run while the tensor cores work on dV
    // and dK: wgmma groups complete in commit order, and wait<1> lets the last one, dV and dK, go on.
    int* semaphore = block.semaphore(params, step);
#pragma unroll
    for (int half = 0; half < kBlockM / 64; ++half) {
      float dq[1][Dq::kNTiles][4];
      wgmma_fence();
#pragma unroll
      for (int k16 = 0; k16 < kBlockN / 16; ++k16)
        Wgmma<Cfg::kHalfD, Cfg::kBf16>::ss_t(
            dq[0], nmajor_descriptor(smem_ds + half * kBlockN * 128 + k16 * 16 * 128, kBlockN * 128),
            nmajor_descriptor(smem_k + half_pages * kBlockN * 128 + k16 * 16 * 128, kBlockN * 128), k16 > 0);
      wgmma_commit();
      if (half == 0) {
        wgmma_shared_keys_by_head_dim<Cfg, Cfg::kHalfD>(dv[0], smem_p, dout + half_pages * kBlockM * 128);
        wgmma_shared_keys_by_head_dim<Cfg, Cfg::kHalfD>(dk[0], smem_ds, q + half_pages * kBlockM * 128);
        wgmma_commit();
        wgmma_wait<1>();  // this half's dQ is done; dV and dK may still run
        wait_dq_turn<Cfg::kDeterministic>(semaphore, block.dq_turn(step, params));
      } else {
        wgmma_wait<0>();
      }
      fence_registers(dq[0]);
      add_dq_fragments<Dq, Cfg::kHeadDim>(block.dq_rows(params, step) + half * 64 * Cfg::kHeadDim, dq,
                                          params.seqlen_q - m0 - half * 64, warp, lane);
    }
    pass_dq_turn<Cfg::kDeterministic>(semaphore);
    wgmma_wait<0>();  // dV and dK of this step are done: Q, dO, P^T and dS^T may be overwritten (the next
                      // step's barrier orders the warps)
    fence_registers(dk[0]);
    fence_registers(dv[0]);
  }
  cp_async_wait<0>();  // no copy may still be landing when the block exits

  block.template store_gradients<Dkv>(params, dk, dv, warp, lane);
}

}  // namespace fa2
