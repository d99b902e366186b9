// FlashAttention-2 forward on mma.sync (sm_80 and later), one thread block per (query block, head,
// batch). The block's query rows are split across warps ("sliced Q"): every warp reads the same K/V
// tile from shared memory and owns its rows' softmax statistics and O accumulators, so no cross-warp
// reduction is ever needed. K/V tiles stream through `kStages` shared-memory slots with cp.async.
#pragma once

#include "fa2/fwd/block_coordinates.cuh"
#include "fa2/fwd/fwd_config.cuh"
#include "fa2/fwd/fwd_epilogue.cuh"
#include "fa2/fwd/fwd_params.h"
#include "fa2/fwd/key_range.cuh"
#include "fa2/mask.cuh"
#include "fa2/fwd/online_softmax.cuh"
#include "fa2/ptx.cuh"
#include "fa2/smem_tile.cuh"
#include "fa2/tile_copy.cuh"
#include "fa2/variant/fwd_scores.cuh"

namespace fa2 {

// S = Q K^T for the warp's rows against one K tile.
template <class Cfg>
__device__ __forceinline__ void compute_scores(float (&s)[Cfg::kMTiles][Cfg::kNTiles][4], unsigned smem_q,
                                               unsigned smem_k, int warp_row0, int lane) {
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;
  using KTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;
#pragma unroll
  for (int mt = 0; mt < Cfg::kMTiles; ++mt)
#pragma unroll
    for (int j = 0; j < Cfg::kNTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[mt][j][e] = 0.f;

#pragma unroll
  for (int k32 = 0; k32 < Cfg::kHeadDim / 32; ++k32) {
    // Q as the A operand: .x4 covers 16 rows x 16 columns; two k16 steps per 32 columns.
    unsigned q_frag[Cfg::kMTiles][2][4];
#pragma unroll
    for (int mt = 0; mt < Cfg::kMTiles; ++mt)
#pragma unroll
      for (int kk = 0; kk < 2; ++kk)
        ldmatrix_x4(q_frag[mt][kk], QTile::fragment_address(smem_q, warp_row0 + mt * 16, k32 * 32 + kk * 16,
                                                             lane % 16, (lane / 16) * 8));
#pragma unroll
    for (int j = 0; j < Cfg::kNTiles; ++j) {
      // K as the B operand (no transpose): .x4 over 8 keys x 32 head-dim columns.
      unsigned k_frag[4];
      ldmatrix_x4(k_frag, KTile::fragment_address(smem_k, j * 8, k32 * 32, lane % 8, (lane / 8) * 8));
#pragma unroll
      for (int mt = 0; mt < Cfg::kMTiles; ++mt) {
        mma_m16n8k16<Cfg::kBf16>(s[mt][j], q_frag[mt][0], k_frag[0], k_frag[1]);
        mma_m16n8k16<Cfg::kBf16>(s[mt][j], q_frag[mt][1], k_frag[2], k_frag[3]);
      }
    }
  }
}

// O += P V, with P taken straight from the score registers: the C layout of two adjacent 8-column
// score tiles is the A layout of one 16-wide k step.
template <class Cfg>
__device__ __forceinline__ void accumulate_output(float (&o)[Cfg::kMTiles][Cfg::kDTiles][4],
                                                  const float (&p)[Cfg::kMTiles][Cfg::kNTiles][4], unsigned smem_v,
                                                  int lane) {
  using VTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;
#pragma unroll
  for (int kk = 0; kk < Cfg::kBlockN / 16; ++kk) {
    unsigned p_frag[Cfg::kMTiles][4];
#pragma unroll
    for (int mt = 0; mt < Cfg::kMTiles; ++mt) {
      p_frag[mt][0] = pack_16bit<Cfg::kBf16>(p[mt][2 * kk][0], p[mt][2 * kk][1]);
      p_frag[mt][1] = pack_16bit<Cfg::kBf16>(p[mt][2 * kk][2], p[mt][2 * kk][3]);
      p_frag[mt][2] = pack_16bit<Cfg::kBf16>(p[mt][2 * kk + 1][0], p[mt][2 * kk + 1][1]);
      p_frag[mt][3] = pack_16bit<Cfg::kBf16>(p[mt][2 * kk + 1][2], p[mt][2 * kk + 1][3]);
    }
#pragma unroll
    for (int d16 = 0; d16 < Cfg::kHeadDim / 16; ++d16) {
      // V as the B operand needs the transpose: .x4.trans over 16 keys x 16 head-dim columns.
      unsigned v_frag[4];
      ldmatrix_x4_trans(v_frag,
                        VTile::fragment_address(smem_v, kk * 16, d16 * 16, lane % 16, (lane / 16) * 8));
#pragma unroll
      for (int mt = 0; mt < Cfg::kMTiles; ++mt) {
        mma_m16n8k16<Cfg::kBf16>(o[mt][2 * d16], p_frag[mt], v_frag[0], v_frag[1]);
        mma_m16n8k16<Cfg::kBf16>(o[mt][2 * d16 + 1], p_frag[mt], v_frag[2], v_frag[3]);
      }
    }
  }
}

// `variant`: the values of Cfg::Variant (not read without one).
template <class Cfg>
__device__ __forceinline__ void fwd_kernel(const FwdParams& params, const VariantParams& variant = VariantParams{}) {
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;
  using KVTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;
  constexpr int kStages = Cfg::kStages;

  extern __shared__ __align__(1024) unsigned char smem[];
  const unsigned smem_q = smem_address(smem);
  const unsigned smem_k = smem_q + QTile::kBytes;             // kStages K slots
  const unsigned smem_v = smem_k + kStages * KVTile::kBytes;  // kStages V slots

  const BlockCoordinates<Cfg> block(params);
  const int thread = threadIdx.x;
  const int warp = thread / 32;
  const int lane = thread % 32;
  const int warp_row0 = warp * Cfg::kRowsPerWarp;
  const int rows_valid = block.rows_valid(params);

  const unsigned short* q_block = block.q_block(params);
  const unsigned short* k_head = block.k_head(params);
  const unsigned short* v_head = block.v_head(params);

  const ScoreMod<typename Cfg::Variant> mod(variant, block.batch, block.head, params.seqlen_q, params.seqlen_k);
  const KeyTiles keys = with_tile_list<Cfg>(key_tiles_of_block<Cfg>(block.m0, params, mod), variant);
  const int key_tiles = keys.count;
  // `tile` counts the block's tiles from its first, keys.first (or through its mask_mod tile list).
  auto load_kv_tile = [&](int tile, int slot) {
    const int n0 = key_tile_start<Cfg>(keys, tile);
    const int keys_valid = params.seqlen_k - n0;
    copy_tile_async<Cfg::kBlockN, Cfg::kHeadDim, Cfg::kThreads>(smem_k + slot * KVTile::kBytes,
                                                                k_head + n0 * params.k_row_stride,
                                                                static_cast<int>(params.k_row_stride), keys_valid,
                                                                thread);
    copy_tile_async<Cfg::kBlockN, Cfg::kHeadDim, Cfg::kThreads>(smem_v + slot * KVTile::kBytes,
                                                                v_head + n0 * params.v_row_stride,
                                                                static_cast<int>(params.v_row_stride), keys_valid,
                                                                thread);
  };

  // Prologue: Q, then the first kStages - 1 K/V tiles, one commit group each (Q rides in the first).
  copy_tile_async<Cfg::kBlockM, Cfg::kHeadDim, Cfg::kThreads>(smem_q, q_block, static_cast<int>(params.q_row_stride),
                                                              rows_valid, thread);
  if constexpr (kStages == 1) {
    cp_async_commit();
  } else {
#pragma unroll
    for (int stage = 0; stage < kStages - 1; ++stage) {
      if (stage < key_tiles) load_kv_tile(stage, stage);
      cp_async_commit();
    }
  }

  float o[Cfg::kMTiles][Cfg::kDTiles][4];
#pragma unroll
  for (int mt = 0; mt < Cfg::kMTiles; ++mt)
#pragma unroll
    for (int d = 0; d < Cfg::kDTiles; ++d)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][d][e] = 0.f;
  OnlineSoftmax<Cfg::kMTiles> softmax;
  softmax.init();

  for (int tile = 0; tile < key_tiles; ++tile) {
    int slot = 0;
    if constexpr (kStages == 1) {
      __syncthreads();  // every warp is done with the previous tile
      load_kv_tile(tile, 0);
      cp_async_commit();
      cp_async_wait<0>();
      __syncthreads();
    } else {
      cp_async_wait<kStages - 2>();  // this tile (and Q) have landed for this thread...
      __syncthreads();               // ...and for every thread; the slot of tile - 1 is free again
      const int prefetch = tile + kStages - 1;
      if (prefetch < key_tiles) load_kv_tile(prefetch, prefetch % kStages);
      cp_async_commit();  // always commit, so the group count per iteration stays fixed
      slot = tile % kStages;
    }

    float s[Cfg::kMTiles][Cfg::kNTiles][4];
    compute_scores<Cfg>(s, smem_q, smem_k + slot * KVTile::kBytes, warp_row0, lane);

    const int n0 = key_tile_start<Cfg>(keys, tile);
    prepare_scores<Cfg>(s, mod, block.m0, warp_row0, n0, params, lane,
                        key_tile_masked_by_user<Cfg>(keys, tile));

    softmax.update(s, o, params.softmax_scale_log2);
    accumulate_output<Cfg>(o, s, smem_v + slot * KVTile::kBytes, lane);
  }

  finish_block<Cfg>(o, softmax, smem, block, params, rows_valid, warp, lane);
}

}  // namespace fa2
