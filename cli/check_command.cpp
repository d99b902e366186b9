// fa2-tune check: run the default kernel of one problem on the GPU and compare its output with an fp32
// reference: O and the log-sum-exp for the forward, dQ, dK and dV for the backward (--pass bwd). A quick
// end-to-end proof that codegen, NVRTC and the Driver API path work on this machine.
#include <fmt/core.h>

#include <memory>
#include <string>

#include "api/checks.hpp"
#include "cli/commands.hpp"
#include "common/error.hpp"

namespace fa2::cli {
namespace {

// The check's defaults are CheckSpec's, so the library and the CLI agree on them.
CheckOptions defaults() {
  const CheckSpec spec;
  CheckOptions options;
  options.head_dim = spec.shape.head_dim;
  options.dtype = dtype_name(spec.shape.dtype);
  options.causal = spec.shape.causal;
  options.batch = spec.shape.batch;
  options.heads = spec.shape.heads_q;
  options.heads_kv = spec.shape.heads_kv == spec.shape.heads_q ? 0 : spec.shape.heads_kv;
  options.seqlen_q = spec.shape.seqlen_q;
  options.seqlen_k = spec.shape.seqlen_k;
  options.policy = tune_policy_name(spec.policy);
  return options;
}

}  // namespace

Command setup_check(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<CheckOptions>(defaults());
  CLI::App* sub = app.add_subcommand(
      "check", "Run a problem's default kernel (forward or backward) on the GPU against an fp32 reference");

  add_pass_flags(sub, options->pass);
  add_kernel_flags(sub, options->head_dim, options->dtype, options->causal);
  add_variant_flags(sub, options->pass);
  add_size_flags(sub, options->batch, options->heads, options->heads_kv, options->seqlen_q, options->seqlen_k);
  sub->add_option("--policy", options->policy,
                  "How the kernel is chosen: the built-in config, or the --db cache's tuned winner "
                  "(on-first-use tunes on a miss, cache-only fails)")
      ->check(parsed_by(parse_tune_policy, "policy", "heuristic|on-first-use|cache-only"))
      ->capture_default_str();
  add_page_size_flag(sub, options->page_size);

  return {sub, [options, &global] { return run_check(*options, global); }};
}

int run_check(const CheckOptions& options, const GlobalOptions& global) {
  const auto dtype = parse_dtype(options.dtype);
  if (!dtype) throw Error(Stage::Argument, "", fmt::format("unknown dtype '{}'", options.dtype));

  CheckSpec spec;
  spec.shape.family = family_of(options.pass);
  spec.shape.deterministic = options.pass.deterministic;
  spec.shape.head_dim = options.head_dim;
  spec.shape.dtype = *dtype;
  spec.shape.causal = options.causal;
  spec.shape.batch = options.batch;
  spec.shape.heads_q = options.heads;
  spec.shape.heads_kv = options.heads_kv > 0 ? options.heads_kv : options.heads;
  spec.shape.seqlen_q = options.seqlen_q;
  spec.shape.seqlen_k = options.seqlen_k;
  spec.shape.page_size = page_size_for(spec.shape.family, options.page_size);
  spec.shape.set_variant(options.causal, variant_args_of(options.pass), options.pass.alibi);

  const auto policy = parse_tune_policy(options.policy);
  if (!policy) throw Error(Stage::Argument, "", fmt::format("unknown policy '{}'", options.policy));
  spec.policy = *policy;
  spec.cache_path = global.db;  // empty: forward()'s default cache, the same one cache_path() resolves

  std::string kernel_name, summary;
  double kernel_ms = 0;
  bool passed = false;
  if (spec.shape.family == Family::bwd) {
    const BackwardCheckResult result = run_backward_check(spec);
    kernel_name = result.kernel_name, summary = result.comparison.summary();
    kernel_ms = result.kernel_ms, passed = result.passed;
  } else if (spec.shape.family == Family::kvc) {
    const ForwardCheckResult result = run_kvcache_check(spec);
    kernel_name = result.kernel_name, summary = result.comparison.summary();
    kernel_ms = result.kernel_ms, passed = result.passed;
  } else {
    const ForwardCheckResult result = run_forward_check(spec);
    kernel_name = result.kernel_name, summary = result.comparison.summary();
    kernel_ms = result.kernel_ms, passed = result.passed;
  }
  const RuntimeStats stats = runtime_stats();
  fmt::print("{}  {}\n  {}  {:.3f} ms  {}\n", kernel_name, spec.shape.describe(), summary, kernel_ms,
             passed ? "PASS" : "FAIL");
  // What this process had to do to get the kernel: shows whether a cache was warm.
  fmt::print("  runtime: policy {}, compiled {}, cubins from cache {}, tuned {}, cubins rejected {}, cache faults {}\n",
             options.policy, stats.compiles, stats.cubins_loaded, stats.tunings, stats.cubins_rejected,
             stats.cache_faults);
  if (stats.cache_faults > 0) fmt::print("  last cache fault: {}\n", last_cache_fault());
  return passed ? kOk : kCheckFailed;
}

}  // namespace fa2::cli
