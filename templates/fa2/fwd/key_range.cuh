// Which key tiles a query block must visit: all of them, or (causal) those up to its last row's diagonal.
#pragma once

namespace fa2 {

// Number of key tiles query block [m0, m0 + block_m) must visit; 0 when it sees no key at all.
template <class Cfg>
__device__ __forceinline__ int key_tiles_for_block(int m0, int seqlen_q, int seqlen_k) {
  int tiles = (seqlen_k + Cfg::kBlockN - 1) / Cfg::kBlockN;
  if (Cfg::kCausal) {
    // The block's last row sees keys up to (m0 + block_m - 1) + seqlen_k - seqlen_q.
    const int visible_end = m0 + Cfg::kBlockM + seqlen_k - seqlen_q;
    const int causal_tiles = visible_end <= 0 ? 0 : (visible_end + Cfg::kBlockN - 1) / Cfg::kBlockN;
    tiles = causal_tiles < tiles ? causal_tiles : tiles;
  }
  return tiles;
}

}  // namespace fa2
