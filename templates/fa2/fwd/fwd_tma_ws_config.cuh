// Compile-time shape of the warp-specialized forward (scheme tma_ws): one producer warpgroup that loads by
// TMA and `warps / 4 - 1` consumer warpgroups of 64 query rows each. It is a FwdConfig whose warps are the
// consumer warps, so the row bookkeeping shared with the other forward kernels (masking, online softmax,
// epilogue) sees 16 rows per warp as it does for the wgmma kernels; the producer is extra.
#pragma once

#include "fa2/fwd/fwd_config.cuh"

namespace fa2 {

template <int kHeadDim_, int kBlockM_, int kBlockN_, int kBlockWarps_, int kStages_, bool kCausal_, bool kBf16_,
          int kProducerRegisters_, int kConsumerRegisters_>
struct FwdTmaWsConfig
    : FwdConfig<kHeadDim_, kBlockM_, kBlockN_, kBlockWarps_ - 4, kStages_, kCausal_, kBf16_> {
  using Base = FwdConfig<kHeadDim_, kBlockM_, kBlockN_, kBlockWarps_ - 4, kStages_, kCausal_, kBf16_>;

  static constexpr int kConsumerWarpgroups = kBlockWarps_ / 4 - 1;
  static constexpr int kConsumerThreads = Base::kThreads;
  static constexpr int kBlockThreads = kBlockWarps_ * 32;  // the launch's block, producer included
  static constexpr int kProducerRegisters = kProducerRegisters_;
  static constexpr int kConsumerRegisters = kConsumerRegisters_;

  // Registers per thread ptxas gives every thread at entry (__launch_bounds__(kBlockThreads, 1): the most
  // that fit, in units of 8); the block's pool is that times the block. setmaxnreg.inc blocks until the pool
  // has the registers, so the two counts must fit in it or the consumers wait forever.
  static constexpr int kEntryRegisters = 65536 / kBlockThreads / 8 * 8 < 255 ? 65536 / kBlockThreads / 8 * 8 : 255;
  static_assert(kBlockWarps_ % 4 == 0 && kConsumerWarpgroups >= 1, "a producer warpgroup and whole consumer ones");
  static_assert(kBlockM_ == 64 * kConsumerWarpgroups, "each consumer warpgroup owns one m64 row block");
  static_assert(kProducerRegisters * 128 + kConsumerRegisters * kConsumerThreads <= kEntryRegisters * kBlockThreads,
                "the warpgroups' register counts must fit the block's pool");
  static_assert(kHeadDim_ % 64 == 0, "tiles are whole 128-byte swizzle pages (TMA boxes of 64 columns)");
  static_assert(kBlockN_ <= 256 && kBlockM_ <= 256, "a TMA box spans at most 256 rows");

  static constexpr int kPages = kHeadDim_ / 64;                        // 64-column pages of every tile
  static constexpr unsigned kQBytes = kBlockM_ * kHeadDim_ * 2;         // one Q tile: one TMA transaction
  static constexpr unsigned kKVBytes = kBlockN_ * kHeadDim_ * 2;        // one K or V tile
  // Shared memory from the 1024-byte aligned base: Q, the K ring, the V ring, then the mbarriers (8 bytes
  // each): Q's, and per stage K full, V full, K empty, V empty.
  static constexpr unsigned kOffsetK = kQBytes;
  static constexpr unsigned kOffsetV = kOffsetK + kStages_ * kKVBytes;
  static constexpr unsigned kOffsetBarriers = kOffsetV + kStages_ * kKVBytes;
  static constexpr unsigned kBarrierBytes = 8 * (1 + 4 * kStages_);
  // The host reserves 1024 bytes of alignment slack and 256 for the barriers (codegen/fwd_family.cpp).
  static_assert(kBarrierBytes <= 256, "the barriers fit the 256 bytes the host reserves");
};

}  // namespace fa2
