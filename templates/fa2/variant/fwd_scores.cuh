// The forward's two variant points, shared by its mma.sync and wgmma kernels: which key tiles a query block
// visits (a window skips whole tiles on both sides, not only masks them), and one tile's scores after the
// variant and the mask.
#pragma once

#include "fa2/fwd/fwd_params.h"
#include "fa2/fwd/key_range.cuh"
#include "fa2/mask.cuh"
#include "fa2/ptx.cuh"
#include "fa2/variant/variant.cuh"

namespace fa2 {

// Key tiles first .. first + count - 1 of a query block; count 0 when the block sees no key. With mask_mod, the
// block's tile list instead (block_mask.cuh): count entries, each a key tile and whether mask_mod hides some of
// its pairs.
struct KeyTiles {
  int first;
  int count;
  const int* list = nullptr;
};

// The tile list of this block, written by the module's _bmask kernel over the same grid (block_mask.cuh), in
// place of `keys` when the kernel is compiled with mask_mod.
template <class Cfg>
__device__ __forceinline__ KeyTiles with_tile_list(KeyTiles keys, const VariantParams& variant) {
  if constexpr (Cfg::Variant::kMaskMod) {
    const long long index = (static_cast<long long>(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const int* list = variant.user.tile_lists + index * variant.user.list_stride;
    keys.first = 0;
    keys.count = list[0];
    keys.list = list + 1;
  }
  return keys;
}

// The first key of the block's tile `tile` (counted from 0), and whether mask_mod must be applied to it.
template <class Cfg>
__device__ __forceinline__ int key_tile_start(const KeyTiles& keys, int tile) {
  if constexpr (Cfg::Variant::kMaskMod) return (keys.list[tile] >> 1) * Cfg::kBlockN;
  return (keys.first + tile) * Cfg::kBlockN;
}
template <class Cfg>
__device__ __forceinline__ bool key_tile_masked_by_user(const KeyTiles& keys, int tile) {
  if constexpr (Cfg::Variant::kMaskMod) return (keys.list[tile] & 1) != 0;
  return false;
}

template <class Cfg>
__device__ __forceinline__ KeyTiles key_tiles_of_block(int m0, const FwdParams& params,
                                                       const ScoreMod<typename Cfg::Variant>& mod) {
  if constexpr (!Cfg::Variant::kWindow) {
    return {0, key_tiles_for_block<Cfg>(m0, params.seqlen_q, params.seqlen_k)};
  } else {
    // From the tile of the first row's first key to the tile of the last row's last key (causal: right is 0).
    const int first_key = mod.first_key(m0);
    const int end_key = mod.last_key(m0 + Cfg::kBlockM - 1) + 1;
    const int first = first_key > 0 ? first_key / Cfg::kBlockN : 0;
    const int end_clamped = end_key < params.seqlen_k ? end_key : params.seqlen_k;
    const int end = end_clamped > 0 ? (end_clamped + Cfg::kBlockN - 1) / Cfg::kBlockN : 0;
    return {first, end > first ? end - first : 0};
  }
}

// One warp's scores s[mt][j][e] of rows row0 + mt * 16 + lane / 4 + 8 * (e / 2) (row0 = m0 + warp_row0) and keys
// n0 + j * 8 + 2 * (lane % 4) + e % 2 (the mma C layout), unscaled, made ready for the online softmax:
// softcapped and biased by the variant, and -inf where a key is hidden (past the end, after the causal
// diagonal, outside the window, by mask_mod). Masking runs only on tiles that cross one of those boundaries or,
// `user_masked`, that the tile list marks as having a pair mask_mod hides.
template <class Cfg, int kMTiles>
__device__ __forceinline__ void prepare_scores(float (&s)[kMTiles][Cfg::kNTiles][4],
                                               const ScoreMod<typename Cfg::Variant>& mod, int m0, int warp_row0,
                                               int n0, const FwdParams& params, int lane, bool user_masked = false) {
  using V = typename Cfg::Variant;
  // In the order the kernels computed these before variants existed, which keeps their code unchanged.
  const bool tile_crosses_end = n0 + Cfg::kBlockN > params.seqlen_k;
  const bool tile_crosses_diagonal =
      Cfg::kCausal && n0 + Cfg::kBlockN - 1 > m0 + warp_row0 + params.seqlen_k - params.seqlen_q;
  const int row0 = m0 + warp_row0;
  if constexpr (!V::kAny) {
    if (tile_crosses_end || tile_crosses_diagonal)
      mask_scores<Cfg::kCausal>(s, row0, n0, params.seqlen_q, params.seqlen_k, lane);
  } else {
    if constexpr (V::kModifiesScores) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int j = 0; j < Cfg::kNTiles; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            s[mt][j][e] = mod.apply(s[mt][j][e], row0 + mt * 16 + lane / 4 + 8 * (e / 2),
                                    n0 + j * 8 + 2 * (lane % 4) + (e % 2));
    }
    bool crosses_window = false;
    if constexpr (V::kWindow)
      crosses_window = n0 + Cfg::kBlockN - 1 > mod.last_key(row0) || n0 < mod.first_key(row0 + kMTiles * 16 - 1);
    if (tile_crosses_end || tile_crosses_diagonal || crosses_window || user_masked) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int j = 0; j < Cfg::kNTiles; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int row = row0 + mt * 16 + lane / 4 + 8 * (e / 2);
            const int key = n0 + j * 8 + 2 * (lane % 4) + (e % 2);
            bool hidden = key >= params.seqlen_k || (Cfg::kCausal && key > row + params.seqlen_k - params.seqlen_q);
            if constexpr (V::kWindow) hidden = hidden || !mod.in_window(row, key);
            if constexpr (V::kMaskMod) hidden = hidden || (user_masked && !mod.visible(row, key));
            if (hidden) s[mt][j][e] = negative_infinity();
          }
    }
  }
}

}  // namespace fa2
