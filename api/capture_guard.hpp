// CUDA graph capture and the dispatch table. A capturing stream records work instead of running it, and a
// capture in the default (global) mode is invalidated by any unsafe call from any thread: synchronizing,
// cuMemAlloc, a blocking copy. Resolving a problem class does all of these (tuning times candidates and
// checks them against a reference; compiling and loading a module are no stream work at all), so a class
// must be resolved before the capture, by one eager call with the same shapes (a warm-up, as vLLM does
// before capturing). A call that meets an unresolved class on a capturing stream fails before doing
// anything, so the capture stays valid and the caller can end it and discard the graph; it never tunes
// into a corrupt graph or waits on a tuning. (FlashInfer added the same check for its JIT kernels.)
// Once resolved, a call is a table lookup and launches, which a capture records like any other: the
// backward's and the split KV-cache's scratch, when the caller passes none, comes from cuMemAllocAsync /
// cuMemFreeAsync on the call's stream, which a capture records as graph memory nodes.
#pragma once

#include <cuda.h>

#include <string>

#include "autotune/problem_shape.hpp"
#include "fa2jit/attention_args.hpp"

namespace fa2 {

enum class CaptureState {
  none,         // the stream is not capturing: a resolution may run
  active,       // capturing
  invalidated,  // capturing, but the capture already failed (it must still be ended)
  unknown,      // the driver could not say (e.g. the legacy stream while another stream captures)
};

// The capture state of `stream` (nullptr: the legacy default stream). Never throws: a driver that cannot
// be loaded or a failed query is `unknown`, which dispatch treats as capturing.
CaptureState capture_state(CUstream stream);

// The decision of the dispatch table on a miss: nothing when `state` is none; otherwise throws
// fa2::Error(Stage::Launch) naming the class of `shape`, the capture, and the ways out (a warm-up call
// before the capture; `fa2-tune tune` so that the warm-up does not tune). `cache_path` "" is the default
// cache.
void refuse_resolution_during_capture(CaptureState state, const ProblemShape& shape, TunePolicy policy,
                                      const std::string& cache_path);

}  // namespace fa2
