// The combine step of split-KV: one warp per (batch, query head, query row) merges the splits' normalized
// partial O by their LSEs, exactly: LSE = log(sum_s exp(LSE_s)), O = sum_s exp(LSE_s - LSE) O_s. Splits that
// saw no key (LSE_s = -inf) weigh 0; a row that saw none at all gets O = 0 and LSE = +inf, as the forward.
#pragma once

#include "fa2/kvc/kvc_params.h"
#include "fa2/ptx.cuh"

namespace fa2 {

template <int kHeadDim, bool kBf16>
__device__ __forceinline__ void kvc_combine_kernel(const KvcParams& params) {
  constexpr int kPerLane = (kKvcMaxSplits + 31) / 32;  // LSEs each lane holds
  // Each lane owns column pairs lane, lane + 32, ...: aligned 8-byte reads and 4-byte writes at any head dim.
  constexpr int kPairs = kHeadDim / 2;
  constexpr int kPairsPerLane = (kPairs + 31) / 32;
  const int lane = threadIdx.x % 32;
  const long long rows = static_cast<long long>(params.batch) * params.heads_q * params.seqlen_q;
  const long long row = static_cast<long long>(blockIdx.x) * kKvcCombineWarps + threadIdx.x / 32;
  if (row >= rows) return;
  const int splits = params.num_splits;
  const int query = static_cast<int>(row % params.seqlen_q);
  const int head = static_cast<int>((row / params.seqlen_q) % params.heads_q);
  const int batch = static_cast<int>(row / (static_cast<long long>(params.seqlen_q) * params.heads_q));
  // Varlen: rows past a shorter sequence's end exist only in the partials' padded layout.
  const int q_start = params.cu_seqlens_q != nullptr ? params.cu_seqlens_q[batch] : -1;
  if (q_start >= 0 && query >= params.cu_seqlens_q[batch + 1] - q_start) return;

  // Launched programmatically after the attention kernel (sm_90): its partials are complete only from here.
  wait_for_prerequisite_grids();

  // The splits' partial O rows, kBatch splits per round, loaded before any is summed: the combine is bound by
  // L2 latency, not bandwidth (one warp reads 4 * kHeadDim bytes per split). The first round is issued before
  // the LSEs are read so that both reads overlap; kBatch splits (64 registers of values per lane) cover the
  // split counts decode uses in one round (16 at d128), where four per round cost a decode step at batch 1
  // four L2 round trips (the 5.3 us combine of bench/NOTES.md).
  constexpr int kBatch = 32 / kPairsPerLane > 1 ? 32 / kPairsPerLane : 1;
  const float* o_row = params.o_partial + row * kHeadDim;
  float2 value[kBatch][kPairsPerLane];
  auto load_round = [&](int s0) {
#pragma unroll
    for (int b = 0; b < kBatch; ++b)
#pragma unroll
      for (int i = 0; i < kPairsPerLane; ++i) {
        const int pair = lane + 32 * i;
        const bool present = s0 + b < splits && (kPairs % 32 == 0 || pair < kPairs);
        value[b][i] = present ? *reinterpret_cast<const float2*>(
                                    o_row + static_cast<long long>(s0 + b) * rows * kHeadDim + 2 * pair)
                              : make_float2(0.f, 0.f);
      }
  };
  load_round(0);

  float lse[kPerLane];
  float lse_max = negative_infinity();
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int s = lane + 32 * i;
    lse[i] = s < splits ? params.lse_partial[s * rows + row] : negative_infinity();
    lse_max = fmaxf(lse_max, lse[i]);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) lse_max = fmaxf(lse_max, __shfl_xor_sync(0xffffffffu, lse_max, offset));

  constexpr float kLog2e = 1.4426950408889634f;
  constexpr float kLn2 = 0.693147180559945309f;
  const float max_scaled = lse_max == negative_infinity() ? 0.f : lse_max * kLog2e;
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    lse[i] = exp2_approx(lse[i] * kLog2e - max_scaled);  // from here on, the split's unnormalized weight
    sum += lse[i];
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  const float inverse = sum > 0.f ? 1.f / sum : 0.f;

  // The normalized weights go through shared memory, one row of kKvcMaxSplits per warp, so the loop over the
  // splits reads each one as a broadcast.
  __shared__ float weights[kKvcCombineWarps][kKvcMaxSplits];
  float* warp_weights = weights[threadIdx.x / 32];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i)
    if (lane + 32 * i < splits) warp_weights[lane + 32 * i] = lse[i] * inverse;
  __syncwarp();

  float2 out[kPairsPerLane];
#pragma unroll
  for (int i = 0; i < kPairsPerLane; ++i) out[i] = make_float2(0.f, 0.f);
  for (int s0 = 0; s0 < splits; s0 += kBatch) {
    if (s0 > 0) load_round(s0);
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      // A split that saw no key (or past the last) weighs 0 and is skipped: its partial O is not summed even
      // as 0 * value, so nothing it holds can turn the sum into NaN.
      const float weight = s0 + b < splits ? warp_weights[s0 + b] : 0.f;
      if (weight == 0.f) continue;
#pragma unroll
      for (int i = 0; i < kPairsPerLane; ++i) {
        out[i].x += weight * value[b][i].x;
        out[i].y += weight * value[b][i].y;
      }
    }
  }

  const long long sequence = q_start >= 0 ? static_cast<long long>(q_start) * params.o_row_stride
                                          : batch * params.o_batch_stride;
  unsigned short* o = static_cast<unsigned short*>(params.o) + sequence + head * params.o_head_stride +
                      query * params.o_row_stride;
#pragma unroll
  for (int i = 0; i < kPairsPerLane; ++i) {
    const int pair = lane + 32 * i;
    if (kPairs % 32 == 0 || pair < kPairs)
      *reinterpret_cast<unsigned*>(o + 2 * pair) = pack_16bit<kBf16>(out[i].x, out[i].y);
  }
  if (lane == 0 && params.lse != nullptr)
    params.lse[q_start >= 0 ? static_cast<long long>(head) * params.total_q + q_start + query : row] =
        sum > 0.f ? (max_scaled + log2_approx(sum)) * kLn2 : positive_infinity();
}

}  // namespace fa2
