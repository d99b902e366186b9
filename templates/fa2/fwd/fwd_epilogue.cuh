// End of the forward: normalize O by the row sums, write the LSE, and store O with 16-byte stores by
// staging each warp's rows through its own part of the (now idle) Q tile in shared memory.
#pragma once

#include "fa2/fwd/block_coordinates.cuh"
#include "fa2/fwd/fwd_params.h"
#include "fa2/fwd/online_softmax.cuh"
#include "fa2/ptx.cuh"
#include "fa2/smem_tile.cuh"

namespace fa2 {

template <class Cfg>
__device__ __forceinline__ void store_output(float (&o)[Cfg::kMTiles][Cfg::kDTiles][4],
                                             const OnlineSoftmax<Cfg::kMTiles>& softmax, unsigned char* smem_q,
                                             unsigned short* o_block, long long o_row_stride, float* lse_row0,
                                             float softmax_scale, int rows_valid, int warp, int lane) {
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kHeadDim>;
  const int warp_row0 = warp * Cfg::kRowsPerWarp;

#pragma unroll
  for (int mt = 0; mt < Cfg::kMTiles; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = warp_row0 + mt * 16 + lane / 4 + 8 * h;
      const float inverse = softmax.inverse_sum(mt, h);
      if (lse_row0 != nullptr && lane % 4 == 0 && row < rows_valid)
        lse_row0[row] = softmax.lse(mt, h, softmax_scale);
#pragma unroll
      for (int d = 0; d < Cfg::kDTiles; ++d) {
        const unsigned packed = pack_16bit<Cfg::kBf16>(o[mt][d][2 * h] * inverse, o[mt][d][2 * h + 1] * inverse);
        const int col = d * 8 + 2 * (lane % 4);
        *reinterpret_cast<unsigned*>(smem_q + 2 * QTile::offset(row, col)) = packed;
      }
    }
  }
  __syncwarp();

  constexpr int kChunksPerRow = Cfg::kHeadDim / 8;
  constexpr int kChunks = Cfg::kRowsPerWarp * kChunksPerRow;
#pragma unroll
  for (int i = 0; i < (kChunks + 31) / 32; ++i) {
    const int chunk = lane + i * 32;
    if (kChunks % 32 == 0 || chunk < kChunks) {
      const int row = warp_row0 + chunk / kChunksPerRow;
      const int col = (chunk % kChunksPerRow) * 8;
      if (row < rows_valid) {
        const uint4 value = *reinterpret_cast<const uint4*>(smem_q + 2 * QTile::offset(row, col));
        *reinterpret_cast<uint4*>(o_block + row * o_row_stride + col) = value;
      }
    }
  }
}

// The last step of both kernels: drain every outstanding (possibly empty) copy before the Q tile is
// reused to stage O, then normalize O and store it with the block's LSE.
template <class Cfg>
__device__ __forceinline__ void finish_block(float (&o)[Cfg::kMTiles][Cfg::kDTiles][4],
                                             OnlineSoftmax<Cfg::kMTiles>& softmax, unsigned char* smem_q,
                                             const BlockCoordinates<Cfg>& block, const FwdParams& params,
                                             int rows_valid, int warp, int lane) {
  cp_async_wait<0>();
  __syncthreads();
  softmax.finalize();

  unsigned short* o_block = block.o_block(params);
  float* lse_block = block.lse_block(params);
  store_output<Cfg>(o, softmax, smem_q, o_block, params.o_row_stride, lse_block, params.softmax_scale, rows_valid,
                    warp, lane);
}

}  // namespace fa2
