// forward() against the fp32 reference on fresh random inputs with poisoned outputs, over every head
// dim, both dtypes, causal on and off, odd and unequal sequence lengths, GQA/MQA and both layouts.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "api/checks.hpp"
#include "autotune/reference.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"
#include "tests/support/reference_checks.hpp"

namespace {

using fa2::DType;
using fa2::CheckSpec;
using fa2::Layout;

using fa2::test::check_forward_case;

const int kSeqlens[] = {1, 17, 128, 1000, 4097};

struct HeadLayout {
  int heads_q;
  int heads_kv;
};
const HeadLayout kHeadLayouts[] = {{4, 4}, {8, 2}, {4, 1}};  // MHA, GQA 4:1, MQA

}  // namespace

TEST_CASE("forward matches the fp32 reference over the full matrix") {
  // Every (head dim, dtype, causal) sees every (seqlen_q, seqlen_k) pair; head layout, memory layout
  // and batch rotate with the pair so each of them also meets every kernel.
  int case_index = 0;
  for (int head_dim = 32; head_dim <= 256; head_dim += 32)
    for (DType dtype : {DType::bf16, DType::fp16})
      for (bool causal : {false, true})
        for (int seqlen_q : kSeqlens)
          for (int seqlen_k : kSeqlens) {
            CheckSpec spec;
            spec.shape.head_dim = head_dim;
            spec.shape.dtype = dtype;
            spec.shape.causal = causal;
            const HeadLayout heads = kHeadLayouts[case_index % 3];
            spec.shape.heads_q = heads.heads_q;
            spec.shape.heads_kv = heads.heads_kv;
            spec.shape.layout = (case_index / 3) % 2 == 0 ? Layout::bshd : Layout::bhsd;
            // Long rows cost the reference most: keep the total work bounded with batch 1 there.
            spec.shape.batch = seqlen_q * seqlen_k > 1000000 ? 1 : 2;
            ++case_index;
            SUBCASE(spec.shape.describe().c_str()) { check_forward_case(spec); }
          }
}

TEST_CASE("rows that see no key give O = 0 and LSE = +inf") {
  // Causal with seqlen_q > seqlen_k: the first seqlen_q - seqlen_k rows see nothing.
  for (int head_dim : {64, 128, 256}) {
    CheckSpec spec;
    spec.shape.head_dim = head_dim;
    spec.shape.causal = true;
    spec.shape.batch = 1;
    spec.shape.heads_q = spec.shape.heads_kv = 2;
    spec.shape.seqlen_q = 300;
    spec.shape.seqlen_k = 40;
    check_forward_case(spec);
  }
}

TEST_CASE("a softmax scale other than 1/sqrt(d) is honoured") {
  CheckSpec spec;
  spec.shape.batch = 1;
  spec.shape.heads_q = spec.shape.heads_kv = 2;
  spec.shape.seqlen_q = 200;
  spec.shape.seqlen_k = 333;
  spec.softmax_scale = 0.37f;
  check_forward_case(spec);
}

TEST_CASE("the reference agrees with a float64 computation on the host") {
  // The reference is itself code: check it once against double precision on a small problem.
  const fa2::Reference& reference = fa2::Reference::current();
  const int batch = 1, heads = 2, seqlen_q = 37, seqlen_k = 53, head_dim = 64;
  for (bool causal : {false, true}) {
    const long long q_elems = 1ll * batch * seqlen_q * heads * head_dim;
    const long long kv_elems = 1ll * batch * seqlen_k * heads * head_dim;
    fa2::DeviceBuffer q(q_elems * 2), k(kv_elems * 2), v(kv_elems * 2);
    fa2::DeviceBuffer o_ref(q_elems * 4), lse_ref(1ll * batch * heads * seqlen_q * 4);
    reference.fill_random(q.get(), q_elems, DType::bf16, 11);
    reference.fill_random(k.get(), kv_elems, DType::bf16, 12);
    reference.fill_random(v.get(), kv_elems, DType::bf16, 13);
    fa2::FwdArgs args;
    args.q = q.get();
    args.k = k.get();
    args.v = v.get();
    args.dtype = DType::bf16;
    args.batch = batch;
    args.heads_q = args.heads_kv = heads;
    args.seqlen_q = seqlen_q;
    args.seqlen_k = seqlen_k;
    args.head_dim = head_dim;
    args.q_strides = fa2::bshd_strides(seqlen_q, heads, head_dim);
    args.k_strides = args.v_strides = fa2::bshd_strides(seqlen_k, heads, head_dim);
    args.causal = causal;
    reference.forward(args, o_ref, lse_ref);

    auto widen = [](const std::vector<unsigned short>& bits) {
      std::vector<double> out(bits.size());
      for (size_t i = 0; i < bits.size(); ++i) {
        const unsigned word = static_cast<unsigned>(bits[i]) << 16;
        float value;
        std::memcpy(&value, &word, 4);
        out[i] = value;
      }
      return out;
    };
    const auto qh = widen(q.download<unsigned short>());
    const auto kh = widen(k.download<unsigned short>());
    const auto vh = widen(v.download<unsigned short>());
    const auto o_got = o_ref.download<float>();
    const auto lse_got = lse_ref.download<float>();
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    double max_o_err = 0, max_lse_err = 0;
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < seqlen_q; ++i) {
        std::vector<double> p(seqlen_k, 0.0);
        double mx = -INFINITY;
        for (int j = 0; j < seqlen_k; ++j) {
          if (causal && j > i + seqlen_k - seqlen_q) continue;
          double dot = 0;
          for (int d = 0; d < head_dim; ++d)
            dot += qh[(i * heads + h) * head_dim + d] * kh[(j * heads + h) * head_dim + d];
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int j = 0; j < seqlen_k; ++j) {
          p[j] = (causal && j > i + seqlen_k - seqlen_q) ? 0.0 : std::exp(p[j] - mx);
          sum += p[j];
        }
        const long long row = 1ll * h * seqlen_q + i;
        max_lse_err = std::max(max_lse_err, std::abs(lse_got[row] - (mx + std::log(sum))));
        for (int d = 0; d < head_dim; ++d) {
          double o = 0;
          for (int j = 0; j < seqlen_k; ++j) o += p[j] * vh[(j * heads + h) * head_dim + d];
          max_o_err = std::max(max_o_err, std::abs(o_got[row * head_dim + d] - o / sum));
        }
      }
    CHECK(max_o_err < 1e-5);
    CHECK(max_lse_err < 1e-4);
  }
}

TEST_CASE("a second call of the same problem class compiles nothing") {
  CheckSpec spec;
  spec.shape.head_dim = 96;
  spec.shape.batch = 1;
  spec.shape.heads_q = spec.shape.heads_kv = 2;
  spec.shape.seqlen_q = spec.shape.seqlen_k = 100;
  fa2::run_forward_check(spec);
  const fa2::RuntimeStats before = fa2::runtime_stats();
  fa2::run_forward_check(spec);
  const fa2::RuntimeStats after = fa2::runtime_stats();
  CHECK(after.compiles == before.compiles);
  CHECK(after.resolutions == before.resolutions);
  CHECK(after.dispatch_hits >= before.dispatch_hits + 2);  // forward_config() and forward()
}
