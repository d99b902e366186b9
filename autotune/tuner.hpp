// The autotuner: for one problem on the current device, enumerate the search space, compile what the
// cache does not already hold (in parallel), reject every config whose output differs from the fp32
// reference, time the rest, and keep the fastest. Every measurement is returned (and stored).
#pragma once

#include <functional>
#include <string>

#include "autotune/benchmark.hpp"
#include "autotune/cache.hpp"
#include "autotune/problem_shape.hpp"

namespace fa2 {

struct TuneProgress {
  const char* phase = "";  // "compile" | "measure"
  int done = 0;
  int total = 0;
  std::string detail;  // the config just finished and its outcome
};

struct TuneOptions {
  int compile_threads = 0;  // 0: one per core
  TimingOptions timing;
  std::function<void(const TuneProgress&)> progress;  // called from the tuning thread (and compile workers, under a lock)
  // When set, a cache error while storing the finished tuning goes here instead of being thrown, and the
  // record is still returned: forward() keeps a winner it paid for even on a full disk.
  std::string* store_fault = nullptr;
};

class ProblemBench;

// Bytes per thread of spill stores, of spill loads and of local memory, each, above which the tuner does not
// time a config. A little is worth it: the fastest d128 kernel at 2 blocks per SM stores 40 bytes and was
// 1.30x its 1-block twin on short sequences (bench/NOTES.md); every config that spilled hundreds of bytes
// was slower. Local memory is bounded too, for cubins whose ptxas report (the spill figures) is unknown.
inline constexpr int kMaxTunedLocalBytes = 128;
bool within_tuned_spill_limit(const ResourceUsage& resources);

// The tuner's inner step, also used by benchmarks: loads `cubin`, rejects it if it spills over
// kMaxTunedLocalBytes (unless `allow_spills`), if its output on the bench's check problem differs from the
// reference, or if it leaves an output of the timed problem unwritten; else times it over the bench's
// rotating input sets.
Measurement measure_config(const TileConfig& config, const std::string& cubin_key, const std::vector<char>& cubin,
                           const ResourceUsage& resources, ProblemBench& bench, const TimingOptions& timing,
                           bool allow_spills = false);

// The current context's device, as the cache keys it.
DeviceFingerprint current_device_fingerprint();

// Tunes `shape` (its family's kernels; its ProblemClass is what the result is stored under). With a cache, cubins found there
// are reused, compiled ones and the tuning with all its measurements are stored. Throws
// fa2::Error(Stage::Tune) when no candidate both compiles cleanly and passes the correctness check.
TuningRecord tune(const ProblemShape& shape, Cache* cache, const TuneOptions& options = {});

}  // namespace fa2
