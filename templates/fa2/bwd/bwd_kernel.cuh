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
#include "fa2/ptx.cuh"
#include "fa2/smem_tile.cuh"
#include "fa2/tile_copy.cuh"
#include "fa2/warp_gemm.cuh"

namespace fa2 {

// The query blocks a key block visits: all of them, or (causal) those from the first whose last row sees
// the block's first key. Rows before n0 - (seqlen_k - seqlen_q) see none of the block's keys.
template <class Cfg>
__device__ __forceinline__ int first_query_block(int n0, int seqlen_q, int seqlen_k) {
  if (!Cfg::kCausal) return 0;
  const int first_row = n0 - (seqlen_k - seqlen_q);
  return first_row > 0 ? first_row / Cfg::kBlockM : 0;
}

// P (16-bit) and dS of the warp's S/dP tile into the shared P and dS tiles, from the raw scores s and
// dP: P = exp2(s * scale_log2 - lse_log2) on visible (query, key) pairs, 0 elsewhere.
template <class Cfg>
__device__ __forceinline__ void store_p_and_ds(const float (&s)[Cfg::Sdp::kMTiles][Cfg::Sdp::kNTiles][4],
                                               const float (&dp)[Cfg::Sdp::kMTiles][Cfg::Sdp::kNTiles][4],
                                               const float* lse_rows, const float* dpsum_rows, unsigned smem_p,
                                               unsigned smem_ds, int m0, int n0, bool needs_mask,
                                               const BwdParams& params, int warp, int lane) {
  using Sdp = typename Cfg::Sdp;
  using PTile = SmemTile<Cfg::kBlockM, Cfg::kBlockN>;
  constexpr float kLog2e = 1.44269504088896340736f;
  const int row0 = Sdp::row0(warp) + lane / 4;
  const int col0 = Sdp::col0(warp) + 2 * (lane % 4);
#pragma unroll
  for (int mt = 0; mt < Sdp::kMTiles; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + mt * 16 + 8 * h;  // within the query block
      const float lse_log2 = lse_rows[row] * kLog2e;  // +inf for a row that saw no key: P = 0
      const float dpsum = dpsum_rows[row];
      const int query = m0 + row;
      // Last key the query sees (causal, bottom-right aligned), capped by the sequence end.
      int last_key = Cfg::kCausal ? query + params.seqlen_k - params.seqlen_q : params.seqlen_k - 1;
      if (last_key > params.seqlen_k - 1) last_key = params.seqlen_k - 1;
      if (query >= params.seqlen_q) last_key = -1;
#pragma unroll
      for (int nt = 0; nt < Sdp::kNTiles; ++nt) {
        const int col = col0 + nt * 8;  // within the key block
        float p[2], ds[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          p[e] = exp2_approx(s[mt][nt][2 * h + e] * params.softmax_scale_log2 - lse_log2);
          if (needs_mask && n0 + col + e > last_key) p[e] = 0.f;
          ds[e] = p[e] * (dp[mt][nt][2 * h + e] - dpsum);
        }
        store_shared_32(PTile::address(smem_p, row, col), pack_16bit<Cfg::kBf16>(p[0], p[1]));
        store_shared_32(PTile::address(smem_ds, row, col), pack_16bit<Cfg::kBf16>(ds[0], ds[1]));
      }
    }
}

// dK (scaled) or dV of the block's keys, 16-bit, straight from the accumulator fragments.
template <class Cfg>
__device__ __forceinline__ void store_key_gradient(unsigned short* rows, long long row_stride,
                                                   const float (&acc)[Cfg::Dkv::kMTiles][Cfg::Dkv::kNTiles][4],
                                                   float scale, int keys_valid, int warp, int lane) {
  using Dkv = typename Cfg::Dkv;
  const int row0 = Dkv::row0(warp) + lane / 4;
  const int col0 = Dkv::col0(warp) + 2 * (lane % 4);
#pragma unroll
  for (int mt = 0; mt < Dkv::kMTiles; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + mt * 16 + 8 * h;
      if (row >= keys_valid) continue;
#pragma unroll
      for (int nt = 0; nt < Dkv::kNTiles; ++nt)
        *reinterpret_cast<unsigned*>(rows + row * row_stride + col0 + nt * 8) =
            pack_16bit<Cfg::kBf16>(acc[mt][nt][2 * h] * scale, acc[mt][nt][2 * h + 1] * scale);
    }
}

template <class Cfg>
__device__ __forceinline__ void bwd_kernel(const BwdParams& params) {
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
  // Per slot: the step's LSE rows, then its D rows.
  float* const rows_smem = reinterpret_cast<float*>(smem + (smem_ds + PTile::kBytes - smem_k));
  const unsigned smem_rows = smem_ds + PTile::kBytes;

  const int n_block = blockIdx.x, head_kv = blockIdx.y, batch = blockIdx.z;
  const int n0 = n_block * Cfg::kBlockN;
  const int keys_valid = params.seqlen_k - n0;
  const int thread = threadIdx.x, warp = thread / 32, lane = thread % 32;
  const int group = params.heads_q / params.heads_kv;

  // The walk: every query block from the first one that sees the block's keys, for each query head of the group.
  const int m_first = first_query_block<Cfg>(n0, params.seqlen_q, params.seqlen_k);
  const int m_blocks = (params.seqlen_q + kBlockM - 1) / kBlockM;
  const int m_count = m_blocks > m_first ? m_blocks - m_first : 0;
  const int steps = group * m_count;
  auto step_head = [&](int step) { return head_kv * group + step / m_count; };
  auto step_m0 = [&](int step) { return (m_first + step % m_count) * kBlockM; };

  auto load_step = [&](int step, int slot) {
    const int head = step_head(step), m0 = step_m0(step);
    const int rows_valid = params.seqlen_q - m0;
    copy_tile_async<kBlockM, Cfg::kHeadDim, Cfg::kThreads>(
        smem_q + slot * QTile::kBytes,
        static_cast<const unsigned short*>(params.q) + batch * params.q_batch_stride + head * params.q_head_stride +
            m0 * params.q_row_stride,
        static_cast<int>(params.q_row_stride), rows_valid, thread);
    copy_tile_async<kBlockM, Cfg::kHeadDim, Cfg::kThreads>(
        smem_do + slot * QTile::kBytes,
        static_cast<const unsigned short*>(params.dout) + batch * params.do_batch_stride +
            head * params.do_head_stride + m0 * params.do_row_stride,
        static_cast<int>(params.do_row_stride), rows_valid, thread);
    const long long row_base = (static_cast<long long>(batch) * params.heads_q + head) * params.seqlen_q + m0;
    for (int r = thread; r < kBlockM; r += Cfg::kThreads) {
      const bool valid = r < rows_valid;  // rows past the end read as 0 and are masked
      const long long offset = row_base + (valid ? r : 0);
      cp_async_4(smem_rows + (slot * 2 * kBlockM + r) * 4, params.lse + offset, valid ? 4 : 0);
      cp_async_4(smem_rows + (slot * 2 * kBlockM + kBlockM + r) * 4, params.dpsum + offset, valid ? 4 : 0);
    }
  };

  // Prologue: K and V ride in the first group with step 0; then steps 1 .. kStages - 2, one group each.
  copy_tile_async<Cfg::kBlockN, Cfg::kHeadDim, Cfg::kThreads>(
      smem_k,
      static_cast<const unsigned short*>(params.k) + batch * params.k_batch_stride + head_kv * params.k_head_stride +
          n0 * params.k_row_stride,
      static_cast<int>(params.k_row_stride), keys_valid, thread);
  copy_tile_async<Cfg::kBlockN, Cfg::kHeadDim, Cfg::kThreads>(
      smem_v,
      static_cast<const unsigned short*>(params.v) + batch * params.v_batch_stride + head_kv * params.v_head_stride +
          n0 * params.v_row_stride,
      static_cast<int>(params.v_row_stride), keys_valid, thread);
  if constexpr (kStages == 1) {
    cp_async_commit();
  } else {
#pragma unroll
    for (int stage = 0; stage < kStages - 1; ++stage) {
      if (stage < steps) load_step(stage, stage);
      cp_async_commit();
    }
  }

  float dk[Dkv::kMTiles][Dkv::kNTiles][4];
  float dv[Dkv::kMTiles][Dkv::kNTiles][4];
  zero_accumulators(dk);
  zero_accumulators(dv);

  for (int step = 0; step < steps; ++step) {
    int slot = 0;
    if constexpr (kStages == 1) {
      __syncthreads();  // every warp is done with the previous step's Q, dO, P and dS
      load_step(step, 0);
      cp_async_commit();
      cp_async_wait<0>();
      __syncthreads();
    } else {
      cp_async_wait<kStages - 2>();  // this step's tiles (and K, V) have landed for this thread...
      __syncthreads();               // ...and for every thread; the previous step's slot is free again
      if (step + kStages - 1 < steps) load_step(step + kStages - 1, (step + kStages - 1) % kStages);
      cp_async_commit();  // always commit, so the group count per step stays fixed
      slot = step % kStages;
    }
    const int head = step_head(step), m0 = step_m0(step);
    const unsigned q = smem_q + slot * QTile::kBytes;
    const unsigned dout = smem_do + slot * QTile::kBytes;
    const float* lse_rows = rows_smem + slot * 2 * kBlockM;

    {  // S and dP, then P and dS into shared memory
      float s[Sdp::kMTiles][Sdp::kNTiles][4];
      float dp[Sdp::kMTiles][Sdp::kNTiles][4];
      zero_accumulators(s);
      zero_accumulators(dp);
      warp_gemm<Cfg::kBf16, Sdp::kMTiles, Sdp::kNTiles, Cfg::kHeadDim, QTile, false, KTile, false>(
          s, q, Sdp::row0(warp), smem_k, Sdp::col0(warp), lane);
      warp_gemm<Cfg::kBf16, Sdp::kMTiles, Sdp::kNTiles, Cfg::kHeadDim, QTile, false, KTile, false>(
          dp, dout, Sdp::row0(warp), smem_v, Sdp::col0(warp), lane);
      const bool needs_mask = m0 + kBlockM > params.seqlen_q || n0 + Cfg::kBlockN > params.seqlen_k ||
                              (Cfg::kCausal && n0 + Cfg::kBlockN - 1 > m0 + params.seqlen_k - params.seqlen_q);
      store_p_and_ds<Cfg>(s, dp, lse_rows, lse_rows + kBlockM, smem_p, smem_ds, m0, n0, needs_mask, params, warp,
                          lane);
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
    const long long query_row = (static_cast<long long>(batch) * params.heads_q + head) * params.seqlen_q + m0;
    int* semaphore = params.dq_semaphore +
                     (static_cast<long long>(batch) * params.heads_q + head) * params.semaphore_stride + m0 / kBlockM;
    accumulate_dq<Cfg::kDeterministic, Dq, Cfg::kHeadDim>(params.dq_accum + query_row * Cfg::kHeadDim, dq,
                                                          params.seqlen_q - m0, semaphore, n_block, warp, lane);
  }
  cp_async_wait<0>();  // no copy may still be landing when the block exits

  store_key_gradient<Cfg>(static_cast<unsigned short*>(params.dk) + batch * params.dk_batch_stride +
                              head_kv * params.dk_head_stride + n0 * params.dk_row_stride,
                          params.dk_row_stride, dk, params.softmax_scale, keys_valid, warp, lane);
  store_key_gradient<Cfg>(static_cast<unsigned short*>(params.dv) + batch * params.dv_batch_stride +
                              head_kv * params.dv_head_stride + n0 * params.dv_row_stride,
                          params.dv_row_stride, dv, 1.f, keys_valid, warp, lane);
}

}  // namespace fa2
