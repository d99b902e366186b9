// The KV-cache kernels against device values the host cannot check: block table entries outside the cache.
// Such an entry must never be written by the append nor read past the cache by the attention (page 0 is
// read in its place), and every other sequence's result must be exactly what a good table gives.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "autotune/kvcache_buffers.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"

namespace {

using fa2::DType;

std::vector<unsigned short> download_16bit(const void* from, std::size_t elements) {
  std::vector<unsigned short> host(elements);
  fa2::driver::check(fa2::driver::api().MemcpyDtoH(host.data(), reinterpret_cast<CUdeviceptr>(from), elements * 2),
                     "cuMemcpyDtoH");
  return host;
}

void upload_ints(const void* to, const std::vector<int>& values) {
  fa2::driver::check(fa2::driver::api().MemcpyHtoD(reinterpret_cast<CUdeviceptr>(to), values.data(),
                                                   values.size() * sizeof(int)),
                     "cuMemcpyHtoD");
}

}  // namespace

TEST_CASE("kvcache: block table entries outside the cache are never written, never read past, and leave the "
          "other sequences exact") {
  // Sequence 0 appends two rows into a page whose entry is past num_pages, and an earlier page of it is -5;
  // sequence 1's table is good. Compared with the same call on the good table: the cache differs only where
  // the good table let sequence 0 write, and sequence 1's output and LSE are bitwise the same.
  const int batch = 2, heads_q = 8, heads_kv = 2, head_dim = 128, seqlen_k = 300, page_size = 16, seqlen_new = 2;
  const std::vector<int> lengths = {100, 200};
  fa2::ProblemShape shape;
  shape.family = fa2::Family::kvc;
  shape.head_dim = head_dim;
  shape.dtype = DType::bf16;
  shape.causal = true;
  shape.batch = batch;
  shape.heads_q = heads_q;
  shape.heads_kv = heads_kv;
  shape.seqlen_q = seqlen_new;
  shape.seqlen_k = seqlen_k;
  shape.page_size = page_size;
  fa2::KvcacheBuffers buffers(shape);
  fa2::KvcacheArgs args = buffers.args(0);
  args.tune_policy = fa2::TunePolicy::heuristic;
  auto& cu = fa2::driver::api();
  const std::size_t cache_elements = static_cast<std::size_t>(buffers.num_pages()) * args.k_strides.batch;
  const std::vector<unsigned short> original_k = download_16bit(args.k_cache, cache_elements);
  const std::vector<unsigned short> original_v = download_16bit(args.v_cache, cache_elements);
  std::vector<int> good_table(static_cast<std::size_t>(batch) * args.block_table_stride);
  fa2::driver::check(cu.MemcpyDtoH(good_table.data(), reinterpret_cast<CUdeviceptr>(args.block_table),
                                   good_table.size() * sizeof(int)),
                     "cuMemcpyDtoH");
  std::vector<int> bad_table = good_table;
  bad_table[lengths[0] / page_size] = buffers.num_pages() + 7;  // where sequence 0's new rows go
  bad_table[2] = -5;                                            // a page sequence 0 only reads

  const fa2::Strides new_strides = fa2::bshd_strides(seqlen_new, heads_kv, head_dim);
  std::mt19937 random(2026);
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  std::vector<unsigned short> k_new(static_cast<std::size_t>(batch) * new_strides.batch), v_new(k_new.size());
  for (auto* rows : {&k_new, &v_new})
    for (unsigned short& element : *rows) {
      const float value = uniform(random);
      unsigned bits;
      std::memcpy(&bits, &value, 4);
      element = static_cast<unsigned short>(bits >> 16);
    }
  fa2::DeviceBuffer k_new_device(k_new.size() * 2), v_new_device(v_new.size() * 2), seqlens(batch * sizeof(int));
  fa2::driver::check(cu.MemcpyHtoD(k_new_device.address(), k_new.data(), k_new.size() * 2), "cuMemcpyHtoD");
  fa2::driver::check(cu.MemcpyHtoD(v_new_device.address(), v_new.data(), v_new.size() * 2), "cuMemcpyHtoD");
  upload_ints(seqlens.get(), lengths);
  args.cache_seqlens = static_cast<const int*>(seqlens.get());
  args.k_new = k_new_device.get();
  args.v_new = v_new_device.get();
  args.seqlen_new = seqlen_new;
  args.k_new_strides = args.v_new_strides = new_strides;

  struct Result {
    std::vector<unsigned short> k, v, o;
    std::vector<float> lse;
  };
  auto run = [&](const std::vector<int>& table) {
    fa2::driver::check(cu.MemcpyHtoD(reinterpret_cast<CUdeviceptr>(args.k_cache), original_k.data(), cache_elements * 2),
                       "cuMemcpyHtoD");
    fa2::driver::check(cu.MemcpyHtoD(reinterpret_cast<CUdeviceptr>(args.v_cache), original_v.data(), cache_elements * 2),
                       "cuMemcpyHtoD");
    upload_ints(args.block_table, table);
    buffers.contiguous().poison_outputs();
    fa2::forward_with_kvcache(args);
    fa2::driver::check(cu.CtxSynchronize(), "cuCtxSynchronize");
    return Result{download_16bit(args.k_cache, cache_elements), download_16bit(args.v_cache, cache_elements),
                  buffers.contiguous().o().download<unsigned short>(), buffers.contiguous().lse().download<float>()};
  };
  const Result good = run(good_table);
  const Result bad = run(bad_table);

  // The cache: the bad run wrote exactly sequence 1's rows, the good run those and sequence 0's.
  std::size_t bad_changes = 0, good_only = 0, outside = 0;
  const std::size_t row_elements = static_cast<std::size_t>(args.k_strides.row);
  for (std::size_t i = 0; i < cache_elements; ++i) {
    const bool bad_changed = bad.k[i] != original_k[i] || bad.v[i] != original_v[i];
    const bool good_changed = good.k[i] != original_k[i] || good.v[i] != original_v[i];
    bad_changes += bad_changed;
    good_only += good_changed && !bad_changed;
    outside += bad_changed && (bad.k[i] != good.k[i] || bad.v[i] != good.v[i]);
  }
  const int bad_page = good_table[lengths[0] / page_size];
  const std::size_t first = static_cast<std::size_t>(bad_page) * args.k_strides.batch +
                            (lengths[0] % page_size) * row_elements;
  bool sequence0_rows_untouched = true;
  for (std::size_t i = first; i < first + seqlen_new * row_elements; ++i)
    sequence0_rows_untouched &= bad.k[i] == original_k[i] && bad.v[i] == original_v[i];
  CHECK(outside == 0);
  CHECK(sequence0_rows_untouched);
  CHECK(bad_changes > 0);
  CHECK(good_only > 0);

  // The output: written everywhere, finite, and sequence 1's half identical to the good table's.
  const std::size_t o_half = bad.o.size() / 2, lse_half = bad.lse.size() / 2;
  std::size_t poisoned = 0, not_finite = 0;
  for (unsigned short element : bad.o) {
    poisoned += element == fa2::ProblemBuffers::kPoison16;
    unsigned bits = static_cast<unsigned>(element) << 16;
    float value;
    std::memcpy(&value, &bits, 4);
    not_finite += !std::isfinite(value);
  }
  CHECK(poisoned == 0);
  CHECK(not_finite == 0);
  CHECK(std::vector<unsigned short>(bad.o.begin() + o_half, bad.o.end()) ==
        std::vector<unsigned short>(good.o.begin() + o_half, good.o.end()));
  CHECK(std::vector<float>(bad.lse.begin() + lse_half, bad.lse.end()) ==
        std::vector<float>(good.lse.begin() + lse_half, good.lse.end()));
  MESSAGE(fmt::format("bad block table: {} cache elements written (sequence 1 only), {} written only with the "
                      "good table; sequence 1's output bitwise equal",
                      bad_changes, good_only));
}
