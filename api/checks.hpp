// End-to-end checks of the public passes: forward(), backward() or forward_with_kvcache() on fresh random inputs, through the
// dispatch table and tune policy a caller would get, against the fp32 reference. Used by the GPU tests and
// `fa2-tune check`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "autotune/backward_check.hpp"
#include "autotune/forward_check.hpp"

namespace fa2 {

struct CheckSpec {
  ProblemShape shape;  // its family picks the pass
  TunePolicy policy = TunePolicy::heuristic;  // checks default to the built-in configs: no tuning
  std::string cache_path;                     // for the other policies; empty: the default cache
  std::optional<float> softmax_scale;
  std::uint64_t seed = 0;  // 0: a fresh seed per call
};

struct ForwardCheckResult {
  std::string kernel_name;
  OutputComparison comparison;
  bool passed = false;
  double kernel_ms = 0;  // one run after a warm-up, host-timed: a sanity figure, not a benchmark
};

struct BackwardCheckResult {
  std::string kernel_name;
  GradientComparison comparison;
  bool passed = false;
  double kernel_ms = 0;  // likewise
};

// forward() on fresh inputs against the reference.
ForwardCheckResult run_forward_check(const CheckSpec& spec);

// backward() on fresh inputs (O and LSE from the reference forward) against the reference backward.
BackwardCheckResult run_backward_check(const CheckSpec& spec);

// forward_with_kvcache() on fresh inputs (a paged cache with shuffled pages when spec.shape.page_size > 0)
// against the forward's reference on the same data.
ForwardCheckResult run_kvcache_check(const CheckSpec& spec);

}  // namespace fa2
