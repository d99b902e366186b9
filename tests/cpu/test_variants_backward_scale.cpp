// The backward's scales with softcap (runtime/params_builder): the recomputed softmax takes the cap as its scale,
// while dQ and dK keep the call's scale as their fp32 factor, so the kernel's 16-bit dS carries only tanh's
// derivative and is not shrunk by scale / cap (which put it in fp16's subnormals at large caps).
#include <doctest/doctest.h>

#include "runtime/params_builder.hpp"

namespace {

fa2::BwdArgs backward_args(float softmax_scale, float softcap) {
  fa2::BwdArgs args;
  args.batch = 1;
  args.heads_q = 2;
  args.heads_kv = 1;
  args.seqlen_q = 100;
  args.seqlen_k = 130;
  args.head_dim = 128;
  args.softmax_scale = softmax_scale;
  args.variant.softcap = softcap;
  return args;
}

}  // namespace

TEST_CASE("backward with softcap: the softmax recomputes with the cap, dQ and dK keep the call's scale") {
  constexpr float kLog2e = 1.44269504f;
  const float scale = 0.08838835f;  // 1 / sqrt(128)
  const fa2::BwdArgs args = backward_args(scale, 50.f);
  fa2::BwdParams params = fa2::make_bwd_params(args, nullptr, 64, 0);
  const fa2::VariantParams variant = fa2::make_bwd_variant_params(args, params);
  CHECK(params.softmax_scale == scale);
  CHECK(params.softmax_scale_log2 == doctest::Approx(50.0 * kLog2e));
  CHECK(variant.softcap_scale == doctest::Approx(scale / 50.0));
  CHECK(variant.alibi_scale == doctest::Approx(1.0 / 50));  // ALiBi's bias lands on the logit cap * tanh(.)
  // The chain rule: d logit / d(q . k) = cap * softcap_scale * (1 - t^2). The kernel's dS carries 1 - t^2, and
  // cap * softcap_scale, the call's scale, is the factor dQ and dK get in fp32.
  CHECK(params.softmax_scale == doctest::Approx(50.0 * variant.softcap_scale));
}

TEST_CASE("backward without softcap: the variant params leave both scales the call's") {
  const float scale = 0.125f;
  fa2::BwdArgs args = backward_args(scale, 0.f);
  args.variant.window_left = 16;
  fa2::BwdParams params = fa2::make_bwd_params(args, nullptr, 64, 0);
  const fa2::VariantParams variant = fa2::make_bwd_variant_params(args, params);
  CHECK(params.softmax_scale == scale);
  CHECK(params.softmax_scale_log2 == doctest::Approx(scale * 1.44269504));
  CHECK(variant.window_left == 16);
  CHECK(variant.alibi_scale == doctest::Approx(1.0 / scale));
}
