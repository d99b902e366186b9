#include "autotune/kvcache_buffers.hpp"

#include <algorithm>
#include <numeric>
#include <random>

#include "runtime/driver.hpp"

namespace fa2 {

ProblemShape contiguous_shape_of(const ProblemShape& kvcache_shape) {
  ProblemShape shape = kvcache_shape;
  shape.family = Family::fwd;
  shape.page_size = 0;
  // ProblemBuffers lays queries and keys out alike; paged pages are cut from a bshd cache.
  if (kvcache_shape.page_size > 0) shape.layout = Layout::bshd;
  return shape;
}

KvcacheBuffers::KvcacheBuffers(const ProblemShape& shape, std::uint64_t seed, int input_sets)
    : shape_(shape), contiguous_(contiguous_shape_of(shape), seed, input_sets) {
  if (shape.page_size <= 0) return;
  const driver::Api& cu = driver::api();
  const int page = shape.page_size;
  pages_per_sequence_ = (shape.seqlen_k + page - 1) / page;
  num_pages_ = shape.batch * pages_per_sequence_ + 1;  // one page no sequence uses
  // Sequence b's page i goes to a shuffled slot: the kernel may assume nothing about the order.
  std::vector<int> slots(num_pages_);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), std::mt19937_64(seed == 0 ? std::random_device{}() : seed));
  std::vector<int> table(static_cast<std::size_t>(shape.batch) * pages_per_sequence_);
  for (std::size_t i = 0; i < table.size(); ++i) table[i] = slots[i];
  block_table_ = DeviceBuffer(table.size() * sizeof(int));
  driver::check(cu.MemcpyHtoD(block_table_.address(), table.data(), table.size() * sizeof(int)),
                "cuMemcpyHtoD(block table)");
  const std::vector<int> seqlens(shape.batch, shape.seqlen_k);
  cache_seqlens_ = DeviceBuffer(seqlens.size() * sizeof(int));
  driver::check(cu.MemcpyHtoD(cache_seqlens_.address(), seqlens.data(), seqlens.size() * sizeof(int)),
                "cuMemcpyHtoD(cache_seqlens)");

  // In bshd a page (page rows x heads_kv x head_dim) is one contiguous run of the cache, and of the pages.
  const std::size_t row_bytes = static_cast<std::size_t>(shape.heads_kv) * shape.head_dim * 2;
  for (int set = 0; set < input_sets; ++set) {
    const FwdArgs source = contiguous_.args(set);
    Pages pages{DeviceBuffer(num_pages_ * page * row_bytes), DeviceBuffer(num_pages_ * page * row_bytes)};
    pages.k.fill16(ProblemBuffers::kPoison16);  // rows past a sequence's end must never be read as keys
    pages.v.fill16(ProblemBuffers::kPoison16);
    for (int b = 0; b < shape.batch; ++b)
      for (int i = 0; i < pages_per_sequence_; ++i) {
        const int rows = std::min(page, shape.seqlen_k - i * page);
        const std::size_t from = (static_cast<std::size_t>(b) * shape.seqlen_k + static_cast<std::size_t>(i) * page) * row_bytes;
        const std::size_t to = static_cast<std::size_t>(table[b * pages_per_sequence_ + i]) * page * row_bytes;
        driver::check(cu.MemcpyDtoD(pages.k.address() + to, reinterpret_cast<CUdeviceptr>(source.k) + from, rows * row_bytes),
                      "cuMemcpyDtoD(k page)");
        driver::check(cu.MemcpyDtoD(pages.v.address() + to, reinterpret_cast<CUdeviceptr>(source.v) + from, rows * row_bytes),
                      "cuMemcpyDtoD(v page)");
      }
    pages_.push_back(std::move(pages));
  }
}

KvcacheArgs KvcacheBuffers::args(int set) const {
  const FwdArgs forward = contiguous_.args(set);
  KvcacheArgs args;
  args.q = forward.q;
  args.o = forward.o;
  args.lse = forward.lse;
  args.dtype = forward.dtype;
  args.batch = forward.batch;
  args.heads_q = forward.heads_q;
  args.heads_kv = forward.heads_kv;
  args.seqlen_q = forward.seqlen_q;
  args.seqlen_k = forward.seqlen_k;
  args.head_dim = forward.head_dim;
  args.q_strides = forward.q_strides;
  args.o_strides = forward.o_strides;
  args.causal = forward.causal;
  if (shape_.page_size <= 0) {
    args.k_cache = forward.k;
    args.v_cache = forward.v;
    args.k_strides = forward.k_strides;
    args.v_strides = forward.v_strides;
    return args;
  }
  const Pages& pages = pages_.at(set);
  args.k_cache = pages.k.get();
  args.v_cache = pages.v.get();
  // [num_pages, page_size, heads_kv, head_dim]: the batch stride is the page stride.
  args.k_strides = Strides{static_cast<long long>(shape_.page_size) * shape_.heads_kv * shape_.head_dim,
                           shape_.head_dim, static_cast<long long>(shape_.heads_kv) * shape_.head_dim};
  args.v_strides = args.k_strides;
  args.block_table = static_cast<const int*>(block_table_.get());
  args.block_table_stride = pages_per_sequence_;
  args.page_size = shape_.page_size;
  args.num_pages = num_pages_;
  args.cache_seqlens = static_cast<const int*>(cache_seqlens_.get());
  return args;
}

}  // namespace fa2
