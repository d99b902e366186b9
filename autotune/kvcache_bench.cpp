// The KV-cache family's ProblemBench: Q and a contiguous or paged cache in, O and LSE out, checked against
// the forward's fp32 reference on the same data (forward_check.hpp).
#include <fmt/format.h>

#include <algorithm>

#include "autotune/forward_check.hpp"
#include "autotune/kvcache_buffers.hpp"
#include "autotune/problem_bench.hpp"
#include "runtime/driver.hpp"
#include "runtime/launch.hpp"

namespace fa2 {

namespace {

// The checked problem of a kvc class: its query rows as they are (decode's 1..16 decide the grid), two
// sequences of two KV heads, and a cache long enough to be split many ways (4133 keys: no tile divides it).
ProblemShape kvcache_check_shape(const ProblemShape& shape) {
  ProblemShape check = shape;
  check.batch = std::min(shape.batch, 2);
  check.heads_kv = 2;
  check.heads_q = 2 * (shape.heads_q / shape.heads_kv);
  check.seqlen_q = std::min(shape.seqlen_q, 509);
  check.seqlen_k = std::min(shape.seqlen_k, 4133);
  if (shape.seqlen_q <= shape.seqlen_k) check.seqlen_k = std::max(check.seqlen_k, check.seqlen_q);
  return check;
}

class KvcacheBench final : public ProblemBench {
 public:
  KvcacheBench(const ProblemShape& shape, int input_sets, std::uint64_t seed)
      : ProblemBench(shape),
        check_(kvcache_check_shape(shape), seed),
        reference_(check_.contiguous()),
        timed_(shape, seed == 0 ? 0 : seed + 1, input_sets) {}

  const ProblemShape& check_shape() const override { return check_.shape(); }
  int input_sets() const override { return timed_.input_sets(); }

  BenchCheck check(const KernelModule& kernel) override {
    check_.contiguous().poison_outputs();
    launch_kvcache(kernel, check_.args(0), nullptr);
    driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(candidate)");
    const OutputComparison comparison = compare_outputs(check_.contiguous(), reference_);
    return BenchCheck{comparison.passed(), comparison.o_rel_error, comparison.summary()};
  }

  std::string check_timed(const KernelModule& kernel) override {
    timed_.contiguous().poison_outputs();
    launch_kvcache(kernel, timed_.args(0), nullptr);
    driver::check(driver::api().CtxSynchronize(), "cuCtxSynchronize(candidate)");
    const long long unwritten = count_unwritten_outputs(timed_.contiguous());
    return unwritten == 0 ? std::string() : fmt::format("{} outputs unwritten or not finite", unwritten);
  }

  void launch(const KernelModule& kernel, int set, CUstream stream) override {
    launch_kvcache(kernel, timed_.args(set), stream);
  }

 private:
  KvcacheBuffers check_;
  ReferenceOutputs reference_;
  KvcacheBuffers timed_;
};

}  // namespace

std::unique_ptr<ProblemBench> make_kvcache_bench(const ProblemShape& shape, int input_sets, std::uint64_t seed) {
  return std::make_unique<KvcacheBench>(shape, input_sets, seed);
}

}  // namespace fa2
