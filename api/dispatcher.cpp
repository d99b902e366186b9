#include "api/dispatcher.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "api/capture_guard.hpp"
#include "api/tune_resolution.hpp"
#include "autotune/cache.hpp"
#include "autotune/tuner.hpp"
#include "runtime/context_device.hpp"
#include "runtime/driver.hpp"

namespace fa2 {

TunePolicy default_tune_policy() {
  const char* text = std::getenv("FA2JIT_TUNE");
  if (text == nullptr || *text == '\0') return TunePolicy::on_first_use;
  if (auto policy = parse_tune_policy(text)) return *policy;
  throw Error(Stage::Argument, "FA2JIT_TUNE",
              fmt::format("FA2JIT_TUNE='{}' is not a policy: use on-first-use, heuristic or cache-only", text));
}

namespace {

// Everything that selects a kernel, as plain values: building and hashing it allocates nothing.
struct DispatchKey {
  CUcontext context;
  ProblemClass problem;
  TunePolicy policy;
  // The cache a tuned class was resolved from: a call naming another cache resolves again (under
  // cache-only, another cache may lack the tuning). A 64-bit hash of the path, so the key stays plain.
  std::size_t cache_path_hash;

  bool operator==(const DispatchKey& o) const {
    return context == o.context && policy == o.policy && cache_path_hash == o.cache_path_hash && problem == o.problem;
  }
};

struct DispatchKeyHash {
  std::size_t operator()(const DispatchKey& key) const {
    const ProblemClass& p = key.problem;
    std::size_t h = std::hash<const void*>()(key.context);
    for (long long part : {static_cast<long long>(p.family), static_cast<long long>(p.deterministic),
                           static_cast<long long>(p.dtype), static_cast<long long>(p.head_dim),
                           static_cast<long long>(p.causal), static_cast<long long>(p.gqa_ratio),
                           static_cast<long long>(p.layout), static_cast<long long>(p.seqlen_q_bucket),
                           static_cast<long long>(p.seqlen_k_bucket), static_cast<long long>(p.batch_heads_bucket),
                           static_cast<long long>(p.variant.window), static_cast<long long>(p.variant.softcap),
                           static_cast<long long>(p.variant.alibi), static_cast<long long>(p.window_left_bucket),
                           static_cast<long long>(p.window_right_bucket),
                           static_cast<long long>(key.policy), static_cast<long long>(key.cache_path_hash)})
      h = h * 1000003u ^ std::hash<long long>()(part);
    return h;
  }
};

// FA2JIT_TUNE, read once: the hot path makes no getenv call. (A bad value throws, and is read again next
// time, since a throwing static initializer is retried.)
TunePolicy process_tune_policy() {
  static const TunePolicy policy = default_tune_policy();
  return policy;
}

class Dispatcher {
 public:
  static Dispatcher& instance() {
    static Dispatcher dispatcher;
    return dispatcher;
  }

  const LoadedKernel& kernel_for(const ProblemShape& shape, const std::optional<TunePolicy>& requested_policy,
                                 const std::string& cache_path, std::optional<CUstream> launch_stream) {
    const CUcontext context = driver::current_context();
    const TunePolicy policy = requested_policy ? *requested_policy : process_tune_policy();
    const std::size_t cache_path_hash =
        policy == TunePolicy::heuristic ? 0 : std::hash<std::string>()(cache_path);  // no allocation
    const DispatchKey key{context, ProblemClass::of(shape), policy, cache_path_hash};
    {
      std::shared_lock<std::shared_mutex> read(table_mutex_);
      auto found = table_.find(key);
      if (found != table_.end()) {
        KernelMemo::instance().count_dispatch_hit();
        return *found->second;
      }
    }
    // Before waiting for the resolution lock: a capturing caller gets its error now, not after another
    // thread's tuning.
    if (launch_stream) refuse_resolution_during_capture(capture_state(*launch_stream), shape, policy, cache_path);
    // One resolution at a time: two threads meeting the same new class tune it once, and tunings never
    // overlap on the GPU (they would spoil each other's timings).
    std::lock_guard<std::mutex> resolving(resolve_mutex_);
    {
      std::shared_lock<std::shared_mutex> read(table_mutex_);
      auto found = table_.find(key);
      if (found != table_.end()) return *found->second;
    }
    const LoadedKernel& kernel = resolve(key, shape, cache_path);
    std::unique_lock<std::shared_mutex> write(table_mutex_);
    table_.emplace(key, &kernel);
    return kernel;
  }

 private:
  const LoadedKernel& resolve(const DispatchKey& key, const ProblemShape& shape, const std::string& requested_path) {
    KernelMemo& memo = KernelMemo::instance();
    const Arch arch = current_arch(shape.family == Family::fwd ? "forward" : "backward");
    if (key.policy == TunePolicy::heuristic) {
      memo.count_resolution(false);
      return memo.kernel(
          default_config(shape.family, shape.head_dim, shape.dtype, shape.causal, arch, shape.deterministic,
                         key.problem.packed_rows(), shape.variant()),
          key.context);
    }
    const std::string tuning = tuning_key(current_device_fingerprint(), key.problem);
    // A job must not die of its cache: under on-first-use a cache fault is counted and worked around.
    TunedResolution resolved =
        resolve_tuned(key.policy, shape, arch, tuning, requested_path, [&](Cache& cache, std::string* store_fault) {
          TuneOptions options;
          options.store_fault = store_fault;
          return tune(shape, &cache, options);
        });
    if (!resolved.cache_fault.empty()) memo.record_cache_fault(resolved.cache_fault);
    memo.count_resolution(resolved.tuned);
    return memo.kernel(resolved.config, key.context, resolved.cache ? &*resolved.cache : nullptr);
  }

  std::shared_mutex table_mutex_;
  std::unordered_map<DispatchKey, const LoadedKernel*, DispatchKeyHash> table_;
  std::mutex resolve_mutex_;
};

}  // namespace

const LoadedKernel& dispatch(const ProblemShape& shape, const std::optional<TunePolicy>& policy,
                             const std::string& cache_path, std::optional<CUstream> launch_stream) {
  return Dispatcher::instance().kernel_for(shape, policy, cache_path, launch_stream);
}

RuntimeStats runtime_stats() { return KernelMemo::instance().stats(); }

std::string last_cache_fault() { return KernelMemo::instance().last_cache_fault(); }

}  // namespace fa2
