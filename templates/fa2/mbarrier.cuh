// Shared-memory barriers of the asynchronous pipelines (sm_90): an mbarrier completes a phase when its
// expected arrivals have arrived and, for TMA, when the bytes it was told to expect have landed. Waiters name
// the phase by its parity (0, 1, 0, ...), so a waiter may run at most one phase behind the barrier, which
// the full/empty pairing of a stage ring guarantees. Every address is a 32-bit shared-state-space address:
// generic pointers would cost 64-bit registers in the producer, which setmaxnreg leaves very few.
#pragma once

namespace fa2 {

// Before any other thread uses the barrier: the init, then fence_mbarrier_init() and a block-wide barrier.
__device__ __forceinline__ void mbarrier_init(unsigned barrier, unsigned arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(barrier), "r"(arrivals) : "memory");
}

// Makes the initializing thread's mbarrier.init visible to the async proxy (TMA's complete_tx) and, with the
// __syncthreads() that follows, to the other threads.
__device__ __forceinline__ void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// One arrival that also raises the phase's expected transaction count by `bytes` (the TMA loads issued next
// complete them). The producer's way to arm a full barrier before its loads.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(unsigned barrier, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(barrier), "r"(bytes) : "memory");
}

// One arrival (release semantics: this thread's earlier reads of the stage are done before the producer,
// which acquires the phase, overwrites it).
__device__ __forceinline__ void mbarrier_arrive(unsigned barrier) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(barrier) : "memory");
}

// Blocks until the phase of parity `parity` has completed (acquire semantics: what the phase published,
// TMA bytes included, is visible afterwards). try_wait suspends the thread for a while in hardware before
// it reports false, so the loop does not spin hot.
__device__ __forceinline__ void mbarrier_wait(unsigned barrier, unsigned parity) {
  unsigned done;
  do {
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }\n"
        : "=r"(done)
        : "r"(barrier), "r"(parity)
        : "memory");
  } while (done == 0);
}

}  // namespace fa2
