// The type of a TMA tensor map as a kernel parameter, shared verbatim by the host (C++) and the device
// (NVRTC): CUtensorMap's 128 opaque bytes, aligned to the 64 bytes the driver requires, without <cuda.h>,
// which NVRTC cannot include. The host static_asserts that the sizes agree (runtime/tma_maps.cpp).
#pragma once

namespace fa2 {

struct alignas(64) TmaDescriptor {
  unsigned long long opaque[16];
};

}  // namespace fa2
