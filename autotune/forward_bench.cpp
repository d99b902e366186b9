// The forward family's ProblemBench: Q, K, V in, O and LSE out, checked by forward_check.hpp.
#include <fmt/format.h>

#include "autotune/forward_check.hpp"
#include "autotune/problem_bench.hpp"
#include "autotune/problem_buffers.hpp"
#include "runtime/driver.hpp"
#include "runtime/launch.hpp"

namespace fa2 {

namespace {

class ForwardBench final : public ProblemBench {
 public:
  ForwardBench(const ProblemShape& shape, int input_sets, std::uint64_t seed)
      : ProblemBench(shape),
        check_(reference_check_shape(shape), seed),
        reference_(check_),
        timed_(shape, seed == 0 ? 0 : seed + 1, input_sets) {}

  const ProblemShape& check_shape() const override { return check_.shape(); }
  int input_sets() const override { return timed_.input_sets(); }

  BenchCheck check(const KernelModule& kernel) override {
    check_.poison_outputs();
    launch_forward(kernel, check_.args(0), nullptr);
    driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(candidate)");
    const OutputComparison comparison = compare_outputs(check_, reference_);
    return BenchCheck{comparison.passed(), comparison.o_rel_error, comparison.summary()};
  }

  std::string check_timed(const KernelModule& kernel) override {
    timed_.poison_outputs();
    launch_forward(kernel, timed_.args(0), nullptr);
    driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(candidate)");
    const long long unwritten = count_unwritten_outputs(timed_);
    return unwritten == 0 ? std::string() : fmt::format("{} outputs unwritten or not finite", unwritten);
  }

  void launch(const KernelModule& kernel, int set, CUstream stream) override {
    launch_forward(kernel, timed_.args(set), stream);
  }

 private:
  ProblemBuffers check_;
  ReferenceOutputs reference_;
  ProblemBuffers timed_;
};

}  // namespace

std::unique_ptr<ProblemBench> make_forward_bench(const ProblemShape& shape, int input_sets, std::uint64_t seed) {
  return std::make_unique<ForwardBench>(shape, input_sets, seed);
}

}  // namespace fa2
