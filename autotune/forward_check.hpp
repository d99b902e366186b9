// Correctness checks of forward kernels against the fp32 reference: fresh random inputs, NaN-poisoned
// outputs, relative errors, and a count of elements never written. Used by the tuner's correctness
// gate, and through api/checks.hpp by the GPU tests and `fa2-tune check`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "autotune/problem_buffers.hpp"
#include "autotune/problem_shape.hpp"
#include "runtime/device_buffer.hpp"

namespace fa2 {

// Relative-error bounds for O: 16-bit P and O round at 2^-8 (bf16) or 2^-11 (fp16). Over the 804-case
// GPU matrix the largest errors seen were 2.7e-3 (bf16) and 3.1e-4 (fp16): the bounds leave ~2-3x room.
double o_tolerance(DType dtype);
// LSE is computed in fp32 from fp32 scores; the matrix saw at most ~1e-7.
constexpr double kLseTolerance = 1e-4;

// The reference result for input set `set` of `buffers`, computed once and kept on the host.
class ReferenceOutputs {
 public:
  ReferenceOutputs(const ProblemBuffers& buffers, int set = 0, std::optional<float> softmax_scale = std::nullopt);
  const std::vector<float>& o() const { return o_; }      // [batch, heads_q, seqlen_q, head_dim]
  const std::vector<float>& lse() const { return lse_; }  // [batch, heads_q, seqlen_q]

 private:
  std::vector<float> o_;
  std::vector<float> lse_;
};

struct OutputComparison {
  double o_rel_error = 0;    // ||O - O_ref|| / ||O_ref||
  double lse_rel_error = 0;  // over rows that see a key; rows that see none must give +inf
  double o_tolerance = 0;
  double lse_tolerance = kLseTolerance;
  long long unwritten_o = 0;  // elements still holding the NaN poison
  long long unwritten_lse = 0;
  long long lse_inf_mismatch = 0;  // rows where exactly one of kernel and reference has LSE = +inf

  // `x <= tol` is false for NaN, so any NaN in the output fails.
  bool passed() const {
    return unwritten_o == 0 && unwritten_lse == 0 && lse_inf_mismatch == 0 && o_rel_error <= o_tolerance &&
           lse_rel_error <= lse_tolerance;
  }
  std::string summary() const;  // "O 2.3e-03 (tol 6e-03) LSE 7.4e-08 (tol 1e-04) unwritten 0/0"
};

// Compares the outputs now in `buffers` (synchronized) with `reference`.
OutputComparison compare_outputs(const ProblemBuffers& buffers, const ReferenceOutputs& reference);

// Elements of O that still hold the poison or are not finite, and LSE entries still poisoned or NaN:
// the check for problems too large for the naive reference.
long long count_unwritten_outputs(const ProblemBuffers& buffers);

// A problem of the same class as `shape` (dtype, head dim, causal, GQA ratio, layout), small enough for
// the reference and with sequence lengths that are not multiples of any tile, keeping the sign of
// seqlen_q - seqlen_k. Tuning checks every candidate on it.
ProblemShape reference_check_shape(const ProblemShape& shape);

}  // namespace fa2
