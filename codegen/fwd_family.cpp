// The forward family's rules: sliced-Q blocks (each warp owns whole 16-row mma tiles of the block's query
// rows), K/V tiles streamed through `stages` shared-memory slots, and the wgmma schemes' shape limits (the
// warp-specialized tma_ws schemes apart: their own rules, sizes and entry point).
#include <fmt/format.h>

#include "codegen/family.hpp"
#include "codegen/snippet_source.hpp"
#include "codegen/variant_source.hpp"

namespace fa2 {

namespace {

// Key-tile widths with a generated wgmma for S = Q K^T (scripts/gen_wgmma_ops.py): FA3's tiles include the
// odd multiples of 16 (d128 128x176, d192 128x112, d256 128x80).
constexpr int kTmaWsBlockN[] = {32, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256};

// The warp-specialized schemes: a producer warpgroup plus consumer warpgroups of 64 rows, one block per SM (the
// producer's registers go to the consumers, which assumes the block owns the register file).
std::optional<std::string> validate_tma_ws(const TileConfig& c) {
  const char* s = scheme_name(c.scheme);
  if (c.arch != Arch::sm_90a)
    return fmt::format("scheme {} needs arch sm_90a (TMA, mbarrier transactions, wgmma, setmaxnreg), not {}", s,
                       arch_name(c.arch));
  if (c.head_dim % 64 != 0)
    return fmt::format("scheme {} needs head_dim 64, 128, 192 or 256 (TMA boxes of whole 128-byte swizzle pages), "
                       "not {}",
                       s, c.head_dim);
  if (c.warps != 12 && c.warps != 16)
    return fmt::format("scheme {} needs warps 12 (a producer warpgroup and two consumer warpgroups) or 16 (three "
                       "consumer warpgroups), not {}",
                       s, c.warps);
  if (c.block_m != 16 * (c.warps - 4))
    return fmt::format("scheme {} needs block_m = 64 rows per consumer warpgroup = {}, not {}", s, 16 * (c.warps - 4),
                       c.block_m);
  bool generated_width = false;
  for (int width : kTmaWsBlockN) generated_width = generated_width || c.block_n == width;
  if (!generated_width)
    return fmt::format("scheme {} needs block_n with a generated wgmma width (32, 64, 80, 96, 112, 128, 144, 160, "
                       "176, 192, 224 or 256), not {}",
                       s, c.block_n);
  if (c.blocks_per_sm != 1)
    return fmt::format("scheme {} runs one block per SM (its consumers take the producer's registers from the "
                       "whole register file), not blocks_per_sm {}",
                       s, c.blocks_per_sm);
  if (c.scheme == Scheme::tma_ws_overlap || c.scheme == Scheme::tma_ws_pingpong) {
    // O, S and the packed P of the previous tile live at once: with 32 working registers over the consumers'
    // count, every probed config spilled over a hundred bytes and ptxas serialized its wgmmas.
    const int held = c.head_dim / 2 + c.block_n / 2 + c.block_n / 4;
    const int cap = tma_ws_registers(c.warps).consumer;
    if (held + 32 > cap)
      return fmt::format("scheme {} holds O, S and P at once, {} registers per consumer thread, which with 32 working "
                         "registers exceed the {} each consumer has with {} warps: use a smaller block_n{}",
                         s, held, cap, c.warps, c.warps == 16 ? " or warps 12" : "");
  }
  return std::nullopt;
}

std::optional<std::string> validate_forward(const TileConfig& c) {
  if (c.scheme == Scheme::wgmma_ss)
    return "scheme wgmma_ss is the backward's: the forward has mma_sync, wgmma, wgmma_overlap, tma_ws, "
           "tma_ws_overlap and tma_ws_pingpong";
  if (is_tma_ws(c.scheme)) return validate_tma_ws(c);
  if (c.block_m % (16 * c.warps) != 0)
    return fmt::format("block_m {} must be a multiple of 16 * warps = {} (each warp owns whole 16-row mma tiles)",
                       c.block_m, 16 * c.warps);
  if (is_wgmma(c.scheme)) {
    const char* s = scheme_name(c.scheme);
    if (c.arch != Arch::sm_90a) return fmt::format("scheme {} needs arch sm_90a, not {}", s, arch_name(c.arch));
    if (c.head_dim % 64 != 0)
      return fmt::format("scheme {} needs head_dim a multiple of 64 (whole swizzle pages), not {}", s, c.head_dim);
    if (c.warps % 4 != 0)
      return fmt::format("scheme {} needs whole warpgroups: warps {} must be 4, 8 or 16", s, c.warps);
    if (c.block_m != 16 * c.warps)
      return fmt::format("scheme {} needs block_m = 16 * warps = {} (64 rows per warpgroup), not {}", s,
                         16 * c.warps, c.block_m);
    if (c.block_n % 32 != 0)
      return fmt::format("scheme {} needs block_n a multiple of 32 (a generated wgmma width), not {}", s, c.block_n);
  }
  return std::nullopt;
}

int forward_smem_bytes(const TileConfig& c) {
  // Q tile + `stages` K tiles + `stages` V tiles, 16-bit elements. The Q tile is reused to stage O.
  // wgmma descriptors need 1024-byte aligned tiles: the kernel rounds its base up into 1 KB of slack.
  // The tma_ws schemes add their mbarriers (fwd_tma_ws_config.cuh: at most 8 * (1 + 4 * stages) bytes).
  const int tiles = (c.block_m + 2 * c.stages * c.block_n) * c.head_dim * 2;
  if (is_tma_ws(c.scheme)) return tiles + 1024 + 256;
  return is_wgmma(c.scheme) ? tiles + 1024 : tiles;
}

int forward_accumulator_registers(const TileConfig& c) {
  // tma_ws schemes: each consumer warp owns one 16-row tile; the producer warps hold no accumulators.
  const int m_tiles = is_tma_ws(c.scheme) ? 1 : c.m_tiles_per_warp();
  const int o_regs = m_tiles * (c.head_dim / 8) * 4;
  const int s_regs = m_tiles * (c.block_n / 8) * 4;
  return o_regs + s_regs;
}

// The warp-specialized kernels' module: the config type carries the warpgroups' register counts, and the entry
// point takes the tensor maps of Q, K and V (runtime/tma_maps.hpp) after the usual parameters.
std::string emit_forward_tma_ws(const TileConfig& config) {
  const WarpgroupRegisters registers = tma_ws_registers(config.warps);
  return fmt::format(
      "// Generated by fa2jit: FlashAttention-2 forward, scheme {scheme}, {arch}.\n"
      "#include \"fa2/fwd/fwd_kernel_tma_ws.cuh\"\n"
      "\n"
      "using Config = fa2::FwdTmaWsConfig</*head_dim*/ {head_dim}, /*block_m*/ {block_m}, /*block_n*/ {block_n},\n"
      "                                   /*warps*/ {warps}, /*stages*/ {stages}, /*causal*/ {causal},\n"
      "                                   /*bf16*/ {bf16}, /*producer registers*/ {producer},\n"
      "                                   /*consumer registers*/ {consumer}>;\n"
      "\n"
      "extern \"C\" __global__ void __launch_bounds__(Config::kBlockThreads, 1)\n"
      "{name}(const fa2::FwdParams params, const __grid_constant__ fa2::TmaDescriptor q_map,\n"
      "       const __grid_constant__ fa2::TmaDescriptor k_map, const __grid_constant__ fa2::TmaDescriptor v_map) {{\n"
      "  fa2::fwd_kernel_tma_ws<Config, /*overlap*/ {overlap}, /*ping-pong*/ {pingpong}>(params, q_map, k_map, "
      "v_map);\n"
      "}}\n",
      fmt::arg("scheme", scheme_name(config.scheme)), fmt::arg("arch", arch_name(config.arch)),
      fmt::arg("head_dim", config.head_dim), fmt::arg("block_m", config.block_m), fmt::arg("block_n", config.block_n),
      fmt::arg("warps", config.warps), fmt::arg("stages", config.stages),
      fmt::arg("causal", config.causal ? "true" : "false"),
      fmt::arg("bf16", config.dtype == DType::bf16 ? "true" : "false"),
      fmt::arg("overlap", config.scheme != Scheme::tma_ws ? "true" : "false"),
      fmt::arg("pingpong", config.scheme == Scheme::tma_ws_pingpong ? "true" : "false"),
      fmt::arg("producer", registers.producer),
      fmt::arg("consumer", registers.consumer), fmt::arg("name", config.name()));
}

std::string emit_forward(const TileConfig& config) {
  if (is_tma_ws(config.scheme)) return emit_forward_tma_ws(config);
  const bool wgmma = is_wgmma(config.scheme);
  const char* function = !wgmma                                    ? "fwd_kernel<Config>"
                         : config.scheme == Scheme::wgmma_overlap ? "fwd_kernel_wgmma<Config, /*overlap*/ true>"
                                                                  : "fwd_kernel_wgmma<Config, /*overlap*/ false>";
  // The user's snippets (if any) sit between the includes and the config.
  const std::string user_mods = user_mods_struct(config, uses_tile_lists(config) ? 5 : 4);
  return fmt::format(
      "// Generated by fa2jit: FlashAttention-2 forward, scheme {scheme}, {arch}.\n"
      "#include \"fa2/fwd/{header}\"{tile_lists_include}\n"
      "\n"
      "{user_mods}"
      "using Config = fa2::FwdConfig</*head_dim*/ {head_dim}, /*block_m*/ {block_m}, /*block_n*/ {block_n},\n"
      "                              /*warps*/ {warps}, /*stages*/ {stages}, /*causal*/ {causal}, /*bf16*/ {bf16}"
      "{variant_type}>;\n"
      "\n"
      "extern \"C\" __global__ void __launch_bounds__(Config::kThreads, {blocks_per_sm})\n"
      "{name}(const fa2::FwdParams params{variant_parameter}) {{\n"
      "  fa2::{function}(params{variant_argument});\n"
      "}}\n"
      "{tile_lists}",
      fmt::arg("user_mods", user_mods),
      fmt::arg("tile_lists_include", uses_tile_lists(config) ? "\n#include \"fa2/variant/block_mask.cuh\"" : ""),
      fmt::arg("tile_lists", tile_lists_entry(config, "FwdParams", "fwd_tile_lists")),
      fmt::arg("header", wgmma ? "fwd_kernel_wgmma.cuh" : "fwd_kernel.cuh"),
      fmt::arg("function", function), fmt::arg("scheme", scheme_name(config.scheme)),
      fmt::arg("arch", arch_name(config.arch)), fmt::arg("head_dim", config.head_dim),
      fmt::arg("block_m", config.block_m), fmt::arg("block_n", config.block_n), fmt::arg("warps", config.warps),
      fmt::arg("stages", config.stages), fmt::arg("causal", config.causal ? "true" : "false"),
      fmt::arg("bf16", config.dtype == DType::bf16 ? "true" : "false"),
      fmt::arg("blocks_per_sm", config.blocks_per_sm), fmt::arg("name", config.name()),
      fmt::arg("variant_type", variant_template_argument(config.variant)),
      fmt::arg("variant_parameter", variant_kernel_parameter(config.variant)),
      fmt::arg("variant_argument", variant_call_argument(config.variant)));
}

// The plain default's tiles, with the variants' masks and score changes in registers where they fit: one block
// per SM for wgmma (its two-block kernels are at the 128-register cap already), and 16 query rows per warp for
// mma_sync (32 rows per warp left no room for the window's bounds at d128: 36 bytes spilled). Every variant
// default then compiles without spills (tests/cpu/test_variants.cpp); the tuner may find better.
TileConfig forward_default_config(int head_dim, DType dtype, bool causal, Arch arch, bool deterministic,
                                  int packed_rows, Variant variant);

TileConfig plain_forward_default_config(int head_dim, DType dtype, bool causal, Arch arch) {
  TileConfig config;
  config.family = Family::fwd;
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

TileConfig forward_default_config(int head_dim, DType dtype, bool causal, Arch arch, bool /*deterministic*/,
                                  int /*packed_rows*/, Variant variant) {
  TileConfig config = plain_forward_default_config(head_dim, dtype, causal, arch);
  if (!variant.any()) return config;
  if (is_wgmma(config.scheme)) {
    config.blocks_per_sm = 1;
  } else if (config.rows_per_warp() > 16 && config.block_m % (16 * 2 * config.warps) == 0) {
    config.warps *= 2;
  }
  return config;
}

}  // namespace

const KernelFamily& forward_family() {
  static const KernelFamily family{Family::fwd,      validate_forward, forward_smem_bytes, forward_accumulator_registers,
                                   /*helpers*/ {}, emit_forward,     forward_default_config};
  return family;
}

}  // namespace fa2
