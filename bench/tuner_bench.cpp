// Tuner benchmark: the numbers the tuner must show, measured on the GPU machine in one run.
//
//   fa2jit_tuner_bench compile    NVRTC time per kernel: the d128 bf16 causal sm_90a search space
//                                 compiled one at a time (median, p90), then all at once on every core.
//   fa2jit_tuner_bench tune       wall time to tune one problem class (fresh cache, all cores).
//   fa2jit_tuner_bench first-call the first forward() of a fresh process with a warm cache: the same
//                                 program re-run as a child, timing open + load + launch inside it.
//   fa2jit_tuner_bench overhead   host time per forward() call against a bare cuLaunchKernel of the
//                                 same kernel with prebuilt parameters (tiny problem, batches of 100).
//   fa2jit_tuner_bench grid       the tuned winner against FA2's static tile table (and our default)
//                                 over the FA2 paper's grid: bf16, d 64/128/256, causal off/on,
//                                 seqlen 512..16384 with batch*seqlen = 16384, hidden 2048.
//   fa2jit_tuner_bench all        everything above, in that order.
//
// Every figure is printed with what it measured; GPU times come from CUDA events, host times from
// steady_clock. Pass --db PATH to keep the cache (default: a fresh temporary one).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "autotune/cache.hpp"
#include "autotune/compile_pool.hpp"
#include "api/kernel_memo.hpp"
#include "autotune/kernel_store.hpp"
#include "autotune/problem_bench.hpp"
#include "autotune/problem_buffers.hpp"
#include "autotune/search_space.hpp"
#include "autotune/tuner.hpp"
#include "codegen/emit.hpp"
#include "fa2/fwd/fwd_params.h"
#include "fa2jit/fa2jit.hpp"
#include "runtime/driver.hpp"
#include "runtime/params_builder.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> values, double fraction) {
  std::sort(values.begin(), values.end());
  const std::size_t index = static_cast<std::size_t>(fraction * (values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

void synchronize() { fa2::driver::check(fa2::driver::api().CtxSynchronize(), "cuCtxSynchronize"); }

fa2::ProblemShape paper_shape(int head_dim, bool causal, int seqlen) {
  fa2::ProblemShape shape;
  shape.dtype = fa2::DType::bf16;
  shape.head_dim = head_dim;
  shape.causal = causal;
  shape.batch = 16384 / seqlen;
  shape.heads_q = shape.heads_kv = 2048 / head_dim;
  shape.seqlen_q = shape.seqlen_k = seqlen;
  return shape;
}

void bench_compile() {
  const fa2::ProblemShape shape = paper_shape(128, true, 2048);
  const std::vector<fa2::TileConfig> configs =
      fa2::buildable_configs(fa2::ProblemClass::of(shape), fa2::Arch::sm_90a);
  std::vector<double> times;
  for (const fa2::TileConfig& config : configs)
    times.push_back(fa2::compile_source(fa2::emit(config), config.name(), config.arch).compile_ms);
  const auto start = Clock::now();
  const auto outcomes = fa2::compile_all(configs);
  const double parallel_ms = ms_since(start);
  fmt::print("compile: {} configs of the d128 bf16 causal sm_90a space, one at a time: median {:.0f} ms, p90 {:.0f} ms, "
             "min {:.0f} ms, max {:.0f} ms\n",
             configs.size(), percentile(times, 0.5), percentile(times, 0.9), percentile(times, 0.0),
             percentile(times, 1.0));
  fmt::print("compile: all {} on {} threads: {:.0f} ms wall ({:.0f} ms per kernel)\n", outcomes.size(),
             std::max(1u, std::thread::hardware_concurrency()), parallel_ms, parallel_ms / outcomes.size());
}

void bench_tune(fa2::Cache& cache) {
  const fa2::ProblemShape shape = paper_shape(128, true, 4096);
  const auto start = Clock::now();
  const fa2::TuningRecord record = fa2::tune(shape, &cache);
  int ok = 0;
  for (const fa2::Measurement& m : record.measurements) ok += m.status == fa2::MeasurementStatus::ok;
  fmt::print("tune: {} in {:.1f} s wall ({} candidates, {} ok); winner {} at {:.0f} TFLOP/s\n", shape.describe(),
             ms_since(start) / 1000, record.measurements.size(), ok, record.winner.name(), record.tflops);
}

// Runs in the child: times one forward() with a warm cache, from a process that has done nothing else.
int first_call_child(const std::string& db) {
  const auto process_start = Clock::now();
  fa2::driver::ensure_context();
  const double context_ms = ms_since(process_start);
  fa2::ProblemBuffers buffers(paper_shape(128, true, 4096));
  fa2::FwdArgs args = buffers.args();
  args.tune_policy = fa2::TunePolicy::cache_only;
  args.cache_path = db;
  synchronize();
  const auto first_start = Clock::now();
  fa2::forward(args);
  synchronize();
  const double first_ms = ms_since(first_start);
  const auto second_start = Clock::now();
  fa2::forward(args);
  synchronize();
  const double second_ms = ms_since(second_start);
  const fa2::RuntimeStats stats = fa2::runtime_stats();
  fmt::print("first-call: CUDA context {:.1f} ms (not fa2jit's); first forward() {:.2f} ms = open + look up + "
             "load + launch + run; second {:.2f} ms (run only) -> fa2jit first-call cost {:.2f} ms; compiled {}, "
             "cubins from cache {}\n",
             context_ms, first_ms, second_ms, first_ms - second_ms, stats.compiles, stats.cubins_loaded);
  return stats.compiles == 0 ? 0 : 1;
}

void bench_first_call(const std::string& db) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const int status = std::system(fmt::format("'{}' first-call-child --db '{}'", self, db).c_str());
  if (status != 0) fmt::print("first-call: the child failed (status {})\n", status);
}

void bench_overhead() {
  fa2::ProblemShape shape;
  shape.head_dim = 64;
  shape.batch = shape.heads_q = shape.heads_kv = 1;
  shape.seqlen_q = shape.seqlen_k = 128;
  fa2::ProblemBuffers buffers(shape);
  fa2::FwdArgs args = buffers.args();
  args.tune_policy = fa2::TunePolicy::heuristic;
  fa2::forward(args);
  synchronize();

  const fa2::LoadedKernel& kernel =
      fa2::KernelMemo::instance().kernel(fa2::forward_config(args), fa2::driver::current_context());
  fa2::FwdParams params = fa2::make_fwd_params(args);
  void* kernel_args[] = {&params};
  const fa2::TileConfig& config = kernel.config();
  auto bare_launch = [&] {
    fa2::driver::check(fa2::driver::api().LaunchKernel(kernel.module.main(), 1, 1, 1, config.threads(), 1, 1,
                                                       config.smem_bytes(), nullptr, kernel_args, nullptr),
                       "cuLaunchKernel");
  };

  constexpr int kBatch = 100, kBatches = 200;
  auto per_call_us = [&](auto&& call) {
    std::vector<double> batch_us;
    for (int b = 0; b < kBatches; ++b) {
      const auto start = Clock::now();
      for (int i = 0; i < kBatch; ++i) call();
      batch_us.push_back(ms_since(start) * 1000 / kBatch);
      synchronize();  // outside the timed region: the queue never fills
    }
    return percentile(batch_us, 0.5);
  };
  const double bare = per_call_us(bare_launch);
  const double ours = per_call_us([&] { fa2::forward(args); });
  const double bare_again = per_call_us(bare_launch);
  fmt::print("overhead: host time per call, median of {} batches of {}: bare cuLaunchKernel {:.2f} us (again "
             "{:.2f} us), fa2::forward {:.2f} us -> overhead {:.2f} us per call\n",
             kBatches, kBatch, bare, bare_again, ours, ours - std::min(bare, bare_again));
}

// A config's measurement on `bench`, compiled or taken from the cache; spilling configs are timed too
// (FA2's static tiles may spill in this kernel, and the comparison should still show their speed).
fa2::Measurement measure(const fa2::TileConfig& config, fa2::ProblemBench& bench, fa2::Cache& cache,
                         const fa2::TimingOptions& timing) {
  const std::string key = fa2::cubin_key(config);
  std::optional<fa2::CachedKernel> cached = fa2::find_usable_kernel(cache, config);
  if (!cached) {
    cache.put_kernels({fa2::cached_kernel_of(config, fa2::compile_source(fa2::emit(config), config.name(), config.arch))});
    cached = fa2::find_usable_kernel(cache, config);
  }
  return fa2::measure_config(config, key, cached->cubin, cached->resources, bench, timing, /*allow_spills*/ true);
}

std::string tflops_text(const fa2::Measurement& m) {
  if (m.status != fa2::MeasurementStatus::ok) return fa2::measurement_status_name(m.status);
  return fmt::format("{:.0f}{}", m.tflops, m.resources.spills() ? "*" : "");
}

void bench_grid(fa2::Cache& cache) {
  fa2::TuneOptions options;
  options.timing.target_ms = 100;
  const fa2::Arch arch = fa2::Arch::sm_90a;
  fmt::print("grid: TFLOP/s (4*B*H*S*S*d, halved for causal) from event-timed medians; * = spills; ratio = tuned / "
             "FA2 static\n");
  fmt::print("{:>4} {:>6} {:>6} {:>5} | {:>8} {:>8} {:>8} {:>6} | {:<42} {:>6}\n", "d", "causal", "seqlen", "batch",
             "tuned", "fa2-tbl", "default", "ratio", "winner", "tune s");
  std::vector<double> ratios;
  for (int head_dim : {64, 128, 256})
    for (bool causal : {false, true})
      for (int seqlen : {512, 1024, 2048, 4096, 8192, 16384}) {
        const fa2::ProblemShape shape = paper_shape(head_dim, causal, seqlen);
        const fa2::TuningRecord record = fa2::tune(shape, &cache, options);
        const std::unique_ptr<fa2::ProblemBench> bench = fa2::make_problem_bench(shape, 1);
        const fa2::Measurement fa2_static =
            measure(fa2::fa2_static_config(fa2::Family::fwd, head_dim, shape.dtype, causal, arch), *bench, cache,
                    options.timing);
        const fa2::Measurement by_default =
            measure(fa2::default_config(head_dim, shape.dtype, causal, arch), *bench, cache, options.timing);
        const bool comparable = fa2_static.status == fa2::MeasurementStatus::ok;
        const double ratio = comparable ? record.tflops / fa2_static.tflops : 0;
        if (comparable) ratios.push_back(ratio);
        fmt::print("{:>4} {:>6} {:>6} {:>5} | {:>8.0f} {:>8} {:>8} {:>6} | {:<42} {:>6.1f}\n", head_dim,
                   causal ? "yes" : "no", seqlen, shape.batch, record.tflops, tflops_text(fa2_static),
                   tflops_text(by_default), comparable ? fmt::format("{:.2f}", ratio) : "-", record.winner.name(),
                   record.tune_seconds);
        std::fflush(stdout);
      }
  if (!ratios.empty())
    fmt::print("grid: tuned / FA2 static over {} points: median {:.2f}, min {:.2f}, max {:.2f}\n", ratios.size(),
               percentile(ratios, 0.5), percentile(ratios, 0.0), percentile(ratios, 1.0));
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const std::string part = args.empty() ? "all" : args[0];
  std::string db;
  for (std::size_t i = 1; i + 1 < args.size(); ++i)
    if (args[i] == "--db") db = args[i + 1];
  try {
    if (part == "first-call-child") return first_call_child(db);
    std::string why;
    if (!fa2::driver::available(&why)) {
      fmt::print(stderr, "fa2jit_tuner_bench needs a GPU: {}\n", why);
      return 2;
    }
    if (db.empty()) {
      char pattern[] = "/tmp/fa2jit-bench-XXXXXX";
      db = std::string(mkdtemp(pattern)) + "/kernels.db";
    }
    fa2::Cache cache = fa2::Cache::open(db);
    const fa2::DeviceFingerprint device = fa2::current_device_fingerprint();
    fmt::print("device: {}; NVRTC {}; cache {}\n", device.key(), fa2::nvrtc_version(), db);
    const bool all = part == "all";
    if (all || part == "compile") bench_compile();
    if (all || part == "tune" || part == "first-call") bench_tune(cache);
    if (all || part == "first-call") bench_first_call(db);
    if (all || part == "overhead") bench_overhead();
    if (all || part == "grid") bench_grid(cache);
    if (!all && part != "compile" && part != "tune" && part != "first-call" && part != "overhead" && part != "grid") {
      fmt::print(stderr, "unknown part '{}': use compile, tune, first-call, overhead, grid or all\n", part);
      return 2;
    }
  } catch (const std::exception& error) {
    fmt::print(stderr, "fa2jit_tuner_bench: {}\n", error.what());
    return 1;
  }
  return 0;
}
