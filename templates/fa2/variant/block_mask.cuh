// mask_mod's block skipping: a helper kernel of each module compiled with mask_mod ("<name>_bmask", launched
// over the main kernel's own grid just before it) writes, per thread block of the main kernel, the list of the
// tiles that block must visit. A tile is visited when mask_mod shows at least one of its pairs that the causal
// mask, the window and the sequence ends leave visible, and marked when mask_mod hides one of those pairs (the
// main kernel then evaluates mask_mod per element; unmarked tiles skip it). Every element of every tile in the
// block's causal/window range is evaluated: corners do not bound an arbitrary predicate.
// List layout (UserModParams::tile_lists, one list per main-kernel block at index * list_stride): a count, then
// the entries, in the order the main kernel walks them.
#pragma once

#include "fa2/bwd/bwd_params.h"
#include "fa2/bwd/key_block.cuh"
#include "fa2/fwd/block_coordinates.cuh"
#include "fa2/fwd/fwd_params.h"
#include "fa2/variant/fwd_scores.cuh"
#include "fa2/variant/variant.cuh"

namespace fa2 {

// 0: mask_mod hides every visible pair of the tile of query rows m0 .. m0 + kRows - 1 and keys n0 .. n0 +
// kKeys - 1 (or the tile has none); 1: it shows some and hides some; 2: it shows every visible pair. Every
// thread of the block takes part and gets the result.
template <class Cfg, int kRows, int kKeys>
__device__ __forceinline__ int tile_state(const ScoreMod<typename Cfg::Variant>& mod, int m0, int n0, int seqlen_q,
                                          int seqlen_k) {
  int shown = 0, hidden = 0;
  for (int element = threadIdx.x; element < kRows * kKeys; element += blockDim.x) {
    const int row = m0 + element / kKeys, key = n0 + element % kKeys;
    bool visible = row < seqlen_q && key < seqlen_k && (!Cfg::kCausal || key <= row + seqlen_k - seqlen_q);
    if constexpr (Cfg::Variant::kWindow) visible = visible && mod.in_window(row, key);
    if (visible) {
      if (mod.visible(row, key))
        shown = 1;
      else
        hidden = 1;
    }
  }
  shown = __syncthreads_or(shown);
  hidden = __syncthreads_or(hidden);
  return shown == 0 ? 0 : hidden != 0 ? 1 : 2;
}

// The forward's lists: per (query block, head, batch) block, the key tiles of its causal/window range that
// mask_mod does not hide entirely, as (key tile << 1) | marked (fwd_scores.cuh: key_tile_start).
template <class Cfg>
__device__ __forceinline__ void fwd_tile_lists(const FwdParams& params, const VariantParams& variant) {
  const BlockCoordinates<Cfg> block(params);
  const ScoreMod<typename Cfg::Variant> mod(variant, block.batch, block.head, params.seqlen_q, params.seqlen_k);
  const KeyTiles keys = key_tiles_of_block<Cfg>(block.m0, params, mod);
  const long long index = (static_cast<long long>(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  // The one writer of the lists, which the kernels read as const.
  int* list = const_cast<int*>(variant.user.tile_lists) + index * variant.user.list_stride;
  int count = 0;
  for (int tile = keys.first; tile < keys.first + keys.count; ++tile) {
    const int state =
        tile_state<Cfg, Cfg::kBlockM, Cfg::kBlockN>(mod, block.m0, tile * Cfg::kBlockN, params.seqlen_q,
                                                    params.seqlen_k);
    if (state == 0) continue;
    if (threadIdx.x == 0) list[1 + count] = (tile << 1) | (state == 1 ? 1 : 0);
    ++count;
  }
  if (threadIdx.x == 0) list[0] = count;
}

// The backward's lists: per key block (the main kernel's one-dimensional grid), the steps of its walk (query
// head of the KV head's group, query block) that mask_mod does not hide entirely, as
// (query block << 12) | (head in group << 1) | marked (key_block.cuh: KeyBlock's kTileList).
template <class Cfg>
__device__ __forceinline__ void bwd_tile_lists(const BwdParams& params, const VariantParams& variant) {
  // Its walk without the list (m_first, m_count, group; the constructor's read of the list is not used here).
  const KeyBlock<Cfg> block(params, variant);
  int* list = const_cast<int*>(variant.user.tile_lists) + static_cast<long long>(blockIdx.x) * variant.user.list_stride;
  int count = 0;
  for (int in_group = 0; in_group < block.group; ++in_group) {
    const ScoreMod<typename Cfg::Variant> mod(variant, block.batch, block.head_kv * block.group + in_group,
                                              params.seqlen_q, params.seqlen_k);
    for (int m_block = block.m_first; m_block < block.m_first + block.m_count; ++m_block) {
      const int state = tile_state<Cfg, Cfg::kBlockM, Cfg::kBlockN>(mod, m_block * Cfg::kBlockM, block.n0,
                                                                    params.seqlen_q, params.seqlen_k);
      if (state == 0) continue;
      if (threadIdx.x == 0) list[1 + count] = (m_block << 12) | (in_group << 1) | (state == 1 ? 1 : 0);
      ++count;
    }
  }
  if (threadIdx.x == 0) list[0] = count;
}

}  // namespace fa2
