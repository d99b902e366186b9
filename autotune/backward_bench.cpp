// The backward family's ProblemBench: Q, K, V, O, LSE and dO in, dQ, dK and dV out, checked by
// backward_check.hpp. The check problem's O and LSE come from the reference forward; the timed problem's,
// too large for it, from the built-in forward kernel (timing only needs them to be the real thing:
// zeros or made-up values would change what the tensor cores multiply).
#include <fmt/format.h>

#include "autotune/backward_check.hpp"
#include "autotune/forward_check.hpp"
#include "autotune/problem_bench.hpp"
#include "codegen/emit.hpp"
#include "runtime/context_device.hpp"
#include "runtime/driver.hpp"
#include "runtime/launch.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2 {

namespace {

void fill_forward_outputs(const BwdProblemBuffers& buffers) {
  const ProblemShape& shape = buffers.shape();
  const TileConfig config = default_config(Family::fwd, shape.head_dim, shape.dtype, shape.causal,
                                           current_arch("backward bench"), false, 0, shape.variant());
  const KernelModule forward = KernelModule::load(config, compile_source(emit(config), config.name(), config.arch).cubin);
  for (int set = 0; set < buffers.input_sets(); ++set) launch_forward(forward, buffers.forward_args(set), nullptr);
  driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(forward for the backward bench)");
}

class BackwardBench final : public ProblemBench {
 public:
  BackwardBench(const ProblemShape& shape, int input_sets, std::uint64_t seed)
      : ProblemBench(shape),
        check_(reference_check_shape(shape), seed),
        reference_(check_),
        timed_(shape, seed == 0 ? 0 : seed + 1, input_sets) {
    fill_forward_outputs(timed_);
  }

  const ProblemShape& check_shape() const override { return check_.shape(); }
  int input_sets() const override { return timed_.input_sets(); }

  BenchCheck check(const KernelModule& kernel) override {
    check_.poison_outputs();
    launch_backward(kernel, check_.args(0), nullptr);
    driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(candidate)");
    const GradientComparison comparison = compare_gradients(check_, reference_);
    return BenchCheck{comparison.passed(), comparison.max_error(), comparison.summary()};
  }

  std::string check_timed(const KernelModule& kernel) override {
    timed_.poison_outputs();
    launch_backward(kernel, timed_.args(0), nullptr);
    driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(candidate)");
    const long long unwritten = count_unwritten_gradients(timed_);
    return unwritten == 0 ? std::string() : fmt::format("{} gradients unwritten or not finite", unwritten);
  }

  void launch(const KernelModule& kernel, int set, CUstream stream) override {
    launch_backward(kernel, timed_.args(set), stream);
  }

 private:
  BwdProblemBuffers check_;
  BwdReferenceOutputs reference_;
  BwdProblemBuffers timed_;
};

}  // namespace

std::unique_ptr<ProblemBench> make_backward_bench(const ProblemShape& shape, int input_sets, std::uint64_t seed) {
  return std::make_unique<BackwardBench>(shape, input_sets, seed);
}

}  // namespace fa2
