// fa2-tune clear: empty the cache. Rebuilding it can take hours of tuning, so it asks for --yes
// rather than prompting (a prompt would hang scripts and CI).
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "cli/commands.hpp"
#include "cli/support.hpp"

namespace fa2::cli {

Command setup_clear(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ClearOptions>();
  CLI::App* sub = app.add_subcommand("clear", "Delete every kernel, tuning and measurement from the cache");
  sub->add_flag("--yes", options->yes, "Really delete (required)");
  return {sub, [options, &global] { return run_clear(*options, global); }};
}

int run_clear(const ClearOptions& options, const GlobalOptions& global) {
  // With FA2JIT_CACHE_PATH, only its writable layer is cleared: the others are never written.
  const bool layered = global.db.empty() && Cache::search_path_from_env();
  const std::string path = layered ? open_writable_cache(global, "clear").path() : cache_path(global);
  if (!options.yes) {
    fmt::print(stderr, "fa2-tune: clear deletes everything in {}; pass --yes to do it\n", path);
    return kError;
  }
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    fmt::print("nothing to clear: no cache at {}\n", path);
    return kOk;
  }
  Cache cache = Cache::open(path);
  const CacheInfo before = cache.info();
  cache.clear();
  fmt::print("cleared {}: {} kernels, {} tunings, {} measurements\n", path, before.kernels, before.tunings,
             before.measurements);
  return kOk;
}

}  // namespace fa2::cli
