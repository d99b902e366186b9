// FlashAttention-2 backward on Hopper's warpgroup MMA (sm_90a). The same walk as bwd_kernel.cuh (one block
// per key block and KV head over every query block of the GQA group, dK and dV in registers), with the
// products arranged so that no transposed copy is needed in registers: each warpgroup owns 64 keys and
// computes S^T = K Q^T and dP^T = V dO^T, whose accumulators (keys as rows) become, as 16-bit A fragments,
// P^T and dS^T for dV += P^T dO and dK += dS^T Q. dS^T also goes to shared memory, where dQ = dS K reads
// it as an M-major A operand (wgmma transposes 16-bit operands itself).
// Which operands stay resident is the scheme's choice: wgmma keeps P^T and dS^T in registers as A fragments
// (kSharedA false); wgmma_ss (kSharedA true) writes P^T to shared memory too and reads both from there, which
// frees their registers (32 per thread at 64 queries per step, 64 at 128) for a shared-memory round trip.
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
template <class Cfg, bool kSharedA>
__device__ __forceinline__ void bwd_kernel_wgmma(const BwdParams& params,
                                                const VariantParams& variant = VariantParams{}) {
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;   // Q and dO of a step
  using KTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;   // K and V of the block
  using DsTile = SmemTile<Cfg::kBlockN, Cfg::kBlockM>;   // dS^T (and P^T) of a step: keys x queries
  using Dkv = typename Cfg::Dkv;
  using Dq = typename Cfg::Dq;
  constexpr int kStages = Cfg::kStages;
  constexpr int kBlockM = Cfg::kBlockM;
  constexpr int kBlockN = Cfg::kBlockN;

  // Descriptors address 1024-byte swizzle atoms: round the base up (the host reserves the slack).
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const unsigned raw = smem_address(smem_raw);
  const unsigned smem_k = swizzle_atom_aligned(raw);
  const unsigned smem_v = smem_k + KTile::kBytes;
  const unsigned smem_q = smem_v + KTile::kBytes;             // kStages Q slots
  const unsigned smem_do = smem_q + kStages * QTile::kBytes;  // kStages dO slots
  const unsigned smem_ds = smem_do + kStages * QTile::kBytes;
  const unsigned smem_p = smem_ds + DsTile::kBytes;  // kSharedA only
  const unsigned smem_rows = smem_p + (kSharedA ? DsTile::kBytes : 0);  // per slot: the step's LSE, then D rows
  const float* const rows = reinterpret_cast<const float*>(smem_raw + (smem_rows - raw));

  const KeyBlock<Cfg> block(params, variant);
  const int thread = threadIdx.x, warp = thread / 32, lane = thread % 32, warpgroup = warp / 4;
  auto load = [&](int step, int slot) {
    block.load_step(params, step, smem_q + slot * QTile::kBytes, smem_do + slot * QTile::kBytes,
                    smem_rows + slot * 2 * kBlockM * 4, thread);
  };
  block.load_keys(params, smem_k, smem_v, thread);  // rides in the first group
  pipeline_prologue<kStages>(block.steps, load);

  // Within every 64-column page of K and V, the warpgroup's 64 keys start 64 * 128 bytes further per warpgroup.
  const unsigned key_rows = warpgroup * 64 * 128;
  const int key_row = Dkv::row0(warp) + lane / 4;  // the thread's first key row in the block; the second is +8
  // dQ: the warpgroup's page of dS^T (64 queries) and of K (64 head-dim columns), whichever it splits.
  const unsigned dq_a = smem_ds + (Cfg::kDqSplitsRows ? warpgroup * kBlockN * 128 : 0);
  const unsigned dq_b = smem_k + (Cfg::kDqSplitsRows ? 0 : warpgroup * (Cfg::kDqCols / 64) * kBlockN * 128);

  float dk[1][Cfg::kHeadDim / 8][4];
  float dv[1][Cfg::kHeadDim / 8][4];
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

    unsigned p[kBlockM / 16][4], ds[kBlockM / 16][4];  // the A fragments of P^T and dS^T (not kSharedA)
    {
      float s[kBlockM / 8][4], dp[kBlockM / 8][4];
      wgmma_fence();
      wgmma_keys_by_queries<Cfg, kBlockM>(s, smem_k + key_rows, q);
      wgmma_keys_by_queries<Cfg, kBlockM>(dp, smem_v + key_rows, dout);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(s);
      fence_registers(dp);
      softmax_gradient<Cfg, kBlockM>(s, dp, lse_rows, lse_rows + kBlockM, block.n0 + key_row, m0, /*col0*/ 0, params,
                                     mod, lane);
      if constexpr (kSharedA) {
        store_pairs<DsTile, Cfg::kBf16, kBlockM>(smem_p, s, key_row, 0, lane);
        store_pairs<DsTile, Cfg::kBf16, kBlockM>(smem_ds, dp, key_row, 0, lane);
      } else {
        pack_a_fragments<Cfg::kBf16, kBlockM>(s, p);
        pack_a_fragments<Cfg::kBf16, kBlockM>(dp, ds);
      }
    }
    // dS^T into shared memory, where dQ = dS K reads it: fragment reg r holds (row + 8 (r % 2), col + 8 (r / 2)).
    if constexpr (!kSharedA) {
#pragma unroll
      for (int k16 = 0; k16 < kBlockM / 16; ++k16)
#pragma unroll
        for (int r = 0; r < 4; ++r)
          store_shared_32(DsTile::address(smem_ds, key_row + 8 * (r % 2), k16 * 16 + 2 * (lane % 4) + 8 * (r / 2)),
                          ds[k16][r]);
    }
    fence_proxy_async();  // the plain stores are read by wgmma next
    __syncthreads();      // every warpgroup's dS^T is in shared memory

    // dQ's products go first and dV's and dK's after, in a second wgmma group: groups complete in commit
    // order, so wait<1> returns with dQ done while the tensor cores still work on dV and dK, and the dQ
    // atomics (the step's longest issue stall) run under them. Issuing dV and dK before the barrier instead
    // overlapped them with the barrier only: 12-16% slower at d128, 6-8% at d64 (bench/NOTES.md).
    float dq[1][Dq::kNTiles][4];
    wgmma_fence();
#pragma unroll
    for (int k16 = 0; k16 < kBlockN / 16; ++k16)
      Wgmma<Cfg::kDqCols, Cfg::kBf16>::ss_t(dq[0], nmajor_descriptor(dq_a + k16 * 16 * 128, kBlockN * 128),
                                            nmajor_descriptor(dq_b + k16 * 16 * 128, kBlockN * 128), k16 > 0);
    wgmma_commit();
    if constexpr (kSharedA) {
      wgmma_shared_keys_by_head_dim<Cfg, Cfg::kHeadDim>(dv[0], smem_p + key_rows, dout);
      wgmma_shared_keys_by_head_dim<Cfg, Cfg::kHeadDim>(dk[0], smem_ds + key_rows, q);
    } else {
      wgmma_keys_by_head_dim<Cfg>(dv[0], p, dout);
      wgmma_keys_by_head_dim<Cfg>(dk[0], ds, q);
    }
    wgmma_commit();
    wgmma_wait<1>();  // dQ is done; dV and dK may still run
    fence_registers(dq[0]);
    accumulate_dq<Cfg::kDeterministic, Dq, Cfg::kHeadDim>(block.dq_rows(params, step), dq, params.seqlen_q - m0,
                                                          block.semaphore(params, step), block.dq_turn(step, params),
                                                          warp, lane);
    wgmma_wait<0>();  // dV and dK too: Q, dO, P^T and dS^T of this step may be overwritten
    fence_registers(dk[0]);
    fence_registers(dv[0]);
  }
  cp_async_wait<0>();  // no copy may still be landing when the block exits

  block.template store_gradients<Dkv>(params, dk, dv, warp, lane);
}

}  // namespace fa2
