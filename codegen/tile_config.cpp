#include "codegen/tile_config.hpp"

#include <fmt/format.h>

#include "codegen/fnv1a.hpp"

namespace fa2 {

const char* dtype_name(DType dtype) { return dtype == DType::fp16 ? "fp16" : "bf16"; }

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::sm_80: return "sm_80";
    case Arch::sm_86: return "sm_86";
    case Arch::sm_89: return "sm_89";
    case Arch::sm_90a: return "sm_90a";
  }
  return "unknown";
}

const char* scheme_name(Scheme scheme) {
  switch (scheme) {
    case Scheme::mma_sync: return "mma_sync";
    case Scheme::wgmma: return "wgmma";
    case Scheme::wgmma_overlap: return "wgmma_overlap";
  }
  return "unknown";
}

bool is_wgmma(Scheme scheme) { return scheme == Scheme::wgmma || scheme == Scheme::wgmma_overlap; }

std::optional<DType> parse_dtype(const std::string& text) {
  if (text == "fp16" || text == "f16" || text == "half") return DType::fp16;
  if (text == "bf16" || text == "bfloat16") return DType::bf16;
  return std::nullopt;
}

std::optional<Arch> parse_arch(const std::string& text) {
  for (Arch arch : {Arch::sm_80, Arch::sm_86, Arch::sm_89, Arch::sm_90a})
    if (text == arch_name(arch)) return arch;
  return std::nullopt;
}

std::optional<Scheme> parse_scheme(const std::string& text) {
  if (text == "mma_sync") return Scheme::mma_sync;
  if (text == "wgmma") return Scheme::wgmma;
  if (text == "wgmma_overlap") return Scheme::wgmma_overlap;
  return std::nullopt;
}

std::optional<Arch> arch_for_compute_capability(int major, int minor) {
  // Minor versions are single digits; without this check (7, 16) would read as 8.6. Bounding the major
  // keeps major * 10 from overflowing on nonsense input (found by fuzz/fuzz_config).
  if (minor < 0 || minor > 9 || major < 0 || major > 99) return std::nullopt;
  const int cc = major * 10 + minor;
  if (cc == 80 || cc == 87) return Arch::sm_80;
  if (cc == 86) return Arch::sm_86;
  if (cc == 89) return Arch::sm_89;
  if (cc == 90) return Arch::sm_90a;
  return std::nullopt;
}

int compute_capability(Arch arch) {
  switch (arch) {
    case Arch::sm_80: return 80;
    case Arch::sm_86: return 86;
    case Arch::sm_89: return 89;
    case Arch::sm_90a: return 90;
  }
  return 0;
}

int max_smem_per_block(Arch arch) {
  // Opt-in dynamic shared memory per block (CUDA programming guide, compute capability tables).
  switch (arch) {
    case Arch::sm_80: return 163 * 1024;
    case Arch::sm_86:
    case Arch::sm_89: return 99 * 1024;
    case Arch::sm_90a: return 227 * 1024;
  }
  return 48 * 1024;
}

int smem_per_sm(Arch arch) {
  switch (arch) {
    case Arch::sm_80: return 164 * 1024;
    case Arch::sm_86:
    case Arch::sm_89: return 100 * 1024;
    case Arch::sm_90a: return 228 * 1024;
  }
  return 64 * 1024;
}

int max_threads_per_sm(Arch arch) { return arch == Arch::sm_86 || arch == Arch::sm_89 ? 1536 : 2048; }

bool is_supported_head_dim(int head_dim) {
  return head_dim >= 32 && head_dim <= 256 && head_dim % 32 == 0;
}

int TileConfig::smem_bytes() const {
  // Q tile + `stages` K tiles + `stages` V tiles, 16-bit elements. The Q tile is reused to stage O.
  // wgmma descriptors need 1024-byte aligned tiles: the kernel rounds its base up into 1 KB of slack.
  const int tiles = (block_m + 2 * stages * block_n) * head_dim * 2;
  return is_wgmma(scheme) ? tiles + 1024 : tiles;
}

int TileConfig::accumulator_registers() const {
  const int o_regs = m_tiles_per_warp() * (head_dim / 8) * 4;
  const int s_regs = m_tiles_per_warp() * (block_n / 8) * 4;
  return o_regs + s_regs;
}

int TileConfig::register_cap() const {
  // 64K registers per SM, allocated per warp in units of 256 (8 per thread); ptxas never exceeds 255.
  if (warps < 1 || warps > 16 || blocks_per_sm < 1 || blocks_per_sm > 4) return 0;  // not a config validate() accepts
  const int per_thread = 65536 / (threads() * blocks_per_sm) / 8 * 8;
  return per_thread < 255 ? per_thread : 255;
}

// Registers besides the accumulators: fragments of Q/K/V or P, addresses, loop state, softmax rows.
// With fewer than this left under register_cap() every probed config spilled heavily.
static constexpr int kMinWorkingRegisters = 32;

// Above this many fp32 accumulator registers per thread ptxas has too little room under the 255-register
// cap for fragments and addresses. At exactly 192 (d128, 32 rows per warp, block_n 64) it already spills a
// little with NVRTC 13.0, so the tuner still judges configs by their measured spill bytes; this bound only
// prunes configs that cannot work.
static constexpr int kMaxAccumulatorRegisters = 192;

std::optional<std::string> TileConfig::validate() const {
  if (!is_supported_head_dim(head_dim))
    return fmt::format("head_dim {} is not supported: use a multiple of 32 from 32 to 256", head_dim);
  if (block_m < 16 || block_m > 256 || block_m % 16 != 0)
    return fmt::format("block_m {} must be a multiple of 16 in [16, 256]", block_m);
  if (block_n < 16 || block_n > 256 || block_n % 16 != 0)
    return fmt::format("block_n {} must be a multiple of 16 in [16, 256]", block_n);
  if (warps != 1 && warps != 2 && warps != 4 && warps != 8 && warps != 16)
    return fmt::format("warps {} must be one of 1, 2, 4, 8, 16", warps);
  if (block_m % (16 * warps) != 0)
    return fmt::format("block_m {} must be a multiple of 16 * warps = {} (each warp owns whole 16-row mma tiles)",
                       block_m, 16 * warps);
  if (stages < 1 || stages > 4) return fmt::format("stages {} must be in [1, 4]", stages);
  if (is_wgmma(scheme)) {
    const char* s = scheme_name(scheme);
    if (arch != Arch::sm_90a) return fmt::format("scheme {} needs arch sm_90a, not {}", s, arch_name(arch));
    if (head_dim % 64 != 0)
      return fmt::format("scheme {} needs head_dim a multiple of 64 (whole swizzle pages), not {}", s, head_dim);
    if (warps % 4 != 0)
      return fmt::format("scheme {} needs whole warpgroups: warps {} must be 4, 8 or 16", s, warps);
    if (block_m != 16 * warps)
      return fmt::format("scheme {} needs block_m = 16 * warps = {} (64 rows per warpgroup), not {}", s,
                         16 * warps, block_m);
    if (block_n % 32 != 0)
      return fmt::format("scheme {} needs block_n a multiple of 32 (a generated wgmma width), not {}", s, block_n);
  }
  if (blocks_per_sm < 1 || blocks_per_sm > 4) return fmt::format("blocks_per_sm {} must be in [1, 4]", blocks_per_sm);
  if (threads() * blocks_per_sm > max_threads_per_sm(arch))
    return fmt::format("blocks_per_sm {} x {} threads = {} exceeds the {} threads an SM of {} holds", blocks_per_sm,
                       threads(), blocks_per_sm * threads(), max_threads_per_sm(arch), arch_name(arch));
  // Over kMaxAccumulatorRegisters the message below says more; under it, the SM's register file decides.
  if (accumulator_registers() <= kMaxAccumulatorRegisters &&
      accumulator_registers() + kMinWorkingRegisters > register_cap())
    return fmt::format("needs {} fp32 accumulator registers per thread (O + S) plus {} working registers, but "
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
    return fmt::format("needs {} fp32 accumulator registers per thread (O + S), over the limit of {}: "
                       "use fewer rows per warp or a smaller block_n",
                       accumulator_registers(), kMaxAccumulatorRegisters);
  return std::nullopt;
}

static const char* scheme_tag(Scheme scheme) {
  switch (scheme) {
    case Scheme::mma_sync: return "mma";
    case Scheme::wgmma: return "wgmma";
    case Scheme::wgmma_overlap: return "wgmmao";
  }
  return "unknown";
}

std::string TileConfig::name() const {
  std::string arch_tag = arch_name(arch);
  arch_tag.erase(arch_tag.find('_'), 1);  // sm_90a -> sm90a: keeps the name one identifier-friendly token
  // blocks_per_sm is spelled only when above 1, so the names (and cache keys) of one-block kernels stay
  // those of the releases before it existed.
  const std::string blocks = blocks_per_sm != 1 ? fmt::format("b{}", blocks_per_sm) : "";
  return fmt::format("fa2_fwd_{}_d{}_{}_{}_m{}n{}w{}s{}{}_{}", scheme_tag(scheme), head_dim, dtype_name(dtype),
                     causal ? "causal" : "full", block_m, block_n, warps, stages, blocks, arch_tag);
}

std::string TileConfig::hash() const {
  // Over the name, which spells out every field, and the scheme.
  return Fnv1a().add_bytes(name() + "|" + scheme_name(scheme)).hex();
}

bool TileConfig::operator==(const TileConfig& o) const {
  return head_dim == o.head_dim && dtype == o.dtype && causal == o.causal && block_m == o.block_m &&
         block_n == o.block_n && warps == o.warps && stages == o.stages && arch == o.arch &&
         scheme == o.scheme && blocks_per_sm == o.blocks_per_sm;
}

TileConfig default_config(int head_dim, DType dtype, bool causal, Arch arch) {
  TileConfig config;
  config.head_dim = head_dim;
  config.dtype = dtype;
  config.causal = causal;
  config.arch = arch;
  if (arch == Arch::sm_90a && head_dim % 64 == 0) {
    // wgmma, two warpgroups: the H100 tunings' winners (bench/NOTES.md). At d64 and d128 every class of
    // the FA2 grid picked a two-blocks-per-SM kernel (which spills a few bytes); O is too large for that
    // at d192/d256, where the defaults are the fastest zero-spill one-block configs.
    config.scheme = Scheme::wgmma;
    config.warps = 8;
    config.block_m = 128;
    config.stages = head_dim >= 256 ? 1 : 2;
    if (head_dim <= 128) {
      config.block_n = head_dim == 64 ? 128 : 64;
      config.blocks_per_sm = 2;
    } else {
      config.block_n = 64;
    }
    return config;
  }
  // From the H100 tunings of the FA2 paper grid (bench/NOTES.md): 32 query rows per warp while O fits
  // beside them (block_n 32 at d > 64 keeps S small), 16 rows per warp and 8 warps for the largest head
  // dims. Every default compiles with zero spill bytes on sm_80 and sm_90a (tests/cpu/test_compile.cpp).
  config.block_m = 128;
  if (head_dim <= 64) {
    config.block_n = 64;
    config.warps = 4;
  } else if (head_dim <= 128) {
    config.block_n = 32;
    config.warps = 4;
  } else {
    config.block_n = 64;
    config.warps = 8;
  }
  // Two K/V stages spill at d >= 224 on sm_90a; one stage was as fast in the d256 tunings.
  config.stages = head_dim >= 224 ? 1 : 2;
  // Archs with less shared memory (sm_86/sm_89: 99 KB) get one stage, then narrower key tiles.
  if (config.smem_bytes() > max_smem_per_block(arch)) config.stages = 1;
  if (config.smem_bytes() > max_smem_per_block(arch)) config.block_n = 32;
  return config;
}

}  // namespace fa2
