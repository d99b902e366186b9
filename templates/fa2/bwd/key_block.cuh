// What the backward's two schemes share: one thread block's keys and its walk over the queries, the loads
// of each step's Q, dO, LSE and D, and the cp.async pipeline that keeps kStages steps in flight.
#pragma once

#include "fa2/bwd/bwd_params.h"
#include "fa2/ptx.cuh"
#include "fa2/tile_copy.cuh"
#include "fa2/variant/variant_params.h"

namespace fa2 {

// dK (times `scale`) or dV of the block's keys, 16-bit, straight from a warp's accumulator fragments (the
// mma C layout of a Tiling tile: rows are keys, columns head-dim columns). Written once per block.
template <class Tiling, bool kBf16>
__device__ __forceinline__ void store_key_gradient(unsigned short* rows, long long row_stride,
                                                   const float (&acc)[Tiling::kMTiles][Tiling::kNTiles][4],
                                                   float scale, int keys_valid, int warp, int lane) {
  const int row0 = Tiling::row0(warp) + lane / 4;
  const int col0 = Tiling::col0(warp) + 2 * (lane % 4);
#pragma unroll
  for (int mt = 0; mt < Tiling::kMTiles; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + mt * 16 + 8 * h;
      if (row >= keys_valid) continue;
#pragma unroll
      for (int nt = 0; nt < Tiling::kNTiles; ++nt)
        *reinterpret_cast<unsigned*>(rows + row * row_stride + col0 + nt * 8) =
            pack_16bit<kBf16>(acc[mt][nt][2 * h] * scale, acc[mt][nt][2 * h + 1] * scale);
    }
}

// Keys [n0, n0 + kBlockN) of KV head head_kv in batch `batch`. The walk visits, for each query head of the
// KV head's group, every query block from the first that sees the block's first key (causal: rows
// before n0 - (seqlen_k - seqlen_q) see none of its keys): step s is (head(s), m0(s)).
// The grid is one-dimensional, in groups of params.pairs_per_wave (batch, KV head) pairs, about as many as
// fill the device with all their key blocks (the host picks it from the occupancy). Inside a group the key
// block is the slowest index, so each pair's first key block, the one with the most steps under the causal
// mask, is dispatched before any second one: the longest blocks start first and the tail is short. Across
// groups the pairs are the slower index, so the key blocks that run at once share their pairs' Q, dO and dQ
// rows in L2; with the key block slowest over the whole grid, a wave of d256 blocks at seqlen 1024 touched
// 128 pairs' rows (256 MB), every key block re-read them from DRAM and the kernel was bound by it.
// The deterministic mode relies on the order too: a key block only ever waits for lower key blocks of its
// own (batch, head), all dispatched before it.
// With a sliding window (Cfg::Variant::kWindow) the walk visits only the query blocks with a row whose window
// reaches the block's keys, a range m_first .. m_first + m_count - 1 rather than every block from m_first on.
// With mask_mod (and not deterministic) the walk is the block's tile list instead (block_mask.cuh): only the
// (query head, query block) steps where mask_mod shows some pair, each marked whether it hides some.
template <class Cfg>
struct KeyBlock {
  // The deterministic mode keeps the full walk: every key block must take its turn in each query block's dQ.
  static constexpr bool kTileList = Cfg::Variant::kMaskMod && !Cfg::kDeterministic;
  int n_block, head_kv, batch, n0, keys_valid, group, m_first, m_count, steps;
  int window_left = 0, window_right = 0;  // with a window: VariantParams' bounds
  const int* list = nullptr;              // kTileList: the steps' entries (block_mask.cuh, bwd_tile_entry)

  __device__ __forceinline__ KeyBlock(const BwdParams& params, const VariantParams& variant) {
    const KeyBlockIndex index = key_block_index(static_cast<int>(blockIdx.x), params.batch, params.heads_kv,
                                                (params.seqlen_k + Cfg::kBlockN - 1) / Cfg::kBlockN,
                                                params.pairs_per_wave);
    n_block = index.n_block;
    batch = index.batch;
    head_kv = index.head_kv;
    n0 = n_block * Cfg::kBlockN;
    keys_valid = params.seqlen_k - n0;
    group = params.heads_q / params.heads_kv;
    const int first_row = n0 - (params.seqlen_k - params.seqlen_q);
    m_first = Cfg::kCausal && first_row > 0 ? first_row / Cfg::kBlockM : 0;
    const int m_blocks = (params.seqlen_q + Cfg::kBlockM - 1) / Cfg::kBlockM;
    m_count = m_blocks > m_first ? m_blocks - m_first : 0;
    if constexpr (Cfg::Variant::kWindow) {
      // Rows first_row .. last_row have a key of the block in their window (causal: window_right is 0).
      window_left = variant.window_left;
      window_right = variant.window_right;
      const int offset = params.seqlen_k - params.seqlen_q;
      const int window_first_row = n0 - window_right - offset;
      const int last_row = (keys_valid < Cfg::kBlockN ? params.seqlen_k : n0 + Cfg::kBlockN) - 1 + window_left - offset;
      m_first = window_first_row > 0 ? window_first_row / Cfg::kBlockM : 0;
      const int m_end = last_row < 0 ? 0 : (last_row / Cfg::kBlockM + 1 < m_blocks ? last_row / Cfg::kBlockM + 1 : m_blocks);
      m_count = m_end > m_first ? m_end - m_first : 0;
    }
    steps = group * m_count;
    if constexpr (kTileList) {
      const int* entries = variant.user.tile_lists + static_cast<long long>(blockIdx.x) * variant.user.list_stride;
      steps = entries[0];
      list = entries + 1;
    }
  }

  __device__ __forceinline__ int head(int step) const {
    if constexpr (kTileList) return head_kv * group + ((list[step] >> 1) & 0x7ff);
    return head_kv * group + step / m_count;
  }
  __device__ __forceinline__ int m0(int step) const {
    if constexpr (kTileList) return (list[step] >> 12) * Cfg::kBlockM;
    return (m_first + step % m_count) * Cfg::kBlockM;
  }
  // Whether mask_mod hides some pair of the step's tile: from the list, or (deterministic) always assumed.
  __device__ __forceinline__ bool masked_by_user(int step) const {
    if constexpr (kTileList) return (list[step] & 1) != 0;
    return Cfg::Variant::kMaskMod;
  }

  // Whether a step's (query block, key block) tile has a pair to hide: rows or keys past the end, or
  // (causal) keys past a row's diagonal.
  // (causal) keys past a row's diagonal, or keys outside a row's window.
  __device__ __forceinline__ bool needs_mask(int m0, const BwdParams& params) const {
    bool crosses_window = false;
    if constexpr (Cfg::Variant::kWindow) {
      const int offset = params.seqlen_k - params.seqlen_q;
      crosses_window = n0 + Cfg::kBlockN - 1 > m0 + offset + window_right ||
                       n0 < m0 + Cfg::kBlockM - 1 + offset - window_left;
    }
    return m0 + Cfg::kBlockM > params.seqlen_q || n0 + Cfg::kBlockN > params.seqlen_k ||
           (Cfg::kCausal && n0 + Cfg::kBlockN - 1 > m0 + params.seqlen_k - params.seqlen_q) || crosses_window;
  }

  // The deterministic dQ order's turn of this block at step `step`: its index among the key blocks that add
  // into the step's query block. Those are consecutive key blocks (dq_accumulate.cuh), from 0 without a window;
  // with one, from the block holding the first key the query block's first row sees.
  __device__ __forceinline__ int dq_turn(int step, const BwdParams& params) const {
    if constexpr (Cfg::Variant::kWindow) {
      const int first_key = m0(step) + params.seqlen_k - params.seqlen_q - window_left;
      return n_block - (first_key > 0 ? first_key / Cfg::kBlockN : 0);
    } else {
      return n_block;
    }
  }

  // The last key query row `query` sees (bottom-right aligned when causal, capped by the sequence end);
  // -1 for a row past the end.
  __device__ __forceinline__ static int last_key(int query, const BwdParams& params) {
    if (query >= params.seqlen_q) return -1;
    const int last = Cfg::kCausal ? query + params.seqlen_k - params.seqlen_q : params.seqlen_k - 1;
    return last < params.seqlen_k - 1 ? last : params.seqlen_k - 1;
  }

  // The block's K and V tiles (rows past the end zero-filled), issued as cp.async without a commit.
  __device__ __forceinline__ void load_keys(const BwdParams& params, unsigned smem_k, unsigned smem_v,
                                            int thread) const {
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
  }

  // Step `step`'s Q and dO tiles, and its LSE then D rows (kBlockM floats each at smem_rows), issued as
  // cp.async without a commit. Rows past the end read as 0; the mask hides them.
  __device__ __forceinline__ void load_step(const BwdParams& params, int step, unsigned smem_q, unsigned smem_do,
                                            unsigned smem_rows, int thread) const {
    const int h = head(step), m = m0(step);
    const int rows_valid = params.seqlen_q - m;
    copy_tile_async<Cfg::kBlockM, Cfg::kHeadDim, Cfg::kThreads>(
        smem_q,
        static_cast<const unsigned short*>(params.q) + batch * params.q_batch_stride + h * params.q_head_stride +
            m * params.q_row_stride,
        static_cast<int>(params.q_row_stride), rows_valid, thread);
    copy_tile_async<Cfg::kBlockM, Cfg::kHeadDim, Cfg::kThreads>(
        smem_do,
        static_cast<const unsigned short*>(params.dout) + batch * params.do_batch_stride + h * params.do_head_stride +
            m * params.do_row_stride,
        static_cast<int>(params.do_row_stride), rows_valid, thread);
    const long long row_base = (static_cast<long long>(batch) * params.heads_q + h) * params.seqlen_q + m;
    for (int r = thread; r < Cfg::kBlockM; r += Cfg::kThreads) {
      const bool valid = r < rows_valid;
      const long long offset = row_base + (valid ? r : 0);
      cp_async_4(smem_rows + r * 4, params.lse + offset, valid ? 4 : 0);
      cp_async_4(smem_rows + (Cfg::kBlockM + r) * 4, params.dpsum + offset, valid ? 4 : 0);
    }
  }

  // The query block's dQ semaphore (deterministic mode), and its rows of the fp32 dQ accumulator.
  __device__ __forceinline__ int* semaphore(const BwdParams& params, int step) const {
    return params.dq_semaphore + (static_cast<long long>(batch) * params.heads_q + head(step)) * params.semaphore_stride +
           m0(step) / Cfg::kBlockM;
  }
  __device__ __forceinline__ float* dq_rows(const BwdParams& params, int step) const {
    return params.dq_accum +
           ((static_cast<long long>(batch) * params.heads_q + head(step)) * params.seqlen_q + m0(step)) *
               Cfg::kHeadDim;
  }

  // The block's dK (scaled by softmax_scale, since S = scale Q K^T) and dV, from accumulators laid out by Tiling.
  template <class Tiling>
  __device__ __forceinline__ void store_gradients(const BwdParams& params,
                                                  const float (&dk)[Tiling::kMTiles][Tiling::kNTiles][4],
                                                  const float (&dv)[Tiling::kMTiles][Tiling::kNTiles][4], int warp,
                                                  int lane) const {
    store_key_gradient<Tiling, Cfg::kBf16>(static_cast<unsigned short*>(params.dk) + batch * params.dk_batch_stride +
                                               head_kv * params.dk_head_stride + n0 * params.dk_row_stride,
                                           params.dk_row_stride, dk, params.softmax_scale, keys_valid, warp, lane);
    store_key_gradient<Tiling, Cfg::kBf16>(static_cast<unsigned short*>(params.dv) + batch * params.dv_batch_stride +
                                               head_kv * params.dv_head_stride + n0 * params.dv_row_stride,
                                           params.dv_row_stride, dv, 1.f, keys_valid, warp, lane);
  }
};

// The cp.async pipeline over the walk's steps, kStages steps resident. `load(step, slot)` issues a step's
// copies. The prologue puts steps 0 .. kStages - 2 in flight (group 0 also carries whatever was issued
// before it, such as K and V).
template <int kStages, class Load>
__device__ __forceinline__ void pipeline_prologue(int steps, Load&& load) {
  if constexpr (kStages == 1) {
    cp_async_commit();
  } else {
#pragma unroll
    for (int stage = 0; stage < kStages - 1; ++stage) {
      if (stage < steps) load(stage, stage);
      cp_async_commit();
    }
  }
}

// Makes step `step`'s copies resident for every thread (kAsyncProxy: visible to wgmma too) and returns
// its slot. On return every warp has finished step - 1, so its slot is refilled with step + kStages - 1.
template <int kStages, bool kAsyncProxy, class Load>
__device__ __forceinline__ int pipeline_advance(int step, int steps, Load&& load) {
  if constexpr (kStages == 1) {
    __syncthreads();  // every warp is done with the previous step's tiles
    load(step, 0);
    cp_async_commit();
    cp_async_wait<0>();
  } else {
    cp_async_wait<kStages - 2>();  // this step's tiles have landed for this thread...
  }
  if constexpr (kAsyncProxy) fence_proxy_async();
  __syncthreads();  // ...and for every thread
  if constexpr (kStages == 1) {
    return 0;
  } else {
    if (step + kStages - 1 < steps) load(step + kStages - 1, (step + kStages - 1) % kStages);
    cp_async_commit();  // always commit, so the group count per step stays fixed
    return step % kStages;
  }
}

}  // namespace fa2
