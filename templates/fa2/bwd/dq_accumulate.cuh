// Adding one key block's dQ contribution into the fp32 accumulator. Every key block of a KV head adds into
// the same query rows, so the adds race: with float atomics the sum's rounding depends on their order,
// which varies from run to run. The deterministic mode orders them instead: a semaphore per (batch, head,
// query block) counts the key blocks that have added, and key block j adds only when it reads its turn. The
// key blocks that touch a query block are always consecutive, a prefix 0..j of them (with the causal mask
// too: a later key is seen by a subset of the rows that see an earlier one) or, with a sliding window, a
// range i..j (KeyBlock::dq_turn counts from i); key blocks are dispatched in increasing order, so every
// block waited for was dispatched earlier and never waits itself on a later one.
#pragma once

#include "fa2/ptx.cuh"

namespace fa2 {

__device__ __forceinline__ int load_acquire(const int* address) {
  int value;
  asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(value) : "l"(address) : "memory");
  return value;
}

__device__ __forceinline__ void add_release(int* address, int value) {
  asm volatile("red.release.gpu.global.add.s32 [%0], %1;\n" ::"l"(address), "r"(value) : "memory");
}

// Adds the warp's dQ fragments (the mma C layout of a Tiling tile) to `rows`, the accumulator rows of the
// step's query block (head_dim floats each); rows at or past `rows_valid` do not exist.
template <class Tiling, int kHeadDim>
__device__ __forceinline__ void add_dq_fragments(float* rows, const float (&dq)[Tiling::kMTiles][Tiling::kNTiles][4],
                                                 int rows_valid, int warp, int lane) {
  const int row0 = Tiling::row0(warp) + lane / 4;
  const int col0 = Tiling::col0(warp) + 2 * (lane % 4);
#pragma unroll
  for (int mt = 0; mt < Tiling::kMTiles; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + mt * 16 + 8 * h;
      if (row >= rows_valid) continue;
#pragma unroll
      for (int nt = 0; nt < Tiling::kNTiles; ++nt)
        atomic_add_pair(rows + row * kHeadDim + col0 + nt * 8, dq[mt][nt][2 * h], dq[mt][nt][2 * h + 1]);
    }
}

// The deterministic mode's turn: wait until the key blocks before `turn` have added into the query block
// whose counter `semaphore` is, then (after this block's adds) pass the turn on. No-ops with atomics.
template <bool kDeterministic>
__device__ __forceinline__ void wait_dq_turn(const int* semaphore, int turn) {
  if constexpr (kDeterministic) {
    if (threadIdx.x == 0)
      while (load_acquire(semaphore) != turn) {
      }
    __syncthreads();
  }
}

template <bool kDeterministic>
__device__ __forceinline__ void pass_dq_turn(int* semaphore) {
  if constexpr (kDeterministic) {
    __threadfence();  // this thread's adds are visible GPU-wide...
    __syncthreads();  // ...for every thread of the block, before the next key block's turn
    if (threadIdx.x == 0) add_release(semaphore, 1);
  }
}

// The whole block's dQ contribution for one query block: in key-block order when kDeterministic.
// `semaphore` is the query block's counter; `turn` the key block's index.
template <bool kDeterministic, class Tiling, int kHeadDim>
__device__ __forceinline__ void accumulate_dq(float* rows, const float (&dq)[Tiling::kMTiles][Tiling::kNTiles][4],
                                              int rows_valid, int* semaphore, int turn, int warp, int lane) {
  wait_dq_turn<kDeterministic>(semaphore, turn);
  add_dq_fragments<Tiling, kHeadDim>(rows, dq, rows_valid, warp, lane);
  pass_dq_turn<kDeterministic>(semaphore);
}

}  // namespace fa2
