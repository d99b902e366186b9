// Kernel timing with CUDA events: warm-up, then repeated timed runs over rotating input sets (so small
// problems are not flattered by a warm L2), reported as the median and the 10th/90th percentiles.
#pragma once

#include <cuda.h>

#include <functional>

#include "autotune/problem_shape.hpp"

namespace fa2 {

struct TimingOptions {
  int warmup = 5;
  int repeats = 30;              // at most; fewer for long kernels, see target_ms
  double target_ms = 300;        // timed runs stop adding up past about this much GPU time
  int min_repeats = 7;
  // A candidate whose warm-up runs already take longer than this (ms per run) cannot win: it is timed on
  // the warm-up alone (Timing::runs = warmup). The tuner passes a margin over the best time so far.
  double give_up_above_ms = 0;  // 0: never
};

struct Timing {
  double median_ms = 0;
  double p10_ms = 0;
  double p90_ms = 0;
  int runs = 0;
};

// Times `launch(set, stream)` (after `warmup` untimed runs), cycling set = 0..sets-1: `repeats` runs,
// or fewer (not under `min_repeats`) when one run takes long enough that they would exceed `target_ms`.
Timing time_launches(const std::function<void(int set, CUstream stream)>& launch, int sets, CUstream stream,
                     const TimingOptions& options);

// Input sets to rotate through so that their total size exceeds twice the L2 (at most 8).
int rotation_sets(const ProblemShape& shape, long long l2_bytes);

}  // namespace fa2
