// One problem of a kernel family made ready for measuring candidate kernels: a small problem of the
// same class with its fp32 reference result (the correctness gate), and the problem itself over rotating
// input sets (the timing). The tuner, `fa2-tune bench`, the benchmarks and the tests measure every family
// through this one interface; each family implements it next to its checks (forward_bench.cpp,
// backward_bench.cpp, kvcache_bench.cpp).
#pragma once

#include <cuda.h>

#include <memory>
#include <string>

#include "autotune/problem_shape.hpp"
#include "runtime/kernel_module.hpp"

namespace fa2 {

struct BenchCheck {
  bool passed = false;
  double error = 0;     // the largest relative error of the outputs against the reference
  std::string summary;  // every error, tolerance and unwritten count
};

class ProblemBench {
 public:
  virtual ~ProblemBench() = default;

  const ProblemShape& shape() const { return shape_; }  // the timed problem
  virtual const ProblemShape& check_shape() const = 0;  // the checked one (reference_check_shape(shape()))
  virtual int input_sets() const = 0;

  // Runs `kernel` on the check problem, outputs poisoned first, and compares with the reference.
  virtual BenchCheck check(const KernelModule& kernel) = 0;
  // Runs `kernel` once on the timed problem, outputs poisoned first: "" when every output was written and
  // is finite, else what was not.
  virtual std::string check_timed(const KernelModule& kernel) = 0;
  // Enqueues one run of `kernel` on input set `set` of the timed problem.
  virtual void launch(const KernelModule& kernel, int set, CUstream stream) = 0;

 protected:
  explicit ProblemBench(const ProblemShape& shape) : shape_(shape) {}

 private:
  ProblemShape shape_;
};

// The bench of `shape`'s family: `input_sets` sets of timed inputs (see rotation_sets), fresh random
// values from `seed` (0: a fresh seed).
std::unique_ptr<ProblemBench> make_problem_bench(const ProblemShape& shape, int input_sets, std::uint64_t seed = 0);

// Defined with each family's checks.
std::unique_ptr<ProblemBench> make_forward_bench(const ProblemShape& shape, int input_sets, std::uint64_t seed);
std::unique_ptr<ProblemBench> make_backward_bench(const ProblemShape& shape, int input_sets, std::uint64_t seed);
std::unique_ptr<ProblemBench> make_kvcache_bench(const ProblemShape& shape, int input_sets, std::uint64_t seed);

}  // namespace fa2
