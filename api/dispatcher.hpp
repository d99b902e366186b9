// The dispatch table of the passes: (context, problem class, tune policy, cache) -> loaded kernel. A miss
// resolves the class by the tune policy: the built-in default, the cached tuning, or a tuning now
// (api/tune_resolution.cpp, which also decides what a cache fault falls back to). Family-agnostic:
// forward() and backward() both come here with their ProblemShape.
#pragma once

#include <cuda.h>

#include <optional>
#include <string>

#include "api/kernel_memo.hpp"
#include "autotune/problem_shape.hpp"

namespace fa2 {

// The loaded kernel for `shape` (whose family it is) in the current context. `policy` empty: $FA2JIT_TUNE
// as read at the first call, else on-first-use. Thread-safe: threads that meet the same new class
// resolve it once, and tunings never overlap on the GPU. `launch_stream`, for a call that will launch
// there: a class not yet in the table is not resolved while that stream captures a CUDA graph (see
// api/capture_guard.hpp); the check costs nothing on a hit.
const LoadedKernel& dispatch(const ProblemShape& shape, const std::optional<TunePolicy>& policy,
                             const std::string& cache_path, std::optional<CUstream> launch_stream = std::nullopt);

}  // namespace fa2
