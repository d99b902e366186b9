#include "runtime/params_builder.hpp"

#include <algorithm>
#include <cmath>

#include "common/variant.hpp"
#include "runtime/user_mods_launch.hpp"

namespace fa2 {

namespace {

constexpr float kLog2e = 1.44269504088896340736f;  // kept in float: a double constant would make fp64 math

std::size_t aligned(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

float softmax_scale_of(const std::optional<float>& softmax_scale, int head_dim) {
  return softmax_scale.value_or(1.f / std::sqrt(static_cast<float>(head_dim)));
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
  params.softmax_scale = softmax_scale_of(args.softmax_scale, args.head_dim);
  params.softmax_scale_log2 = params.softmax_scale * kLog2e;
  return params;
}

VariantParams make_variant_params(const VariantArgs& variant, bool causal, int seqlen_q, int seqlen_k,
                                  float& softmax_scale, float& softmax_scale_log2) {
  const EffectiveMask mask = effective_mask(causal, variant, seqlen_q, seqlen_k);
  VariantParams params{};
  // An unbounded side reaches every key of every row: seqlen_k on the left, seqlen_q on the right.
  params.window_left = mask.left >= 0 ? mask.left : seqlen_k;
  params.window_right = mask.causal ? 0 : mask.right >= 0 ? mask.right : seqlen_q;
  if (variant.softcap > 0.f) {
    params.softcap_scale = softmax_scale / variant.softcap;
    softmax_scale = variant.softcap;
    softmax_scale_log2 = variant.softcap * kLog2e;
  }
  params.alibi_scale = 1.f / softmax_scale;
  params.alibi_slopes = variant.alibi_slopes;
  params.alibi_batch_stride = variant.alibi_slopes_batch_stride;
  params.user = make_user_mod_params(variant, softmax_scale);
  return params;
}

VariantParams make_bwd_variant_params(const BwdArgs& args, BwdParams& params) {
  const float call_scale = params.softmax_scale;
  const VariantParams variant = make_variant_params(args.variant, args.causal, args.seqlen_q, args.seqlen_k,
                                                    params.softmax_scale, params.softmax_scale_log2);
  params.softmax_scale = call_scale;
  return variant;
}

BwdWorkspaceLayout bwd_workspace_layout(const BwdArgs& args) {
  BwdWorkspaceLayout layout;
  const std::size_t rows = static_cast<std::size_t>(args.batch) * args.heads_q * args.seqlen_q;
  layout.semaphore_stride = (args.seqlen_q + 15) / 16;
  layout.dq_accum = 0;
  layout.dpsum = aligned(rows * args.head_dim * sizeof(float));
  layout.semaphore = layout.dpsum + aligned(rows * sizeof(float));
  const std::size_t semaphores = static_cast<std::size_t>(args.batch) * args.heads_q * layout.semaphore_stride;
  layout.bytes = layout.semaphore + aligned(semaphores * sizeof(int));
  return layout;
}

int bwd_pairs_per_wave(const BwdArgs& args, int block_n, int resident_blocks) {
  const long long pairs = static_cast<long long>(args.batch) * args.heads_kv;
  const long long key_blocks = (args.seqlen_k + block_n - 1) / block_n;
  if (resident_blocks <= 0 || key_blocks <= 0) return static_cast<int>(pairs);
  return static_cast<int>(std::clamp<long long>(resident_blocks / key_blocks, 1, pairs));
}

BwdParams make_bwd_params(const BwdArgs& args, void* workspace, int block_n, int resident_blocks) {
  const BwdWorkspaceLayout layout = bwd_workspace_layout(args);
  char* base = static_cast<char*>(workspace);
  BwdParams params{};
  params.q = args.q;
  params.k = args.k;
  params.v = args.v;
  params.o = args.o;
  params.dout = args.dout;
  params.lse = args.lse;
  params.dq = args.dq;
  params.dk = args.dk;
  params.dv = args.dv;
  params.dq_accum = reinterpret_cast<float*>(base + layout.dq_accum);
  params.dpsum = reinterpret_cast<float*>(base + layout.dpsum);
  params.dq_semaphore = reinterpret_cast<int*>(base + layout.semaphore);
  auto set = [](long long& batch, long long& head, long long& row, const Strides& strides) {
    batch = strides.batch;
    head = strides.head;
    row = strides.row;
  };
  set(params.q_batch_stride, params.q_head_stride, params.q_row_stride, args.q_strides);
  set(params.k_batch_stride, params.k_head_stride, params.k_row_stride, args.k_strides);
  set(params.v_batch_stride, params.v_head_stride, params.v_row_stride, args.v_strides);
  set(params.o_batch_stride, params.o_head_stride, params.o_row_stride, args.o_strides);
  set(params.do_batch_stride, params.do_head_stride, params.do_row_stride, args.dout_strides);
  set(params.dq_batch_stride, params.dq_head_stride, params.dq_row_stride, args.dq_strides);
  set(params.dk_batch_stride, params.dk_head_stride, params.dk_row_stride, args.dk_strides);
  set(params.dv_batch_stride, params.dv_head_stride, params.dv_row_stride, args.dv_strides);
  params.batch = args.batch;
  params.heads_q = args.heads_q;
  params.heads_kv = args.heads_kv;
  params.seqlen_q = args.seqlen_q;
  params.seqlen_k = args.seqlen_k;
  params.semaphore_stride = layout.semaphore_stride;
  params.pairs_per_wave = bwd_pairs_per_wave(args, block_n, resident_blocks);
  params.softmax_scale = softmax_scale_of(args.softmax_scale, args.head_dim);
  params.softmax_scale_log2 = params.softmax_scale * kLog2e;
  return params;
}

static_assert(kKvcMaxSplits == kMaxKvcacheSplits, "the kernels' split limit is the API's");

int kvc_splits(const KvcacheArgs& args, int block_m, int block_n, int tuned, int resident_blocks) {
  const int tiles = std::max(1, (args.seqlen_k + block_n - 1) / block_n);
  const int most = std::min(tiles, kKvcMaxSplits);
  if (args.num_splits > 0) return std::min(args.num_splits, most);
  if (tuned > 0) return std::min(tuned, most);
  if (resident_blocks <= 0) return 1;
  const long long packed_rows = static_cast<long long>(args.seqlen_q) * (args.heads_q / args.heads_kv);
  const long long blocks = (packed_rows + block_m - 1) / block_m * args.heads_kv * args.batch;
  if (blocks >= resident_blocks) return 1;
  // Wave efficiency (busy slots over slots paid for) of each split count; the fewest splits within 95% of
  // the best, since every split adds partial results to combine. Decode is bound by the bytes in flight per
  // SM, so every resident slot counts: on the H200, filling both slots of every SM beat one block per SM by
  // 1.35x and a grid of 1.45 waves by 1.25x (bench/NOTES.md), where 85% of the best let 1.45 waves through.
  auto efficiency = [&](int splits) {
    const double waves = static_cast<double>(blocks) * splits / resident_blocks;
    return waves / std::ceil(waves);
  };
  double best = 0;
  for (int splits = 1; splits <= most; ++splits) best = std::max(best, efficiency(splits));
  for (int splits = 1; splits <= most; ++splits)
    if (efficiency(splits) >= 0.95 * best) return splits;
  return 1;
}

KvcWorkspaceLayout kvc_workspace_layout(const KvcacheArgs& args, int splits) {
  KvcWorkspaceLayout layout;
  if (splits <= 1) return layout;
  const std::size_t rows = static_cast<std::size_t>(splits) * args.batch * args.heads_q * args.seqlen_q;
  layout.o_partial = 0;
  layout.lse_partial = aligned(rows * args.head_dim * sizeof(float));
  layout.bytes = layout.lse_partial + aligned(rows * sizeof(float));
  return layout;
}

KvcParams make_kvc_params(const KvcacheArgs& args, void* workspace, int splits) {
  KvcParams params{};
  params.q = args.q;
  params.k = args.k_cache;
  params.v = args.v_cache;
  params.o = args.o;
  params.lse = args.lse;
  params.cache_seqlens = args.cache_seqlens;
  params.block_table = args.block_table;
  params.block_table_stride = args.block_table_stride;
  params.cu_seqlens_q = args.cu_seqlens_q;
  params.cu_seqlens_k = args.cu_seqlens_k;
  params.total_q = args.total_q;
  params.k_new = args.k_new;
  params.v_new = args.v_new;
  params.seqlen_new = args.k_new != nullptr ? args.seqlen_new : 0;
  params.k_new_batch_stride = args.k_new_strides.batch;
  params.k_new_head_stride = args.k_new_strides.head;
  params.k_new_row_stride = args.k_new_strides.row;
  params.v_new_batch_stride = args.v_new_strides.batch;
  params.v_new_head_stride = args.v_new_strides.head;
  params.v_new_row_stride = args.v_new_strides.row;
  params.page_size = args.page_size;
  params.num_pages = args.num_pages;
  params.page_shift = 0;
  while ((1 << params.page_shift) < args.page_size) ++params.page_shift;
  const KvcWorkspaceLayout layout = kvc_workspace_layout(args, splits);
  auto* base = static_cast<unsigned char*>(workspace);
  params.o_partial = layout.bytes ? reinterpret_cast<float*>(base + layout.o_partial) : nullptr;
  params.lse_partial = layout.bytes ? reinterpret_cast<float*>(base + layout.lse_partial) : nullptr;
  params.num_splits = splits;
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
  params.packed_rows = args.seqlen_q * (args.heads_q / args.heads_kv);
  params.softmax_scale = softmax_scale_of(args.softmax_scale, args.head_dim);
  params.softmax_scale_log2 = params.softmax_scale * kLog2e;
  return params;
}

}  // namespace fa2
