// Moving registers between the warpgroups of a warp-specialized block (sm_90a). A block starts with the
// register count ptxas gave the kernel for every thread; a producer warpgroup that only issues TMA gives most
// of its registers back to the block's pool and the consumer warpgroups take them. Every warp of a warpgroup
// must execute the same instruction. ptxas allocates the code after each instruction within its count, and
// drops both (warning C7507/C7508 in the ptxas log) when it cannot: the compile tests check the log for that.
#pragma once

namespace fa2 {

template <int kRegisters>
__device__ __forceinline__ void warpgroup_release_registers() {
  static_assert(kRegisters >= 24 && kRegisters <= 256 && kRegisters % 8 == 0, "setmaxnreg takes 24..256, step 8");
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}

// Blocks until the pool holds enough registers (the producer's release supplies them).
template <int kRegisters>
__device__ __forceinline__ void warpgroup_claim_registers() {
  static_assert(kRegisters >= 24 && kRegisters <= 256 && kRegisters % 8 == 0, "setmaxnreg takes 24..256, step 8");
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}

}  // namespace fa2
