// forward_with_kvcache() against the fp32 reference on fresh random inputs with poisoned outputs: decode and
// chunked-prefill shapes over every head dim, both dtypes, causal on and off, GQA 1:1 to MQA, contiguous and
// paged caches (every page size, shuffled pages), ragged cache lengths, split against unsplit,
// and packed variable-length batches (varlen).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "api/checks.hpp"
#include "autotune/host_16bit.hpp"
#include "autotune/kvcache_buffers.hpp"
#include "autotune/reference.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"

namespace {

using fa2::CheckSpec;
using fa2::DType;
using fa2::Family;
using fa2::Layout;

void check_case(const CheckSpec& spec) {
  const fa2::ForwardCheckResult result = fa2::run_kvcache_check(spec);
  const fa2::OutputComparison& c = result.comparison;
  INFO(spec.shape.describe(), "  ", result.kernel_name);
  CHECK(c.unwritten_o == 0);
  CHECK(c.unwritten_lse == 0);
  CHECK(c.lse_inf_mismatch == 0);
  CHECK(c.o_rel_error <= c.o_tolerance);
  CHECK(c.lse_rel_error <= c.lse_tolerance);
  MESSAGE(fmt::format("{:<60} O {:.2e}  LSE {:.2e}  {}", spec.shape.describe(), c.o_rel_error, c.lse_rel_error,
                      result.passed ? "ok" : "FAIL"));
}

fa2::ProblemShape kvcache_shape(int head_dim, DType dtype, bool causal, int heads_q, int heads_kv, int seqlen_q,
                                int seqlen_k, int page_size, Layout layout = Layout::bshd, int batch = 2) {
  fa2::ProblemShape shape;
  shape.family = Family::kvc;
  shape.head_dim = head_dim;
  shape.dtype = dtype;
  shape.causal = causal;
  shape.batch = batch;
  shape.heads_q = heads_q;
  shape.heads_kv = heads_kv;
  shape.seqlen_q = seqlen_q;
  shape.seqlen_k = seqlen_k;
  shape.page_size = page_size;
  shape.layout = layout;
  return shape;
}

void synchronize() { fa2::driver::check(fa2::driver::api().CtxSynchronize(), "cuCtxSynchronize"); }

void upload(const fa2::DeviceBuffer& buffer, const std::vector<int>& values) {
  fa2::driver::check(fa2::driver::api().MemcpyHtoD(buffer.address(), values.data(), values.size() * sizeof(int)),
                     "cuMemcpyHtoD");
}

struct HeadLayout {
  int heads_q;
  int heads_kv;
};
const HeadLayout kHeadLayouts[] = {{4, 4}, {8, 2}, {16, 2}, {8, 1}};  // MHA, GQA 4:1 and 8:1, MQA
const int kPageSizes[] = {0, 16, 32, 64, 128, 256};

}  // namespace

TEST_CASE("kvcache forward matches the fp32 reference over its matrix") {
  // Decode (1..16 new rows), chunked prefill (hundreds) and more rows than keys; every pair meets every
  // (head dim, dtype, causal), while head layout, page size and query layout rotate with the case.
  struct Lengths {
    int seqlen_q, seqlen_k;
  };
  const Lengths lengths[] = {{1, 1}, {1, 77}, {1, 4133}, {3, 1000}, {16, 513}, {100, 2000}, {300, 129}};
  int case_index = 0;
  for (int head_dim = 32; head_dim <= 256; head_dim += 32)
    for (DType dtype : {DType::bf16, DType::fp16})
      for (bool causal : {false, true})
        for (const Lengths& length : lengths) {
          const HeadLayout heads = kHeadLayouts[case_index % 4];
          const int page_size = kPageSizes[case_index % 6];
          const Layout layout = (case_index / 4) % 2 == 0 ? Layout::bshd : Layout::bhsd;
          CheckSpec spec;
          spec.shape = kvcache_shape(head_dim, dtype, causal, heads.heads_q, heads.heads_kv, length.seqlen_q,
                                     length.seqlen_k, page_size, layout);
          ++case_index;
          SUBCASE(spec.shape.describe().c_str()) { check_case(spec); }
        }
}

TEST_CASE("kvcache decode: 1..16 new rows, GQA 1:1 to MQA, every page size") {
  for (int head_dim : {64, 128, 256})
    for (int seqlen_q : {1, 2, 5, 16})
      for (const HeadLayout& heads : kHeadLayouts)
        for (int page_size : kPageSizes) {
          CheckSpec spec;
          spec.shape = kvcache_shape(head_dim, DType::bf16, seqlen_q > 1, heads.heads_q, heads.heads_kv, seqlen_q,
                                     2500 + seqlen_q, page_size);
          SUBCASE(spec.shape.describe().c_str()) { check_case(spec); }
        }
}

TEST_CASE("kvcache: a softmax scale other than 1/sqrt(d) is honoured") {
  CheckSpec spec;
  spec.shape = kvcache_shape(128, DType::fp16, true, 8, 2, 7, 3000, 64);
  spec.softmax_scale = 0.37f;
  check_case(spec);
}

TEST_CASE("kvcache: ragged cache lengths, including 0 and 1, match a per-sequence reference") {
  for (int page_size : {0, 16}) {
    for (bool causal : {false, true}) {
      const std::vector<int> seqlens = {0, 1, 77, 2048, 3001};
      const int batch = static_cast<int>(seqlens.size());
      const fa2::ProblemShape shape = kvcache_shape(128, DType::bf16, causal, 8, 2, 4, 3001, page_size, Layout::bshd,
                                                    batch);
      fa2::KvcacheBuffers buffers(shape);
      fa2::DeviceBuffer lengths(seqlens.size() * sizeof(int));
      upload(lengths, seqlens);
      fa2::KvcacheArgs args = buffers.args(0);
      args.cache_seqlens = static_cast<const int*>(lengths.get());
      args.tune_policy = fa2::TunePolicy::heuristic;
      fa2::forward_with_kvcache(args);
      synchronize();
      const auto o = buffers.contiguous().o().download<unsigned short>();
      const auto lse = buffers.contiguous().lse().download<float>();

      const fa2::FwdArgs whole = buffers.contiguous().args(0);
      for (int b = 0; b < batch; ++b) {
        INFO("page_size ", page_size, " causal ", causal, " sequence ", b, " of ", seqlens[b], " keys");
        const long long q_offset = b * whole.q_strides.batch, k_offset = b * whole.k_strides.batch;
        const int rows = shape.seqlen_q * shape.heads_q;
        std::vector<float> o_ref(static_cast<std::size_t>(rows) * shape.head_dim, 0.f);
        std::vector<float> lse_ref(rows, INFINITY);
        if (seqlens[b] > 0) {
          fa2::FwdArgs one = whole;
          one.batch = 1;
          one.seqlen_k = seqlens[b];
          one.q = static_cast<const unsigned short*>(whole.q) + q_offset;
          one.k = static_cast<const unsigned short*>(whole.k) + k_offset;
          one.v = static_cast<const unsigned short*>(whole.v) + k_offset;
          fa2::DeviceBuffer o_buffer(o_ref.size() * 4), lse_buffer(lse_ref.size() * 4);
          fa2::Reference::current().forward(one, o_buffer, lse_buffer);
          o_ref = o_buffer.download<float>();
          lse_ref = lse_buffer.download<float>();
        }
        double diff2 = 0, ref2 = 0, lse_error = 0;
        long long unwritten = 0, inf_mismatch = 0;
        for (int h = 0; h < shape.heads_q; ++h)
          for (int s = 0; s < shape.seqlen_q; ++s) {
            const long long base = b * whole.o_strides.batch + h * whole.o_strides.head + s * whole.o_strides.row;
            for (int d = 0; d < shape.head_dim; ++d) {
              const unsigned short bits = o[base + d];
              if (bits == fa2::ProblemBuffers::kPoison16) ++unwritten;
              const double got = fa2::decode_16bit(bits, shape.dtype);
              const double want = o_ref[(static_cast<std::size_t>(h) * shape.seqlen_q + s) * shape.head_dim + d];
              diff2 += (got - want) * (got - want);
              ref2 += want * want;
            }
            const float got_lse = lse[(static_cast<std::size_t>(b) * shape.heads_q + h) * shape.seqlen_q + s];
            const float want_lse = lse_ref[static_cast<std::size_t>(h) * shape.seqlen_q + s];
            if (std::isinf(got_lse) != std::isinf(want_lse) || std::isnan(got_lse)) ++inf_mismatch;
            else if (!std::isinf(want_lse))
              lse_error = std::max(lse_error, std::fabs(static_cast<double>(got_lse) - want_lse) /
                                                 std::max(1.0, std::fabs(static_cast<double>(want_lse))));
          }
        CHECK(unwritten == 0);
        CHECK(inf_mismatch == 0);
        CHECK(lse_error <= fa2::kLseTolerance);
        const double error = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
        CHECK(error <= fa2::o_tolerance(shape.dtype));
        MESSAGE(fmt::format("ragged page{} causal {} sequence {} ({} keys): O {:.2e} LSE {:.2e}", page_size, causal,
                            b, seqlens[b], error, lse_error));
      }
    }
  }
}

TEST_CASE("kvcache: split and unsplit agree to fp32 rounding, and paged equals contiguous bitwise") {
  const fa2::ProblemShape contiguous = kvcache_shape(128, DType::bf16, true, 16, 2, 3, 6000, 0, Layout::bshd, 1);
  std::vector<unsigned short> reference_o;
  std::vector<float> reference_lse;
  for (int page_size : kPageSizes) {
    fa2::ProblemShape shape = contiguous;
    shape.page_size = page_size;
    fa2::KvcacheBuffers buffers(shape, /*seed*/ 1234);  // the same data for every page size
    for (int splits : {1, 2, 7, 32}) {
      INFO("page_size ", page_size, " splits ", splits);
      buffers.contiguous().poison_outputs();
      fa2::KvcacheArgs args = buffers.args(0);
      args.num_splits = splits;
      args.tune_policy = fa2::TunePolicy::heuristic;
      fa2::forward_with_kvcache(args);
      synchronize();
      const auto o = buffers.contiguous().o().download<unsigned short>();
      const auto lse = buffers.contiguous().lse().download<float>();
      if (reference_o.empty()) {  // contiguous, unsplit: what every other run is compared with
        reference_o = o;
        reference_lse = lse;
        continue;
      }
      // Split: the same sums in another order, each split normalized by its own sum and merged by LSE
      // weights (fp32, approximate exp2/log2), then rounded to 16 bits once more: an element may land one
      // rounding step of bf16 away, measured against the output's scale (an element near 0 has a tiny ulp).
      double scale = 0;
      for (unsigned short bits : reference_o)
        scale = std::max(scale, static_cast<double>(std::fabs(fa2::decode_16bit(bits, shape.dtype))));
      long long far = 0;
      double lse_error = 0, worst = 0;
      for (std::size_t i = 0; i < o.size(); ++i) {
        const double a = fa2::decode_16bit(o[i], shape.dtype), b = fa2::decode_16bit(reference_o[i], shape.dtype);
        worst = std::max(worst, std::fabs(a - b) / scale);
        if (!(std::fabs(a - b) <= std::ldexp(std::fabs(b), -7) + std::ldexp(scale, -12))) ++far;
      }
      for (std::size_t i = 0; i < lse.size(); ++i)
        lse_error = std::max(lse_error, std::fabs(static_cast<double>(lse[i]) - reference_lse[i]) /
                                            std::max(1.0, std::fabs(static_cast<double>(reference_lse[i]))));
      MESSAGE(fmt::format("page{} splits {}: largest O difference {:.2e} of the output's scale, {} beyond a bf16 "
                          "step; LSE {:.1e}", page_size, splits, worst, far, lse_error));
      CHECK(far == 0);
      CHECK(lse_error <= 1e-5);
      if (splits == 1) CHECK(o == reference_o);  // paged, unsplit: the very same arithmetic as contiguous
    }
  }
}

TEST_CASE("varlen: packed sequences of ragged lengths match a per-sequence reference") {
  // Queries and keys of each sequence, including a sequence with no keys and one with more queries than keys.
  const std::vector<int> seqlens_q = {1, 130, 7, 300, 5};
  const std::vector<int> seqlens_k = {77, 129, 0, 1000, 4133};
  const int heads_q = 8, heads_kv = 2;
  for (int head_dim : {64, 128})
    for (bool causal : {false, true})
      for (int splits : {1, 0}) {
        INFO("d", head_dim, " causal ", causal, " num_splits ", splits);
        std::vector<int> cu_q = {0}, cu_k = {0};
        for (std::size_t b = 0; b < seqlens_q.size(); ++b) {
          cu_q.push_back(cu_q.back() + seqlens_q[b]);
          cu_k.push_back(cu_k.back() + seqlens_k[b]);
        }
        const int batch = static_cast<int>(seqlens_q.size()), total_q = cu_q.back(), total_k = cu_k.back();
        const DType dtype = DType::bf16;
        const fa2::Reference& reference = fa2::Reference::current();
        fa2::DeviceBuffer q(2ll * total_q * heads_q * head_dim), k(2ll * total_k * heads_kv * head_dim),
            v(2ll * total_k * heads_kv * head_dim), o(2ll * total_q * heads_q * head_dim), lse(4ll * heads_q * total_q);
        reference.fill_random(q.get(), total_q * heads_q * head_dim, dtype, 11);
        reference.fill_random(k.get(), total_k * heads_kv * head_dim, dtype, 12);
        reference.fill_random(v.get(), total_k * heads_kv * head_dim, dtype, 13);
        o.fill16(fa2::ProblemBuffers::kPoison16);
        lse.fill32(fa2::ProblemBuffers::kPoison32);
        fa2::DeviceBuffer cu_q_device(cu_q.size() * sizeof(int)), cu_k_device(cu_k.size() * sizeof(int));
        upload(cu_q_device, cu_q);
        upload(cu_k_device, cu_k);

        fa2::KvcacheArgs args;
        args.q = q.get();
        args.k_cache = k.get();
        args.v_cache = v.get();
        args.o = o.get();
        args.lse = static_cast<float*>(lse.get());
        args.cu_seqlens_q = static_cast<const int*>(cu_q_device.get());
        args.cu_seqlens_k = static_cast<const int*>(cu_k_device.get());
        args.total_q = total_q;
        args.dtype = dtype;
        args.batch = batch;
        args.heads_q = heads_q;
        args.heads_kv = heads_kv;
        args.seqlen_q = *std::max_element(seqlens_q.begin(), seqlens_q.end());
        args.seqlen_k = *std::max_element(seqlens_k.begin(), seqlens_k.end());
        args.head_dim = head_dim;
        args.q_strides = args.o_strides = fa2::Strides{0, head_dim, 1ll * heads_q * head_dim};
        args.k_strides = args.v_strides = fa2::Strides{0, head_dim, 1ll * heads_kv * head_dim};
        args.causal = causal;
        args.num_splits = splits;
        args.tune_policy = fa2::TunePolicy::heuristic;
        fa2::forward_with_kvcache(args);
        synchronize();
        const auto o_got = o.download<unsigned short>();
        const auto lse_got = lse.download<float>();

        for (int b = 0; b < batch; ++b) {
          CAPTURE(b);
          std::vector<float> o_ref(static_cast<std::size_t>(heads_q) * seqlens_q[b] * head_dim, 0.f);
          std::vector<float> lse_ref(static_cast<std::size_t>(heads_q) * seqlens_q[b], INFINITY);
          if (seqlens_k[b] > 0) {
            fa2::FwdArgs one;
            one.q = static_cast<const unsigned short*>(q.get()) + 1ll * cu_q[b] * heads_q * head_dim;
            one.k = static_cast<const unsigned short*>(k.get()) + 1ll * cu_k[b] * heads_kv * head_dim;
            one.v = static_cast<const unsigned short*>(v.get()) + 1ll * cu_k[b] * heads_kv * head_dim;
            one.dtype = dtype;
            one.batch = 1;
            one.heads_q = heads_q;
            one.heads_kv = heads_kv;
            one.seqlen_q = seqlens_q[b];
            one.seqlen_k = seqlens_k[b];
            one.head_dim = head_dim;
            one.q_strides = one.o_strides = args.q_strides;
            one.k_strides = one.v_strides = args.k_strides;
            one.causal = causal;
            fa2::DeviceBuffer o_buffer(o_ref.size() * 4), lse_buffer(lse_ref.size() * 4);
            reference.forward(one, o_buffer, lse_buffer);
            o_ref = o_buffer.download<float>();
            lse_ref = lse_buffer.download<float>();
          }
          double diff2 = 0, ref2 = 0, lse_error = 0;
          long long unwritten = 0, inf_mismatch = 0;
          for (int h = 0; h < heads_q; ++h)
            for (int s = 0; s < seqlens_q[b]; ++s) {
              const long long base = (1ll * (cu_q[b] + s) * heads_q + h) * head_dim;
              for (int d = 0; d < head_dim; ++d) {
                const unsigned short bits = o_got[base + d];
                if (bits == fa2::ProblemBuffers::kPoison16) ++unwritten;
                const double got = fa2::decode_16bit(bits, dtype);
                const double want = o_ref[(static_cast<std::size_t>(h) * seqlens_q[b] + s) * head_dim + d];
                diff2 += (got - want) * (got - want);
                ref2 += want * want;
              }
              const float got_lse = lse_got[static_cast<std::size_t>(h) * total_q + cu_q[b] + s];
              const float want_lse = lse_ref[static_cast<std::size_t>(h) * seqlens_q[b] + s];
              if (std::isinf(got_lse) != std::isinf(want_lse) || std::isnan(got_lse)) ++inf_mismatch;
              else if (!std::isinf(want_lse))
                lse_error = std::max(lse_error, std::fabs(static_cast<double>(got_lse) - want_lse) /
                                                    std::max(1.0, std::fabs(static_cast<double>(want_lse))));
            }
          const double error = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
          CHECK(unwritten == 0);
          CHECK(inf_mismatch == 0);
          CHECK(lse_error <= fa2::kLseTolerance);
          CHECK(error <= fa2::o_tolerance(dtype));
          MESSAGE(fmt::format("varlen d{} causal {} splits {} sequence {} ({} x {}): O {:.2e} LSE {:.2e}", head_dim,
                              causal, splits, b, seqlens_q[b], seqlens_k[b], error, lse_error));
        }
      }
}
