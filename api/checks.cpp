#include "api/checks.hpp"

#include <chrono>

#include "autotune/kvcache_buffers.hpp"
#include "autotune/problem_buffers.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/driver.hpp"

namespace fa2 {

namespace {

void synchronize(const char* what) { driver::check(driver::api().CtxSynchronize(), what); }

// Host wall time of one more run of `pass` (already warmed up), synchronized.
template <class Pass>
double timed_once(Pass&& pass, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  pass();
  synchronize(what);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

ForwardCheckResult run_forward_check(const CheckSpec& spec) {
  ProblemBuffers buffers(spec.shape, spec.seed);
  FwdArgs args = buffers.args(0, spec.softmax_scale);
  args.tune_policy = spec.policy;
  args.cache_path = spec.cache_path;

  ForwardCheckResult result;
  result.kernel_name = forward_config(args).name();
  forward(args);
  synchronize("cuCtxSynchronize(forward)");
  const ReferenceOutputs reference(buffers, 0, spec.softmax_scale);
  result.comparison = compare_outputs(buffers, reference);
  result.passed = result.comparison.passed();
  result.kernel_ms = timed_once([&] { forward(args); }, "cuCtxSynchronize(forward)");
  return result;
}

BackwardCheckResult run_backward_check(const CheckSpec& spec) {
  ProblemShape shape = spec.shape;
  shape.family = Family::bwd;
  BwdProblemBuffers buffers(shape, spec.seed);
  const BwdReferenceOutputs reference(buffers, 0, spec.softmax_scale);  // also fills O and LSE
  BwdArgs args = buffers.args(0, spec.softmax_scale);
  args.tune_policy = spec.policy;
  args.cache_path = spec.cache_path;

  BackwardCheckResult result;
  result.kernel_name = backward_config(args).name();
  backward(args);
  synchronize("cuCtxSynchronize(backward)");
  result.comparison = compare_gradients(buffers, reference);
  result.passed = result.comparison.passed();
  result.kernel_ms = timed_once([&] { backward(args); }, "cuCtxSynchronize(backward)");
  return result;
}

ForwardCheckResult run_kvcache_check(const CheckSpec& spec) {
  ProblemShape shape = spec.shape;
  shape.family = Family::kvc;
  KvcacheBuffers buffers(shape, spec.seed);
  KvcacheArgs args = buffers.args(0);
  args.softmax_scale = spec.softmax_scale;
  args.tune_policy = spec.policy;
  args.cache_path = spec.cache_path;

  ForwardCheckResult result;
  result.kernel_name = kvcache_config(args).name();
  forward_with_kvcache(args);
  synchronize("cuCtxSynchronize(forward_with_kvcache)");
  const ReferenceOutputs reference(buffers.contiguous(), 0, spec.softmax_scale);
  result.comparison = compare_outputs(buffers.contiguous(), reference);
  result.passed = result.comparison.passed();
  result.kernel_ms = timed_once([&] { forward_with_kvcache(args); }, "cuCtxSynchronize(forward_with_kvcache)");
  return result;
}

}  // namespace fa2
