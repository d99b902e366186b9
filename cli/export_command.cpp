// fa2-tune export: a consistent copy of the cache (while others may be writing to it), to move
// built kernels and tunings to other machines.
#include <fmt/core.h>

#include <memory>

#include "cli/commands.hpp"
#include "cli/support.hpp"

namespace fa2::cli {

Command setup_export(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ExportOptions>();
  CLI::App* sub = app.add_subcommand("export", "Copy the cache to a new file (which must not exist)");
  sub->add_option("path", options->destination, "The file to create")->required();
  return {sub, [options, &global] { return run_export(*options, global); }};
}

int run_export(const ExportOptions& options, const GlobalOptions& global) {
  const std::optional<Cache> cache = open_existing_cache(global);
  if (!cache) {
    fmt::print(stderr, "fa2-tune: no cache at {} to export\n", cache_path(global));
    return kNotFound;
  }
  cache->export_to(options.destination);
  const CacheInfo info = cache->info();
  fmt::print("exported {} kernels and {} tunings from {} to {}\n", info.kernels, info.tunings, cache->path(),
             options.destination);
  return kOk;
}

}  // namespace fa2::cli
