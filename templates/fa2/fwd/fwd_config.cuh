// Compile-time shape of one generated forward kernel. The generator instantiates this with the values
// of a host TileConfig; everything else the kernel needs is derived here.
#pragma once

#include "fa2/variant/variant.cuh"

namespace fa2 {

// Variant_: the built-in variants compiled in (ScoreVariant); generated sources name it only when one is on.
template <int kHeadDim_, int kBlockM_, int kBlockN_, int kWarps_, int kStages_, bool kCausal_, bool kBf16_,
          class Variant_ = NoVariant>
struct FwdConfig {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kWarps = kWarps_;
  static constexpr int kStages = kStages_;
  static constexpr bool kCausal = kCausal_;
  static constexpr bool kBf16 = kBf16_;
  using Variant = Variant_;

  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRowsPerWarp = kBlockM / kWarps;
  static constexpr int kMTiles = kRowsPerWarp / 16;  // 16-row mma tiles per warp
  static constexpr int kNTiles = kBlockN / 8;        // 8-column score tiles
  static constexpr int kDTiles = kHeadDim / 8;       // 8-column output tiles

  static_assert(kHeadDim % 32 == 0 && kHeadDim <= 256, "head dim must be a multiple of 32 up to 256");
  static_assert(kBlockN % 16 == 0, "block_n must be a multiple of 16");
  static_assert(kRowsPerWarp % 16 == 0 && kMTiles >= 1, "each warp owns whole 16-row tiles");
  static_assert(kStages >= 1, "at least one K/V stage");
};

}  // namespace fa2
