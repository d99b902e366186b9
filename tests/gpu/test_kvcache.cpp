// forward_with_kvcache() against the fp32 reference on fresh random inputs with poisoned outputs: decode and
// chunked-prefill shapes over every head dim, both dtypes, causal on and off, GQA 1:1 to MQA, contiguous and
// paged caches (every page size, shuffled pages), ragged cache lengths, split against unsplit, new keys
// appended to the cache, and packed variable-length batches (varlen).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "api/checks.hpp"
#include "autotune/host_16bit.hpp"
#include "autotune/kvcache_buffers.hpp"
#include "autotune/forward_check.hpp"
#include "autotune/reference.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"
#include "runtime/params_builder.hpp"
#include "tests/support/reference_checks.hpp"

namespace {

using fa2::CheckSpec;
using fa2::DType;
using fa2::Family;
using fa2::Layout;

void check_case(const CheckSpec& spec) { fa2::test::check_output(spec, fa2::run_kvcache_check(spec)); }

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

TEST_CASE("kvcache: splits merge exactly, split and unsplit are equally accurate, paged equals contiguous bitwise") {
  // Split and unsplit runs differ by more than rounding of the sums: each split scales its probabilities by
  // its own running max before they are rounded to 16 bits for the P V product, so the two round different
  // numbers (about 2^-9 of the output's scale). What must hold exactly is the merge: the combine kernel's O
  // and LSE equal the fp64 merge of the partials it read, up to one 16-bit rounding of O; and every run
  // meets the fp32 reference's tolerance.
  const int batch = 1, heads_q = 16, seqlen_q = 3, head_dim = 128;
  const fa2::ProblemShape contiguous = kvcache_shape(head_dim, DType::bf16, true, heads_q, 2, seqlen_q, 6000, 0,
                                                     Layout::bshd, batch);
  std::vector<unsigned short> unsplit_o;
  for (int page_size : kPageSizes) {
    fa2::ProblemShape shape = contiguous;
    shape.page_size = page_size;
    fa2::KvcacheBuffers buffers(shape, /*seed*/ 1234);  // the same data for every page size
    const fa2::ReferenceOutputs reference(buffers.contiguous(), 0);
    for (int splits : {1, 2, 7, 32}) {
      INFO("page_size ", page_size, " splits ", splits);
      buffers.contiguous().poison_outputs();
      fa2::KvcacheArgs args = buffers.args(0);
      args.num_splits = splits;
      args.tune_policy = fa2::TunePolicy::heuristic;
      const fa2::KvcWorkspaceLayout layout = fa2::kvc_workspace_layout(args, splits);
      fa2::DeviceBuffer workspace(std::max<std::size_t>(layout.bytes, 256));
      args.workspace = workspace.get();
      args.workspace_bytes = workspace.bytes();
      fa2::forward_with_kvcache(args);
      synchronize();
      const fa2::OutputComparison accuracy = fa2::compare_outputs(buffers.contiguous(), reference);
      MESSAGE(fmt::format("page{} splits {}: {}", page_size, splits, accuracy.summary()));
      CHECK(accuracy.passed());
      const auto o = buffers.contiguous().o().download<unsigned short>();
      const auto lse = buffers.contiguous().lse().download<float>();
      if (splits == 1) {
        if (unsplit_o.empty()) unsplit_o = o;  // contiguous
        CHECK(o == unsplit_o);                  // paged, unsplit: the very same arithmetic as contiguous
        continue;
      }
      // The merge of what the splits wrote, in fp64.
      const auto bytes = workspace.download<unsigned char>();
      const float* o_partial = reinterpret_cast<const float*>(bytes.data() + layout.o_partial);
      const float* lse_partial = reinterpret_cast<const float*>(bytes.data() + layout.lse_partial);
      const long long rows = static_cast<long long>(batch) * heads_q * seqlen_q;
      long long far = 0;
      double lse_error = 0;
      for (long long row = 0; row < rows; ++row) {
        const int query = static_cast<int>(row % seqlen_q), head = static_cast<int>(row / seqlen_q % heads_q);
        double lse_max = -INFINITY, sum = 0;
        for (int s = 0; s < splits; ++s) lse_max = std::max(lse_max, static_cast<double>(lse_partial[s * rows + row]));
        for (int s = 0; s < splits; ++s) sum += std::exp(lse_partial[s * rows + row] - lse_max);
        const double merged_lse = lse_max + std::log(sum);
        lse_error = std::max(lse_error, std::fabs(lse[head * seqlen_q + query] - merged_lse) / std::fabs(merged_lse));
        for (int d = 0; d < head_dim; ++d) {
          double merged = 0;
          for (int s = 0; s < splits; ++s)
            merged += std::exp(lse_partial[s * rows + row] - merged_lse) * o_partial[(s * rows + row) * head_dim + d];
          const double got = fa2::decode_16bit(o[(static_cast<std::size_t>(query) * heads_q + head) * head_dim + d],
                                               DType::bf16);
          // One bf16 rounding (2^-9 relative, at most 2^-8 below a power of two) plus fp32 and exp2.approx.
          if (!(std::fabs(got - merged) <= std::ldexp(std::fabs(merged), -8) + 1e-6)) ++far;
        }
      }
      MESSAGE(fmt::format("  merge: {} elements beyond one bf16 rounding of the fp64 merge; LSE {:.1e}", far,
                          lse_error));
      CHECK(far == 0);
      CHECK(lse_error <= 1e-6);
    }
  }
}

TEST_CASE("kvcache append: new rows land exactly at cache_seqlens[b] + j and are attended as if already there") {
  // Three sequences, three new rows each: one into an empty cache, one mid-cache, and one whose last new row
  // falls past the capacity (not written; the attention is clamped there). Every byte of the cache but the
  // written rows must be unchanged, and the output must equal, bitwise, a plain call over the cache holding
  // those rows with the longer lengths (the same kernel over the same data).
  const std::vector<int> lengths = {0, 120, 298};
  const int batch = 3, heads_kv = 2, head_dim = 128, seqlen_k = 300, seqlen_new = 3;
  auto& cu = fa2::driver::api();
  for (int page_size : {0, 16}) {
    INFO("page_size ", page_size);
    const fa2::ProblemShape shape = kvcache_shape(head_dim, DType::bf16, true, 8, heads_kv, seqlen_new, seqlen_k,
                                                  page_size, Layout::bshd, batch);
    fa2::KvcacheBuffers buffers(shape);
    fa2::KvcacheArgs args = buffers.args(0);
    args.tune_policy = fa2::TunePolicy::heuristic;
    const int cache_rows = page_size > 0 ? buffers.num_pages() : batch;  // the leading dimension
    const std::size_t cache_elements = static_cast<std::size_t>(cache_rows) * args.k_strides.batch;
    auto download = [&](const void* from, std::size_t elements) {
      std::vector<unsigned short> host(elements);
      fa2::driver::check(cu.MemcpyDtoH(host.data(), reinterpret_cast<CUdeviceptr>(from), elements * 2),
                         "cuMemcpyDtoH");
      return host;
    };
    std::vector<unsigned short> expected_k = download(args.k_cache, cache_elements);
    std::vector<unsigned short> expected_v = download(args.v_cache, cache_elements);
    std::vector<int> table;
    if (page_size > 0) {
      table.resize(static_cast<std::size_t>(batch) * args.block_table_stride);
      fa2::driver::check(cu.MemcpyDtoH(table.data(), reinterpret_cast<CUdeviceptr>(args.block_table),
                                       table.size() * sizeof(int)),
                         "cuMemcpyDtoH");
    }

    // New rows [batch, seqlen_new, heads_kv, head_dim], random bf16 in [-1, 1).
    const fa2::Strides new_strides = fa2::bshd_strides(seqlen_new, heads_kv, head_dim);
    std::mt19937 random(77 + page_size);
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    auto bf16 = [&] {
      const float value = uniform(random);
      unsigned bits;
      std::memcpy(&bits, &value, 4);
      return static_cast<unsigned short>(bits >> 16);
    };
    std::vector<unsigned short> k_new(static_cast<std::size_t>(batch) * new_strides.batch), v_new(k_new.size());
    for (std::size_t i = 0; i < k_new.size(); ++i) k_new[i] = bf16(), v_new[i] = bf16();
    fa2::DeviceBuffer k_new_device(k_new.size() * 2), v_new_device(v_new.size() * 2);
    fa2::driver::check(cu.MemcpyHtoD(k_new_device.address(), k_new.data(), k_new.size() * 2), "cuMemcpyHtoD");
    fa2::driver::check(cu.MemcpyHtoD(v_new_device.address(), v_new.data(), v_new.size() * 2), "cuMemcpyHtoD");
    for (int b = 0; b < batch; ++b)
      for (int j = 0; j < seqlen_new; ++j) {
        const int position = lengths[b] + j;
        if (position >= seqlen_k) continue;
        const long long row = page_size > 0 ? table[b * args.block_table_stride + position / page_size] *
                                                      args.k_strides.batch +
                                                  (position % page_size) * args.k_strides.row
                                            : b * args.k_strides.batch + position * args.k_strides.row;
        for (int h = 0; h < heads_kv; ++h)
          for (int d = 0; d < head_dim; ++d) {
            const long long from = b * new_strides.batch + j * new_strides.row + h * new_strides.head + d;
            expected_k[row + h * args.k_strides.head + d] = k_new[from];
            expected_v[row + h * args.v_strides.head + d] = v_new[from];
          }
      }

    fa2::DeviceBuffer seqlens(batch * sizeof(int));
    upload(seqlens, lengths);
    args.cache_seqlens = static_cast<const int*>(seqlens.get());
    args.k_new = k_new_device.get();
    args.v_new = v_new_device.get();
    args.seqlen_new = seqlen_new;
    args.k_new_strides = args.v_new_strides = new_strides;
    fa2::forward_with_kvcache(args);
    synchronize();
    CHECK(download(args.k_cache, cache_elements) == expected_k);
    CHECK(download(args.v_cache, cache_elements) == expected_v);
    const auto appended_o = buffers.contiguous().o().download<unsigned short>();
    const auto appended_lse = buffers.contiguous().lse().download<float>();
    CHECK(std::count(appended_o.begin(), appended_o.end(), fa2::ProblemBuffers::kPoison16) == 0);

    // The same attention with the rows already in place and the lengths that count them.
    std::vector<int> longer(lengths);
    for (int& length : longer) length = std::min(length + seqlen_new, seqlen_k);
    upload(seqlens, longer);
    buffers.contiguous().poison_outputs();
    args.k_new = args.v_new = nullptr;
    args.seqlen_new = 0;
    fa2::forward_with_kvcache(args);
    synchronize();
    CHECK(buffers.contiguous().o().download<unsigned short>() == appended_o);
    CHECK(buffers.contiguous().lse().download<float>() == appended_lse);
    MESSAGE(fmt::format("append page{}: cache rows and output as expected", page_size));
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
