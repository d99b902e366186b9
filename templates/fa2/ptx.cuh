// Thin wrappers over the PTX instructions the FA2 kernels are built from. Each wrapper is one
// instruction; the fragment layouts they produce are the ones of the PTX ISA (mma m16n8k16 section).
#pragma once

namespace fa2 {

// 32-bit shared-state-space address of a generic pointer into shared memory.
__device__ __forceinline__ unsigned smem_address(const void* pointer) {
  unsigned address;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(pointer));
  return address;
}

// 16 bytes global -> shared, bypassing L1. Bytes past `src_bytes` (0 or 16) are zero-filled, which is
// how rows past the end of a sequence become zeros instead of stale shared memory.
__device__ __forceinline__ void cp_async_16(unsigned smem_dst, const void* global_src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_dst), "l"(global_src),
               "r"(src_bytes)
               : "memory");
}

// 4 bytes global -> shared (cp.async has no 4-byte .cg form), zero-filled when `src_bytes` is 0.
__device__ __forceinline__ void cp_async_4(unsigned smem_dst, const void* global_src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_dst), "l"(global_src), "r"(src_bytes)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most `kPending` committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Four 8x8 16-bit matrices; lane i supplies the row address of row i%8 of matrix i/8.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned smem_src) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_src));
}

__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], unsigned smem_src) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_src));
}

// D = A * B + D, A 16x16 (row), B 16x8 (col), fp32 accumulators, 16-bit inputs.
template <bool kBf16>
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  if constexpr (kBf16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats -> two 16-bit values in one register, `lo` in the low half (the lower column index).
template <bool kBf16>
__device__ __forceinline__ unsigned pack_16bit(float lo, float hi) {
  unsigned packed;
  if constexpr (kBf16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(packed) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(packed) : "f"(hi), "f"(lo));
  }
  return packed;
}

// Makes this thread's completed shared-memory writes (cp.async and plain stores alike) visible to the async
// proxy that wgmma and TMA read through (sm_90); each writing thread runs it before the barrier that
// publishes the tile.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

__device__ __forceinline__ void store_shared_32(unsigned smem_dst, unsigned value) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(smem_dst), "r"(value) : "memory");
}

// The two floats of a packed 16-bit pair, `lo` from the low half (the lower column index).
template <bool kBf16>
__device__ __forceinline__ void unpack_16bit(unsigned packed, float& lo, float& hi) {
  if constexpr (kBf16) {
    lo = __uint_as_float(packed << 16);
    hi = __uint_as_float(packed & 0xffff0000u);
  } else {
    asm("{ .reg .f16 l, h; mov.b32 {l, h}, %2; cvt.f32.f16 %0, l; cvt.f32.f16 %1, h; }\n"
        : "=f"(lo), "=f"(hi)
        : "r"(packed));
  }
}

// global[0] += a, global[1] += b without returning the old values; one vector reduction on sm_90.
__device__ __forceinline__ void atomic_add_pair(float* global, float a, float b) {
#if __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(global), "f"(a), "f"(b) : "memory");
#else
  asm volatile("red.global.add.f32 [%0], %1;\n" ::"l"(global), "f"(a) : "memory");
  asm volatile("red.global.add.f32 [%0], %1;\n" ::"l"(global + 1), "f"(b) : "memory");
#endif
}

// Programmatic dependent launch (sm_90): a kernel launched right after this one with the programmatic stream
// serialization attribute may start once every block of this one has triggered (or exited), and waits for
// this grid's completion and memory with wait_for_prerequisite_grids() before it reads what this grid wrote.
// So its launch and block scheduling overlap this grid's tail instead of following it. No-ops before sm_90
// (where the runtime launches without the attribute).
__device__ __forceinline__ void trigger_dependent_grids() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wait_for_prerequisite_grids() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float log2_approx(float x) {
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float negative_infinity() { return __int_as_float(0xff800000u); }
__device__ __forceinline__ float positive_infinity() { return __int_as_float(0x7f800000u); }

}  // namespace fa2
