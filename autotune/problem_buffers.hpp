// Device buffers for one ProblemShape: `input_sets` independent sets of random Q, K, V (rotated by
// benchmarks so that timings do not come from a warm L2) and one O and LSE, NaN-poisoned on request.
#pragma once

#include <cstdint>
#include <vector>

#include "autotune/problem_shape.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/device_buffer.hpp"

namespace fa2 {

class ProblemBuffers {
 public:
  // Fills the inputs from `seed` (0: a fresh seed) and poisons the outputs.
  ProblemBuffers(const ProblemShape& shape, std::uint64_t seed = 0, int input_sets = 1);

  const ProblemShape& shape() const { return shape_; }
  int input_sets() const { return static_cast<int>(inputs_.size()); }
  // forward() arguments over input set `set` and the shared outputs.
  FwdArgs args(int set = 0, std::optional<float> softmax_scale = std::nullopt) const;
  // NaN in every element of O (fp16 and bf16 share the pattern) and LSE, so an unwritten element fails.
  void poison_outputs();

  const DeviceBuffer& o() const { return o_; }
  // ALiBi slopes [batch, heads_q] when the shape has ALiBi (alibi_slopes_for), else empty.
  const DeviceBuffer& alibi_slopes() const { return slopes_; }
  const DeviceBuffer& lse() const { return lse_; }

  static constexpr unsigned short kPoison16 = 0xFFFF;
  static constexpr unsigned kPoison32 = 0xFFFFFFFFu;

 private:
  struct Inputs {
    DeviceBuffer q, k, v;
  };
  ProblemShape shape_;
  std::vector<Inputs> inputs_;
  DeviceBuffer o_, lse_, slopes_;
};

// ALiBi slopes for a check or benchmark of `shape`, [batch, heads_q] on the device (empty without ALiBi): the
// paper's geometric slopes 2^(-8 (h + 1) / heads_q), scaled by 1 + b / 4 per batch entry so that a kernel
// reading the wrong batch's row is caught.
DeviceBuffer alibi_slopes_for(const ProblemShape& shape);
// A call's variant values for `shape` with `slopes` (from alibi_slopes_for) as its [batch, heads_q] slopes.
VariantArgs variant_args_for(const ProblemShape& shape, const DeviceBuffer& slopes);

// Element strides of the shape's layout (strided shapes are laid out as bshd).
Strides q_strides_of(const ProblemShape& shape);
Strides kv_strides_of(const ProblemShape& shape);

}  // namespace fa2
