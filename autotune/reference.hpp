// The reference path of every correctness check (tests, `fa2-tune check`, and the tuner's gate): a
// naive fp32 attention kernel and a random fill, compiled with NVRTC for the current device.
#pragma once

#include <cstdint>
#include <memory>

#include "fa2jit/fa2jit.hpp"
#include "runtime/device_buffer.hpp"

namespace fa2 {

class Reference {
 public:
  // The reference kernels of the current context, compiled and loaded on first use.
  static const Reference& current();
  ~Reference();

  // Fills `count` 16-bit values at `out` with uniform values in [-1, 1) drawn from `seed`.
  void fill_random(void* out, long long count, DType dtype, std::uint64_t seed) const;

  // o_ref [batch, heads_q, seqlen_q, head_dim] and lse_ref [batch, heads_q, seqlen_q], both fp32,
  // for the problem `args` describes (its o and lse are not touched). Synchronous.
  void forward(const FwdArgs& args, const DeviceBuffer& o_ref, const DeviceBuffer& lse_ref) const;

 private:
  struct Kernels;
  explicit Reference(std::unique_ptr<Kernels> kernels);
  std::unique_ptr<Kernels> kernels_;
};

}  // namespace fa2
