#include "autotune/problem_bench.hpp"

namespace fa2 {

std::unique_ptr<ProblemBench> make_problem_bench(const ProblemShape& shape, int input_sets, std::uint64_t seed) {
  switch (shape.family) {
    case Family::fwd: return make_forward_bench(shape, input_sets, seed);
    case Family::bwd: return make_backward_bench(shape, input_sets, seed);
    case Family::kvc: return make_kvcache_bench(shape, input_sets, seed);
  }
  return make_forward_bench(shape, input_sets, seed);
}

}  // namespace fa2
