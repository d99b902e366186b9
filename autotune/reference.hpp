// The reference path of every correctness check (tests, `fa2-tune check`, and the tuner's gate): naive
// fp32 attention kernels, forward and backward, and a random fill, compiled with NVRTC for the current
// device.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/attention_args.hpp"
#include "runtime/device_buffer.hpp"

namespace fa2 {

// The reference kernels' source and NVRTC program name, with the call's user modifications compiled in (none:
// the plain reference).
std::string reference_source(const UserMods& mods);
std::string reference_program(const UserMods& mods);

class Reference {
 public:
  // The reference kernels of the current context, compiled and loaded on first use.
  static const Reference& current();
  // The reference kernels compiled with these user modifications (forward() and backward() pick them by the
  // call's snippets themselves).
  static const Reference& current(const UserMods& mods);
  ~Reference();

  // Fills `count` 16-bit values at `out` with uniform values in [-1, 1) drawn from `seed`.
  void fill_random(void* out, long long count, DType dtype, std::uint64_t seed) const;

  // o_ref [batch, heads_q, seqlen_q, head_dim] and lse_ref [batch, heads_q, seqlen_q], both fp32,
  // for the problem `args` describes (its o and lse are not touched). Synchronous.
  void forward(const FwdArgs& args, const DeviceBuffer& o_ref, const DeviceBuffer& lse_ref) const;

  // dq_ref [batch, heads_q, seqlen_q, head_dim] and dk_ref, dv_ref [batch, heads_kv, seqlen_k, head_dim],
  // fp32, for the problem `args` describes, from its q, k, v and dout and `o_ref`, the reference forward's
  // fp32 O (its own softmax: args.o and args.lse are not read, nor its outputs touched). Synchronous.
  void backward(const BwdArgs& args, const DeviceBuffer& o_ref, const DeviceBuffer& dq_ref, const DeviceBuffer& dk_ref,
                const DeviceBuffer& dv_ref) const;

  // `src` (fp32, [batch, heads, seqlen, head_dim]) rounded to 16-bit into `dst` laid out by `strides`.
  void store_16bit(const DeviceBuffer& src, void* dst, int batch, int heads, int seqlen, int head_dim,
                   const Strides& strides, DType dtype) const;

 private:
  struct Kernels;
  explicit Reference(std::unique_ptr<Kernels> kernels);
  // This reference's kernels, or those compiled with the call's snippets.
  const Kernels& kernels_for(const VariantArgs& variant) const;
  std::unique_ptr<Kernels> kernels_;
};

}  // namespace fa2
