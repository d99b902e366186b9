// Offline cache building: compile the search space of some problem classes for one arch, with no GPU,
// and store the cubins so that a later `tune` on the target machine only benchmarks.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autotune/cache.hpp"
#include "autotune/compile_pool.hpp"
#include "autotune/problem_shape.hpp"

namespace fa2 {

struct BuildReport {
  int candidates = 0;  // distinct buildable configs over all classes
  int reused = 0;      // in the cache under the same cubin key (at the start, or stored meanwhile by another builder)
  int compiled = 0;
  int failed = 0;
  int spilling = 0;    // compiled and stored, but spilling over kMaxTunedLocalBytes: the tuner skips them
  std::vector<std::string> failures;  // "<config>: <first line of the error>"
};

// Problem classes with the same (dtype, head dim, causal) share a search space: configs are compiled once.
// Stored in batches, one transaction each: a killed build keeps the batches it finished, and a
// rerun compiles only the rest.
BuildReport build_kernels(const std::vector<ProblemClass>& problems, Arch arch, Cache& cache, int threads = 0,
                          const std::function<void(const CompileProgress&)>& progress = {});

}  // namespace fa2
