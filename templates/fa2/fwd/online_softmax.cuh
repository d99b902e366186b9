// Online softmax over the rows a warp owns (FA2 paper, Algorithm 1). Per row: the running max m of the
// raw scores and the running sum l of exp2(s*scale_log2 - m*scale_log2). The sum stays per thread (a
// quarter of the row) until finalize(), which reduces it once across the quad.
#pragma once

#include "fa2/ptx.cuh"

namespace fa2 {

template <int kMTiles>
struct OnlineSoftmax {
  float row_max[kMTiles][2];  // [m tile][row g, row g+8], raw (unscaled) scores
  float row_sum[kMTiles][2];  // this thread's partial sum

  __device__ __forceinline__ void init() {
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        row_max[mt][h] = negative_infinity();
        row_sum[mt][h] = 0.f;
      }
  }

  // Folds one tile of scores into the running statistics, overwrites the scores with
  // P = exp2(s*scale_log2 - m_new*scale_log2), and returns in `correction` the factor
  // exp2((m_old - m_new) * scale_log2) by which the O accumulators must be rescaled.
  template <int kNTiles>
  __device__ __forceinline__ void fold(float (&s)[kMTiles][kNTiles][4], float scale_log2,
                                       float (&correction)[kMTiles][2]) {
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float tile_max = row_max[mt][h];
#pragma unroll
        for (int j = 0; j < kNTiles; ++j) tile_max = fmaxf(tile_max, fmaxf(s[mt][j][2 * h], s[mt][j][2 * h + 1]));
        // The four lanes of a quad hold the same row.
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));

        // A row that has seen no key yet keeps max = -inf; subtracting 0 instead keeps exp2 at 0, not NaN.
        const float max_scaled = tile_max == negative_infinity() ? 0.f : tile_max * scale_log2;
        correction[mt][h] = exp2_approx(row_max[mt][h] * scale_log2 - max_scaled);
        row_max[mt][h] = tile_max;

        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < kNTiles; ++j) {
          s[mt][j][2 * h] = exp2_approx(s[mt][j][2 * h] * scale_log2 - max_scaled);
          s[mt][j][2 * h + 1] = exp2_approx(s[mt][j][2 * h + 1] * scale_log2 - max_scaled);
          sum += s[mt][j][2 * h] + s[mt][j][2 * h + 1];
        }
        row_sum[mt][h] = row_sum[mt][h] * correction[mt][h] + sum;
      }
    }
  }

  template <int kDTiles>
  __device__ __forceinline__ static void rescale(float (&o)[kMTiles][kDTiles][4],
                                                 const float (&correction)[kMTiles][2]) {
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int d = 0; d < kDTiles; ++d)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[mt][d][e] *= correction[mt][e / 2];
  }

  // fold() and rescale() in one step, for kernels whose O is not being accumulated asynchronously.
  template <int kNTiles, int kDTiles>
  __device__ __forceinline__ void update(float (&s)[kMTiles][kNTiles][4], float (&o)[kMTiles][kDTiles][4],
                                         float scale_log2) {
    float correction[kMTiles][2];
    fold(s, scale_log2, correction);
    rescale(o, correction);
  }

  // Reduces the row sums across the quad. Afterwards inverse_sum(mt, h) scales O and lse(mt, h) is the
  // natural-log LSE; a row that saw no key gets inverse 0 (so O = 0) and LSE = +inf, as FlashAttention.
  __device__ __forceinline__ void finalize() {
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float sum = row_sum[mt][h];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        row_sum[mt][h] = sum;
      }
  }

  __device__ __forceinline__ float inverse_sum(int mt, int h) const {
    const float sum = row_sum[mt][h];
    return sum > 0.f ? 1.f / sum : 0.f;
  }

  __device__ __forceinline__ float lse(int mt, int h, float softmax_scale) const {
    const float sum = row_sum[mt][h];
    constexpr float kLn2 = 0.693147180559945309f;
    return sum > 0.f ? row_max[mt][h] * softmax_scale + log2_approx(sum) * kLn2 : positive_infinity();
  }
};

}  // namespace fa2
