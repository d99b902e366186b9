#include "runtime/args_check.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "common/error.hpp"
#include "common/variant.hpp"
#include "runtime/params_builder.hpp"

namespace fa2 {

namespace {

// Collects the rules under the name of the call they guard ("forward" or "backward").
class Rules {
 public:
  explicit Rules(const char* call) : call_(call) {}

  [[noreturn]] void reject(const std::string& message) const { throw Error(Stage::Argument, call_, message); }

  // Tensors move as 16-byte vectors; the LSE and D one float at a time.
  void pointer(const void* pointer, const char* name, bool required, int alignment) const {
    if (pointer == nullptr) {
      if (required) reject(fmt::format("{} is a null pointer", name));
      return;
    }
    if (reinterpret_cast<std::uintptr_t>(pointer) % alignment != 0)
      reject(fmt::format("{} = {} is not {}-byte aligned", name, pointer, alignment));
  }

  void strides(const Strides& strides, const char* name, int head_dim) const {
    // Tile rows are addressed with 32-bit offsets inside the kernels: up to 256 rows * row stride must fit.
    constexpr long long kMaxRowStride = (1ll << 31) / 256;
    const long long values[] = {strides.batch, strides.head, strides.row};
    const char* parts[] = {"batch", "head", "row"};
    for (int i = 0; i < 3; ++i) {
      if (values[i] < 0) reject(fmt::format("{} {} stride {} is negative", name, parts[i], values[i]));
      if (values[i] % 8 != 0)
        reject(fmt::format("{} {} stride {} is not a multiple of 8 elements (rows must start 16-byte aligned)",
                           name, parts[i], values[i]));
    }
    if (strides.row < head_dim)
      reject(fmt::format("{} row stride {} is smaller than head_dim {}: rows would overlap", name, strides.row,
                         head_dim));
    if (strides.row > kMaxRowStride)
      reject(fmt::format("{} row stride {} exceeds {} elements", name, strides.row, kMaxRowStride));
  }

  // The built-in variants' values (fa2jit/variant.hpp), after the sizes they are checked against.
  void variant(const VariantArgs& variant, int heads_q) const {
    if (variant.window_left < -1)
      reject(fmt::format("window_left {} must be -1 (unbounded) or a number of keys >= 0", variant.window_left));
    if (variant.window_right < -1)
      reject(fmt::format("window_right {} must be -1 (unbounded) or a number of keys >= 0", variant.window_right));
    if (!(std::isfinite(variant.softcap) && variant.softcap >= 0.f))
      reject(fmt::format("softcap {} must be finite and > 0, or 0 for no softcapping", variant.softcap));
    if (variant.alibi_slopes == nullptr) {
      if (variant.alibi_slopes_batch_stride != 0)
        reject(fmt::format("alibi_slopes_batch_stride {} is given without alibi_slopes: pass the slopes, or 0",
                           variant.alibi_slopes_batch_stride));
      return;
    }
    pointer(variant.alibi_slopes, "alibi_slopes", true, 4);
    const long long stride = variant.alibi_slopes_batch_stride;
    if (stride != 0 && (stride < heads_q || stride > (1ll << 40)))
      reject(fmt::format("alibi_slopes_batch_stride {} must be 0 (slopes [heads_q], shared by the batch) or at least "
                         "heads_q {} (slopes [batch, heads_q])",
                         stride, heads_q));
  }

  // The user modifications (fa2jit/user_mods.hpp): names and counts; the snippets themselves are NVRTC's to judge.
  void user_mods(const VariantArgs& variant, int heads_q, int heads_kv) const {
    if (auto reason = validate_user_mods(user_mods_of(variant))) reject(*reason);
    for (const ExtraArray& extra : variant.extra)
      pointer(extra.data, fmt::format("extra array '{}'", extra.name).c_str(), true,
              extra.type == ExtraType::i64 ? 8 : extra.type == ExtraType::u8 ? 1 : 4);
    // The backward's tile lists hold a query head's index within its group in 11 bits (block_mask.cuh).
    if (!variant.mask_mod.empty() && heads_kv > 0 && heads_q / heads_kv > 2048)
      reject(fmt::format("mask_mod supports at most 2048 query heads per KV head, not {}", heads_q / heads_kv));
  }

  // The sizes both passes share.
  void sizes(int batch, int heads_q, int heads_kv, int seqlen_q, int seqlen_k, int head_dim,
             const std::optional<float>& softmax_scale) const {
    if (!is_supported_head_dim(head_dim))
      reject(fmt::format("head_dim {} is not supported: use a multiple of 32 from 32 to 256", head_dim));
    if (batch < 1 || batch > 65535) reject(fmt::format("batch {} must be in [1, 65535]", batch));
    if (heads_q < 1 || heads_q > 65535) reject(fmt::format("heads_q {} must be in [1, 65535]", heads_q));
    if (heads_kv < 1) reject(fmt::format("heads_kv {} must be at least 1", heads_kv));
    if (heads_q % heads_kv != 0) reject(fmt::format("heads_q {} is not a multiple of heads_kv {}", heads_q, heads_kv));
    // Row indices are ints, and the kernels form m0 + block_m + seqlen_k - seqlen_q (the causal diagonal)
    // and seqlen + block_m - 1 (the block count): 2^30 keeps every such sum inside int.
    constexpr int kMaxSeqlen = 1 << 30;
    if (seqlen_q < 1 || seqlen_q > kMaxSeqlen)
      reject(fmt::format("seqlen_q {} must be in [1, {}]", seqlen_q, kMaxSeqlen));
    if (seqlen_k < 1 || seqlen_k > kMaxSeqlen)
      reject(fmt::format("seqlen_k {} must be in [1, {}]", seqlen_k, kMaxSeqlen));
    if (softmax_scale && !(std::isfinite(*softmax_scale) && *softmax_scale > 0.f))
      reject(fmt::format("softmax_scale {} must be finite and positive", *softmax_scale));
  }

 private:
  const char* call_;
};

}  // namespace

void check_forward_args(const FwdArgs& args) {
  const Rules rules("forward");
  rules.pointer(args.q, "q", true, 16);
  rules.pointer(args.k, "k", true, 16);
  rules.pointer(args.v, "v", true, 16);
  rules.pointer(args.o, "o", true, 16);
  rules.pointer(args.lse, "lse", false, 4);
  rules.sizes(args.batch, args.heads_q, args.heads_kv, args.seqlen_q, args.seqlen_k, args.head_dim,
              args.softmax_scale);
  rules.strides(args.q_strides, "q", args.head_dim);
  rules.strides(args.k_strides, "k", args.head_dim);
  rules.strides(args.v_strides, "v", args.head_dim);
  rules.strides(args.o_strides, "o", args.head_dim);
  rules.variant(args.variant, args.heads_q);
  rules.user_mods(args.variant, args.heads_q, args.heads_kv);
}

void check_backward_args(const BwdArgs& args) {
  const Rules rules("backward");
  rules.pointer(args.q, "q", true, 16);
  rules.pointer(args.k, "k", true, 16);
  rules.pointer(args.v, "v", true, 16);
  rules.pointer(args.o, "o", true, 16);
  rules.pointer(args.lse, "lse", true, 4);
  rules.pointer(args.dout, "dout", true, 16);
  rules.pointer(args.dq, "dq", true, 16);
  rules.pointer(args.dk, "dk", true, 16);
  rules.pointer(args.dv, "dv", true, 16);
  rules.sizes(args.batch, args.heads_q, args.heads_kv, args.seqlen_q, args.seqlen_k, args.head_dim,
              args.softmax_scale);
  rules.strides(args.q_strides, "q", args.head_dim);
  rules.strides(args.k_strides, "k", args.head_dim);
  rules.strides(args.v_strides, "v", args.head_dim);
  rules.strides(args.o_strides, "o", args.head_dim);
  rules.strides(args.dout_strides, "dout", args.head_dim);
  rules.strides(args.dq_strides, "dq", args.head_dim);
  rules.strides(args.dk_strides, "dk", args.head_dim);
  rules.strides(args.dv_strides, "dv", args.head_dim);
  rules.variant(args.variant, args.heads_q);
  rules.user_mods(args.variant, args.heads_q, args.heads_kv);
  if (args.workspace != nullptr) {
    rules.pointer(args.workspace, "workspace", true, 256);
    const std::size_t needed = bwd_workspace_layout(args).bytes;
    if (args.workspace_bytes < needed)
      rules.reject(fmt::format("workspace_bytes {} is smaller than the {} bytes this problem needs "
                               "(backward_workspace_bytes); pass a larger workspace or none",
                               args.workspace_bytes, needed));
  }
}

void check_backward_sizes(const BwdArgs& args) {
  Rules("backward_workspace_bytes")
      .sizes(args.batch, args.heads_q, args.heads_kv, args.seqlen_q, args.seqlen_k, args.head_dim, args.softmax_scale);
}

namespace {

// New keys and values written into the cache before attending (KvcacheArgs::k_new).
void check_appended_rows(const Rules& rules, const KvcacheArgs& args) {
  if ((args.k_new == nullptr) != (args.v_new == nullptr))
    rules.reject(fmt::format("k_new is {} but v_new is {}: new keys and values are appended together, pass both "
                             "or neither",
                             args.k_new ? "given" : "null", args.v_new ? "given" : "null"));
  if (args.k_new == nullptr) {
    if (args.seqlen_new != 0)
      rules.reject(fmt::format("seqlen_new {} is given without k_new and v_new: pass them, or 0", args.seqlen_new));
    return;
  }
  rules.pointer(args.k_new, "k_new", true, 16);
  rules.pointer(args.v_new, "v_new", true, 16);
  if (args.seqlen_new < 1 || args.seqlen_new > args.seqlen_k)
    rules.reject(fmt::format("seqlen_new {} must be in [1, seqlen_k {}] (the new rows per sequence; the cache "
                             "holds at most seqlen_k)",
                             args.seqlen_new, args.seqlen_k));
  if (args.cache_seqlens == nullptr)
    rules.reject("k_new and v_new need cache_seqlens: each sequence's new rows go after its cache_seqlens[b] keys");
  if (args.cu_seqlens_k != nullptr || args.cu_seqlens_q != nullptr)
    rules.reject("k_new and v_new cannot be appended in a variable-length batch (cu_seqlens_q or cu_seqlens_k): "
                 "every sequence appends seqlen_new rows of a [batch, seqlen_new, heads_kv, head_dim] tensor");
  rules.strides(args.k_new_strides, "k_new", args.head_dim);
  rules.strides(args.v_new_strides, "v_new", args.head_dim);
}

}  // namespace

void check_kvcache_args(const KvcacheArgs& args) {
  const Rules rules("forward_with_kvcache");
  rules.pointer(args.q, "q", true, 16);
  rules.pointer(args.k_cache, "k_cache", true, 16);
  rules.pointer(args.v_cache, "v_cache", true, 16);
  rules.pointer(args.o, "o", true, 16);
  rules.pointer(args.lse, "lse", false, 4);
  rules.pointer(args.cache_seqlens, "cache_seqlens", false, 4);
  rules.pointer(args.block_table, "block_table", false, 4);
  rules.pointer(args.workspace, "workspace", false, 256);
  rules.sizes(args.batch, args.heads_q, args.heads_kv, args.seqlen_q, args.seqlen_k, args.head_dim,
              args.softmax_scale);
  const VariantArgs& variant = args.variant;
  if (!variant.score_mod.empty() || !variant.score_mod_grad.empty() || !variant.mask_mod.empty() ||
      !variant.extra.empty())
    rules.reject("score_mod, mask_mod and extra arrays are not supported yet by forward_with_kvcache (KV cache, "
                 "varlen): forward() and backward() have them");
  if (variant.window_left != -1 || variant.window_right != -1 || variant.softcap != 0.f ||
      variant.alibi_slopes != nullptr || variant.alibi_slopes_batch_stride != 0)
    rules.reject(fmt::format("the built-in variants are not supported yet by forward_with_kvcache (KV cache, varlen): "
                             "window ({}, {}), softcap {}, alibi_slopes {} must be (-1, -1), 0 and null; forward() "
                             "and backward() have them",
                             variant.window_left, variant.window_right, variant.softcap,
                             static_cast<const void*>(variant.alibi_slopes)));
  // Packed rows (seqlen_q x the group) are ints in the kernel, and so is a page index times its stride's
  // multiplier.
  const long long packed_rows = static_cast<long long>(args.seqlen_q) * (args.heads_q / args.heads_kv);
  if (packed_rows > (1ll << 30))
    rules.reject(fmt::format("seqlen_q {} x {} query heads per KV head = {} rows exceeds 2^30", args.seqlen_q,
                             args.heads_q / args.heads_kv, packed_rows));
  rules.strides(args.q_strides, "q", args.head_dim);
  rules.strides(args.k_strides, "k_cache", args.head_dim);
  rules.strides(args.v_strides, "v_cache", args.head_dim);
  rules.strides(args.o_strides, "o", args.head_dim);
  rules.pointer(args.cu_seqlens_q, "cu_seqlens_q", false, 4);
  rules.pointer(args.cu_seqlens_k, "cu_seqlens_k", false, 4);
  if (args.cu_seqlens_q != nullptr && (args.total_q < 1 || args.total_q > (1 << 30)))
    rules.reject(fmt::format("total_q {} must be in [1, 2^30] with cu_seqlens_q (the rows of q: cu_seqlens_q[batch])",
                             args.total_q));
  if (args.cu_seqlens_q == nullptr && args.total_q != 0)
    rules.reject(fmt::format("total_q {} is given without cu_seqlens_q: pass both, or 0", args.total_q));
  if (args.cu_seqlens_k != nullptr && args.block_table != nullptr)
    rules.reject("cu_seqlens_k and block_table are both given: a paged cache takes its lengths from cache_seqlens");
  if (args.cu_seqlens_k != nullptr && args.cache_seqlens != nullptr)
    rules.reject("cu_seqlens_k and cache_seqlens are both given: pass one of them");
  if (args.num_splits < 0 || args.num_splits > kMaxKvcacheSplits)
    rules.reject(fmt::format("num_splits {} must be in [0, {}] (0: chosen per problem)", args.num_splits,
                             kMaxKvcacheSplits));
  check_appended_rows(rules, args);
  if (args.block_table == nullptr) {
    if (args.page_size != 0 || args.num_pages != 0)
      rules.reject(fmt::format("page_size {} and num_pages {} are given without a block_table: pass the block "
                               "table of a paged cache, or 0 for both",
                               args.page_size, args.num_pages));
    return;
  }
  const int page_size = args.page_size;
  if (page_size != 16 && page_size != 32 && page_size != 64 && page_size != 128 && page_size != 256)
    rules.reject(fmt::format("page_size {} is not supported: use 16, 32, 64, 128 or 256", page_size));
  if (args.num_pages < 1) rules.reject(fmt::format("num_pages {} must be at least 1", args.num_pages));
  const long long pages_needed = (static_cast<long long>(args.seqlen_k) + page_size - 1) / page_size;
  if (args.block_table_stride < pages_needed)
    rules.reject(fmt::format("block_table_stride {} is smaller than the {} pages of seqlen_k {} keys at page_size "
                             "{}: each sequence's row needs that many entries",
                             args.block_table_stride, pages_needed, args.seqlen_k, page_size));
  // The kernel forms page * page stride in 64 bits, but keys (page * page_size + row) stay ints.
  if (static_cast<long long>(args.num_pages) * page_size > (1ll << 31) - 1)
    rules.reject(fmt::format("num_pages {} x page_size {} exceeds 2^31 - 1 cache rows", args.num_pages, page_size));
}

}  // namespace fa2
