// FlashAttention-2 forward of new queries against a KV cache (decode, chunked prefill) on mma.sync, sm_80 and
// later. One block per (packed row block x key split, KV head, batch): the block streams its split's K/V
// tiles through `kStages` shared-memory slots; each warp scores its 16 rows against its slice of every tile
// and keeps its own online softmax; the warps' states are merged in shared memory at the end
// (kvc_epilogue.cuh), into O directly or, when the keys are split over blocks, into a partial that the
// combine kernel (kvc_combine.cuh) merges.
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
#include "fa2/warp_gemm.cuh"

namespace fa2 {

// O += P V over the warp's key slice [key0, key0 + kWarpKeys) of the V tile, P straight from the score
// registers (the C layout of two adjacent 8-column score tiles is the A layout of one 16-wide k step).
template <class Cfg>
__device__ __forceinline__ void accumulate_pv(float (&o)[1][Cfg::kDTiles][4], const float (&p)[1][Cfg::kNTiles][4],
                                              unsigned smem_v, int key0, int lane) {
  using VTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;
#pragma unroll
  for (int kk = 0; kk < Cfg::kWarpKeys / 16; ++kk) {
    unsigned a[4];
    a[0] = pack_16bit<Cfg::kBf16>(p[0][2 * kk][0], p[0][2 * kk][1]);
    a[1] = pack_16bit<Cfg::kBf16>(p[0][2 * kk][2], p[0][2 * kk][3]);
    a[2] = pack_16bit<Cfg::kBf16>(p[0][2 * kk + 1][0], p[0][2 * kk + 1][1]);
    a[3] = pack_16bit<Cfg::kBf16>(p[0][2 * kk + 1][2], p[0][2 * kk + 1][3]);
#pragma unroll
    for (int d16 = 0; d16 < Cfg::kHeadDim / 16; ++d16) {
      unsigned v[4];
      ldmatrix_x4_trans(v, VTile::fragment_address(smem_v, key0 + kk * 16, d16 * 16, lane % 16, (lane / 16) * 8));
      mma_m16n8k16<Cfg::kBf16>(o[0][2 * d16], a, v[0], v[1]);
      mma_m16n8k16<Cfg::kBf16>(o[0][2 * d16 + 1], a, v[2], v[3]);
    }
  }
}

template <class Cfg>
__device__ __forceinline__ void kvc_kernel(const KvcParams& params) {
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;
  using KVTile = SmemTile<Cfg::kBlockN, Cfg::kHeadDim>;
  constexpr int kStages = Cfg::kStages;

  extern __shared__ __align__(1024) unsigned char smem[];
  const unsigned smem_q = smem_address(smem);
  const unsigned smem_k = smem_q + QTile::kBytes;             // kStages K slots
  const unsigned smem_v = smem_k + kStages * KVTile::kBytes;  // kStages V slots

  const KvcBlock<Cfg> block(params);
  // A row block past a shorter varlen sequence's rows: nothing to compute or write (the combine skips them).
  if (block.rows_valid <= 0) return;
  const int thread = threadIdx.x;
  const int warp = thread / 32;
  const int lane = thread % 32;
  const int row0 = (warp % Cfg::kRowWarps) * 16;           // the warp's rows in the block
  const int key0 = (warp / Cfg::kRowWarps) * Cfg::kWarpKeys;  // the warp's keys in each tile

  KvcTileStream<Cfg> kv(block, params, smem_k, smem_v, thread);  // reads the block table, not the cache
  wait_for_prerequisite_grids();  // launched after the append kernel (sm_90): its rows are in the cache now
  kv.start(smem_q);  // Q and the first kStages - 1 tiles in flight

  float o[1][Cfg::kDTiles][4];
  zero_accumulators(o);
  OnlineSoftmax<1> softmax;
  softmax.init();
  const int unmasked_end = block.unmasked_end(params);

  for (int tile = block.tile_begin; tile < block.tile_end; ++tile) {
    const int slot = kv.advance_to</*async proxy*/ false>(tile);

    float s[1][Cfg::kNTiles][4];
    zero_accumulators(s);
    warp_gemm<Cfg::kBf16, 1, Cfg::kNTiles, Cfg::kHeadDim, QTile, false, KVTile, false>(
        s, smem_q, row0, smem_k + slot * KVTile::kBytes, key0, lane);

    const int col0 = tile * Cfg::kBlockN + key0;
    if (col0 + Cfg::kWarpKeys > unmasked_end) mask_packed_scores<Cfg>(s, block, row0, col0, lane);

    softmax.update(s, o, params.softmax_scale_log2);
    accumulate_pv<Cfg>(o, s, smem_v + slot * KVTile::kBytes, key0, lane);
  }

  // The combine kernel (split keys) may be launched now: it waits for this grid's partials before reading.
  trigger_dependent_grids();
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with the tiles: their shared memory holds the merge now
  softmax.finalize();
  merge_key_warps<Cfg>(o, softmax, smem, block, params, warp, lane);
}

}  // namespace fa2
