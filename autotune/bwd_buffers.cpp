#include "autotune/bwd_buffers.hpp"

#include <random>

#include "autotune/problem_buffers.hpp"
#include "autotune/reference.hpp"
#include "runtime/params_builder.hpp"

namespace fa2 {

BwdProblemBuffers::BwdProblemBuffers(const ProblemShape& shape, std::uint64_t seed, int input_sets) : shape_(shape) {
  const long long q_elems = 1ll * shape.batch * shape.seqlen_q * shape.heads_q * shape.head_dim;
  const long long kv_elems = 1ll * shape.batch * shape.seqlen_k * shape.heads_kv * shape.head_dim;
  const long long lse_elems = 1ll * shape.batch * shape.heads_q * shape.seqlen_q;
  if (seed == 0) seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
  const Reference& reference = Reference::current();
  for (int set = 0; set < input_sets; ++set) {
    Inputs inputs{DeviceBuffer(q_elems * 2),  DeviceBuffer(kv_elems * 2), DeviceBuffer(kv_elems * 2),
                  DeviceBuffer(q_elems * 2),  DeviceBuffer(q_elems * 2),  DeviceBuffer(lse_elems * 4)};
    reference.fill_random(inputs.q.get(), q_elems, shape.dtype, seed + 4 * set);
    reference.fill_random(inputs.k.get(), kv_elems, shape.dtype, seed + 4 * set + 1);
    reference.fill_random(inputs.v.get(), kv_elems, shape.dtype, seed + 4 * set + 2);
    reference.fill_random(inputs.dout.get(), q_elems, shape.dtype, seed + 4 * set + 3);
    inputs.o.fill16(ProblemBuffers::kPoison16);  // until a forward fills them
    inputs.lse.fill32(ProblemBuffers::kPoison32);
    inputs_.push_back(std::move(inputs));
  }
  slopes_ = alibi_slopes_for(shape);
  dq_ = DeviceBuffer(q_elems * 2);
  dk_ = DeviceBuffer(kv_elems * 2);
  dv_ = DeviceBuffer(kv_elems * 2);
  workspace_ = DeviceBuffer(bwd_workspace_layout(args(0)).bytes);
  poison_outputs();
}

BwdArgs BwdProblemBuffers::args(int set, std::optional<float> softmax_scale) const {
  const Inputs& inputs = inputs_.at(set);
  BwdArgs args;
  args.q = inputs.q.get();
  args.k = inputs.k.get();
  args.v = inputs.v.get();
  args.o = inputs.o.get();
  args.lse = static_cast<const float*>(inputs.lse.get());
  args.dout = inputs.dout.get();
  args.dq = dq_.get();
  args.dk = dk_.get();
  args.dv = dv_.get();
  args.dtype = shape_.dtype;
  args.batch = shape_.batch;
  args.heads_q = shape_.heads_q;
  args.heads_kv = shape_.heads_kv;
  args.seqlen_q = shape_.seqlen_q;
  args.seqlen_k = shape_.seqlen_k;
  args.head_dim = shape_.head_dim;
  args.q_strides = q_strides_of(shape_);
  args.o_strides = args.dout_strides = args.dq_strides = args.q_strides;
  args.k_strides = kv_strides_of(shape_);
  args.v_strides = args.dk_strides = args.dv_strides = args.k_strides;
  args.causal = shape_.causal;
  args.softmax_scale = softmax_scale;
  args.variant = variant_args_for(shape_, slopes_);
  args.deterministic = shape_.deterministic;
  args.workspace = workspace_.get();
  args.workspace_bytes = workspace_.bytes();
  return args;
}

FwdArgs BwdProblemBuffers::forward_args(int set, std::optional<float> softmax_scale) const {
  const BwdArgs backward = args(set, softmax_scale);
  FwdArgs args;
  args.q = backward.q;
  args.k = backward.k;
  args.v = backward.v;
  args.o = inputs_.at(set).o.get();
  args.lse = lse(set);
  args.dtype = backward.dtype;
  args.batch = backward.batch;
  args.heads_q = backward.heads_q;
  args.heads_kv = backward.heads_kv;
  args.seqlen_q = backward.seqlen_q;
  args.seqlen_k = backward.seqlen_k;
  args.head_dim = backward.head_dim;
  args.q_strides = backward.q_strides;
  args.k_strides = backward.k_strides;
  args.v_strides = backward.v_strides;
  args.o_strides = backward.o_strides;
  args.causal = backward.causal;
  args.softmax_scale = softmax_scale;
  args.variant = backward.variant;
  return args;
}

void BwdProblemBuffers::poison_outputs() {
  dq_.fill16(ProblemBuffers::kPoison16);
  dk_.fill16(ProblemBuffers::kPoison16);
  dv_.fill16(ProblemBuffers::kPoison16);
}

}  // namespace fa2
