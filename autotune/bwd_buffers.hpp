// Device buffers for one backward ProblemShape: `input_sets` independent sets of random Q, K, V and dO with
// the forward's O and LSE for them (filled by whoever runs a forward: the reference in checks, a forward
// kernel for timing), and one dQ, dK, dV and workspace, NaN-poisoned on request.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "autotune/problem_shape.hpp"
#include "common/attention_args.hpp"
#include "runtime/device_buffer.hpp"

namespace fa2 {

class BwdProblemBuffers {
 public:
  // Fills Q, K, V, dO from `seed` (0: a fresh seed), poisons O, LSE and the gradients.
  BwdProblemBuffers(const ProblemShape& shape, std::uint64_t seed = 0, int input_sets = 1);

  const ProblemShape& shape() const { return shape_; }
  int input_sets() const { return static_cast<int>(inputs_.size()); }
  // backward() arguments over input set `set`, the shared gradients and the workspace.
  BwdArgs args(int set = 0, std::optional<float> softmax_scale = std::nullopt) const;
  // forward() arguments whose outputs are set `set`'s O and LSE: how those get filled.
  FwdArgs forward_args(int set = 0, std::optional<float> softmax_scale = std::nullopt) const;
  // NaN in every element of dQ, dK and dV, so an unwritten element fails.
  void poison_outputs();

  void* o(int set) const { return inputs_.at(set).o.get(); }
  float* lse(int set) const { return static_cast<float*>(inputs_.at(set).lse.get()); }
  const DeviceBuffer& dq() const { return dq_; }
  const DeviceBuffer& dk() const { return dk_; }
  const DeviceBuffer& dv() const { return dv_; }

 private:
  struct Inputs {
    DeviceBuffer q, k, v, dout, o, lse;
  };
  ProblemShape shape_;
  std::vector<Inputs> inputs_;
  DeviceBuffer dq_, dk_, dv_, workspace_, slopes_;
};

}  // namespace fa2
