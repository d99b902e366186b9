// FlashAttention-2 forward, warp-specialized on Hopper (schemes tma_ws, tma_ws_overlap and tma_ws_pingpong,
// sm_90a; FA3 paper arXiv 2407.08608).
// Warpgroup 0 is the producer: it gives most of its registers away (setmaxnreg) and one of its threads
// issues every load by TMA, Q once and then K and V tile by tile into a ring of `kStages` stages guarded by
// mbarriers (tma_ws_pipeline.cuh). The other warpgroups are consumers, 64 query rows each, which take the
// registers and run the same per-tile work as the wgmma kernel (fwd_kernel_wgmma.cuh): S = Q K^T by wgmma
// from shared memory, masking and the online softmax on the CUDA cores, O += P V with P from registers. No
// block-wide barrier follows the split: loads wait on empty barriers, math on full ones. Rows past either
// sequence's end come in as zeros (the tensor maps bound the sequence, not the batch or head), so the masks,
// the softmax and the epilogue, and with them every output, are the other forward kernels'.
#pragma once

#include "fa2/fwd/block_coordinates.cuh"
#include "fa2/fwd/fwd_epilogue.cuh"
#include "fa2/fwd/fwd_params.h"
#include "fa2/fwd/fwd_tma_ws_config.cuh"
#include "fa2/fwd/key_range.cuh"
#include "fa2/fwd/online_softmax.cuh"
#include "fa2/fwd/tma_ws_pipeline.cuh"
#include "fa2/mbarrier.cuh"
#include "fa2/ptx.cuh"
#include "fa2/tma.cuh"
#include "fa2/variant/fwd_scores.cuh"
#include "fa2/warpgroup_registers.cuh"
#include "fa2/warpgroup_turns.cuh"
#include "fa2/wgmma.cuh"
#include "fa2/wgmma_attention.cuh"

namespace fa2 {

// The producer thread: Q, then K_tile and V_tile for every key tile the block visits, each into its stage
// once the consumers have released the stage's previous round. Tiles are 64-column pages of the head dim,
// one TMA box each; the maps' dimensions are (head dim, sequence, heads, batch).
template <class Cfg>
__device__ __forceinline__ void produce_tiles(const TmaWsSmem<Cfg>& smem, const TmaDescriptor& q_map,
                                              const TmaDescriptor& k_map, const TmaDescriptor& v_map, int m0,
                                              int head, int head_kv, int batch, int key_tiles) {
  mbarrier_arrive_expect_tx(smem.q_full(), Cfg::kQBytes);
#pragma unroll
  for (int page = 0; page < Cfg::kPages; ++page)
    tma_load_4d(q_map, smem.q + page * Cfg::kBlockM * 128, smem.q_full(), page * 64, m0, head, batch);

  StageRing<Cfg::kStages> ring;
  for (int tile = 0; tile < key_tiles; ++tile) {
    const int n0 = tile * Cfg::kBlockN;
    // Round 0 finds every stage empty; later rounds wait for the consumers' release of the round before.
    if (tile >= Cfg::kStages) mbarrier_wait(smem.k_empty(ring.stage), ring.phase ^ 1u);
    mbarrier_arrive_expect_tx(smem.k_full(ring.stage), Cfg::kKVBytes);
#pragma unroll
    for (int page = 0; page < Cfg::kPages; ++page)
      tma_load_4d(k_map, smem.k_tile(ring.stage) + page * Cfg::kBlockN * 128, smem.k_full(ring.stage), page * 64,
                  n0, head_kv, batch);
    if (tile >= Cfg::kStages) mbarrier_wait(smem.v_empty(ring.stage), ring.phase ^ 1u);
    mbarrier_arrive_expect_tx(smem.v_full(ring.stage), Cfg::kKVBytes);
#pragma unroll
    for (int page = 0; page < Cfg::kPages; ++page)
      tma_load_4d(v_map, smem.v_tile(ring.stage) + page * Cfg::kBlockN * 128, smem.v_full(ring.stage), page * 64,
                  n0, head_kv, batch);
    ring.advance();
  }
}

// A consumer warpgroup over the block's key tiles, then its rows of the epilogue. `warp` counts the consumer
// warps from 0, so warp w owns block rows 16w..16w+15 as in the other forward kernels.
//
// kOverlap (scheme tma_ws_overlap) pipelines each warpgroup as wgmma_overlap does (FA3's intra-warpgroup
// overlap): iteration `tile` issues S_tile = Q K_tile^T and then O += P_{tile-1} V_{tile-1}, waits for S only,
// and runs the softmax of S_tile while the tensor cores still work on P V. V_{tile-1} is released once that
// product has completed, one iteration after K_{tile-1}.
// kPingPong (scheme tma_ws_pingpong, with kOverlap) has the warpgroups issue those GEMMs in turns
// (warpgroup_turns.cuh), each once its operands have landed, so that one's softmax hides under another's GEMMs.
template <class Cfg, bool kOverlap, bool kPingPong>
__device__ __forceinline__ void consume_tiles(const TmaWsSmem<Cfg>& smem, unsigned char* smem_q,
                                              const BlockCoordinates<Cfg>& block, const FwdParams& params,
                                              int key_tiles, int warp, int lane) {
  const int warp_row0 = warp * 16;
  // Within every page of Q, the warpgroup's 64 rows start 64 * 128 bytes further per warpgroup.
  const unsigned q_rows = smem.q + (warp / 4) * 64 * 128;

  float o[1][Cfg::kDTiles][4];
#pragma unroll
  for (int d = 0; d < Cfg::kDTiles; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[0][d][e] = 0.f;
  OnlineSoftmax<1> softmax;
  softmax.init();

  // S_tile, masked and folded into the softmax: afterwards s holds P_tile and `correction` the factor O
  // must be rescaled by before P_tile V_tile is added.
  float s[1][Cfg::kNTiles][4];
  float correction[1][2];
  // The masks of the other forward kernels (fwd_scores.cuh); these schemes take no variant (validate()).
  const ScoreMod<typename Cfg::Variant> mod(VariantParams{}, block.batch, block.head, params.seqlen_q,
                                            params.seqlen_k);
  auto mask_and_fold = [&](int tile) {
    prepare_scores<Cfg>(s, mod, block.m0, warp_row0, tile * Cfg::kBlockN, params, lane);
    softmax.fold(s, params.softmax_scale_log2, correction);
  };
  // P as 16-bit A fragments, and O rescaled: the inputs of O += P V.
  unsigned p[Cfg::kBlockN / 16][4];
  auto prepare_output = [&] {
    pack_probabilities<Cfg>(s[0], p);
    OnlineSoftmax<1>::rescale(o, correction);
    fence_registers(o[0]);
  };
  // Issues S = Q K^T from the ring position's K tile once it has landed.
  auto issue_scores = [&](const StageRing<Cfg::kStages>& at) {
    mbarrier_wait(smem.k_full(at.stage), at.phase);
    wgmma_fence();
    wgmma_scores<Cfg>(s[0], q_rows, smem.k_tile(at.stage));
    wgmma_commit();
  };
  static_assert(kOverlap || !kPingPong, "ping-pong schedules the overlapped pipeline's GEMMs");
  const WarpgroupTurns<Cfg::kConsumerWarpgroups, kPingPong> turns(warp / 4);

  if (key_tiles > 0) mbarrier_wait(smem.q_full(), 0);
  StageRing<Cfg::kStages> ring;
  if constexpr (!kOverlap) {
    for (int tile = 0; tile < key_tiles; ++tile) {
      issue_scores(ring);
      wgmma_wait<0>();
      fence_registers(s[0]);
      mbarrier_arrive(smem.k_empty(ring.stage));  // this thread's share of K_tile has been read
      mask_and_fold(tile);
      prepare_output();
      mbarrier_wait(smem.v_full(ring.stage), ring.phase);
      wgmma_fence();
      wgmma_output<Cfg>(o[0], p, smem.v_tile(ring.stage));
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(o[0]);
      mbarrier_arrive(smem.v_empty(ring.stage));
      ring.advance();
    }
  } else if (key_tiles > 0) {
    // Turns: this first S, one per loop iteration (S_tile with P_{tile-1} V_{tile-1}), and the last P V.
    turns.start();
    mbarrier_wait(smem.k_full(ring.stage), ring.phase);
    turns.wait();
    issue_scores(ring);
    turns.pass(false);
    wgmma_wait<0>();
    fence_registers(s[0]);
    mbarrier_arrive(smem.k_empty(ring.stage));
    mask_and_fold(0);
    StageRing<Cfg::kStages> previous = ring;  // where V_{tile-1} is
    ring.advance();

    for (int tile = 1; tile < key_tiles; ++tile) {
      prepare_output();
      mbarrier_wait(smem.v_full(previous.stage), previous.phase);
      mbarrier_wait(smem.k_full(ring.stage), ring.phase);
      turns.wait();
      issue_scores(ring);  // its wgmma_fence also covers P and the rescaled O
      wgmma_output<Cfg>(o[0], p, smem.v_tile(previous.stage));
      wgmma_commit();
      turns.pass(false);
      wgmma_wait<1>();  // S_tile is done; P_{tile-1} V_{tile-1} may still run
      fence_registers(s[0]);
      mbarrier_arrive(smem.k_empty(ring.stage));
      mask_and_fold(tile);
      wgmma_wait<0>();
      fence_registers(o[0]);
      mbarrier_arrive(smem.v_empty(previous.stage));
      previous = ring;
      ring.advance();
    }

    prepare_output();
    mbarrier_wait(smem.v_full(previous.stage), previous.phase);
    turns.wait();
    wgmma_fence();
    wgmma_output<Cfg>(o[0], p, smem.v_tile(previous.stage));
    wgmma_commit();
    turns.pass(true);
    wgmma_wait<0>();
    fence_registers(o[0]);
    mbarrier_arrive(smem.v_empty(previous.stage));
  }

  // Every wgmma that read this warpgroup's Q rows has completed (wait_group 0), so each warp may stage its
  // own O rows there; no other warp reads or writes them.
  softmax.finalize();
  store_output<Cfg>(o, softmax, smem_q, block.o_block(params), params.o_row_stride, block.lse_block(params),
                    params.softmax_scale, block.rows_valid(params), warp, lane);
}

template <class Cfg, bool kOverlap, bool kPingPong = false>
__device__ __forceinline__ void fwd_kernel_tma_ws(const FwdParams& params, const TmaDescriptor& q_map,
                                                  const TmaDescriptor& k_map, const TmaDescriptor& v_map) {
  // Descriptors and 128-byte swizzled TMA boxes address 1024-byte atoms: round the base up (the host
  // reserves the slack).
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const unsigned smem_raw_address = smem_address(smem_raw);
  const unsigned smem_base = swizzle_atom_aligned(smem_raw_address);
  unsigned char* smem_q = smem_raw + (smem_base - smem_raw_address);
  const TmaWsSmem<Cfg> smem(smem_base);

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (threadIdx.x == 0) smem.init_barriers();
  // The one block-wide barrier: every thread sees initialized barriers. After the split below no warp of the
  // producer waits on anything but mbarriers, so its idle warps may exit.
  __syncthreads();

  const BlockCoordinates<Cfg> block(params);
  const int key_tiles = key_tiles_for_block<Cfg>(block.m0, params.seqlen_q, params.seqlen_k);
  if (warp < 4) {
    warpgroup_release_registers<Cfg::kProducerRegisters>();
    // A block whose rows see no key loads nothing: its consumers write O = 0 and LSE = +inf without waiting.
    if (threadIdx.x == 0 && key_tiles > 0) {
      tma_prefetch_descriptor(q_map);
      tma_prefetch_descriptor(k_map);
      tma_prefetch_descriptor(v_map);
      produce_tiles<Cfg>(smem, q_map, k_map, v_map, block.m0, block.head, block.head_kv, block.batch, key_tiles);
    }
  } else {
    warpgroup_claim_registers<Cfg::kConsumerRegisters>();
    consume_tiles<Cfg, kOverlap, kPingPong>(smem, smem_q, block, params, key_tiles, warp - 4, lane);
  }
}

}  // namespace fa2
