// The backward family's rules (FA2 paper, Algorithm 2). A thread block owns block_n keys of one KV head:
// their K and V stay in shared memory and their dK, dV accumulators in registers while the block walks
// block_m query rows at a time over every query head of the KV head's group. Each step recomputes
// S = Q K^T and P, forms dP = dO V^T and dS = P * (dP - D), keeps P and dS (16-bit) in shared memory for
// the transposed products dV += P^T dO and dK += dS^T Q, and adds dQ = dS K into an fp32 accumulator.
#include "codegen/bwd_family.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include "codegen/family.hpp"
#include "codegen/snippet_source.hpp"
#include "codegen/variant_source.hpp"

namespace fa2 {

std::optional<WarpGrid> squarest_warp_grid(int rows, int cols, int warps) {
  std::optional<WarpGrid> best;
  int best_gap = 0;
  for (int warps_m = warps; warps_m >= 1; --warps_m) {
    if (warps % warps_m != 0) continue;
    const int warps_n = warps / warps_m;
    if (rows % (16 * warps_m) != 0 || cols % (16 * warps_n) != 0) continue;
    const int gap = std::abs(rows / warps_m - cols / warps_n);
    if (!best || gap < best_gap) {
      best = WarpGrid{warps_m, warps_n};
      best_gap = gap;
    }
  }
  return best;
}

std::optional<BwdWarpGrids> bwd_warp_grids(const TileConfig& c) {
  const auto sdp = squarest_warp_grid(c.block_m, c.block_n, c.warps);
  const auto dkv = squarest_warp_grid(c.block_n, c.head_dim, c.warps);
  const auto dq = squarest_warp_grid(c.block_m, c.head_dim, c.warps);
  if (!sdp || !dkv || !dq) return std::nullopt;
  return BwdWarpGrids{*sdp, *dkv, *dq};
}

namespace {

// The wgmma scheme's wide kernel (head dims over 128): both warpgroups share 64 keys and split the head dim.
bool is_wide_wgmma(const TileConfig& c) { return c.scheme == Scheme::wgmma && c.head_dim > 128; }

// The wgmma scheme: one warpgroup per 64 keys, S^T and dP^T of the whole query block and dK, dV of the
// whole head dim in its registers; at d256 the wide kernel (codegen rules mirror
// templates/fa2/bwd/bwd_config.cuh, BwdWgmmaConfig and BwdWgmmaWideConfig).
std::optional<std::string> validate_backward_wgmma(const TileConfig& c) {
  if (c.arch != Arch::sm_90a)
    return fmt::format("scheme {} needs arch sm_90a, not {}", scheme_name(c.scheme), arch_name(c.arch));
  if (c.scheme == Scheme::wgmma_ss && c.head_dim > 128)
    return fmt::format("scheme wgmma_ss is for head dims 64 and 128: at head_dim {} the wgmma backward already "
                       "reads P^T and dS^T from shared memory (use wgmma)",
                       c.head_dim);
  if (is_wide_wgmma(c)) {
    if (c.head_dim != 256)
      return fmt::format("the wgmma backward splits the head dim into whole 64-column pages per warpgroup: "
                         "head_dim {} must be 64, 128 or 256 (use mma_sync)",
                         c.head_dim);
    if (c.warps != 8 || (c.block_m != 64 && c.block_m != 128) || c.block_n != 64)
      return fmt::format("the wgmma backward at d256 has two warpgroups over 64 keys: warps 8, block_m 64 or 128, "
                         "block_n 64 (not {}, {}, {})",
                         c.warps, c.block_m, c.block_n);
    return std::nullopt;
  }
  if (c.head_dim != 64 && c.head_dim != 128)
    return fmt::format("the wgmma backward keeps dK and dV of the whole head dim in registers: head_dim {} must be "
                       "64 or 128 (use mma_sync)",
                       c.head_dim);
  if (c.warps != 4 && c.warps != 8)
    return fmt::format("the wgmma backward needs one or two warpgroups: warps {} must be 4 or 8", c.warps);
  if (c.block_n != 16 * c.warps)
    return fmt::format("the wgmma backward needs block_n = 64 keys per warpgroup = {}, not {}", 16 * c.warps,
                       c.block_n);
  if (c.block_m != 64 && c.block_m != 128)
    return fmt::format("the wgmma backward needs block_m 64 or 128, not {}", c.block_m);
  const int warpgroups = c.warps / 4;
  const bool dq_splits_rows = c.block_m == 64 * warpgroups;
  if (!dq_splits_rows && !(c.block_m == 64 && (c.head_dim / warpgroups) % 64 == 0))
    return fmt::format("dQ ({} x {}) does not split into whole 64 x 64 tiles over {} warpgroup(s): use block_m {}",
                       c.block_m, c.head_dim, warpgroups, 64 * warpgroups);
  return std::nullopt;
}

std::optional<std::string> validate_backward(const TileConfig& c) {
  if (c.scheme == Scheme::wgmma || c.scheme == Scheme::wgmma_ss) return validate_backward_wgmma(c);
  if (c.scheme != Scheme::mma_sync)
    return fmt::format("scheme {} has no backward kernel: the backward has mma_sync, wgmma and wgmma_ss",
                       scheme_name(c.scheme));
  if (c.block_n % 32 != 0)
    return fmt::format("block_n {} must be a multiple of 32 (P and dS are kept as whole 32-column smem pages)",
                       c.block_n);
  auto no_grid = [&](const char* gemm, int rows, int cols) {
    return fmt::format("{} warps cannot tile the {} x {} {} product in 16 x 16 multiples: change warps, block_m or "
                       "block_n",
                       c.warps, rows, cols, gemm);
  };
  if (!squarest_warp_grid(c.block_m, c.block_n, c.warps)) return no_grid("S/dP", c.block_m, c.block_n);
  if (!squarest_warp_grid(c.block_n, c.head_dim, c.warps)) return no_grid("dK/dV", c.block_n, c.head_dim);
  if (!squarest_warp_grid(c.block_m, c.head_dim, c.warps)) return no_grid("dQ", c.block_m, c.head_dim);
  return std::nullopt;
}

int backward_smem_bytes(const TileConfig& c) {
  const bool wgmma = is_wgmma(c.scheme);
  const int kv = 2 * c.block_n * c.head_dim * 2;               // K and V of the block's keys
  const int q_do = c.stages * 2 * c.block_m * c.head_dim * 2;  // Q and dO, `stages` steps deep
  // P and dS of the current step (the wgmma scheme below d256: dS^T only, P^T stays in registers)
  const int p_ds = (c.scheme == Scheme::wgmma && !is_wide_wgmma(c) ? 1 : 2) * c.block_m * c.block_n * 2;
  const int rows = c.stages * 2 * c.block_m * 4;  // LSE and D of each staged step
  // wgmma descriptors need 1024-byte aligned tiles: the kernel rounds its base up into 1 KB of slack.
  return kv + q_do + p_ds + rows + (wgmma ? 1024 : 0);
}

int backward_accumulator_registers(const TileConfig& c) {
  // dK and dV live through the whole block; S and dP, then dQ, live within a step (the same counts for
  // both schemes: wgmma spreads the same products over its warpgroups' threads; the wide wgmma kernel
  // makes dQ 64 query rows at a time).
  const int dkv = 2 * c.block_n * c.head_dim / c.threads();
  const int sdp = 2 * c.block_m * c.block_n / c.threads();
  const int dq = (is_wide_wgmma(c) ? 64 : c.block_m) * c.head_dim / c.threads();
  return dkv + (sdp > dq ? sdp : dq);
}

// One module, three kernels: the main kernel of the config's scheme, then the row-wise helpers around it.
std::string emit_backward(const TileConfig& config) {
  const bool wgmma = is_wgmma(config.scheme), wide = is_wide_wgmma(config);
  // The config type: what is tuned, and for mma_sync the warp grids computed here, on the host, once.
  const std::string shape = fmt::format(
      "/*head_dim*/ {}, /*block_m*/ {}, /*block_n*/ {},\n{indent}/*warps*/ {}, /*stages*/ {}, /*causal*/ {}, "
      "/*bf16*/ {},\n{indent}/*deterministic*/ {}",
      config.head_dim, config.block_m, config.block_n, config.warps, config.stages, config.causal ? "true" : "false",
      config.dtype == DType::bf16 ? "true" : "false", config.deterministic ? "true" : "false",
      fmt::arg("indent", std::string(wgmma ? 22 : 30, ' ')));
  std::string config_type;
  if (!wgmma) {
    const BwdWarpGrids grids = *bwd_warp_grids(config);
    config_type = fmt::format("BwdConfig<{},\n{}/*warps along the rows of S/dP, dK/dV, dQ*/ {}, {}, {}{}>", shape,
                              std::string(30, ' '), grids.sdp.warps_m, grids.dkv.warps_m, grids.dq.warps_m,
                              variant_template_argument(config.variant));
  } else {
    config_type = fmt::format("{}<{}{}>", wide ? "BwdWgmmaWideConfig" : "BwdWgmmaConfig", shape,
                              variant_template_argument(config.variant));
  }
  const char* kernel = !wgmma ? "bwd_kernel" : wide ? "bwd_kernel_wgmma_wide" : "bwd_kernel_wgmma";
  // The narrow wgmma kernel's operand choice: P^T and dS^T from registers (wgmma) or shared memory (wgmma_ss).
  const std::string call =
      wgmma && !wide ? fmt::format("{}<Config, /*shared A*/ {}>", kernel,
                                   config.scheme == Scheme::wgmma_ss ? "true" : "false")
                     : fmt::format("{}<Config>", kernel);
  const bool tile_lists = uses_tile_lists(config);
  // The user's snippets (if any) sit between the includes and the config.
  const std::string user_mods = user_mods_struct(config, tile_lists ? 5 : 4);
  return fmt::format(
      "// Generated by fa2jit: FlashAttention-2 backward, scheme {scheme}, {arch}.\n"
      "#include \"fa2/bwd/{kernel}.cuh\"{tile_lists_include}\n"
      "\n"
      "{user_mods}"
      "using Config = fa2::{config_type};\n"
      "\n"
      "extern \"C\" __global__ void __launch_bounds__(Config::kThreads, {blocks_per_sm})\n"
      "{name}(const fa2::BwdParams params{variant_parameter}) {{\n"
      "  fa2::{call}(params{variant_argument});\n"
      "}}\n"
      "\n"
      "extern \"C\" __global__ void __launch_bounds__(fa2::kBwdRowThreads)\n"
      "{name}_pre(const fa2::BwdParams params) {{\n"
      "  fa2::bwd_preprocess<Config>(params);\n"
      "}}\n"
      "\n"
      "extern \"C\" __global__ void __launch_bounds__(fa2::kBwdRowThreads)\n"
      "{name}_post(const fa2::BwdParams params) {{\n"
      "  fa2::bwd_convert_dq<Config>(params);\n"
      "}}\n"
      "{tile_lists}",
      fmt::arg("user_mods", user_mods),
      fmt::arg("tile_lists_include", tile_lists ? "\n#include \"fa2/variant/block_mask.cuh\"" : ""),
      fmt::arg("tile_lists", tile_lists_entry(config, "BwdParams", "bwd_tile_lists")),
      fmt::arg("scheme", scheme_name(config.scheme)), fmt::arg("arch", arch_name(config.arch)),
      fmt::arg("kernel", kernel), fmt::arg("call", call), fmt::arg("config_type", config_type),
      fmt::arg("blocks_per_sm", config.blocks_per_sm), fmt::arg("name", config.name()),
      fmt::arg("variant_parameter", variant_kernel_parameter(config.variant)),
      fmt::arg("variant_argument", variant_call_argument(config.variant)));
}

TileConfig backward_default_config(int head_dim, DType dtype, bool causal, Arch arch, bool deterministic,
                                   int /*packed_rows*/, Variant /*variant*/) {
  TileConfig config;
  config.family = Family::bwd;
  config.head_dim = head_dim;
  config.dtype = dtype;
  config.causal = causal;
  config.arch = arch;
  config.deterministic = deterministic;
  config.warps = 8;
  config.stages = 2;
  if (arch == Arch::sm_90a && (head_dim == 64 || head_dim == 128 || head_dim == 256)) {
    // wgmma, two warpgroups: of 64 keys each (1.0-1.35x the mma_sync defaults and PyTorch's FA2 over the FA2
    // grid probe on the H200, bench/NOTES.md "Backward v1"), or at d256 sharing 64 keys.
    config.scheme = Scheme::wgmma;
    config.block_n = head_dim == 256 ? 64 : 128;
    config.block_m = head_dim == 64 ? 128 : 64;
    return config;
  }
  config.scheme = Scheme::mma_sync;
  // FA2's backward tiles where they compile without spills (NVRTC 13.0, sm_80 and sm_90a): 64 query rows per
  // step, 128 keys per block up to d64 and 64 beyond (FA2's 128 x 128 at d64 and 64 x 128 at d128 spill
  // 120-180 bytes here). Archs with less shared memory take the first of the fallbacks that fits.
  struct Tiles {
    int block_m, block_n, warps, stages;
  };
  const int block_n = head_dim <= 64 ? 128 : 64;
  const Tiles preferences[] = {{64, block_n, 8, 2}, {64, block_n, 8, 1}, {64, 64, 8, 1},
                               {64, 32, 4, 1},      {32, 64, 4, 1},      {32, 32, 4, 1}};
  for (const Tiles& tiles : preferences) {
    config.block_m = tiles.block_m;
    config.block_n = tiles.block_n;
    config.warps = tiles.warps;
    config.stages = tiles.stages;
    if (!config.validate()) break;
  }
  return config;
}

}  // namespace

const KernelFamily& backward_family() {
  static const KernelFamily family{Family::bwd,     validate_backward, backward_smem_bytes,   backward_accumulator_registers,
                                   {"_pre", "_post"}, emit_backward,    backward_default_config};
  return family;
}

}  // namespace fa2
