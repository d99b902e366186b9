// ProblemShape: one concrete attention problem of one pass (what a check or a benchmark runs).
// ProblemClass: the tuning cache's view of it, exact on everything that changes the kernel or its
// correctness (family, dtype, head dim, causal, determinism, GQA ratio, layout class) and bucketed on
// sizes, so nearby shapes share a tuning.
#pragma once

#include <string>

#include "codegen/tile_config.hpp"
#include "common/attention_args.hpp"

namespace fa2 {

enum class Layout { bshd, bhsd, strided };  // strided: anything else with a contiguous last dim
const char* layout_name(Layout layout);
std::optional<Layout> parse_layout(const std::string& text);

struct ProblemShape {
  Family family = Family::fwd;
  bool deterministic = false;  // bwd: bitwise-reproducible gradients asked for
  DType dtype = DType::bf16;
  int head_dim = 128;
  bool causal = false;
  int batch = 2;
  int heads_q = 16;
  int heads_kv = 16;
  int seqlen_q = 1024;
  int seqlen_k = 1024;
  Layout layout = Layout::bshd;  // benchmarks lay strided problems out as bshd
  // kvc: keys per page of a paged cache, 0 for a contiguous one. Not part of the problem class: the same
  // kernel reads both (benchmarks and checks build the cache this way).
  int page_size = 0;
  // The built-in variants (fa2jit/variant.hpp): the effective window (common/variant.hpp, which also decides
  // `causal` above; a side of -1 is unbounded), the softcap (0: off) and ALiBi (checks and benchmarks make their
  // own slopes, [batch, heads_q]).
  bool window = false;
  int window_left = -1;
  int window_right = -1;
  float softcap = 0.f;
  bool alibi = false;
  // The user modifications (fa2jit/user_mods.hpp): their snippets, and the call's extra arrays, whose addresses
  // the checks and the tuner's benchmarks use as they are (they live as long as the call that tunes).
  UserMods user;
  std::vector<ExtraArray> extra;

  Variant variant() const {
    Variant kind;
    kind.window = window;
    kind.softcap = softcap > 0.f;
    kind.alibi = alibi;
    kind.user = user;
    return kind;
  }
  // The window, softcap and user modifications as a call's VariantArgs (no slopes: they are device memory).
  VariantArgs variant_args() const;
  // Sets causal and the variant fields from a call's mask and values after flash-attn's rules (common/variant.hpp);
  // alibi: whether the call has slopes. Needs seqlen_q and seqlen_k set.
  void set_variant(bool call_causal, const VariantArgs& variant, bool with_alibi);

  static ProblemShape of(const FwdArgs& args);
  static ProblemShape of(const BwdArgs& args);
  static ProblemShape of(const KvcacheArgs& args);
  // "d128 bf16 causal b2 hq16 hkv16 sq1024 sk1024 bshd"; a backward starts "bwd " and ends " det" when
  // deterministic; a KV-cache forward starts "kvc " and ends " page16" when paged; variants add " win256,0",
  // " cap30" and " alibi".
  std::string describe() const;
  // Forward: 4 * batch * heads * (query, key) pairs that are visible * head_dim, causal and window counted exactly.
  // Backward: 2.5 times that (five GEMMs to the forward's two), the FA2 paper's convention.
  double flops() const;
};

// Smallest power of two >= value, at least `minimum`, at most 2^30.
int size_bucket(long long value, int minimum = 64);

struct ProblemClass {
  Family family = Family::fwd;
  bool deterministic = false;
  DType dtype = DType::bf16;
  int head_dim = 128;
  bool causal = false;
  int gqa_ratio = 1;
  Layout layout = Layout::bshd;
  int seqlen_q_bucket = 0;
  int seqlen_k_bucket = 0;
  int batch_heads_bucket = 0;  // of batch * heads_q
  // The variants, exact; a window's sides bucketed like sizes (-1: unbounded).
  Variant variant;
  int window_left_bucket = -1;
  int window_right_bucket = -1;

  static ProblemClass of(const ProblemShape& shape);
  // The query rows of one KV head a kvc block packs (the seqlen_q bucket x query heads per KV head): what
  // picks decode or chunked-prefill tiles for the built-in config. 0 for the other families.
  int packed_rows() const;
  // "bf16 d128 causal gqa4 bshd q4096 k4096 bh128" (a backward: "bwd bf16 ... bh128", then " det" when
  // deterministic; a KV-cache forward "kvc bf16 ..."; then " win256x0", " cap", " alibi" for variants, a window's
  // sides bucketed, "inf" where unbounded): readable, and exactly the cache's problem key.
  std::string key() const;
  bool operator==(const ProblemClass& other) const;
};

struct DeviceFingerprint {
  std::string name;
  int compute_capability = 0;  // 90
  int sm_count = 0;
  int driver_version = 0;      // 13000

  std::string key() const;  // "NVIDIA H100 80GB HBM3|sm90|132sm|drv13000"
};

// "<device key>#<problem key>"
std::string tuning_key(const DeviceFingerprint& device, const ProblemClass& problem);

}  // namespace fa2
