// Device buffers of one KV-cache forward problem: a forward problem's random Q, K, V (contiguous, the
// reference's input) and, when the shape is paged, each input set's cache copied into pages laid out in a
// shuffled order with its block table. O and LSE are the forward problem's, so its reference and its
// comparison apply unchanged.
#pragma once

#include <cstdint>
#include <vector>

#include "autotune/problem_buffers.hpp"
#include "autotune/problem_shape.hpp"
#include "common/attention_args.hpp"
#include "runtime/device_buffer.hpp"

namespace fa2 {

class KvcacheBuffers {
 public:
  // `shape` is a kvc shape; paged ones (page_size > 0) keep their queries in `shape.layout` and their
  // cache in bshd pages. Pages are shuffled with `seed` (0: a fresh seed), as are the inputs.
  KvcacheBuffers(const ProblemShape& shape, std::uint64_t seed = 0, int input_sets = 1);

  const ProblemShape& shape() const { return shape_; }
  int input_sets() const { return contiguous_.input_sets(); }
  // The contiguous problem with the same data, the same O and LSE: the reference's view.
  const ProblemBuffers& contiguous() const { return contiguous_; }
  ProblemBuffers& contiguous() { return contiguous_; }
  // forward_with_kvcache() arguments over input set `set`.
  KvcacheArgs args(int set = 0) const;
  int num_pages() const { return num_pages_; }

 private:
  struct Pages {
    DeviceBuffer k, v;
  };
  ProblemShape shape_;
  ProblemBuffers contiguous_;
  std::vector<Pages> pages_;
  DeviceBuffer block_table_, cache_seqlens_;
  int pages_per_sequence_ = 0;
  int num_pages_ = 0;
};

// The forward problem a kvc shape is checked against: the same sizes, family fwd, and a bshd cache when paged.
ProblemShape contiguous_shape_of(const ProblemShape& kvcache_shape);

}  // namespace fa2
