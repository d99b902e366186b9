#include "codegen/tile_config.hpp"

#include <fmt/format.h>

#include "codegen/family.hpp"
#include "codegen/snippet_source.hpp"
#include "common/fnv1a.hpp"

namespace fa2 {

const char* family_name(Family family) {
  switch (family) {
    case Family::fwd: return "fwd";
    case Family::bwd: return "bwd";
    case Family::kvc: return "kvc";
  }
  return "unknown";
}

std::optional<Family> parse_family(const std::string& text) {
  for (Family family : {Family::fwd, Family::bwd, Family::kvc})
    if (text == family_name(family)) return family;
  return std::nullopt;
}

const char* scheme_name(Scheme scheme) {
  switch (scheme) {
    case Scheme::mma_sync: return "mma_sync";
    case Scheme::wgmma: return "wgmma";
    case Scheme::wgmma_overlap: return "wgmma_overlap";
    case Scheme::wgmma_ss: return "wgmma_ss";
    case Scheme::tma_ws: return "tma_ws";
    case Scheme::tma_ws_overlap: return "tma_ws_overlap";
    case Scheme::tma_ws_pingpong: return "tma_ws_pingpong";
  }
  return "unknown";
}

bool is_wgmma(Scheme scheme) { return scheme != Scheme::mma_sync; }

bool is_tma_ws(Scheme scheme) {
  return scheme == Scheme::tma_ws || scheme == Scheme::tma_ws_overlap || scheme == Scheme::tma_ws_pingpong;
}

std::optional<Scheme> parse_scheme(const std::string& text) {
  if (text == "mma_sync") return Scheme::mma_sync;
  if (text == "wgmma") return Scheme::wgmma;
  if (text == "wgmma_overlap") return Scheme::wgmma_overlap;
  if (text == "wgmma_ss") return Scheme::wgmma_ss;
  if (text == "tma_ws") return Scheme::tma_ws;
  if (text == "tma_ws_overlap") return Scheme::tma_ws_overlap;
  if (text == "tma_ws_pingpong") return Scheme::tma_ws_pingpong;
  return std::nullopt;
}

int TileConfig::smem_bytes() const { return kernel_family(family).smem_bytes(*this); }

int TileConfig::accumulator_registers() const { return kernel_family(family).accumulator_registers(*this); }

WarpgroupRegisters tma_ws_registers(int warps) {
  // FA3's counts (hopper/flash_fwd_kernel_sm90.h): the producer keeps 24 (two consumer warpgroups) or 32
  // (three); the consumers take the rest of the 64K-register pool: 24 * 128 + 240 * 256 = 168 * 384 and
  // 32 * 128 + 160 * 384 = 128 * 512, the pools ptxas's entry counts give (fwd_tma_ws_config.cuh checks).
  if (warps == 16) return {32, 160};
  return {24, 240};
}

int TileConfig::register_cap() const {
  // 64K registers per SM, allocated per warp in units of 256 (8 per thread); ptxas never exceeds 255.
  if (warps < 1 || warps > 16 || blocks_per_sm < 1 || blocks_per_sm > 4) return 0;  // not a config validate() accepts
  if (is_tma_ws(scheme)) return tma_ws_registers(warps).consumer;
  const int per_thread = 65536 / (threads() * blocks_per_sm) / 8 * 8;
  return per_thread < 255 ? per_thread : 255;
}

std::vector<std::string> TileConfig::entry_points() const {
  std::vector<std::string> names{name()};
  for (const std::string& suffix : kernel_family(family).helper_suffixes) names.push_back(name() + suffix);
  if (uses_tile_lists(*this)) names.push_back(name() + "_bmask");  // mask_mod's tile lists, last
  return names;
}

// Registers besides the accumulators: fragments, addresses, loop state, softmax rows. With fewer than
// this left under register_cap() every probed config spilled heavily.
static constexpr int kMinWorkingRegisters = 32;

// Above this many fp32 accumulator registers per thread ptxas has too little room under the 255-register
// cap for fragments and addresses. At exactly 192 (fwd d128, 32 rows per warp, block_n 64) it already
// spills a little with NVRTC 13.0, so the tuner still judges configs by their measured spill bytes; this
// bound only prunes configs that cannot work.
static constexpr int kMaxAccumulatorRegisters = 192;

std::optional<std::string> TileConfig::validate() const {
  if (!is_supported_head_dim(head_dim))
    return fmt::format("head_dim {} is not supported: use a multiple of 32 from 32 to 256", head_dim);
  if (block_m < 16 || block_m > 256 || block_m % 16 != 0)
    return fmt::format("block_m {} must be a multiple of 16 in [16, 256]", block_m);
  if (block_n < 16 || block_n > 256 || block_n % 16 != 0)
    return fmt::format("block_n {} must be a multiple of 16 in [16, 256]", block_n);
  // 12: the tma_ws schemes' producer warpgroup and two consumer warpgroups.
  if (warps != 1 && warps != 2 && warps != 4 && warps != 8 && warps != 16 && !(warps == 12 && is_tma_ws(scheme)))
    return fmt::format("warps {} must be one of 1, 2, 4, 8, 16 (12: the tma_ws schemes only)", warps);
  if (stages < 1 || stages > 4) return fmt::format("stages {} must be in [1, 4]", stages);
  if (deterministic && family != Family::bwd)
    return fmt::format("deterministic applies to the backward only, not to the {} family", family_name(family));
  if (splits != 0 && family != Family::kvc)
    return fmt::format("splits {} applies to the kvc family only, not to the {} family", splits, family_name(family));
  if (variant.user.any() && (family == Family::kvc || is_tma_ws(scheme)))
    return fmt::format("score_mod/mask_mod snippets are not supported yet by {}: the fwd and bwd families' mma_sync "
                       "and wgmma schemes have them",
                       family == Family::kvc ? "the kvc family (the KV-cache and varlen forward)"
                                             : fmt::format("scheme {}", scheme_name(scheme)));
  if (variant.user.any()) {
    if (variant.user.score_mod.empty() && variant.user.mask_mod.empty())
      return fmt::format("the snippets of user modifications {} are not known here (a config read back from the "
                         "cache keeps their digest only): pass them with the call",
                         variant.user.digest());
    if (auto reason = validate_user_mods(variant.user)) return *reason;
  }
  if (variant.any() && family == Family::kvc)
    return fmt::format("variant {} is not supported yet by the kvc family (the KV-cache and varlen forward): the fwd "
                       "and bwd families have it",
                       variant_tag(variant));
  if (variant.any() && is_tma_ws(scheme))
    return fmt::format("variant {} is not supported yet by scheme {}: use mma_sync, wgmma or wgmma_overlap",
                       variant_tag(variant), scheme_name(scheme));
  if (auto reason = kernel_family(family).validate(*this)) return reason;
  if (blocks_per_sm < 1 || blocks_per_sm > 4) return fmt::format("blocks_per_sm {} must be in [1, 4]", blocks_per_sm);
  if (threads() * blocks_per_sm > max_threads_per_sm(arch))
    return fmt::format("blocks_per_sm {} x {} threads = {} exceeds the {} threads an SM of {} holds", blocks_per_sm,
                       threads(), blocks_per_sm * threads(), max_threads_per_sm(arch), arch_name(arch));
  // Over kMaxAccumulatorRegisters the message below says more; under it, the SM's register file decides.
  if (accumulator_registers() <= kMaxAccumulatorRegisters &&
      accumulator_registers() + kMinWorkingRegisters > register_cap())
    return fmt::format("needs {} fp32 accumulator registers per thread plus {} working registers, but "
                       "{} block(s) per SM of {} threads leave {} registers per thread: use {}a smaller block_n",
                       accumulator_registers(), kMinWorkingRegisters, blocks_per_sm, threads(), register_cap(),
                       blocks_per_sm > 1 ? "fewer blocks per SM or " : "fewer warps or ");
  if (blocks_per_sm > 1 && blocks_per_sm * (smem_bytes() + 1024) > smem_per_sm(arch))
    return fmt::format("blocks_per_sm {} needs {} bytes of shared memory per SM ({} per block + 1 KB reserved), "
                       "more than the {} of {}: use fewer stages or a smaller block_n",
                       blocks_per_sm, blocks_per_sm * (smem_bytes() + 1024), smem_bytes(), smem_per_sm(arch),
                       arch_name(arch));
  if (smem_bytes() > max_smem_per_block(arch))
    return fmt::format("needs {} bytes of shared memory, more than the {} bytes a block may have on {}",
                       smem_bytes(), max_smem_per_block(arch), arch_name(arch));
  if (accumulator_registers() > kMaxAccumulatorRegisters)
    return fmt::format("needs {} fp32 accumulator registers per thread, over the limit of {}: "
                       "use fewer rows per warp or a smaller block_n",
                       accumulator_registers(), kMaxAccumulatorRegisters);
  return std::nullopt;
}

static const char* scheme_tag(Scheme scheme) {
  switch (scheme) {
    case Scheme::mma_sync: return "mma";
    case Scheme::wgmma: return "wgmma";
    case Scheme::wgmma_overlap: return "wgmmao";
    case Scheme::wgmma_ss: return "wgmmass";
    case Scheme::tma_ws: return "tmaws";
    case Scheme::tma_ws_overlap: return "tmawso";
    case Scheme::tma_ws_pingpong: return "tmawsp";
  }
  return "unknown";
}

std::string TileConfig::name() const {
  std::string arch_tag = arch_name(arch);
  arch_tag.erase(arch_tag.find('_'), 1);  // sm_90a -> sm90a: keeps the name one identifier-friendly token
  // blocks_per_sm is spelled only when above 1, so the names (and cache keys) of one-block kernels stay
  // those of the releases before it existed.
  const std::string blocks = blocks_per_sm != 1 ? fmt::format("b{}", blocks_per_sm) : "";
  const std::string key_splits = splits != 0 ? fmt::format("k{}", splits) : "";
  // Likewise the variants: a kernel without any keeps its name.
  const std::string variants = variant.any() ? "_" + variant_tag(variant) : "";
  return fmt::format("fa2_{}_{}_d{}_{}_{}{}{}_m{}n{}w{}s{}{}{}_{}", family_name(family), scheme_tag(scheme), head_dim,
                     dtype_name(dtype), causal ? "causal" : "full", variants, deterministic ? "_det" : "", block_m,
                     block_n, warps, stages, blocks, key_splits, arch_tag);
}

std::string TileConfig::hash() const {
  // Over the name, which spells out every field, and the scheme.
  return Fnv1a().add_bytes(name() + "|" + scheme_name(scheme)).hex();
}

bool TileConfig::operator==(const TileConfig& o) const {
  return family == o.family && head_dim == o.head_dim && dtype == o.dtype && causal == o.causal &&
         block_m == o.block_m && block_n == o.block_n && warps == o.warps && stages == o.stages && arch == o.arch &&
         scheme == o.scheme && blocks_per_sm == o.blocks_per_sm && deterministic == o.deterministic &&
         splits == o.splits && variant == o.variant;
}

TileConfig with_scheme(TileConfig config, Scheme scheme) {
  if (is_tma_ws(scheme) && !is_tma_ws(config.scheme) && config.family == Family::fwd) {
    // Two consumer warpgroups, two stages and FA3's key tiles (hopper/tile_size.h): d256 128x80, d192 128x112,
    // d128 128x176 (128x128 causal); d64 128x128, where FA3 takes three consumer warpgroups (192 rows).
    config.warps = 12;
    config.block_m = 128;
    config.blocks_per_sm = 1;
    config.stages = 2;
    config.block_n = config.head_dim >= 256   ? 80
                     : config.head_dim >= 192 ? 112
                     : config.head_dim >= 128 ? (config.causal ? 128 : 176)
                                              : 128;
  }
  config.scheme = scheme;
  return config;
}

TileConfig default_config(Family family, int head_dim, DType dtype, bool causal, Arch arch, bool deterministic,
                          int packed_rows, Variant variant) {
  TileConfig config =
      kernel_family(family).default_config(head_dim, dtype, causal, arch, deterministic, packed_rows, variant);
  config.variant = variant;
  return config;
}

}  // namespace fa2
