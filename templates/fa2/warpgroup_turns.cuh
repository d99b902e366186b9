// Ping-pong between consumer warpgroups (FA3 paper, arXiv 2407.08608, section 3.1): the warpgroups take turns
// issuing their GEMMs, in a fixed round, so the tensor cores run one warpgroup's S = Q K^T and P V while the
// others do their softmax on the CUDA cores, instead of every warpgroup issuing at once and all of them then
// waiting on the tensor cores together.
//
// A turn is a named barrier per warpgroup (ids 1..kWarpgroups; 0 is __syncthreads()'s) counting 256 threads:
// the 128 of the warpgroup waiting for its turn and the 128 of the warpgroup before it in the round, which
// arrive once they have issued. The last warpgroup hands the first its first turn, and leaves out its last
// hand-over, so every barrier sees as many arrivals as waits and none is left half-complete at exit. Every
// warpgroup must take the same number of turns (the kernel's key tiles are per block, so they do).
#pragma once

namespace fa2 {

template <int kWarpgroups, bool kEnabled>
struct WarpgroupTurns {
  static_assert(!kEnabled || kWarpgroups >= 2, "taking turns needs at least two warpgroups");
  static constexpr int kThreads = 2 * 128;
  int warpgroup;  // this thread's consumer warpgroup, 0-based

  __device__ __forceinline__ explicit WarpgroupTurns(int warpgroup_index) : warpgroup(warpgroup_index) {}

  // Once per block, before the first wait(): the round starts with warpgroup 0.
  __device__ __forceinline__ void start() const {
    if constexpr (kEnabled)
      if (warpgroup == kWarpgroups - 1) arrive(1);
  }
  // Blocks until it is this warpgroup's turn to issue.
  __device__ __forceinline__ void wait() const {
    if constexpr (kEnabled) asm volatile("bar.sync %0, %1;\n" ::"r"(1 + warpgroup), "n"(kThreads) : "memory");
  }
  // After issuing (and committing) this turn's GEMMs: the next warpgroup's turn. `last`: this warpgroup's
  // final turn, after which the last warpgroup hands over nothing.
  __device__ __forceinline__ void pass(bool last) const {
    if constexpr (kEnabled)
      if (!(last && warpgroup == kWarpgroups - 1)) arrive(1 + (warpgroup + 1) % kWarpgroups);
  }

 private:
  __device__ __forceinline__ static void arrive(int barrier) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(barrier), "n"(kThreads) : "memory");
  }
};

}  // namespace fa2
