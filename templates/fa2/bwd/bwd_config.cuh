// Compile-time shape of one generated backward module. The generator instantiates this with the values of
// a host TileConfig, including how the warps tile each product (computed once, on the host, in
// codegen/bwd_family.cpp); everything else the kernels need is derived here.
#pragma once

namespace fa2 {

// A GEMM output of kRows x kCols tiled by kWarpsM x (kWarps / kWarpsM) warps, warp w at grid position
// (w / kWarpsN, w % kWarpsN).
template <int kRows, int kCols, int kWarps, int kWarpsM_>
struct WarpTiling {
  static constexpr int kWarpsM = kWarpsM_;
  static constexpr int kWarpsN = kWarps / kWarpsM;
  static constexpr int kTileRows = kRows / kWarpsM;
  static constexpr int kTileCols = kCols / kWarpsN;
  static constexpr int kMTiles = kTileRows / 16;  // 16-row mma tiles per warp
  static constexpr int kNTiles = kTileCols / 8;   // 8-column mma tiles per warp
  static_assert(kWarpsM * kWarpsN == kWarps, "the warp grid covers every warp");
  static_assert(kTileRows % 16 == 0 && kTileCols % 16 == 0, "warp tiles are whole 16 x 16 blocks");

  __device__ static __forceinline__ int row0(int warp) { return (warp / kWarpsN) * kTileRows; }
  __device__ static __forceinline__ int col0(int warp) { return (warp % kWarpsN) * kTileCols; }
};

template <int kHeadDim_, int kBlockM_, int kBlockN_, int kWarps_, int kStages_, bool kCausal_, bool kBf16_,
          bool kDeterministic_, int kSdpWarpsM, int kDkvWarpsM, int kDqWarpsM>
struct BwdConfig {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;  // query rows per step
  static constexpr int kBlockN = kBlockN_;  // keys per thread block
  static constexpr int kWarps = kWarps_;
  static constexpr int kStages = kStages_;  // Q/dO steps resident in shared memory
  static constexpr bool kCausal = kCausal_;
  static constexpr bool kBf16 = kBf16_;
  static constexpr bool kDeterministic = kDeterministic_;
  static constexpr int kThreads = kWarps * 32;

  using Sdp = WarpTiling<kBlockM, kBlockN, kWarps, kSdpWarpsM>;   // S = Q K^T, dP = dO V^T
  using Dkv = WarpTiling<kBlockN, kHeadDim, kWarps, kDkvWarpsM>;  // dV += P^T dO, dK += dS^T Q
  using Dq = WarpTiling<kBlockM, kHeadDim, kWarps, kDqWarpsM>;    // dQ = dS K

  static_assert(kHeadDim % 32 == 0 && kHeadDim <= 256, "head dim must be a multiple of 32 up to 256");
  static_assert(kBlockN % 32 == 0, "P and dS rows are whole 32-column shared-memory pages");
  static_assert(kStages >= 1, "at least one Q/dO stage");
};

}  // namespace fa2
