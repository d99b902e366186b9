// fa2jit public API: FlashAttention-2 forward (also against a KV cache) and backward through kernels generated, compiled (NVRTC)
// and launched (CUDA Driver API) at run time, specialized to the problem's head dim, dtype and masking.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "fa2jit/attention_args.hpp"
#include "fa2jit/error.hpp"
#include "fa2jit/tile_config.hpp"

struct CUstream_st;  // CUstream without <cuda.h>

namespace fa2 {

// $FA2JIT_TUNE, else on-first-use. Throws fa2::Error naming the value when it is not a policy.
TunePolicy default_tune_policy();

// O = softmax(Q K^T * scale) V, enqueued on `stream` (null = the legacy default stream) in the calling
// thread's current CUDA context (device 0's primary context when there is none). The first call for a
// problem class picks its kernel by the tune policy (which may tune: seconds); later calls are a hash
// lookup and a launch. Thread-safe: threads that meet the same new class resolve it once. Throws
// fa2::Error on invalid arguments (naming the value and what is allowed) and on tune, cache, compile,
// load or launch failures. CUDA graphs: a call on a stream that is capturing is recorded like any launch
// once its class is resolved in this process; a class met for the first time during a capture is not
// resolved (that may tune, compile or load a module, which a capture cannot record): the call throws
// fa2::Error(Stage::Launch) before doing anything, naming the class, and the capture stays valid. Warm
// up with one eager call of each class before capturing (fa2-tune tune beforehand keeps it from tuning).
// The check looks at the call's own stream: a first call on another, non-capturing stream while a global-mode
// capture runs elsewhere, and the *_config / *_workspace_bytes queries (no stream), are not guarded.
// The same holds for backward() and forward_with_kvcache().
void forward(const FwdArgs& args, CUstream_st* stream = nullptr);

// The config forward() uses for `args` (resolving it, by the policy, if this process has not yet).
TileConfig forward_config(const FwdArgs& args);

// dQ, dK and dV of the forward call that produced args.o and args.lse, enqueued on `stream` as three
// kernels (D = rowsum(dO * O) and zeroing, the main kernel over key blocks, the dQ conversion). Resolves
// its kernel by the tune policy like forward() (the backward classes are tuned and cached on their own),
// with the same argument checks. deterministic: bitwise-identical results from run to run.
void backward(const BwdArgs& args, CUstream_st* stream = nullptr);

// The config backward() uses for `args`.
TileConfig backward_config(const BwdArgs& args);

// Bytes of scratch backward() needs for `args` (the fp32 dQ accumulator dominates: 4 * batch * heads_q
// * seqlen_q * head_dim), for callers that pass their own BwdArgs::workspace.
std::size_t backward_workspace_bytes(const BwdArgs& args);

// O = softmax(Q K^T * scale) V for new queries against a KV cache, contiguous or paged (KvcacheArgs):
// decode steps and chunked prefill. The query heads that share a KV head fill one block's rows, so each
// K/V tile is read once per KV head, and the keys are split over blocks when the grid would not fill the
// GPU, the splits' partial results being merged by a second kernel. With KvcacheArgs::k_new and v_new, a
// first kernel writes the new keys and values into the cache (FlashAttention's flash_attn_with_kvcache).
// Resolves its kernel by the tune policy like forward() (its classes are tuned and cached on their own).
void forward_with_kvcache(const KvcacheArgs& args, CUstream_st* stream = nullptr);

// The config forward_with_kvcache() uses for `args`.
TileConfig kvcache_config(const KvcacheArgs& args);

// Bytes of workspace forward_with_kvcache() needs for `args` with the splits it will choose (0 when it
// splits nothing), for callers that pass their own KvcacheArgs::workspace. Resolves the kernel like a call.
std::size_t kvcache_workspace_bytes(const KvcacheArgs& args);

// Counters of the process, for tests and diagnostics.
struct RuntimeStats {
  std::size_t compiles = 0;        // NVRTC compilations done for forward() and backward()
  std::size_t cubins_loaded = 0;   // cubins taken from the SQLite cache instead of compiling
  std::size_t tunings = 0;         // problem classes tuned by the passes (on-first-use misses)
  std::size_t resolutions = 0;     // problem classes resolved (first calls per class and policy)
  std::size_t dispatch_hits = 0;   // calls served from the in-memory dispatch table
  // The cache failed (cannot be opened, read or written; a tuning not for its class) and the pass
  // carried on without it: with the built-in config when no tuned winner was in hand, else with the
  // winner it had. cache-only is the exception: there a fault throws.
  std::size_t cache_faults = 0;
  std::size_t cubins_rejected = 0;  // cached cubins not loaded (a bad row, or the driver refused it) and compiled
                                    // again; each is also one of the cache_faults
};
RuntimeStats runtime_stats();
// The message of the last cache fault counted in RuntimeStats::cache_faults (it names the cache file
// and what the pass did instead); "" when there has been none.
std::string last_cache_fault();

}  // namespace fa2
