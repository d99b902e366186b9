#include "cli/support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli/json.hpp"
#include "runtime/driver.hpp"

namespace fa2::cli {

std::string cache_path(const GlobalOptions& global) {
  return global.db.empty() ? Cache::default_path() : global.db;
}

std::optional<Cache> open_existing_cache(const GlobalOptions& global) {
  const std::string path = cache_path(global);
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::nullopt;
  return Cache::open_for_reading(path);
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
  for (const Family family : {Family::fwd, Family::bwd}) {
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
