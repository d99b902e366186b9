// fa2-tune clear: empty the cache. Rebuilding it can take hours of tuning, so it asks for --yes
// rather than prompting (a prompt would hang scripts and CI).
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "cli/commands.hpp"
#include "cli/support.hpp"
#include "common/error.hpp"

namespace fa2::cli {

Command setup_clear(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ClearOptions>();
  CLI::App* sub = app.add_subcommand("clear", "Delete every kernel, tuning and measurement from the cache");
  sub->add_flag("--yes", options->yes, "Really delete (required)");
  return {sub, [options, &global] { return run_clear(*options, global); }};
}

int run_clear(const ClearOptions& options, const GlobalOptions& global) {
  // With FA2JIT_CACHE_PATH, only its writable layer is cleared: the others are never written.
  const auto list = global.db.empty() ? Cache::search_path_from_env() : std::nullopt;
  std::string path = cache_path(global);
  if (list) {
    const auto writable = Cache::writable_file(Cache::search_path_files(*list));
    if (!writable)
      throw Error(Stage::Cache, "", fmt::format("clear needs a cache it may write, and no entry of "
                                                "FA2JIT_CACHE_PATH='{}' may be written; pass --db", *list));
    path = *writable;
  }
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
