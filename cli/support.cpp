#include "cli/support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli/json.hpp"
#include "common/error.hpp"
#include "runtime/driver.hpp"

namespace fa2::cli {

std::string cache_path(const GlobalOptions& global) {
  if (!global.db.empty()) return global.db;
  if (const auto list = Cache::search_path_from_env()) return "FA2JIT_CACHE_PATH=" + *list;
  return Cache::default_path();
}

std::optional<Cache> open_existing_cache(const GlobalOptions& global) {
  if (global.db.empty()) {
    if (const auto list = Cache::search_path_from_env()) {
      // Reading creates nothing: a layer that does not exist yet is skipped. Throws when no entry can be used.
      Cache cache = Cache::open_search_path(*list, /*create_missing=*/false);
      for (const std::string& skipped : cache.skipped()) fmt::print(stderr, "fa2-tune: skipped {}\n", skipped);
      return cache;
    }
  }
  const std::string path = cache_path(global);
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::nullopt;
  return Cache::open_for_reading(path);
}

Cache open_writable_cache(const GlobalOptions& global, const char* command) {
  if (!global.db.empty()) return Cache::open(global.db);
  const auto list = Cache::search_path_from_env();
  if (!list) return Cache::open(Cache::default_path());
  Cache cache = Cache::open_search_path(*list);
  for (const std::string& skipped : cache.skipped()) fmt::print(stderr, "fa2-tune: skipped {}\n", skipped);
  if (!cache.writable())
    throw Error(Stage::Cache, "",
                fmt::format("{} needs a cache it may write, and no entry of FA2JIT_CACHE_PATH='{}' may be written "
                            "(layers: {}); add a writable directory to it or pass --db",
                            command, *list, cache.describe()));
  return cache;
}

bool gpu_usable(const char* command) {
  std::string why;
  if (driver::available(&why)) return true;
  fmt::print(stderr, "fa2-tune: {} needs a GPU: {}\n", command, first_line(why));
  return false;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string family_counts(const std::vector<Family>& families) {
  std::string text;
  for (const Family family : {Family::fwd, Family::bwd, Family::kvc}) {
    const auto n = std::count(families.begin(), families.end(), family);
    if (n > 0) text += fmt::format("{}{} {}", text.empty() ? "" : ", ", family_name(family), n);
  }
  return text;
}

std::string fixed(double value, int decimals) { return value > 0 ? fmt::format("{:.{}f}", value, decimals) : "-"; }

JsonObject tuning_json(const TuningRecord& t) {
  JsonObject object;
  object.add("tuning_key", t.tuning_key)
      .add("device", t.device_key)
      .add("problem", t.problem_key)
      // The winner's: a backward class that does not ask for determinism may still be won by the ordered
      // dQ reduction, and what runs is what a script wants to know.
      .add("family", family_name(t.winner.family))
      .add("deterministic", t.winner.deterministic)
      .add("winner", t.winner.name())
      .add("winner_cubin_key", t.winner_cubin_key)
      .add("time_ms", t.time_ms)
      .add("tflops", t.tflops)
      .add("tune_seconds", t.tune_seconds)
      .add("space_hash", t.space_hash)
      .add("created_at", t.created_at);
  return object;
}

}  // namespace fa2::cli
