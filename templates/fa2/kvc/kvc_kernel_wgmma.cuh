// The KV-cache forward on Hopper's warpgroup MMA (sm_90a), for chunked prefill: blocks of 64 packed rows per
// warpgroup, where the mma.sync kernel's 16-row warps leave the tensor cores half idle. Each warpgroup scores
// its rows against every key of a tile (S = Q K^T, both from swizzled shared tiles) and adds P V with P from
// registers, as the forward's wgmma kernel does; the rows, the cache copies (contiguous or paged), the masks,
// the splits and the epilogue are the KV-cache family's (packed_rows.cuh, kvc_tile_copy.cuh, kvc_epilogue.cuh).
#pragma once

#include "fa2/fragments.cuh"
#include "fa2/fwd/online_softmax.cuh"
#include "fa2/kvc/kvc_config.cuh"
#include "fa2/kvc/kvc_epilogue.cuh"
#include "fa2/kvc/kvc_params.h"
#include "fa2/kvc/kvc_tile_copy.cuh"
#include "fa2/kvc/packed_rows.cuh"
#include "fa2/ptx.cuh"
#include "fa2/smem_tile.cuh"
#include "fa2/wgmma.cuh"
#include "fa2/wgmma_attention.cuh"

namespace fa2 {

template <class Cfg>
__device__ __forceinline__ void kvc_kernel_wgmma(const KvcParams& params) {
  static_assert(Cfg::kKeyWarps == 1 && Cfg::kWarps % 4 == 0, "each warpgroup owns 64 rows and every key of a tile");
  static_assert(Cfg::kHeadDim % 64 == 0, "wgmma tiles are whole 128-byte swizzle pages");
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;
  using KVTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;
  constexpr int kStages = Cfg::kStages;

  // Descriptors address 1024-byte swizzle atoms: round the base up (the host reserves the slack).
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const unsigned smem_raw_address = smem_address(smem_raw);
  const unsigned smem_q = swizzle_atom_aligned(smem_raw_address);
  unsigned char* smem = smem_raw + (smem_q - smem_raw_address);
  const unsigned smem_k = smem_q + QTile::kBytes;             // kStages K slots
  const unsigned smem_v = smem_k + kStages * KVTile::kBytes;  // kStages V slots

  const KvcBlock<Cfg> block(params);
  // A row block past a shorter varlen sequence's rows: nothing to compute or write (the combine skips them).
  if (block.rows_valid <= 0) return;
  const int thread = threadIdx.x;
  const int warp = thread / 32;
  const int lane = thread % 32;
  const int row0 = warp * 16;  // the warp's rows in the block: its warpgroup's 64, then 16 per warp
  // Within every page of Q, the warpgroup's 64 rows start 64 * 128 bytes further per warpgroup.
  const unsigned q_rows = smem_q + (warp / 4) * 64 * 128;

  KvcTileStream<Cfg> kv(block, params, smem_k, smem_v, thread);  // reads the block table, not the cache
  wait_for_prerequisite_grids();  // launched after the append kernel (sm_90): its rows are in the cache now
  kv.start(smem_q);  // Q and the first kStages - 1 tiles in flight

  float o[1][Cfg::kDTiles][4];
  zero_accumulators(o);
  OnlineSoftmax<1> softmax;
  softmax.init();
  const int unmasked_end = block.unmasked_end(params);

  for (int tile = block.tile_begin; tile < block.tile_end; ++tile) {
    const int slot = kv.advance_to</*async proxy*/ true>(tile);

    float s[1][Cfg::kNTiles][4];
    wgmma_fence();
    wgmma_scores<Cfg>(s[0], q_rows, smem_k + slot * KVTile::kBytes);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(s[0]);

    const int col0 = tile * Cfg::kBlockN;
    if (col0 + Cfg::kBlockN > unmasked_end) mask_packed_scores<Cfg>(s, block, row0, col0, lane);
    softmax.update(s, o, params.softmax_scale_log2);  // s holds P now, and O is rescaled

    unsigned p[Cfg::kBlockN / 16][4];
    pack_probabilities<Cfg>(s[0], p);
    fence_registers(o[0]);
    wgmma_fence();
    wgmma_output<Cfg>(o[0], p, smem_v + slot * KVTile::kBytes);
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(o[0]);
  }

  // The combine kernel (split keys) may be launched now: it waits for this grid's partials before reading.
  trigger_dependent_grids();
  cp_async_wait<0>();
  __syncthreads();  // every warpgroup is done with the tiles: their shared memory holds the merge now
  softmax.finalize();
  merge_key_warps<Cfg>(o, softmax, smem, block, params, warp, lane);
}

}  // namespace fa2
