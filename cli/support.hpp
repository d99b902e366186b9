// Helpers shared by the cache and GPU subcommands: where the cache is, opening it for reading, and
// the one-line refusal of commands that need a GPU.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autotune/cache.hpp"
#include "cli/commands.hpp"

namespace fa2::cli {

// --db, else FA2JIT_CACHE_PATH (a search list), else fa2::Cache::default_path(). Resolved only here, so
// commands that never touch the cache work even where no default location can be found.
std::string cache_path(const GlobalOptions& global);

// The cache opened for reading (every layer of FA2JIT_CACHE_PATH), or nullopt when no file exists yet:
// listing an empty cache should not create one.
std::optional<Cache> open_existing_cache(const GlobalOptions& global);

// The cache that takes this command's writes: --db's file, else FA2JIT_CACHE_PATH's layers (throws
// fa2::Error(Stage::Cache) when none of its entries may be written), else the default file.
Cache open_writable_cache(const GlobalOptions& global, const char* command);

// Whether a driver and GPU are usable; when not, prints "fa2-tune: <command> needs a GPU: <why>".
bool gpu_usable(const char* command);

std::string first_line(const std::string& text);

// "fwd 40, bwd 2": how many of `families` are of each family, forward first, leaving out absent ones;
// "" for none. The per-family counts of build, list and info.
std::string family_counts(const std::vector<Family>& families);

class JsonObject;
// A tuning's own fields as JSON (list prints it as is; show adds the measurements).
JsonObject tuning_json(const TuningRecord& t);
std::string fixed(double value, int decimals);  // "-" for values that were never measured (<= 0)

}  // namespace fa2::cli
