// fa2-tune tune: tune every problem of a grid (or a model preset's shapes; forward, backward or both
// passes) on this GPU and store the winners in the cache, where forward() and backward() find them.
// Problems already tuned on this device (by this build's kernels and search space) are skipped unless
// --force, so an interrupted grid resumes where it stopped.
#include <fmt/core.h>

#include <memory>
#include <optional>
#include <string>

#include "autotune/search_space.hpp"
#include "autotune/tuner.hpp"
#include "cli/commands.hpp"
#include "cli/grid.hpp"
#include "cli/progress.hpp"
#include "cli/support.hpp"
#include "cli/table.hpp"
#include "common/error.hpp"

namespace fa2::cli {
namespace {

std::string ok_of_total(const TuningRecord& record) {
  int ok = 0;
  for (const Measurement& m : record.measurements) ok += m.status == MeasurementStatus::ok ? 1 : 0;
  return fmt::format("{}/{}", ok, record.measurements.size());
}

void add_row(Table& table, const TuningRecord& record, const char* source) {
  table.add({record.problem_key, record.winner.name(), fixed(record.time_ms, 3), fixed(record.tflops, 1),
             ok_of_total(record), fixed(record.tune_seconds, 1), source});
}

std::string summary(const TuningRecord& record) {
  return fmt::format("{}: {} {:.3f} ms {:.1f} TFLOP/s ({} ok, {:.1f} s)", record.problem_key, record.winner.name(),
                     record.time_ms, record.tflops, ok_of_total(record), record.tune_seconds);
}

}  // namespace

Command setup_tune(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<TuneCommandOptions>();
  const TimingOptions timing;
  options->warmup = timing.warmup;
  options->repeats = timing.repeats;
  CLI::App* sub = app.add_subcommand(
      "tune", "Tune a problem grid (or a model's shapes) on this GPU and store the winners in the cache");
  add_grid_options(*sub, options->grid);
  sub->add_option("--warmup", options->warmup, "Untimed runs before timing each candidate")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--repeats", options->repeats, "Timed runs per candidate (the median is kept)")
      ->check(positive_int())
      ->capture_default_str();
  sub->add_option("--threads", options->threads, "Compile threads (default: one per core)")->check(positive_int());
  sub->add_flag("--force", options->force, "Tune again problems this device already has a tuning for");
  return {sub, [options, &global] { return run_tune(*options, global); }};
}

int run_tune(const TuneCommandOptions& options, const GlobalOptions& global) {
  const std::vector<ProblemShape> shapes = grid_shapes(options.grid);  // bad flags fail before the GPU check
  if (!gpu_usable("tune")) return kGpuRequired;

  Cache cache = open_writable_cache(global, "tune");
  const DeviceFingerprint device = current_device_fingerprint();
  const std::optional<Arch> device_arch =
      arch_for_compute_capability(device.compute_capability / 10, device.compute_capability % 10);
  TuneOptions tune_options;
  tune_options.compile_threads = options.threads;
  tune_options.timing.warmup = options.warmup;
  tune_options.timing.repeats = options.repeats;

  Table table({"problem", "winner", ">ms", ">TFLOP/s", ">ok/total", ">tune s", "source"});
  int failed = 0;
  {
    ProgressDisplay progress(global.verbose);
    tune_options.progress = [&progress](const TuneProgress& p) { progress.update(p.phase, p.done, p.total, p.detail); };
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      const ProblemClass problem = ProblemClass::of(shapes[i]);
      const std::string label = fmt::format("[{}/{}] {}", i + 1, shapes.size(), problem.key());
      if (!options.force) {
        const auto cached = cache.find_tuning(tuning_key(device, problem), /*with_measurements=*/true);
        if (cached && device_arch && cached->space_hash == search_space_hash(problem, *device_arch)) {
          progress.line(label + ": already tuned (--force tunes it again)");
          add_row(table, *cached, "cached");
          continue;
        }
        if (cached && device_arch)
          progress.line(label + ": tuned by another fa2jit (other kernels or search space): tuning again");
      }
      progress.start(label);
      try {
        const TuningRecord record = tune(shapes[i], &cache, tune_options);
        progress.line(fmt::format("[{}/{}] {}", i + 1, shapes.size(), summary(record)));
        add_row(table, record, "tuned");
      } catch (const Error& error) {
        if (error.stage() != Stage::Tune) throw;  // driver or cache trouble would fail every problem alike
        // No candidate passed: the message's later lines list every candidate, worth it only with --verbose.
        progress.line(
            fmt::format("fa2-tune: {}: {}", problem.key(), global.verbose ? error.what() : first_line(error.what())));
        table.add({problem.key(), "-", "-", "-", "-", "-", "failed"});
        ++failed;
      }
    }
  }
  fmt::print("device: {}\n", device.key());
  table.print();
  if (failed > 0) {
    fmt::print(stderr, "fa2-tune: {} of {} problems found no working kernel\n", failed, shapes.size());
    return kError;
  }
  return kOk;
}

}  // namespace fa2::cli
