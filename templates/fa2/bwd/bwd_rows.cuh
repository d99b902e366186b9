// The backward's two row-wise kernels around the main one. Preprocess: D = rowsum(dO * O) per query row
// (the dP correction of dS = P * (dP - D)), and zeroes the fp32 dQ accumulator and the deterministic
// mode's semaphores. Convert: dQ = softmax_scale * accumulator, cast to 16-bit into the caller's layout.
// One warp per row at a time; a lane holds 8 head-dim columns (16 bytes of a 16-bit row).
#pragma once

#include "fa2/bwd/bwd_params.h"
#include "fa2/ptx.cuh"

namespace fa2 {

struct alignas(16) Pack16 {
  unsigned w[4];  // eight 16-bit values
};

template <class Cfg>
__device__ __forceinline__ void bwd_preprocess(const BwdParams& params) {
  constexpr int kChunks = Cfg::kHeadDim / 8;  // 16-byte chunks of a 16-bit row: 4..32, one per lane
  const int head = blockIdx.y, batch = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long long row_base = (static_cast<long long>(batch) * params.heads_q + head) * params.seqlen_q;
  const unsigned short* o = static_cast<const unsigned short*>(params.o) + batch * params.o_batch_stride +
                            head * params.o_head_stride;
  const unsigned short* dout = static_cast<const unsigned short*>(params.dout) + batch * params.do_batch_stride +
                               head * params.do_head_stride;
  for (int r = warp; r < kBwdRowsPerBlock; r += kBwdRowThreads / 32) {
    const int row = blockIdx.x * kBwdRowsPerBlock + r;
    if (row >= params.seqlen_q) break;
    float sum = 0.f;
    if (lane < kChunks) {
      const Pack16 o8 = *reinterpret_cast<const Pack16*>(o + row * params.o_row_stride + lane * 8);
      const Pack16 do8 = *reinterpret_cast<const Pack16*>(dout + row * params.do_row_stride + lane * 8);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float o_lo, o_hi, do_lo, do_hi;
        unpack_16bit<Cfg::kBf16>(o8.w[i], o_lo, o_hi);
        unpack_16bit<Cfg::kBf16>(do8.w[i], do_lo, do_hi);
        sum += o_lo * do_lo + o_hi * do_hi;
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) params.dpsum[row_base + row] = sum;
    float4* accum = reinterpret_cast<float4*>(params.dq_accum + (row_base + row) * Cfg::kHeadDim);
    for (int c = lane; c < Cfg::kHeadDim / 4; c += 32) accum[c] = make_float4(0.f, 0.f, 0.f, 0.f);
  }
  if (Cfg::kDeterministic && blockIdx.x == 0) {
    int* semaphores = params.dq_semaphore + (static_cast<long long>(batch) * params.heads_q + head) *
                                                params.semaphore_stride;
    for (int i = threadIdx.x; i < params.semaphore_stride; i += kBwdRowThreads) semaphores[i] = 0;
  }
}

template <class Cfg>
__device__ __forceinline__ void bwd_convert_dq(const BwdParams& params) {
  constexpr int kChunks = Cfg::kHeadDim / 8;
  const int head = blockIdx.y, batch = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long long row_base = (static_cast<long long>(batch) * params.heads_q + head) * params.seqlen_q;
  unsigned short* dq = static_cast<unsigned short*>(params.dq) + batch * params.dq_batch_stride +
                       head * params.dq_head_stride;
  for (int r = warp; r < kBwdRowsPerBlock; r += kBwdRowThreads / 32) {
    const int row = blockIdx.x * kBwdRowsPerBlock + r;
    if (row >= params.seqlen_q) break;
    if (lane >= kChunks) continue;
    const float4* accum = reinterpret_cast<const float4*>(params.dq_accum + (row_base + row) * Cfg::kHeadDim);
    const float4 lo = accum[2 * lane], hi = accum[2 * lane + 1];
    const float scale = params.softmax_scale;  // dQ = scale * dS K: the scale of S = scale * Q K^T
    Pack16 out;
    out.w[0] = pack_16bit<Cfg::kBf16>(lo.x * scale, lo.y * scale);
    out.w[1] = pack_16bit<Cfg::kBf16>(lo.z * scale, lo.w * scale);
    out.w[2] = pack_16bit<Cfg::kBf16>(hi.x * scale, hi.y * scale);
    out.w[3] = pack_16bit<Cfg::kBf16>(hi.z * scale, hi.w * scale);
    *reinterpret_cast<Pack16*>(dq + row * params.dq_row_stride + lane * 8) = out;
  }
}

}  // namespace fa2
