// The shared memory of the warp-specialized forward and the protocol of its K/V ring. Each of the `kStages`
// stages holds a K tile and a V tile, each with a full barrier (armed by the producer with the tile's bytes,
// completed by TMA) and an empty barrier (one arrival per consumer thread once its wgmmas have read the
// tile). K and V have barriers of their own so that S = Q K^T starts before V has landed and K's stage
// refills while P V still reads V.
#pragma once

#include "fa2/mbarrier.cuh"

namespace fa2 {

template <class Cfg>
struct TmaWsSmem {
  unsigned q;         // the Q tile, 1024-byte aligned; later each consumer warp stages its O rows here
  unsigned k;         // kStages K tiles
  unsigned v;         // kStages V tiles
  unsigned barriers;  // Q full, then per stage: K full, V full, K empty, V empty

  __device__ __forceinline__ explicit TmaWsSmem(unsigned base)
      : q(base), k(base + Cfg::kOffsetK), v(base + Cfg::kOffsetV), barriers(base + Cfg::kOffsetBarriers) {}

  __device__ __forceinline__ unsigned q_full() const { return barriers; }
  __device__ __forceinline__ unsigned k_full(int stage) const { return barriers + 8 * (1 + stage); }
  __device__ __forceinline__ unsigned v_full(int stage) const { return barriers + 8 * (1 + Cfg::kStages + stage); }
  __device__ __forceinline__ unsigned k_empty(int stage) const {
    return barriers + 8 * (1 + 2 * Cfg::kStages + stage);
  }
  __device__ __forceinline__ unsigned v_empty(int stage) const {
    return barriers + 8 * (1 + 3 * Cfg::kStages + stage);
  }
  __device__ __forceinline__ unsigned k_tile(int stage) const { return k + stage * Cfg::kKVBytes; }
  __device__ __forceinline__ unsigned v_tile(int stage) const { return v + stage * Cfg::kKVBytes; }

  // By one thread before the block-wide barrier that precedes any other use. A full barrier completes on
  // the producer's one arrive_expect_tx plus the bytes; an empty one on every consumer thread's arrival.
  __device__ __forceinline__ void init_barriers() const {
    mbarrier_init(q_full(), 1);
#pragma unroll
    for (int stage = 0; stage < Cfg::kStages; ++stage) {
      mbarrier_init(k_full(stage), 1);
      mbarrier_init(v_full(stage), 1);
      mbarrier_init(k_empty(stage), Cfg::kConsumerThreads);
      mbarrier_init(v_empty(stage), Cfg::kConsumerThreads);
    }
    fence_mbarrier_init();
  }
};

// Where key tile `tile` sits in the ring: stage tile % kStages, in round tile / kStages, whose parity is the
// phase its full barriers complete (and the phase of the empty barriers that frees the stage for round + 1).
// Producer and consumers step one of these per tile instead of dividing.
template <int kStages>
struct StageRing {
  int stage = 0;
  unsigned phase = 0;

  __device__ __forceinline__ void advance() {
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1u;
    }
  }
};

}  // namespace fa2
