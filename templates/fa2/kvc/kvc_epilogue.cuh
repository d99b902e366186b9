// End of the KV-cache forward: the key warps of each 16-row slice hold partial softmax states over disjoint
// keys. Each writes its unnormalized O, raw row max and row sum to shared memory; then the block merges them
// (weights exp2((m_warp - m) * scale_log2)) and writes, per packed row, either O and the LSE (one split) or
// the split's normalized fp32 O and natural-log LSE for the combine kernel.
#pragma once

#include "fa2/fwd/online_softmax.cuh"
#include "fa2/kvc/kvc_params.h"
#include "fa2/kvc/packed_rows.cuh"
#include "fa2/ptx.cuh"

namespace fa2 {

template <class Cfg>
__device__ __forceinline__ void merge_key_warps(const float (&o)[1][Cfg::kDTiles][4], const OnlineSoftmax<1>& softmax,
                                                unsigned char* smem, const KvcBlock<Cfg>& block,
                                                const KvcParams& params, int warp, int lane) {
  constexpr int kRowFloats = Cfg::kMergeRowFloats;
  float* merged_o = reinterpret_cast<float*>(smem);                     // [kKeyWarps][kBlockM][kRowFloats]
  float* merged_max = merged_o + Cfg::kKeyWarps * Cfg::kBlockM * kRowFloats;  // [kKeyWarps][kBlockM]
  float* merged_sum = merged_max + Cfg::kKeyWarps * Cfg::kBlockM;            // [kKeyWarps][kBlockM]

  const int key_warp = warp / Cfg::kRowWarps;
  const int row0 = (warp % Cfg::kRowWarps) * 16;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + lane / 4 + 8 * h;
    float* o_row = merged_o + (key_warp * Cfg::kBlockM + row) * kRowFloats;
#pragma unroll
    for (int d = 0; d < Cfg::kDTiles; ++d)
      *reinterpret_cast<float2*>(o_row + d * 8 + 2 * (lane % 4)) = make_float2(o[0][d][2 * h], o[0][d][2 * h + 1]);
    if (lane % 4 == 0) {
      merged_max[key_warp * Cfg::kBlockM + row] = softmax.row_max[0][h];
      merged_sum[key_warp * Cfg::kBlockM + row] = softmax.row_sum[0][h];
    }
  }
  __syncthreads();

  const bool split = params.num_splits > 1;
  const float scale_log2 = params.softmax_scale_log2;
  constexpr int kChunksPerRow = Cfg::kHeadDim / 8;
  for (int item = threadIdx.x; item < Cfg::kBlockM * kChunksPerRow; item += Cfg::kThreads) {
    const int row = item / kChunksPerRow;
    const int col = (item % kChunksPerRow) * 8;
    if (row >= block.rows_valid) break;  // items run row by row: the rest are past the block's rows

    float row_max = negative_infinity();
#pragma unroll
    for (int w = 0; w < Cfg::kKeyWarps; ++w) row_max = fmaxf(row_max, merged_max[w * Cfg::kBlockM + row]);
    // A row that saw no key (max -inf) gets weights 0, so O = 0 and the sum 0, never NaN.
    const float max_scaled = row_max == negative_infinity() ? 0.f : row_max * scale_log2;
    float weight[Cfg::kKeyWarps];
    float row_sum = 0.f;
#pragma unroll
    for (int w = 0; w < Cfg::kKeyWarps; ++w) {
      weight[w] = exp2_approx(merged_max[w * Cfg::kBlockM + row] * scale_log2 - max_scaled);
      row_sum += weight[w] * merged_sum[w * Cfg::kBlockM + row];
    }
    const float inverse = row_sum > 0.f ? 1.f / row_sum : 0.f;
    float out[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) out[e] = 0.f;
#pragma unroll
    for (int w = 0; w < Cfg::kKeyWarps; ++w) {
      const float* o_row = merged_o + (w * Cfg::kBlockM + row) * kRowFloats + col;
      const float4 lo = *reinterpret_cast<const float4*>(o_row);
      const float4 hi = *reinterpret_cast<const float4*>(o_row + 4);
      out[0] += weight[w] * lo.x, out[1] += weight[w] * lo.y, out[2] += weight[w] * lo.z, out[3] += weight[w] * lo.w;
      out[4] += weight[w] * hi.x, out[5] += weight[w] * hi.y, out[6] += weight[w] * hi.z, out[7] += weight[w] * hi.w;
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) out[e] *= inverse;

    constexpr float kLn2 = 0.693147180559945309f;
    const int packed = block.m0 + row;
    const int query = block.query_of(packed);
    const int head = block.head_of(packed);
    if (split) {
      // Partials are laid out [split][batch][heads_q][seqlen_q] over the longest sequence, varlen or not.
      const long long split_row =
          ((static_cast<long long>(block.split) * params.batch + block.batch) * params.heads_q + head) *
              params.seqlen_q + query;
      float* o_partial = params.o_partial + split_row * Cfg::kHeadDim + col;
      *reinterpret_cast<float4*>(o_partial) = make_float4(out[0], out[1], out[2], out[3]);
      *reinterpret_cast<float4*>(o_partial + 4) = make_float4(out[4], out[5], out[6], out[7]);
      if (col == 0)
        params.lse_partial[split_row] =
            row_sum > 0.f ? row_max * params.softmax_scale + log2_approx(row_sum) * kLn2 : negative_infinity();
    } else {
      unsigned short* o_row = static_cast<unsigned short*>(params.o) +
                              block.sequence_offset(params.o_batch_stride, params.o_row_stride) +
                              head * params.o_head_stride + query * params.o_row_stride + col;
      uint4 packed16;
      packed16.x = pack_16bit<Cfg::kBf16>(out[0], out[1]);
      packed16.y = pack_16bit<Cfg::kBf16>(out[2], out[3]);
      packed16.z = pack_16bit<Cfg::kBf16>(out[4], out[5]);
      packed16.w = pack_16bit<Cfg::kBf16>(out[6], out[7]);
      *reinterpret_cast<uint4*>(o_row) = packed16;
      if (col == 0 && params.lse != nullptr)
        params.lse[block.lse_index(head, query, params)] =
            row_sum > 0.f ? row_max * params.softmax_scale + log2_approx(row_sum) * kLn2 : positive_infinity();
    }
  }
}

}  // namespace fa2
