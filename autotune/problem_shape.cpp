#include "autotune/problem_shape.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/variant.hpp"

namespace fa2 {

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::bshd: return "bshd";
    case Layout::bhsd: return "bhsd";
    case Layout::strided: return "strided";
  }
  return "unknown";
}

std::optional<Layout> parse_layout(const std::string& text) {
  for (Layout layout : {Layout::bshd, Layout::bhsd, Layout::strided})
    if (text == layout_name(layout)) return layout;
  return std::nullopt;
}

namespace {

bool same(const Strides& a, const Strides& b) { return a.batch == b.batch && a.head == b.head && a.row == b.row; }

// The layout every tensor of a call has: query-side ones [seqlen_q, heads_q], key-side [seqlen_k, heads_kv].
template <int kQuerySide, int kKeySide>
Layout layout_of(const Strides* const (&query_side)[kQuerySide], const Strides* const (&key_side)[kKeySide],
                 int seqlen_q, int seqlen_k, int heads_q, int heads_kv, int head_dim) {
  auto all_match = [&](Strides (*strides)(int, int, int)) {
    for (const Strides* s : query_side)
      if (!same(*s, strides(seqlen_q, heads_q, head_dim))) return false;
    for (const Strides* s : key_side)
      if (!same(*s, strides(seqlen_k, heads_kv, head_dim))) return false;
    return true;
  };
  if (all_match(bshd_strides)) return Layout::bshd;
  if (all_match(bhsd_strides)) return Layout::bhsd;
  return Layout::strided;
}

}  // namespace

void ProblemShape::set_variant(bool call_causal, const VariantArgs& variant, bool with_alibi) {
  const EffectiveMask mask = effective_mask(call_causal, variant, seqlen_q, seqlen_k);
  causal = mask.causal;
  window = mask.window;
  window_left = mask.left;
  window_right = mask.right;
  softcap = variant.softcap;
  alibi = with_alibi;
  user = user_mods_of(variant);
  extra = variant.extra;
}

VariantArgs ProblemShape::variant_args() const {
  VariantArgs args;
  if (window) {
    args.window_left = window_left;
    args.window_right = window_right;
  }
  args.softcap = softcap;
  args.score_mod = user.score_mod;
  args.score_mod_grad = user.score_mod_grad;
  args.mask_mod = user.mask_mod;
  args.extra = extra;
  return args;
}

ProblemShape ProblemShape::of(const FwdArgs& args) {
  ProblemShape shape;
  shape.dtype = args.dtype;
  shape.head_dim = args.head_dim;
  shape.causal = args.causal;
  shape.batch = args.batch;
  shape.heads_q = args.heads_q;
  shape.heads_kv = args.heads_kv;
  shape.seqlen_q = args.seqlen_q;
  shape.seqlen_k = args.seqlen_k;
  const Strides* const query_side[] = {&args.q_strides, &args.o_strides};
  const Strides* const key_side[] = {&args.k_strides, &args.v_strides};
  shape.layout = layout_of(query_side, key_side, args.seqlen_q, args.seqlen_k, args.heads_q, args.heads_kv,
                           args.head_dim);
  shape.set_variant(args.causal, args.variant, args.variant.alibi_slopes != nullptr);
  return shape;
}

ProblemShape ProblemShape::of(const BwdArgs& args) {
  ProblemShape shape;
  shape.family = Family::bwd;
  shape.deterministic = args.deterministic;
  shape.dtype = args.dtype;
  shape.head_dim = args.head_dim;
  shape.causal = args.causal;
  shape.batch = args.batch;
  shape.heads_q = args.heads_q;
  shape.heads_kv = args.heads_kv;
  shape.seqlen_q = args.seqlen_q;
  shape.seqlen_k = args.seqlen_k;
  const Strides* const query_side[] = {&args.q_strides, &args.o_strides, &args.dout_strides, &args.dq_strides};
  const Strides* const key_side[] = {&args.k_strides, &args.v_strides, &args.dk_strides, &args.dv_strides};
  shape.layout = layout_of(query_side, key_side, args.seqlen_q, args.seqlen_k, args.heads_q, args.heads_kv,
                           args.head_dim);
  shape.set_variant(args.causal, args.variant, args.variant.alibi_slopes != nullptr);
  return shape;
}

ProblemShape ProblemShape::of(const KvcacheArgs& args) {
  ProblemShape shape;
  shape.family = Family::kvc;
  shape.dtype = args.dtype;
  shape.head_dim = args.head_dim;
  shape.causal = args.causal;
  shape.batch = args.batch;
  shape.heads_q = args.heads_q;
  shape.heads_kv = args.heads_kv;
  shape.seqlen_q = args.seqlen_q;
  shape.seqlen_k = args.seqlen_k;
  shape.page_size = args.block_table != nullptr ? args.page_size : 0;
  // Varlen tensors have no batch stride: judge their layout by the head and row strides.
  Strides q = args.q_strides, o = args.o_strides, k = args.k_strides, v = args.v_strides;
  if (args.cu_seqlens_q != nullptr) q.batch = o.batch = bshd_strides(args.seqlen_q, args.heads_q, args.head_dim).batch;
  if (args.cu_seqlens_k != nullptr) k.batch = v.batch = bshd_strides(args.seqlen_k, args.heads_kv, args.head_dim).batch;
  const Strides* const query_side[] = {&q, &o};
  if (args.block_table != nullptr) {
    // A paged cache has no sequence layout: the class follows the queries'.
    const Strides* const no_key_side[] = {&q};
    shape.layout = layout_of(query_side, no_key_side, args.seqlen_q, args.seqlen_q, args.heads_q, args.heads_q,
                             args.head_dim);
  } else {
    const Strides* const key_side[] = {&k, &v};
    shape.layout = layout_of(query_side, key_side, args.seqlen_q, args.seqlen_k, args.heads_q, args.heads_kv,
                             args.head_dim);
  }
  return shape;
}

// A forward's keys and descriptions read as they did before there were other families.
static std::string family_prefix(Family family) {
  return family == Family::fwd ? "" : std::string(family_name(family)) + " ";
}

std::string ProblemShape::describe() const {
  return fmt::format("{}d{} {} {} b{} hq{} hkv{} sq{} sk{} {}{}{}{}{}{}{}", family_prefix(family), head_dim,
                     dtype_name(dtype), causal ? "causal" : "full", batch, heads_q, heads_kv, seqlen_q, seqlen_k,
                     layout_name(layout), deterministic ? " det" : "",
                     page_size != 0 ? fmt::format(" page{}", page_size) : "",
                     window ? fmt::format(" win{},{}", window_left, window_right) : "",
                     softcap > 0.f ? fmt::format(" cap{}", softcap) : "", alibi ? " alibi" : "",
                     user.any() ? " umod" + user.digest() : "");
}

double ProblemShape::flops() const {
  double pairs = 0;
  if (!causal && !window) {
    pairs = static_cast<double>(seqlen_q) * seqlen_k;
  } else {
    // Query row r sees keys [r' - left, r' + right] (r' = r + seqlen_k - seqlen_q, bottom-right aligned; causal:
    // right = 0; an unbounded side reaches the end), clamped to [0, seqlen_k).
    const long long offset = static_cast<long long>(seqlen_k) - seqlen_q;
    for (long long r = 0; r < seqlen_q; ++r) {
      const long long first = window && window_left >= 0 ? std::max(0ll, r + offset - window_left) : 0;
      const long long right = causal ? 0 : window && window_right >= 0 ? window_right : seqlen_k;
      const long long last = std::min<long long>(seqlen_k - 1, r + offset + right);
      pairs += static_cast<double>(std::max(0ll, last - first + 1));
    }
  }
  const double forward = 4.0 * batch * heads_q * pairs * head_dim;
  return family == Family::bwd ? 2.5 * forward : forward;
}

int size_bucket(long long value, int minimum) {
  // Capped at 2^30 so the doubling never leaves int (batch * heads can reach 2^32): the top bucket
  // holds everything larger.
  constexpr long long kTop = 1ll << 30;
  long long bucket = minimum;
  while (bucket < value && bucket < kTop) bucket *= 2;
  return static_cast<int>(bucket);
}

ProblemClass ProblemClass::of(const ProblemShape& shape) {
  ProblemClass problem;
  problem.family = shape.family;
  problem.deterministic = shape.deterministic;
  problem.dtype = shape.dtype;
  problem.head_dim = shape.head_dim;
  problem.causal = shape.causal;
  problem.gqa_ratio = shape.heads_q / shape.heads_kv;
  problem.layout = shape.layout;
  // A KV-cache forward's query rows decide its grid (decode steps have 1 to 16): bucketed from 1.
  problem.seqlen_q_bucket = size_bucket(shape.seqlen_q, shape.family == Family::kvc ? 1 : 64);
  problem.seqlen_k_bucket = size_bucket(shape.seqlen_k);
  problem.batch_heads_bucket = size_bucket(static_cast<long long>(shape.batch) * shape.heads_q, 1);
  problem.variant = shape.variant();
  if (shape.window) {
    // A right side of 0 (causal) stays 0: it is a different mask, not a small window.
    auto side = [](int keys) { return keys < 0 ? -1 : keys == 0 ? 0 : size_bucket(keys, 16); };
    problem.window_left_bucket = side(shape.window_left);
    problem.window_right_bucket = side(shape.window_right);
  }
  return problem;
}

int ProblemClass::packed_rows() const {
  return family == Family::kvc ? seqlen_q_bucket * gqa_ratio : 0;
}

std::string ProblemClass::key() const {
  auto side = [](int bucket) { return bucket < 0 ? std::string("inf") : std::to_string(bucket); };
  return fmt::format("{}{} d{} {} gqa{} {} q{} k{} bh{}{}{}{}{}{}", family_prefix(family), dtype_name(dtype), head_dim,
                     causal ? "causal" : "full", gqa_ratio, layout_name(layout), seqlen_q_bucket, seqlen_k_bucket,
                     batch_heads_bucket, deterministic ? " det" : "",
                     variant.window ? " win" + side(window_left_bucket) + "x" + side(window_right_bucket) : "",
                     variant.softcap ? " cap" : "", variant.alibi ? " alibi" : "",
                     variant.user.any() ? " umod" + variant.user.digest() : "");
}

bool ProblemClass::operator==(const ProblemClass& o) const {
  return family == o.family && deterministic == o.deterministic && dtype == o.dtype && head_dim == o.head_dim &&
         causal == o.causal && gqa_ratio == o.gqa_ratio && layout == o.layout && seqlen_q_bucket == o.seqlen_q_bucket &&
         seqlen_k_bucket == o.seqlen_k_bucket && batch_heads_bucket == o.batch_heads_bucket && variant == o.variant &&
         window_left_bucket == o.window_left_bucket && window_right_bucket == o.window_right_bucket;
}

std::string DeviceFingerprint::key() const {
  return fmt::format("{}|sm{}|{}sm|drv{}", name, compute_capability, sm_count, driver_version);
}

std::string tuning_key(const DeviceFingerprint& device, const ProblemClass& problem) {
  return device.key() + "#" + problem.key();
}

}  // namespace fa2
