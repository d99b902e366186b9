// fa2jit public API: FlashAttention-2 forward through kernels generated, compiled (NVRTC) and launched
// (CUDA Driver API) at run time, specialized to the problem's head dim, dtype and masking.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "codegen/tile_config.hpp"
#include "runtime/error.hpp"

struct CUstream_st;  // CUstream without <cuda.h>

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

// How forward() picks a kernel for a problem class it has not seen in this process.
enum class TunePolicy {
  on_first_use,  // the tuned winner from the cache; on a miss, tune now and store it (the default)
  heuristic,     // a built-in default config per (head dim, dtype, causal, arch); no tuning, no cache
  cache_only,    // the tuned winner from the cache; a miss is an error naming the fa2-tune command
};
const char* tune_policy_name(TunePolicy policy);  // "on-first-use" | "heuristic" | "cache-only"
std::optional<TunePolicy> parse_tune_policy(const std::string& text);
// $FA2JIT_TUNE, else on-first-use. Throws fa2::Error naming the value when it is not a policy.
TunePolicy default_tune_policy();

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

  std::optional<TunePolicy> tune_policy;  // default: $FA2JIT_TUNE as read at the first call, else on-first-use
  std::string cache_path;                 // default: $FA2JIT_CACHE_DIR/kernels.db or ~/.cache/fa2jit/kernels.db
};

// O = softmax(Q K^T * scale) V, enqueued on `stream` (null = the legacy default stream) in the calling
// thread's current CUDA context (device 0's primary context when there is none). The first call for a
// problem class picks its kernel by the tune policy (which may tune: seconds); later calls are a hash
// lookup and a launch. Thread-safe: threads that meet the same new class resolve it once. Throws
// fa2::Error on invalid arguments (naming the value and what is allowed) and on tune, cache, compile,
// load or launch failures.
void forward(const FwdArgs& args, CUstream_st* stream = nullptr);

// The config forward() uses for `args` (resolving it, by the policy, if this process has not yet).
TileConfig forward_config(const FwdArgs& args);

// Counters of the process, for tests and diagnostics.
struct RuntimeStats {
  std::size_t compiles = 0;        // NVRTC compilations done for forward()
  std::size_t cubins_loaded = 0;   // cubins taken from the SQLite cache instead of compiling
  std::size_t tunings = 0;         // problem classes tuned by forward() (on-first-use misses)
  std::size_t resolutions = 0;     // problem classes resolved (first calls per class and policy)
  std::size_t dispatch_hits = 0;   // forward() calls served from the in-memory dispatch table
  // The cache failed (cannot be opened, read or written; a tuning not for its class) and forward()
  // carried on without it: with the built-in config when no tuned winner was in hand, else with the
  // winner it had. cache-only is the exception: there a fault throws.
  std::size_t cache_faults = 0;
  std::size_t cubins_rejected = 0;  // cached cubins not loaded (a bad row, or the driver refused it) and compiled
                                    // again; each is also one of the cache_faults
};
RuntimeStats runtime_stats();
// The message of the last cache fault counted in RuntimeStats::cache_faults (it names the cache file
// and what forward() did instead); "" when there has been none.
std::string last_cache_fault();

}  // namespace fa2
