// How a pass picks the config of a problem class under on-first-use and cache-only, apart from the GPU
// work it may start (tune_now), so that its handling of cache faults can be tested on any machine.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "autotune/cache.hpp"
#include "autotune/problem_shape.hpp"
#include "codegen/tile_config.hpp"
#include "common/attention_args.hpp"

namespace fa2 {

struct TunedResolution {
  TileConfig config;
  std::optional<Cache> cache;  // open: the kernel's cubin is looked up there (and stored, where writable)
  bool tuned = false;          // tune_now ran and gave `config`
  std::string cache_fault;     // what went wrong with the cache and what was done instead; "" when nothing
};

// Tunes the class now and stores the result in `cache`, putting a failure to store in `*store_fault`
// instead of throwing it, so that the winner is not lost with it.
using TuneNow = std::function<TuningRecord(Cache& cache, std::string* store_fault)>;

// The `fa2-tune tune` command line that tunes the class of `shape` into `cache_path` (no --db when "": the
// default cache), for messages that tell a user how to fill a cache ahead of a call.
std::string tune_command(const ProblemShape& shape, const std::string& cache_path);

// Why a cached winner must not run the class of `shape` on `arch` (another family, head dim, dtype, mask
// or arch, atomics for a class that asked for determinism, or a config that does not validate), or ""
// when it may.
std::string winner_mismatch(const TileConfig& winner, const ProblemShape& shape, Arch arch);

// policy is on_first_use or cache_only; `requested_path` "" means Cache::open_default() (FA2JIT_CACHE_PATH's
// layers, else Cache::default_path()). A cache that cannot be written is read: its winners and cubins
// serve, and a tuning made here is kept in memory (cache_fault says it was not stored).
// on-first-use: the cached winner; on a miss, a stale tuning (TuningRecord::space_hash not this build's)
//   or a cached winner not for this class, tune_now. A cache
//   fault (any fa2::Error of Stage::Cache) before a winner is in hand gives the built-in default config
//   with no cache; a fault storing a tuned winner keeps the winner. Either way cache_fault says so.
// cache-only: the cached winner; a fault, a miss or an unusable winner throws fa2::Error(Stage::Cache)
//   naming the path and the `fa2-tune tune` command that fills it.
// Errors of other stages (the driver, a tuning where no candidate passed) are thrown as they come.
TunedResolution resolve_tuned(TunePolicy policy, const ProblemShape& shape, Arch arch, const std::string& tuning_key,
                              const std::string& requested_path, const TuneNow& tune_now);

}  // namespace fa2
