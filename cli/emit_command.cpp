// fa2-tune emit: print the CUDA source generated for one TileConfig; with --compile, compile it
// with NVRTC and report what ptxas made of it (registers, spills, shared memory), which is how a
// config is judged before any GPU is involved.
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "common/variant.hpp"
#include "codegen/emit.hpp"
#include "runtime/driver.hpp"
#include "common/error.hpp"
#include "runtime/module.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2::cli {
namespace {

// The validators on --dtype/--arch already rejected unknown names; this only guards direct callers
// of run_emit, which get an fa2::Error rather than a bad_optional_access.
template <class T>
T parsed_or_throw(const std::optional<T>& value, const char* what, const std::string& text) {
  if (!value) throw Error(Stage::Argument, "", fmt::format("unknown {} '{}'", what, text));
  return *value;
}

TileConfig config_from(const EmitOptions& options) {
  const DType dtype = parsed_or_throw(parse_dtype(options.dtype), "dtype", options.dtype);
  const Arch arch = parsed_or_throw(parse_arch(options.arch), "arch", options.arch);
  // (L, 0) and (-1, 0) windows are causal themselves (common/variant.hpp); no sequence lengths bound a side here.
  constexpr int kLongest = 1 << 30;
  const bool causal = effective_mask(options.causal, variant_args_of(options.pass), kLongest, kLongest).causal;
  Variant variant = variant_of_flags(options.pass, causal);
  variant.user = user_mods_of_flags(options.snippets);
  return apply_tile_flags(options.tile, default_config(family_of(options.pass), options.head_dim, dtype, causal, arch,
                                                       options.pass.deterministic, 0, variant));
}

std::string bytes(int value) { return fmt::format("{} bytes", value); }

// With --source the report follows the kernel on stdout as comments, so the whole output is still
// a source file that can be saved and compiled.
void print_report(const TileConfig& config, const CompiledKernel& kernel, bool as_comment) {
  const char* prefix = as_comment ? "// " : "";
  auto line = [prefix](const char* key, const std::string& value) {
    fmt::print("{}{:<14}{}\n", prefix, key, value);
  };
  const ResourceUsage& use = kernel.resources;
  line("kernel", kernel.kernel_name);
  // A family with helper kernels (the backward's preprocess and dQ conversion) builds them into the same
  // module; the figures below are the main kernel's, the one the tile flags shape.
  const std::vector<std::string> entry_points = config.entry_points();
  if (entry_points.size() > 1) {
    std::string helpers;
    for (std::size_t i = 1; i < entry_points.size(); ++i) helpers += (i > 1 ? ", " : "") + entry_points[i];
    line("helpers", helpers);
  }
  line("arch", arch_name(kernel.arch));
  line("threads", std::to_string(config.threads()));
  line("blocks/SM", std::to_string(config.blocks_per_sm));
  line("registers", use.registers >= 0 ? std::to_string(use.registers) : "unknown");
  line("spill stores", bytes(use.spill_store_bytes));
  line("spill loads", bytes(use.spill_load_bytes));
  line("stack frame", bytes(use.stack_frame_bytes));
  line("static smem", bytes(use.static_smem_bytes));
  line("dynamic smem", bytes(config.smem_bytes()));
  line("compile time", fmt::format("{:.1f} ms", kernel.compile_ms));
  line("nvrtc", nvrtc_version());
}

void print_source(const std::string& source) {
  fmt::print("{}{}", source, !source.empty() && source.back() == '\n' ? "" : "\n");
}

}  // namespace

void add_tile_flags(CLI::App* sub, TileFlags& flags) {
  const std::string from_default = " (default: the built-in config's)";
  sub->add_option("--block-m", flags.block_m, "Query rows per block (bwd: per step)" + from_default)
      ->check(positive_int());
  sub->add_option("--block-n", flags.block_n, "Key rows per tile (bwd: per block)" + from_default)
      ->check(positive_int());
  sub->add_option("--warps", flags.warps, "Warps per block" + from_default)->check(positive_int());
  sub->add_option("--stages", flags.stages, "K/V tiles in flight (bwd: Q/dO tiles)" + from_default)
      ->check(positive_int());
  sub->add_option("--blocks-per-sm", flags.blocks_per_sm,
                  "Resident blocks per SM the kernel is compiled for (caps registers)" + from_default)
      ->check(positive_int());
  sub->add_option("--scheme", flags.scheme,
                  "Kernel scheme, mma_sync|wgmma|wgmma_overlap|wgmma_ss|tma_ws|tma_ws_overlap|tma_ws_pingpong "
                  "(wgmma_ss: backward only; tma_ws*: forward on sm_90a, with tiles of their own)" +
                      from_default)
      ->check(parsed_by(parse_scheme, "scheme",
                        "mma_sync|wgmma|wgmma_overlap|wgmma_ss|tma_ws|tma_ws_overlap|tma_ws_pingpong"));
  sub->add_option("--splits", flags.splits,
                  "kvc: blocks each sequence's keys are split over, 0 = chosen at launch" + from_default)
      ->check(CLI::Range(0, kMaxKeySplits));
}

TileConfig apply_tile_flags(const TileFlags& flags, TileConfig config) {
  // The scheme first: a scheme with tiles of its own (tma_ws) brings them, and the other flags refine them.
  if (!flags.scheme.empty())
    config = with_scheme(config, parsed_or_throw(parse_scheme(flags.scheme), "scheme", flags.scheme));
  if (flags.block_m > 0) config.block_m = flags.block_m;
  if (flags.block_n > 0) config.block_n = flags.block_n;
  if (flags.warps > 0) config.warps = flags.warps;
  if (flags.stages > 0) config.stages = flags.stages;
  if (flags.blocks_per_sm > 0) config.blocks_per_sm = flags.blocks_per_sm;
  if (flags.splits >= 0) config.splits = flags.splits;
  return config;
}

Command setup_emit(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<EmitOptions>();
  CLI::App* sub = app.add_subcommand(
      "emit", "Print a config's generated CUDA source, or with --compile its resources");

  add_pass_flags(sub, options->pass);
  add_kernel_flags(sub, options->head_dim, options->dtype, options->causal);
  add_variant_flags(sub, options->pass);
  add_snippet_flags(sub, options->snippets);
  sub->add_option("--arch", options->arch, "Target architecture")
      ->check(parsed_by(parse_arch, "arch", "sm_80|sm_86|sm_89|sm_90a"))
      ->capture_default_str();

  add_tile_flags(sub, options->tile);

  sub->add_flag("--compile", options->compile,
                "Compile with NVRTC and print a resource report instead of the source");
  sub->add_flag("--source", options->source, "With --compile, print the source too");

  return {sub, [options, &global] { return run_emit(*options, global); }};
}

int run_emit(const EmitOptions& options, const GlobalOptions& global) {
  const TileConfig config = config_from(options);
  if (const auto reason = config.validate()) {
    fmt::print(stderr, "fa2-tune: invalid config {}: {}\n", config.name(), *reason);
    return kInvalidConfig;
  }

  const std::string source = emit(config);
  if (!options.compile) {
    print_source(source);
    return kOk;
  }

  CompiledKernel kernel = compile_source(source, config.name(), config.arch);
  // A cubin served from the driver's compute cache comes without a ptxas report: on a machine whose GPU
  // can load it, read the figures off the loaded function instead.
  if (!kernel.resources.known() && driver::available()) {
    const driver::DeviceInfo device = driver::device_info(driver::ensure_context());
    if (arch_for_compute_capability(device.cc_major, device.cc_minor) == config.arch) {
      const Module module = Module::load(kernel.cubin);
      complete_resources(kernel.resources, module.function(config.name()));
    }
  }
  if (options.source) print_source(source);
  print_report(config, kernel, options.source);
  if (global.verbose && !kernel.log.empty()) {
    // A successful compile can still carry warnings worth seeing while experimenting.
    fmt::print(stderr, "{}{}", kernel.log, kernel.log.back() == '\n' ? "" : "\n");
  }
  return kOk;
}

}  // namespace fa2::cli
