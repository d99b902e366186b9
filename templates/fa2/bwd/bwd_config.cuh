// Compile-time shape of one generated backward module. The generator instantiates this with the values of
// a host TileConfig, including how the warps tile each product (computed once, on the host, in
// codegen/bwd_family.cpp); everything else the kernels need is derived here.
#pragma once

#include "fa2/variant/variant.cuh"

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

// What every backward module's config holds: the host TileConfig's fields as constants (Variant_: the built-in
// variants compiled in, named by generated sources only when one is on).
template <int kHeadDim_, int kBlockM_, int kBlockN_, int kWarps_, int kStages_, bool kCausal_, bool kBf16_,
          bool kDeterministic_, class Variant_>
struct BwdShape {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;  // query rows per step
  static constexpr int kBlockN = kBlockN_;  // keys per thread block
  static constexpr int kWarps = kWarps_;
  static constexpr int kStages = kStages_;  // Q/dO steps resident in shared memory
  static constexpr bool kCausal = kCausal_;
  static constexpr bool kBf16 = kBf16_;
  static constexpr bool kDeterministic = kDeterministic_;
  using Variant = Variant_;
  static constexpr int kThreads = kWarps * 32;
  static_assert(kHeadDim % 32 == 0 && kHeadDim <= 256, "head dim must be a multiple of 32 up to 256");
  static_assert(kStages >= 1, "at least one Q/dO stage");
};

template <int kHeadDim_, int kBlockM_, int kBlockN_, int kWarps_, int kStages_, bool kCausal_, bool kBf16_,
          bool kDeterministic_, int kSdpWarpsM, int kDkvWarpsM, int kDqWarpsM, class Variant_ = NoVariant>
struct BwdConfig
    : BwdShape<kHeadDim_, kBlockM_, kBlockN_, kWarps_, kStages_, kCausal_, kBf16_, kDeterministic_, Variant_> {
  using Sdp = WarpTiling<kBlockM_, kBlockN_, kWarps_, kSdpWarpsM>;   // S = Q K^T, dP = dO V^T
  using Dkv = WarpTiling<kBlockN_, kHeadDim_, kWarps_, kDkvWarpsM>;  // dV += P^T dO, dK += dS^T Q
  using Dq = WarpTiling<kBlockM_, kHeadDim_, kWarps_, kDqWarpsM>;    // dQ = dS K

  static_assert(kBlockN_ % 32 == 0, "P and dS rows are whole 32-column shared-memory pages");
};

// The wgmma scheme (sm_90a): one warpgroup per 64 keys (kBlockN = 64 x warpgroups), so S^T = K Q^T and
// dP^T = V dO^T come out with the warpgroup's keys as rows: P^T and dS^T are then already the register A
// operands of dV += P^T dO and dK += dS^T Q.
template <int kHeadDim_, int kBlockM_, int kBlockN_, int kWarps_, int kStages_, bool kCausal_, bool kBf16_,
          bool kDeterministic_, class Variant_ = NoVariant>
struct BwdWgmmaConfig
    : BwdShape<kHeadDim_, kBlockM_, kBlockN_, kWarps_, kStages_, kCausal_, kBf16_, kDeterministic_, Variant_> {
  static constexpr int kWarpgroups = kWarps_ / 4;

  // dQ = dS K (kBlockM x kHeadDim): a warpgroup takes 64 query rows when kBlockM has one 64-row block per
  // warpgroup, else (kBlockM = 64) a slice of whole 64-column pages of the head dim.
  static constexpr bool kDqSplitsRows = kBlockM_ == 64 * kWarpgroups;
  static constexpr int kDqCols = kDqSplitsRows ? kHeadDim_ : kHeadDim_ / kWarpgroups;

  // The fragments each warp holds, in the mma C layout (16 rows per warp): dK and dV rows are the block's keys.
  struct Dkv {
    static constexpr int kMTiles = 1;
    static constexpr int kNTiles = kHeadDim_ / 8;
    __device__ static __forceinline__ int row0(int warp) { return warp * 16; }
    __device__ static __forceinline__ int col0(int) { return 0; }
  };
  struct Dq {
    static constexpr int kMTiles = 1;
    static constexpr int kNTiles = kDqCols / 8;
    __device__ static __forceinline__ int row0(int warp) { return kDqSplitsRows ? warp * 16 : (warp % 4) * 16; }
    __device__ static __forceinline__ int col0(int warp) { return kDqSplitsRows ? 0 : (warp / 4) * kDqCols; }
  };

  static_assert(kWarps_ % 4 == 0 && kBlockN_ == 64 * kWarpgroups, "one warpgroup per 64 keys");
  static_assert(kHeadDim_ % 64 == 0, "whole 128-byte swizzle pages");
  static_assert(kBlockM_ % 64 == 0, "whole 64-column pages of queries in dS^T");
  static_assert(kDqSplitsRows || (kBlockM_ == 64 && kDqCols % 64 == 0), "dQ splits into whole warpgroup tiles");
};

// The wgmma scheme for head dims over 128 (d256), where dK and dV of 64 keys over the whole head dim would not
// fit one warpgroup's registers: both warpgroups share the block's 64 keys and split the head dim instead.
// Each computes S^T and dP^T for its half of the step's queries, and P^T and dS^T meet in shared memory.
template <int kHeadDim_, int kBlockM_, int kBlockN_, int kWarps_, int kStages_, bool kCausal_, bool kBf16_,
          bool kDeterministic_, class Variant_ = NoVariant>
struct BwdWgmmaWideConfig
    : BwdShape<kHeadDim_, kBlockM_, kBlockN_, kWarps_, kStages_, kCausal_, kBf16_, kDeterministic_, Variant_> {
  static constexpr int kHalfM = kBlockM_ / 2;   // queries of S^T and dP^T per warpgroup
  static constexpr int kHalfD = kHeadDim_ / 2;  // head-dim columns of dK, dV and dQ per warpgroup

  // Each warp's 16 rows: the block's keys (dK, dV) or a 64-row half of the step's queries (dQ, one half
  // at a time), over its warpgroup's half of the head dim.
  struct Dkv {
    static constexpr int kMTiles = 1;
    static constexpr int kNTiles = kHalfD / 8;
    __device__ static __forceinline__ int row0(int warp) { return (warp % 4) * 16; }
    __device__ static __forceinline__ int col0(int warp) { return (warp / 4) * kHalfD; }
  };
  using Dq = Dkv;

  static_assert(kWarps_ == 8 && kBlockN_ == 64, "two warpgroups over 64 keys");
  static_assert(kBlockM_ == 64 || kBlockM_ == 128, "dQ in one or two 64-row halves");
  static_assert(kHalfD % 64 == 0, "each warpgroup takes whole 64-column pages of the head dim");
};

}  // namespace fa2
