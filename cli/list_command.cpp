// fa2-tune list: what the cache holds. Tunings (the winner per device and problem class) by default,
// compiled kernels with --kernels, or both as JSON for scripts.
#include <fmt/core.h>

#include <map>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/json.hpp"
#include "cli/support.hpp"
#include "cli/table.hpp"

namespace fa2::cli {
namespace {

std::string kernel_json(const CachedKernel& k) {
  const TileConfig& c = k.config;
  return JsonObject()
      .add("cubin_key", k.cubin_key)
      .add("config", c.name())
      .add("arch", arch_name(c.arch))
      .add("dtype", dtype_name(c.dtype))
      .add("head_dim", c.head_dim)
      .add("causal", c.causal)
      .add("block_m", c.block_m)
      .add("block_n", c.block_n)
      .add("warps", c.warps)
      .add("stages", c.stages)
      .add("scheme", scheme_name(c.scheme))
      .add("blocks_per_sm", c.blocks_per_sm)
      .add("registers", k.resources.registers)
      .add("spill_store_bytes", k.resources.spill_store_bytes)
      .add("spill_load_bytes", k.resources.spill_load_bytes)
      .add("compile_ms", k.compile_ms)
      .add("nvrtc_version", k.nvrtc_version)
      .add("template_hash", k.template_hash)
      .add("created_at", k.created_at)
      .str();
}

void print_json(const std::vector<TuningRecord>& tunings, const std::vector<CachedKernel>& kernels) {
  std::vector<std::string> t, k;
  for (const TuningRecord& record : tunings) t.push_back(tuning_json(record).str());
  for (const CachedKernel& kernel : kernels) k.push_back(kernel_json(kernel));
  fmt::print("{{\n  \"tunings\": {},\n  \"kernels\": {}\n}}\n", json_array(t, 4), json_array(k, 4));
}

void print_tunings(const std::vector<TuningRecord>& tunings) {
  Table table({"problem", "device", "winner", ">ms", ">TFLOP/s", "created"});
  for (const TuningRecord& t : tunings)
    table.add({t.problem_key, t.device_key, t.winner.name(), fixed(t.time_ms, 3), fixed(t.tflops, 1), t.created_at});
  if (table.empty())
    fmt::print("no tunings\n");
  else
    table.print();
}

void print_kernels(const std::vector<CachedKernel>& kernels) {
  Table table({"cubin key", "config", ">regs", ">spills", ">compile ms", "created"});
  for (const CachedKernel& k : kernels)
    table.add({k.cubin_key, k.config.name(),
               k.resources.registers >= 0 ? std::to_string(k.resources.registers) : "-",  // ptxas did not say
               std::to_string(k.resources.spill_store_bytes + k.resources.spill_load_bytes),
               fmt::format("{:.0f}", k.compile_ms), k.created_at});
  if (table.empty())
    fmt::print("no kernels\n");
  else
    table.print();
}

// "kernels: 42 (sm_80 30, sm_90a 12)"
std::string kernel_summary(const std::vector<CachedKernel>& kernels) {
  std::map<std::string, int> per_arch;
  for (const CachedKernel& k : kernels) ++per_arch[arch_name(k.config.arch)];
  std::string parts;
  for (const auto& [arch, count] : per_arch) parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", arch, count);
  return fmt::format("kernels: {}{}", kernels.size(), parts.empty() ? "" : " (" + parts + ")");
}

}  // namespace

Command setup_list(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ListOptions>();
  CLI::App* sub = app.add_subcommand("list", "List the cache's tunings, or with --kernels its compiled kernels");
  sub->add_flag("--kernels", options->kernels, "List the kernels instead of the tunings");
  sub->add_flag("--json", options->json, R"(Print {"tunings": [...], "kernels": [...]} as JSON)");
  return {sub, [options, &global] { return run_list(*options, global); }};
}

int run_list(const ListOptions& options, const GlobalOptions& global) {
  std::vector<TuningRecord> tunings;
  std::vector<CachedKernel> kernels;
  if (const std::optional<Cache> cache = open_existing_cache(global)) {
    tunings = cache->list_tunings();
    kernels = cache->list_kernels();
  }
  if (options.json) {
    print_json(tunings, kernels);
    return kOk;
  }
  fmt::print("cache: {}\n", cache_path(global));
  if (options.kernels) {
    print_kernels(kernels);
  } else {
    print_tunings(tunings);
    fmt::print("{}\n", kernel_summary(kernels));
  }
  return kOk;
}

}  // namespace fa2::cli
