#include "runtime/fwd_params_builder.hpp"

#include <cmath>

namespace fa2 {

float softmax_scale_of(const FwdArgs& args) {
  return args.softmax_scale.value_or(1.f / std::sqrt(static_cast<float>(args.head_dim)));
}

FwdParams make_fwd_params(const FwdArgs& args) {
  FwdParams params{};
  params.q = args.q;
  params.k = args.k;
  params.v = args.v;
  params.o = args.o;
  params.lse = args.lse;
  params.q_batch_stride = args.q_strides.batch;
  params.q_head_stride = args.q_strides.head;
  params.q_row_stride = args.q_strides.row;
  params.k_batch_stride = args.k_strides.batch;
  params.k_head_stride = args.k_strides.head;
  params.k_row_stride = args.k_strides.row;
  params.v_batch_stride = args.v_strides.batch;
  params.v_head_stride = args.v_strides.head;
  params.v_row_stride = args.v_strides.row;
  params.o_batch_stride = args.o_strides.batch;
  params.o_head_stride = args.o_strides.head;
  params.o_row_stride = args.o_strides.row;
  params.batch = args.batch;
  params.heads_q = args.heads_q;
  params.heads_kv = args.heads_kv;
  params.seqlen_q = args.seqlen_q;
  params.seqlen_k = args.seqlen_k;
  params.softmax_scale = softmax_scale_of(args);
  params.softmax_scale_log2 = params.softmax_scale * 1.44269504088896340736f;  // log2(e), kept in float
  return params;
}

}  // namespace fa2
