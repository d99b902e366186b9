// FwdArgs, BwdArgs and KvcacheArgs (the public, validated descriptions of a call) -> FwdParams and BwdParams (the
// kernels' by-value arguments), and the layout of the backward's workspace.
#pragma once

#include <cstddef>

#include "common/attention_args.hpp"
#include "fa2/bwd/bwd_params.h"
#include "fa2/fwd/fwd_params.h"
#include "fa2/kvc/kvc_params.h"
#include "fa2/variant/variant_params.h"

namespace fa2 {

// The softmax scale a call uses: the given one, else 1/sqrt(head_dim).
float softmax_scale_of(const std::optional<float>& softmax_scale, int head_dim);

FwdParams make_fwd_params(const FwdArgs& args);

// The second kernel argument of a config compiled with variants (templates/fa2/variant/variant_params.h), made
// from a call's variant values and mask. With softcap the kernel applies the cap as its softmax scale (the
// call's scale moves into the tanh): `softmax_scale` and `softmax_scale_log2`, the FwdParams or BwdParams fields
// holding the call's scale, are rewritten to the cap then. make_fwd_params and make_bwd_params themselves keep
// the call's scale, which the reference kernels use.
VariantParams make_variant_params(const VariantArgs& variant, bool causal, int seqlen_q, int seqlen_k,
                                  float& softmax_scale, float& softmax_scale_log2);

// The backward's: make_variant_params for the recomputed softmax (softmax_scale_log2 takes the cap with softcap),
// while params.softmax_scale stays the call's scale, dQ's and dK's fp32 factor. The kernel multiplies dS by
// tanh's derivative only, so the 16-bit dS keeps the plain kernel's range and the chain rule's cap * (scale / cap)
// is applied in fp32 at the end; folding scale / cap into dS before its 16-bit store shrank it 565x at Gemma 2's
// cap 50 and d128, into fp16's subnormals.
VariantParams make_bwd_variant_params(const BwdArgs& args, BwdParams& params);

// Where the backward's scratch lives inside one workspace allocation (offsets 256-byte aligned).
struct BwdWorkspaceLayout {
  std::size_t dq_accum = 0;   // fp32 dQ accumulator, batch x heads_q x seqlen_q x head_dim
  std::size_t dpsum = 0;      // fp32 D, batch x heads_q x seqlen_q
  std::size_t semaphore = 0;  // int32, batch x heads_q x semaphore_stride (deterministic mode)
  int semaphore_stride = 0;   // ceil(seqlen_q / 16): enough for any block_m
  std::size_t bytes = 0;      // the whole workspace
};
BwdWorkspaceLayout bwd_workspace_layout(const BwdArgs& args);

// How many (batch, KV head) pairs the main kernel dispatches together (BwdParams::pairs_per_wave): as many
// as keep `resident_blocks` (the main kernel's blocks resident on the device at once) busy with all their
// key blocks of `block_n` keys, at least 1; every pair when resident_blocks is 0 (not known).
int bwd_pairs_per_wave(const BwdArgs& args, int block_n, int resident_blocks);

// `workspace` must hold bwd_workspace_layout(args).bytes; `block_n` and `resident_blocks` as above.
BwdParams make_bwd_params(const BwdArgs& args, void* workspace, int block_n, int resident_blocks);

// How many blocks the keys of each (row block, KV head, batch) of a KV-cache forward are split over with
// `block_m` x `block_n` tiles: args.num_splits when given, else `tuned` (the config's) when nonzero, else
// a heuristic: the fewest splits whose grid fills `resident_blocks` (the main kernel's blocks resident at
// once) nearly as well as any; always within [1, min(key tiles, kKvcMaxSplits)].
int kvc_splits(const KvcacheArgs& args, int block_m, int block_n, int tuned, int resident_blocks);

// Where the splits' partial results live inside one workspace allocation (offsets 256-byte aligned).
struct KvcWorkspaceLayout {
  std::size_t o_partial = 0;    // fp32, splits x batch x heads_q x seqlen_q x head_dim
  std::size_t lse_partial = 0;  // fp32, splits x batch x heads_q x seqlen_q
  std::size_t bytes = 0;        // 0 when splits is 1: nothing to combine
};
KvcWorkspaceLayout kvc_workspace_layout(const KvcacheArgs& args, int splits);

// `workspace` must hold kvc_workspace_layout(args, splits).bytes (null when that is 0).
KvcParams make_kvc_params(const KvcacheArgs& args, void* workspace, int splits);

}  // namespace fa2
