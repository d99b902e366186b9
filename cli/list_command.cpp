// fa2-tune list: what the cache holds. Tunings (the winner per device and problem class) by default,
// compiled kernels with --kernels, or both as JSON for scripts; --pass keeps one family's.
#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/json.hpp"
#include "cli/support.hpp"
#include "cli/table.hpp"
#include "common/error.hpp"

namespace fa2::cli {
namespace {

std::string kernel_json(const CachedKernel& k) {
  const TileConfig& c = k.config;
  return JsonObject()
      .add("cubin_key", k.cubin_key)
      .add("config", c.name())
      .add("family", family_name(c.family))
      .add("deterministic", c.deterministic)
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
      .add("splits", c.splits)
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

void print_tunings(const std::vector<TuningRecord>& tunings, const std::string& pass) {
  Table table({"pass", "problem", "device", "winner", ">ms", ">TFLOP/s", "created"});
  for (const TuningRecord& t : tunings)
    table.add({family_name(t.winner.family), t.problem_key, t.device_key, t.winner.name(), fixed(t.time_ms, 3),
               fixed(t.tflops, 1), t.created_at});
  if (table.empty())
    fmt::print("no {}tunings\n", pass.empty() ? "" : pass + " ");
  else
    table.print();
}

void print_kernels(const std::vector<CachedKernel>& kernels, const std::string& pass) {
  Table table({"pass", "cubin key", "config", ">regs", ">spills", ">compile ms", "created"});
  for (const CachedKernel& k : kernels)
    table.add({family_name(k.config.family), k.cubin_key, k.config.name(),
               k.resources.registers >= 0 ? std::to_string(k.resources.registers) : "-",  // ptxas did not say
               std::to_string(k.resources.spill_store_bytes + k.resources.spill_load_bytes),
               fmt::format("{:.0f}", k.compile_ms), k.created_at});
  if (table.empty())
    fmt::print("no {}kernels\n", pass.empty() ? "" : pass + " ");
  else
    table.print();
}

// "kernels: 42 (sm_80 30, sm_90a 12; fwd 40, bwd 2)"
std::string kernel_summary(const std::vector<CachedKernel>& kernels) {
  std::map<std::string, int> per_arch;
  std::vector<Family> families;
  for (const CachedKernel& k : kernels) {
    ++per_arch[arch_name(k.config.arch)];
    families.push_back(k.config.family);
  }
  std::string parts;
  for (const auto& [arch, count] : per_arch) parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", arch, count);
  if (!families.empty()) parts += "; " + family_counts(families);
  return fmt::format("kernels: {}{}", kernels.size(), parts.empty() ? "" : " (" + parts + ")");
}

// Keeps the items whose family --pass names (every item without --pass).
template <class Item, class FamilyOf>
void keep_pass(std::vector<Item>& items, const std::string& pass, FamilyOf family_of_item) {
  if (pass.empty()) return;
  const std::optional<Family> family = parse_family(pass);
  if (!family) throw Error(Stage::Argument, "", fmt::format("--pass must be fwd or bwd, got '{}'", pass));
  items.erase(std::remove_if(items.begin(), items.end(),
                             [&](const Item& item) { return family_of_item(item) != *family; }),
              items.end());
}

}  // namespace

Command setup_list(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ListOptions>();
  CLI::App* sub = app.add_subcommand("list", "List the cache's tunings, or with --kernels its compiled kernels");
  sub->add_flag("--kernels", options->kernels, "List the kernels instead of the tunings");
  sub->add_flag("--json", options->json, R"(Print {"tunings": [...], "kernels": [...]} as JSON)");
  sub->add_option("--pass", options->pass, "Only this kernel family's tunings and kernels, fwd, bwd or kvc (default: all)")
      ->check(parsed_by(parse_family, "pass", "fwd|bwd|kvc"));
  return {sub, [options, &global] { return run_list(*options, global); }};
}

int run_list(const ListOptions& options, const GlobalOptions& global) {
  std::vector<TuningRecord> tunings;
  std::vector<CachedKernel> kernels;
  if (const std::optional<Cache> cache = open_existing_cache(global)) {
    tunings = cache->list_tunings();
    kernels = cache->list_kernels();
  }
  keep_pass(tunings, options.pass, [](const TuningRecord& t) { return t.winner.family; });
  keep_pass(kernels, options.pass, [](const CachedKernel& k) { return k.config.family; });
  if (options.json) {
    print_json(tunings, kernels);
    return kOk;
  }
  fmt::print("cache: {}\n", cache_path(global));
  if (options.kernels) {
    print_kernels(kernels, options.pass);
  } else {
    print_tunings(tunings, options.pass);
    fmt::print("{}\n", kernel_summary(kernels));
  }
  return kOk;
}

}  // namespace fa2::cli
