// fa2-tune import: merge another cache file (an export, or another machine's cache) into this one.
// Kernels are keyed by everything that shapes their code, so merging never mixes incompatible ones;
// of two tunings of the same key, the newer wins.
#include <fmt/core.h>

#include <memory>

#include "cli/commands.hpp"
#include "cli/support.hpp"

namespace fa2::cli {

Command setup_import(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ImportOptions>();
  CLI::App* sub = app.add_subcommand("import", "Merge another cache file into the cache (newer tunings win)");
  sub->add_option("path", options->source, "The cache file to merge in")->required();
  return {sub, [options, &global] { return run_import(*options, global); }};
}

int run_import(const ImportOptions& options, const GlobalOptions& global) {
  Cache cache = open_writable_cache(global, "import");
  const ImportStats stats = cache.import_from(options.source);
  fmt::print("imported {} into {}\n", options.source, cache.path());
  fmt::print("kernels  {} added, {} already present\n", stats.kernels_added, stats.kernels_skipped);
  fmt::print("tunings  {} added, {} replaced (theirs newer), {} kept (ours newer or equal)\n", stats.tunings_added,
             stats.tunings_replaced, stats.tunings_kept);
  return kOk;
}

}  // namespace fa2::cli
