#include "autotune/tuner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "autotune/compile_pool.hpp"
#include "autotune/kernel_store.hpp"
#include "autotune/problem_bench.hpp"
#include "autotune/search_space.hpp"
#include "common/error.hpp"
#include "runtime/context_device.hpp"
#include "runtime/driver.hpp"
#include "runtime/kernel_module.hpp"

namespace fa2 {

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

Measurement measurement_of(const TileConfig& config, MeasurementStatus status, std::string reason) {
  Measurement m;
  m.config = config;
  m.status = status;
  m.reason = std::move(reason);
  return m;
}

// A candidate ready to run: compiled (or found in the cache) and resource-checked.
struct Runnable {
  TileConfig config;
  std::string cubin_key;
  std::vector<char> cubin;
  ResourceUsage resources;
};

}  // namespace

DeviceFingerprint current_device_fingerprint() {
  const ContextDevice& device = context_device(driver::current_context());
  DeviceFingerprint fingerprint;
  fingerprint.name = device.info.name;
  fingerprint.compute_capability = device.info.cc_major * 10 + device.info.cc_minor;
  fingerprint.sm_count = device.info.sm_count;
  fingerprint.driver_version = device.info.driver_version;
  return fingerprint;
}

bool within_tuned_spill_limit(const ResourceUsage& r) {
  return r.spill_store_bytes <= kMaxTunedLocalBytes && r.spill_load_bytes <= kMaxTunedLocalBytes &&
         r.stack_frame_bytes <= kMaxTunedLocalBytes;
}

Measurement measure_config(const TileConfig& config, const std::string& cubin_key, const std::vector<char>& cubin,
                           const ResourceUsage& resources, ProblemBench& bench, const TimingOptions& timing_options,
                           bool allow_spills) {
  Measurement m = measurement_of(config, MeasurementStatus::ok, "");
  m.cubin_key = cubin_key;
  m.resources = resources;
  try {
    const KernelModule kernel = KernelModule::load(config, cubin);
    complete_resources(m.resources, kernel.main());
    if (!allow_spills && !within_tuned_spill_limit(m.resources)) {
      m.status = MeasurementStatus::spills;
      m.reason = fmt::format("spills: {} bytes stored, {} loaded, {} bytes of local memory (limit {} each)",
                             m.resources.spill_store_bytes, m.resources.spill_load_bytes,
                             m.resources.stack_frame_bytes, kMaxTunedLocalBytes);
      return m;
    }
    const BenchCheck check = bench.check(kernel);
    m.o_rel_error = check.error;
    if (!check.passed) {
      m.status = MeasurementStatus::incorrect;
      m.reason = "on " + bench.check_shape().describe() + ": " + check.summary;
      return m;
    }
    const std::string unwritten = bench.check_timed(kernel);
    if (!unwritten.empty()) {
      m.status = MeasurementStatus::incorrect;
      m.reason = unwritten + " on " + bench.shape().describe();
      return m;
    }
    const Timing timing = time_launches([&](int set, CUstream stream) { bench.launch(kernel, set, stream); },
                                        bench.input_sets(), nullptr, timing_options);
    m.time_ms = timing.median_ms;
    m.spread_ms = timing.p90_ms - timing.p10_ms;
    if (timing_options.give_up_above_ms > 0 && timing.runs <= std::max(1, timing_options.warmup))
      m.reason = fmt::format("timed on its warm-up only: {:.3f} ms per run, over {:.3f} ms", timing.median_ms,
                             timing_options.give_up_above_ms);
    m.tflops = bench.shape().flops() / (timing.median_ms * 1e-3) / 1e12;
  } catch (const Error& error) {
    m.status = MeasurementStatus::launch_failed;
    m.reason = first_line(error.what());
  }
  return m;
}

TuningRecord tune(const ProblemShape& shape, Cache* cache, const TuneOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const CUcontext context = driver::current_context();
  const ContextDevice& device = context_device(context);
  if (!device.arch)
    throw Error(Stage::Tune, "tune", fmt::format("no kernels for compute capability {}.{}", device.info.cc_major,
                                                 device.info.cc_minor));
  const ProblemClass problem = ProblemClass::of(shape);
  auto report = [&](const char* phase, int done, int total, std::string detail) {
    if (options.progress) options.progress(TuneProgress{phase, done, total, std::move(detail)});
  };

  TuningRecord record;
  const DeviceFingerprint fingerprint = current_device_fingerprint();
  record.device_key = fingerprint.key();
  record.problem_key = problem.key();
  record.tuning_key = tuning_key(fingerprint, problem);
  record.space_hash = search_space_hash(problem, *device.arch);

  // 1. The space, with configs this device cannot run recorded as invalid.
  std::vector<TileConfig> to_compile;
  std::vector<Runnable> runnable;
  for (Candidate& candidate : enumerate_candidates(problem, *device.arch, device.info.max_smem_optin)) {
    if (!candidate.rejection.empty()) {
      record.measurements.push_back(measurement_of(candidate.config, MeasurementStatus::invalid, candidate.rejection));
      continue;
    }
    const std::string key = cubin_key(candidate.config);
    // A cached row that fails its checks is compiled again (and replaced when the tuning is stored).
    std::optional<CachedKernel> cached = cache ? find_usable_kernel(*cache, candidate.config) : std::nullopt;
    if (cached)
      runnable.push_back(Runnable{candidate.config, key, std::move(cached->cubin), cached->resources});
    else
      to_compile.push_back(candidate.config);
  }

  // 2. Compile the rest in parallel; measure_config() then drops those spilling over kMaxTunedLocalBytes.
  std::vector<CachedKernel> compiled_kernels;
  for (CompileOutcome& outcome : compile_all(to_compile, options.compile_threads, [&](const CompileProgress& p) {
         report("compile", p.done, p.total,
                fmt::format("{} {}", p.last->config.name(), p.last->kernel ? "ok" : "failed"));
       })) {
    if (!outcome.kernel) {
      record.measurements.push_back(
          measurement_of(outcome.config, MeasurementStatus::compile_failed, first_line(outcome.failure)));
      continue;
    }
    CachedKernel stored = cached_kernel_of(outcome.config, std::move(*outcome.kernel));
    runnable.push_back(Runnable{outcome.config, stored.cubin_key, stored.cubin, stored.resources});
    compiled_kernels.push_back(std::move(stored));
  }

  // 3. Check each against the reference, then time it over rotating inputs.
  const std::unique_ptr<ProblemBench> bench =
      make_problem_bench(shape, rotation_sets(shape, device.info.l2_cache_bytes));
  // A candidate already kGiveUpMargin times slower than the best so far over its warm-up is not timed further:
  // most of a class's candidates lose by more, and on the large classes their timed runs were most of the
  // tuning time.
  constexpr double kGiveUpMargin = 1.3;
  double best_ms = 0;
  int done = 0;
  for (Runnable& candidate : runnable) {
    ++done;
    TimingOptions timing = options.timing;
    if (best_ms > 0) timing.give_up_above_ms = kGiveUpMargin * best_ms;
    Measurement m = measure_config(candidate.config, candidate.cubin_key, candidate.cubin, candidate.resources,
                                   *bench, timing);
    if (m.status == MeasurementStatus::ok && (best_ms == 0 || m.time_ms < best_ms)) best_ms = m.time_ms;
    report("measure", done, static_cast<int>(runnable.size()),
           fmt::format("{} {}", candidate.config.name(),
                       m.status == MeasurementStatus::ok ? fmt::format("{:.3f} ms {:.0f} TFLOP/s", m.time_ms, m.tflops)
                                                         : std::string(measurement_status_name(m.status))));
    record.measurements.push_back(std::move(m));
  }

  // Cubins that came back from the driver's compute cache have no ptxas report: store the figures read
  // from the loaded functions instead.
  for (CachedKernel& kernel : compiled_kernels)
    for (const Measurement& m : record.measurements)
      if (m.cubin_key == kernel.cubin_key && !kernel.resources.known()) kernel.resources = m.resources;

  // 4. The winner: the fastest that passed.
  const Measurement* best = nullptr;
  for (const Measurement& m : record.measurements)
    if (m.status == MeasurementStatus::ok && (best == nullptr || m.time_ms < best->time_ms)) best = &m;
  if (best == nullptr) {
    std::string reasons;
    for (const Measurement& m : record.measurements)
      reasons += fmt::format("\n  {}: {} {}", m.config.name(), measurement_status_name(m.status), m.reason);
    throw Error(Stage::Tune, "tune", fmt::format("no candidate for {} compiled cleanly and passed the check:{}",
                                                 shape.describe(), reasons));
  }
  record.winner = best->config;
  record.winner_cubin_key = best->cubin_key;
  record.time_ms = best->time_ms;
  record.tflops = best->tflops;
  record.tune_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  if (cache) {
    try {
      cache->put_kernels(compiled_kernels);
      cache->put_tuning(record);
    } catch (const Error& error) {
      if (error.stage() != Stage::Cache || options.store_fault == nullptr) throw;
      *options.store_fault = error.what();
    }
  }
  return record;
}

}  // namespace fa2
