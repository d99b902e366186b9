// GPU test support: one case of a pass checked against the fp32 reference, every output's unwritten (still
// poisoned) elements and error asserted and reported, and for the backward how many of several runs over the
// same inputs differ bitwise from the first (the deterministic backward must give 0).
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <vector>

#include "api/checks.hpp"
#include "autotune/bwd_buffers.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/driver.hpp"

namespace fa2::test {

// The assertions on a forward-family result (forward, KV cache): O and LSE written, within tolerance.
inline void check_output(const CheckSpec& spec, const ForwardCheckResult& result) {
  const OutputComparison& c = result.comparison;
  INFO(spec.shape.describe(), "  ", result.kernel_name, "  ", c.summary());
  CHECK(c.unwritten_o == 0);
  CHECK(c.unwritten_lse == 0);
  CHECK(c.lse_inf_mismatch == 0);
  CHECK(c.o_rel_error <= c.o_tolerance);
  CHECK(c.lse_rel_error <= c.lse_tolerance);
  MESSAGE(fmt::format("{:<60} {:<62} {}  {}", spec.shape.describe(), result.kernel_name, c.summary(),
                      result.passed ? "ok" : "FAIL"));
}

inline void check_forward_case(const CheckSpec& spec) { check_output(spec, run_forward_check(spec)); }

// What the exact dQ and dK of a case are: general, or zero (every row that sees a key sees exactly one, so
// P = 1 and dS = 0), where their errors are measured against ||dV_ref|| since a relative error would compare
// rounding noise with rounding noise.
enum class ExactDqDk { general, zero };

// Runs the backward of `spec` (built-in config unless its policy says otherwise) against the reference.
inline BackwardCheckResult check_backward_case(const CheckSpec& spec, ExactDqDk exact = ExactDqDk::general) {
  const BackwardCheckResult result = run_backward_check(spec);
  const GradientComparison& c = result.comparison;
  INFO(spec.shape.describe(), "  ", result.kernel_name, "  ", c.summary());
  CHECK(c.unwritten_dq == 0);
  CHECK(c.unwritten_dk == 0);
  CHECK(c.unwritten_dv == 0);
  bool passed = result.passed;
  if (exact == ExactDqDk::zero) {
    REQUIRE(c.dv_reference_norm > 0);
    const double dq_error = c.dq_error_norm / c.dv_reference_norm, dk_error = c.dk_error_norm / c.dv_reference_norm;
    INFO("zero exact dQ, dK: ||dQ error|| / ||dV_ref|| ", dq_error, ", ||dK error|| / ||dV_ref|| ", dk_error);
    CHECK(dq_error <= c.tolerance);
    CHECK(dk_error <= c.tolerance);
    passed = c.unwritten_dq + c.unwritten_dk + c.unwritten_dv == 0 && dq_error <= c.tolerance &&
             dk_error <= c.tolerance && c.dv_rel_error <= c.tolerance;
  } else {
    CHECK(c.dq_rel_error <= c.tolerance);
    CHECK(c.dk_rel_error <= c.tolerance);
  }
  CHECK(c.dv_rel_error <= c.tolerance);
  MESSAGE(fmt::format("{:<60} {:<62} {}  {}", spec.shape.describe(), result.kernel_name, c.summary(),
                      passed ? "ok" : "FAIL"));
  return result;
}

inline int differing_backward_runs(const ProblemShape& shape, int runs) {
  BwdProblemBuffers buffers(shape);
  const BwdReferenceOutputs reference(buffers);  // fills O and LSE
  BwdArgs args = buffers.args();
  args.tune_policy = TunePolicy::heuristic;
  auto gradients = [&] {
    buffers.poison_outputs();
    backward(args);
    driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(backward)");
    std::vector<unsigned short> all = buffers.dq().download<unsigned short>();
    for (const DeviceBuffer* grad : {&buffers.dk(), &buffers.dv()}) {
      const auto bits = grad->download<unsigned short>();
      all.insert(all.end(), bits.begin(), bits.end());
    }
    return all;
  };
  const std::vector<unsigned short> first = gradients();
  CHECK(compare_gradients(buffers, reference).passed());
  int differing = 0;
  for (int run = 1; run < runs; ++run) differing += gradients() != first ? 1 : 0;
  return differing;
}

}  // namespace fa2::test
