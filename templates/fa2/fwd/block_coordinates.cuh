// Which slice of the problem one thread block of the forward owns, and where that slice lives in global
// memory. Both kernel schemes launch the same grid (query block, head, batch), so they share this one
// definition of the index and pointer arithmetic instead of each keeping a copy that could drift.
#pragma once

#include "fa2/fwd/fwd_params.h"

namespace fa2 {

// Query rows [m0, m0 + kBlockM) of head `head` in batch `batch`. The row count and the pointers are member
// functions rather than fields so that a kernel computes each one into a local where it needs it: ptxas
// allocates registers by instruction order, and computing them all in the constructor (or inline in a
// call's arguments) changes the register count and spills of some configs.
template <class Cfg>
struct BlockCoordinates {
  const int m_block;
  const int head;
  const int batch;
  const int head_kv;  // the K/V head shared by this query head's group (grouped-query attention)
  const int m0;

  __device__ __forceinline__ explicit BlockCoordinates(const FwdParams& params)
      // Heavy causal blocks (late query rows) are scheduled first for a better tail.
      : m_block(Cfg::kCausal ? gridDim.x - 1 - blockIdx.x : blockIdx.x),
        head(blockIdx.y),
        batch(blockIdx.z),
        head_kv(head / (params.heads_q / params.heads_kv)),
        m0(m_block * Cfg::kBlockM) {}

  // Query rows of the block that exist: the last block of a sequence may be partial.
  __device__ __forceinline__ int rows_valid(const FwdParams& params) const {
    return params.seqlen_q - m0 < Cfg::kBlockM ? params.seqlen_q - m0 : Cfg::kBlockM;
  }
  // The block's first query row.
  __device__ __forceinline__ const unsigned short* q_block(const FwdParams& params) const {
    return static_cast<const unsigned short*>(params.q) + batch * params.q_batch_stride +
           head * params.q_head_stride + m0 * params.q_row_stride;
  }
  // Key and value row 0 of the block's K/V head; tiles are offset from here.
  __device__ __forceinline__ const unsigned short* k_head(const FwdParams& params) const {
    return static_cast<const unsigned short*>(params.k) + batch * params.k_batch_stride +
           head_kv * params.k_head_stride;
  }
  __device__ __forceinline__ const unsigned short* v_head(const FwdParams& params) const {
    return static_cast<const unsigned short*>(params.v) + batch * params.v_batch_stride +
           head_kv * params.v_head_stride;
  }
  // The block's first output row, and its first log-sum-exp entry (null when the caller wants none).
  __device__ __forceinline__ unsigned short* o_block(const FwdParams& params) const {
    return static_cast<unsigned short*>(params.o) + batch * params.o_batch_stride + head * params.o_head_stride +
           m0 * params.o_row_stride;
  }
  __device__ __forceinline__ float* lse_block(const FwdParams& params) const {
    return params.lse == nullptr
               ? nullptr
               : params.lse + (static_cast<long long>(batch) * params.heads_q + head) * params.seqlen_q + m0;
  }
};

}  // namespace fa2
