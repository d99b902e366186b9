// The arguments of the attention passes as plain values: what a caller hands fa2::forward() and
// fa2::backward(), and what the runtime turns into kernel parameters. Checked by runtime/*_args_check.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "fa2jit/types.hpp"
#include "fa2jit/variant.hpp"

namespace fa2 {

// Element strides of a [batch, seqlen, heads, head_dim] tensor whose last dimension is contiguous.
struct Strides {
  long long batch = 0;
  long long head = 0;
  long long row = 0;  // between consecutive sequence positions
};

// Contiguous [batch, seqlen, heads, head_dim] (BSHD, FlashAttention's layout).
Strides bshd_strides(int seqlen, int heads, int head_dim);
// Contiguous [batch, heads, seqlen, head_dim] (BHSD, PyTorch SDPA's layout).
Strides bhsd_strides(int seqlen, int heads, int head_dim);

// How a pass picks a kernel for a problem class it has not seen in this process.
enum class TunePolicy {
  on_first_use,  // the tuned winner from the cache; on a miss, tune now and store it (the default)
  heuristic,     // a built-in default config per (head dim, dtype, causal, arch); no tuning, no cache
  cache_only,    // the tuned winner from the cache; a miss is an error naming the fa2-tune command
};
const char* tune_policy_name(TunePolicy policy);  // "on-first-use" | "heuristic" | "cache-only"
std::optional<TunePolicy> parse_tune_policy(const std::string& text);

struct FwdArgs {
  const void* q = nullptr;  // [batch, seqlen_q, heads_q, head_dim], 16-byte aligned
  const void* k = nullptr;  // [batch, seqlen_k, heads_kv, head_dim]
  const void* v = nullptr;  // [batch, seqlen_k, heads_kv, head_dim]
  void* o = nullptr;        // [batch, seqlen_q, heads_q, head_dim], same dtype as q
  float* lse = nullptr;     // optional: [batch, heads_q, seqlen_q] contiguous fp32, natural log

  DType dtype = DType::bf16;
  int batch = 0;
  int heads_q = 0;
  int heads_kv = 0;  // heads_q must be a multiple (GQA/MQA); query head h reads KV head h / (heads_q / heads_kv)
  int seqlen_q = 0;
  int seqlen_k = 0;
  int head_dim = 0;
  Strides q_strides, k_strides, v_strides, o_strides;

  bool causal = false;                 // bottom-right aligned when seqlen_q != seqlen_k
  std::optional<float> softmax_scale;  // default 1/sqrt(head_dim)
  VariantArgs variant;                 // sliding window, softcap, ALiBi (fa2jit/variant.hpp); default: none

  std::optional<TunePolicy> tune_policy;  // default: $FA2JIT_TUNE as read at the first call, else on-first-use
  std::string cache_path;                 // default: $FA2JIT_CACHE_DIR/kernels.db or ~/.cache/fa2jit/kernels.db
};

// The backward pass of one forward call: its inputs (q, k, v), outputs (o, lse) and the gradient of the
// loss with respect to o, giving the gradients of q, k and v.
struct BwdArgs {
  const void* q = nullptr;     // the forward's inputs and output, 16-byte aligned, shapes as in FwdArgs
  const void* k = nullptr;
  const void* v = nullptr;
  const void* o = nullptr;
  const float* lse = nullptr;  // the forward's LSE: [batch, heads_q, seqlen_q] contiguous fp32, natural log
  const void* dout = nullptr;  // dLoss/dO, shaped like o
  void* dq = nullptr;          // written: dLoss/dQ, dLoss/dK, dLoss/dV, shaped like q, k, v
  void* dk = nullptr;
  void* dv = nullptr;

  DType dtype = DType::bf16;
  int batch = 0;
  int heads_q = 0;
  int heads_kv = 0;  // dK and dV of a KV head sum over the heads_q / heads_kv query heads that share it
  int seqlen_q = 0;
  int seqlen_k = 0;
  int head_dim = 0;
  Strides q_strides, k_strides, v_strides, o_strides, dout_strides, dq_strides, dk_strides, dv_strides;

  bool causal = false;
  std::optional<float> softmax_scale;  // the forward's; default 1/sqrt(head_dim)
  VariantArgs variant;                 // the forward's
  // Bitwise-identical dQ, dK and dV from run to run: the key blocks add their dQ contributions in a fixed
  // order instead of with float atomics (somewhat slower).
  bool deterministic = false;

  // Scratch of at least backward_workspace_bytes(args) bytes, 16-byte aligned, used in stream order. Null:
  // the library takes it from the driver's stream-ordered allocator for each call.
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;

  std::optional<TunePolicy> tune_policy;
  std::string cache_path;
};

// New queries attending to a KV cache (decode, chunked prefill): FlashAttention's flash_attn_with_kvcache
// without the append. The cache is contiguous ([batch, seqlen_k, heads_kv, head_dim] through k_strides and
// v_strides) or, with a block table, paged ([num_pages, page_size, heads_kv, head_dim], the batch stride
// being the page stride). Sequence b attends to its first cache_seqlens[b] keys (seqlen_k without
// cache_seqlens); causal is bottom-right: query row r sees keys up to r + cache_seqlens[b] - seqlen_q.
// The most blocks KvcacheArgs::num_splits may split a sequence's keys over.
constexpr int kMaxKvcacheSplits = 128;

struct KvcacheArgs {
  const void* q = nullptr;        // [batch, seqlen_q, heads_q, head_dim], 16-byte aligned
  const void* k_cache = nullptr;  // contiguous or paged, as above
  const void* v_cache = nullptr;
  void* o = nullptr;              // [batch, seqlen_q, heads_q, head_dim], same dtype as q
  float* lse = nullptr;           // optional: [batch, heads_q, seqlen_q] contiguous fp32, natural log

  // Device memory, read by the kernels: the host cannot check the values. A length above seqlen_k is
  // clamped to seqlen_k (and below 0 to 0); a block table entry outside [0, num_pages) reads page 0 in its
  // place and is never written (nothing outside the cache is touched, but the result is wrong). Check
  // them where they are made (fa2jit.forward_with_kvcache(..., check_values=True) does).
  const int* cache_seqlens = nullptr;  // [batch] int32; null: seqlen_k keys for every sequence
  const int* block_table = nullptr;    // [batch, block_table_stride] int32; null: a contiguous cache
  int block_table_stride = 0;          // paged: entries between sequences' rows, at least ceil(seqlen_k / page_size)
  int page_size = 0;                   // paged: keys per page, 16, 32, 64, 128 or 256
  int num_pages = 0;                   // paged: pages in k_cache and v_cache
  // Variable-length batches (FlashAttention's varlen), device int32 [batch + 1], increasing from 0; null when
  // unused. cu_seqlens_q: sequence b's queries are rows cu_seqlens_q[b] .. cu_seqlens_q[b + 1] - 1 of q and o,
  // [total_q, heads, head_dim] (batch strides unused; seqlen_q is the longest sequence), and lse is
  // [heads_q, total_q]. cu_seqlens_k: likewise for the keys of a contiguous k_cache and v_cache (seqlen_k the
  // longest); not with a block table or cache_seqlens. No padding is read or written.
  const int* cu_seqlens_q = nullptr;
  const int* cu_seqlens_k = nullptr;
  int total_q = 0;  // with cu_seqlens_q: rows of q and o (cu_seqlens_q[batch])
  // Optional new keys and values, [batch, seqlen_new, heads_kv, head_dim] through their strides, written into
  // the cache before attending (FlashAttention's flash_attn_with_kvcache k and v): sequence b's new row j goes
  // to cache row cache_seqlens[b] + j, and the attention then sees cache_seqlens[b] + seqlen_new keys.
  // cache_seqlens itself is not changed. Needs cache_seqlens; not with cu_seqlens_k. The cache is written, so
  // it must be writable; new rows that would land at or past seqlen_k (the capacity) are not written.
  const void* k_new = nullptr;
  const void* v_new = nullptr;
  int seqlen_new = 0;  // with k_new and v_new: rows per sequence; 0 without
  Strides k_new_strides, v_new_strides;

  DType dtype = DType::bf16;
  int batch = 0;
  int heads_q = 0;
  int heads_kv = 0;  // divides heads_q (GQA/MQA)
  int seqlen_q = 0;  // new query rows per sequence
  int seqlen_k = 0;  // keys per sequence without cache_seqlens; with it, the most any sequence has
  int head_dim = 0;
  Strides q_strides, k_strides, v_strides, o_strides;

  bool causal = false;
  std::optional<float> softmax_scale;  // default 1/sqrt(head_dim)
  // Not supported here yet: anything but the default is an argument error (the forward and backward have them).
  VariantArgs variant;
  // Blocks the keys of each (batch, KV head) are split over: 0 takes the tuned config's choice, or a
  // heuristic from the SM count; 1 splits nothing. At most 128.
  int num_splits = 0;

  // Scratch for the splits' partial results (kvcache_workspace_bytes), 256-byte aligned, used in stream
  // order. Null: taken from the driver's stream-ordered allocator when a call splits.
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;

  std::optional<TunePolicy> tune_policy;
  std::string cache_path;
};

}  // namespace fa2
