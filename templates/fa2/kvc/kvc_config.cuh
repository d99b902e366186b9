// Compile-time shape of one generated KV-cache forward kernel. A block owns kBlockM packed rows of one
// (batch, KV head): every query head of the KV head's group at every new query position, so each K/V tile
// is read once per KV head (GQA packing). Its warps form a kRowWarps x kKeyWarps grid: a warp owns 16 rows
// and 1 / kKeyWarps of the keys of every tile, and the key warps' partial softmax states are merged at the
// end, so a decode step (a handful of rows) still keeps every warp busy.
#pragma once

namespace fa2 {

template <int kHeadDim_, int kBlockM_, int kBlockN_, int kWarps_, int kStages_, bool kCausal_, bool kBf16_>
struct KvcConfig {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kWarps = kWarps_;
  static constexpr int kStages = kStages_;
  static constexpr bool kCausal = kCausal_;
  static constexpr bool kBf16 = kBf16_;

  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRowWarps = kBlockM / 16;
  static constexpr int kKeyWarps = kWarps / kRowWarps;
  static constexpr int kWarpKeys = kBlockN / kKeyWarps;  // keys of each tile one warp scores
  static constexpr int kNTiles = kWarpKeys / 8;          // 8-column score tiles per warp
  static constexpr int kDTiles = kHeadDim / 8;           // 8-column output tiles

  // The merge of the key warps' states: fp32 O rows padded by 4 floats (fewer bank conflicts), then the
  // raw row maxima and the row sums, [kKeyWarps][kBlockM] each.
  static constexpr int kMergeRowFloats = kHeadDim + 4;
  static constexpr int kMergeBytes = kKeyWarps * kBlockM * (kMergeRowFloats + 2) * 4;

  static_assert(kHeadDim % 32 == 0 && kHeadDim <= 256, "head dim must be a multiple of 32 up to 256");
  static_assert(kBlockM % 16 == 0 && kWarps % kRowWarps == 0, "warps must be a multiple of block_m / 16");
  static_assert(kBlockN % kKeyWarps == 0 && kWarpKeys % 16 == 0, "each key warp scores whole 16-key steps");
  static_assert(kStages >= 1, "at least one K/V stage");
};

}  // namespace fa2
