#include "autotune/problem_buffers.hpp"

#include <cmath>
#include <random>

#include "autotune/reference.hpp"

namespace fa2 {

Strides q_strides_of(const ProblemShape& shape) {
  return shape.layout == Layout::bhsd ? bhsd_strides(shape.seqlen_q, shape.heads_q, shape.head_dim)
                                      : bshd_strides(shape.seqlen_q, shape.heads_q, shape.head_dim);
}

Strides kv_strides_of(const ProblemShape& shape) {
  return shape.layout == Layout::bhsd ? bhsd_strides(shape.seqlen_k, shape.heads_kv, shape.head_dim)
                                      : bshd_strides(shape.seqlen_k, shape.heads_kv, shape.head_dim);
}

DeviceBuffer alibi_slopes_for(const ProblemShape& shape) {
  if (!shape.alibi) return DeviceBuffer();
  std::vector<float> slopes(static_cast<std::size_t>(shape.batch) * shape.heads_q);
  for (int b = 0; b < shape.batch; ++b)
    for (int h = 0; h < shape.heads_q; ++h)
      slopes[static_cast<std::size_t>(b) * shape.heads_q + h] =
          std::exp2(-8.f * static_cast<float>(h + 1) / static_cast<float>(shape.heads_q)) * (1.f + 0.25f * b);
  DeviceBuffer buffer(slopes.size() * sizeof(float));
  buffer.upload_bytes(slopes.data());
  return buffer;
}

VariantArgs variant_args_for(const ProblemShape& shape, const DeviceBuffer& slopes) {
  VariantArgs args = shape.variant_args();
  if (shape.alibi) {
    args.alibi_slopes = static_cast<const float*>(slopes.get());
    args.alibi_slopes_batch_stride = shape.heads_q;
  }
  return args;
}

ProblemBuffers::ProblemBuffers(const ProblemShape& shape, std::uint64_t seed, int input_sets) : shape_(shape) {
  const long long q_elems = 1ll * shape.batch * shape.seqlen_q * shape.heads_q * shape.head_dim;
  const long long kv_elems = 1ll * shape.batch * shape.seqlen_k * shape.heads_kv * shape.head_dim;
  const long long lse_elems = 1ll * shape.batch * shape.heads_q * shape.seqlen_q;
  if (seed == 0) seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
  const Reference& reference = Reference::current();
  for (int set = 0; set < input_sets; ++set) {
    Inputs inputs{DeviceBuffer(q_elems * 2), DeviceBuffer(kv_elems * 2), DeviceBuffer(kv_elems * 2)};
    reference.fill_random(inputs.q.get(), q_elems, shape.dtype, seed + 3 * set);
    reference.fill_random(inputs.k.get(), kv_elems, shape.dtype, seed + 3 * set + 1);
    reference.fill_random(inputs.v.get(), kv_elems, shape.dtype, seed + 3 * set + 2);
    inputs_.push_back(std::move(inputs));
  }
  o_ = DeviceBuffer(q_elems * 2);
  lse_ = DeviceBuffer(lse_elems * 4);
  slopes_ = alibi_slopes_for(shape);
  poison_outputs();
}

FwdArgs ProblemBuffers::args(int set, std::optional<float> softmax_scale) const {
  const Inputs& inputs = inputs_.at(set);
  FwdArgs args;
  args.q = inputs.q.get();
  args.k = inputs.k.get();
  args.v = inputs.v.get();
  args.o = o_.get();
  args.lse = static_cast<float*>(lse_.get());
  args.dtype = shape_.dtype;
  args.batch = shape_.batch;
  args.heads_q = shape_.heads_q;
  args.heads_kv = shape_.heads_kv;
  args.seqlen_q = shape_.seqlen_q;
  args.seqlen_k = shape_.seqlen_k;
  args.head_dim = shape_.head_dim;
  args.q_strides = q_strides_of(shape_);
  args.o_strides = args.q_strides;
  args.k_strides = kv_strides_of(shape_);
  args.v_strides = args.k_strides;
  args.causal = shape_.causal;
  args.softmax_scale = softmax_scale;
  args.variant = variant_args_for(shape_, slopes_);
  return args;
}

void ProblemBuffers::poison_outputs() {
  o_.fill16(kPoison16);
  lse_.fill32(kPoison32);
}

}  // namespace fa2
