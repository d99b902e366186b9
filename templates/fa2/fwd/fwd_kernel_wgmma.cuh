// FlashAttention-2 forward on Hopper's warpgroup MMA (sm_90a). Same algorithm, tiles and online softmax as
// fwd_kernel.cuh; what changes is who multiplies: each warpgroup (4 warps, 64 query rows) issues
// wgmma m64nNk16 with Q and K read straight from the swizzled shared tiles (no ldmatrix), and P fed
// from registers against V in shared memory. The accumulators come back in the mma.sync C layout, so
// masking, the online softmax and the epilogue are the ones of the mma.sync kernel, per warp.
//
// kOverlap (scheme wgmma_overlap) software-pipelines each warpgroup as FA3 does: iteration `tile`
// issues S_tile = Q K_tile^T and then O += P_{tile-1} V_{tile-1}, waits for S only, and runs the softmax
// of S_tile on the CUDA cores while the tensor cores are still busy with P V. It holds S and P at once
// (more registers), so neither variant wins everywhere: the tuner measures both.
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
#include "fa2/wgmma.cuh"
#include "fa2/wgmma_attention.cuh"

namespace fa2 {

// `variant`: the values of Cfg::Variant (not read without one).
template <class Cfg, bool kOverlap>
__device__ __forceinline__ void fwd_kernel_wgmma(const FwdParams& params,
                                                 const VariantParams& variant = VariantParams{}) {
  static_assert(Cfg::kRowsPerWarp == 16 && Cfg::kWarps % 4 == 0, "one m64 wgmma row block per warpgroup");
  static_assert(Cfg::kHeadDim % 64 == 0, "wgmma tiles are whole 128-byte swizzle pages");
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;
  using KVTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;
  constexpr int kStages = Cfg::kStages;

  // Descriptors address 1024-byte swizzle atoms: round the base up (the host reserves the slack).
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const unsigned smem_raw_address = smem_address(smem_raw);
  const unsigned smem_q = swizzle_atom_aligned(smem_raw_address);
  unsigned char* smem = smem_raw + (smem_q - smem_raw_address);
  const unsigned smem_k = smem_q + QTile::kBytes;
  const unsigned smem_v = smem_k + kStages * KVTile::kBytes;

  const BlockCoordinates<Cfg> block(params);
  const int thread = threadIdx.x;
  const int warp = thread / 32;
  const int lane = thread % 32;
  const int warp_row0 = warp * 16;
  // Within every page of Q, the warpgroup's 64 rows start 64 * 128 bytes further per warpgroup.
  const unsigned q_rows = smem_q + (warp / 4) * 64 * 128;
  const int rows_valid = block.rows_valid(params);

  const unsigned short* q_block = block.q_block(params);
  const unsigned short* k_head = block.k_head(params);
  const unsigned short* v_head = block.v_head(params);

  // K/V tiles stream through kStages slots each. Copy group g carries K_g and V_{g - kVLag} (Q rides in
  // group 0): with kOverlap, V is consumed one iteration after K, so it is fetched one tile later.
  constexpr int kVLag = kOverlap ? 1 : 0;
  const ScoreMod<typename Cfg::Variant> mod(variant, block.batch, block.head, params.seqlen_q, params.seqlen_k);
  const KeyTiles keys = with_tile_list<Cfg>(key_tiles_of_block<Cfg>(block.m0, params, mod), variant);
  const int key_tiles = keys.count;
  // Groups and tiles count from the block's first key tile, keys.first (or through its mask_mod tile list).
  auto load_group = [&](int group) {
    if (group < key_tiles) {
      const int n0 = key_tile_start<Cfg>(keys, group);
      copy_tile_async<Cfg::kBlockN, Cfg::kHeadDim, Cfg::kThreads>(
          smem_k + (group % kStages) * KVTile::kBytes, k_head + n0 * params.k_row_stride,
          static_cast<int>(params.k_row_stride), params.seqlen_k - n0, thread);
    }
    const int v_tile = group - kVLag;
    if (v_tile >= 0 && v_tile < key_tiles) {
      const int n0 = key_tile_start<Cfg>(keys, v_tile);
      copy_tile_async<Cfg::kBlockN, Cfg::kHeadDim, Cfg::kThreads>(
          smem_v + (v_tile % kStages) * KVTile::kBytes, v_head + n0 * params.v_row_stride,
          static_cast<int>(params.v_row_stride), params.seqlen_k - n0, thread);
    }
  };
  // Makes K_tile (tile < key_tiles) and V_{tile - kVLag} resident for every warpgroup. On return all warps
  // have finished the previous iteration, so the slots of K_{tile-1} and V_{tile-1-kVLag} refill.
  auto advance_to = [&](int tile) {
    if constexpr (kStages == 1) {
      __syncthreads();
      load_group(tile);
      cp_async_commit();
      cp_async_wait<0>();
    } else {
      cp_async_wait<kStages - 2>();
    }
    fence_proxy_async();  // the landed copies are visible to wgmma (the async proxy)...
    __syncthreads();      // ...of every warpgroup
    if constexpr (kStages > 1) {
      load_group(tile + kStages - 1);
      cp_async_commit();  // always commit, so the group count per iteration stays fixed
    }
  };

  copy_tile_async<Cfg::kBlockM, Cfg::kHeadDim, Cfg::kThreads>(smem_q, q_block, static_cast<int>(params.q_row_stride),
                                                              rows_valid, thread);
  if constexpr (kStages == 1) {
    cp_async_commit();
  } else {
#pragma unroll
    for (int group = 0; group < kStages - 1; ++group) {
      load_group(group);
      cp_async_commit();
    }
  }

  float o[1][Cfg::kDTiles][4];
#pragma unroll
  for (int d = 0; d < Cfg::kDTiles; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[0][d][e] = 0.f;
  OnlineSoftmax<1> softmax;
  softmax.init();

  // S_tile, masked and folded into the softmax: afterwards s holds P_tile and `correction` the factor O
  // must be rescaled by before P_tile V_tile is added.
  float s[1][Cfg::kNTiles][4];
  float correction[1][2];
  auto mask_and_fold = [&](int tile) {
    const int n0 = key_tile_start<Cfg>(keys, tile);
    prepare_scores<Cfg>(s, mod, block.m0, warp_row0, n0, params, lane,
                        key_tile_masked_by_user<Cfg>(keys, tile));
    softmax.fold(s, params.softmax_scale_log2, correction);
  };
  // P as 16-bit A fragments, and O rescaled: the inputs of O += P V.
  unsigned p[Cfg::kBlockN / 16][4];
  auto prepare_output = [&] {
    pack_probabilities<Cfg>(s[0], p);
    OnlineSoftmax<1>::rescale(o, correction);
    fence_registers(o[0]);
  };

  if constexpr (!kOverlap) {
    for (int tile = 0; tile < key_tiles; ++tile) {
      advance_to(tile);
      const int slot = tile % kStages;
      wgmma_fence();
      wgmma_scores<Cfg>(s[0], q_rows, smem_k + slot * KVTile::kBytes);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(s[0]);
      mask_and_fold(tile);
      prepare_output();
      wgmma_fence();
      wgmma_output<Cfg>(o[0], p, smem_v + slot * KVTile::kBytes);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(o[0]);
    }
  } else if (key_tiles > 0) {
    advance_to(0);
    wgmma_fence();
    wgmma_scores<Cfg>(s[0], q_rows, smem_k);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(s[0]);
    mask_and_fold(0);

    for (int tile = 1; tile < key_tiles; ++tile) {
      advance_to(tile);
      prepare_output();
      wgmma_fence();
      wgmma_scores<Cfg>(s[0], q_rows, smem_k + (tile % kStages) * KVTile::kBytes);
      wgmma_commit();
      wgmma_output<Cfg>(o[0], p, smem_v + ((tile - 1) % kStages) * KVTile::kBytes);
      wgmma_commit();
      wgmma_wait<1>();  // S_tile is done; P_{tile-1} V_{tile-1} may still run
      fence_registers(s[0]);
      mask_and_fold(tile);
      wgmma_wait<0>();
      fence_registers(o[0]);
    }

    advance_to(key_tiles);
    prepare_output();
    wgmma_fence();
    wgmma_output<Cfg>(o[0], p, smem_v + ((key_tiles - 1) % kStages) * KVTile::kBytes);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(o[0]);
  }

  finish_block<Cfg>(o, softmax, smem, block, params, rows_valid, warp, lane);
}

}  // namespace fa2
