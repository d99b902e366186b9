// Warpgroup-level MMA (sm_90a): shared-memory descriptors for the swizzled tiles of smem_tile.cuh and
// the fences that order wgmma against ordinary code. The wgmma instructions themselves are in
// wgmma_ops.cuh (generated: every accumulator register is an operand).
#pragma once

#include "fa2/ptx.cuh"
#include "fa2/wgmma_ops.cuh"

namespace fa2 {

// A SmemTile page (64 columns, 128 bytes per row, chunk XOR row % 8) is exactly the 128-byte swizzle
// atom of wgmma when the page starts on a 1024-byte boundary: 8 rows x 128 bytes per atom.
constexpr unsigned kSwizzleAtomBytes = 1024;

// Descriptor of a K-major operand (Q as A, K as B): rows are M/N, 64 columns of K per page. `address`
// points at the first row, plus 32 bytes per k16 step inside the page; 8-row groups are 1024 bytes
// apart (stride byte offset); the leading byte offset is unused by swizzled K-major layouts.
__device__ __forceinline__ unsigned long long kmajor_descriptor(unsigned address) {
  constexpr unsigned long long kSwizzle128 = 1ull << 62;
  return kSwizzle128 | (static_cast<unsigned long long>(kSwizzleAtomBytes >> 4) << 32) | (1ull << 16) |
         static_cast<unsigned long long>((address >> 4) & 0x3FFF);
}

// Descriptor of an N-major B operand (V for O += P V: K = keys are rows, N = head dim along a row).
// 64 N-columns per page, pages `page_bytes` apart (leading byte offset); 8-key groups 1024 bytes apart.
__device__ __forceinline__ unsigned long long nmajor_descriptor(unsigned address, unsigned page_bytes) {
  constexpr unsigned long long kSwizzle128 = 1ull << 62;
  return kSwizzle128 | (static_cast<unsigned long long>(kSwizzleAtomBytes >> 4) << 32) |
         (static_cast<unsigned long long>((page_bytes >> 4) & 0x3FFF) << 16) |
         static_cast<unsigned long long>((address >> 4) & 0x3FFF);
}

// Before a wgmma that reads registers written by ordinary code (accumulators rescaled, P packed).
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }

__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }

// Waits until at most `kPending` committed wgmma groups of this warpgroup are in flight.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// Keeps the compiler from moving reads or writes of an accumulator across a wgmma boundary.
__device__ __forceinline__ void register_fence(float& value) { asm volatile("" : "+f"(value)::"memory"); }

// register_fence on every accumulator of a [rows][cols] fragment array.
template <int kRows, int kCols>
__device__ __forceinline__ void fence_registers(float (&values)[kRows][kCols]) {
#pragma unroll
  for (int i = 0; i < kRows; ++i)
#pragma unroll
    for (int j = 0; j < kCols; ++j) register_fence(values[i][j]);
}

// Descriptors address 1024-byte swizzle atoms: a shared-memory address rounded up to the next atom (kernels
// round their dynamic shared memory's base up, and the host reserves the slack).
__device__ __forceinline__ unsigned swizzle_atom_aligned(unsigned address) {
  return (address + kSwizzleAtomBytes - 1) & ~(kSwizzleAtomBytes - 1);
}

}  // namespace fa2
