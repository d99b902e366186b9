// fa2-tune build: compile the search space of a problem grid (forward, backward or both passes) for one
// arch and store the cubins in the cache. Needs no GPU, so a cache can be filled on a build machine and
// shipped (export/import) to the GPU machines, where `tune` then only benchmarks.
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <string>

#include "autotune/builder.hpp"
#include "cli/commands.hpp"
#include "cli/grid.hpp"
#include "cli/progress.hpp"
#include "cli/support.hpp"
#include "common/error.hpp"

namespace fa2::cli {

Command setup_build(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<BuildOptions>();
  CLI::App* sub = app.add_subcommand(
      "build", "Compile a problem grid's candidate kernels for one arch into the cache (no GPU needed)");
  sub->add_option("--arch", options->arch, "Target architecture")
      ->check(parsed_by(parse_arch, "arch", "sm_80|sm_86|sm_89|sm_90a"))
      ->required();
  add_grid_options(*sub, options->grid);
  sub->add_option("--threads", options->threads, "Compile threads (default: one per core)")->check(positive_int());
  return {sub, [options, &global] { return run_build(*options, global); }};
}

int run_build(const BuildOptions& options, const GlobalOptions& global) {
  const auto arch = parse_arch(options.arch);
  if (!arch) throw Error(Stage::Argument, "", fmt::format("unknown arch '{}'", options.arch));
  std::vector<ProblemClass> problems;
  std::vector<Family> families;
  for (const ProblemShape& shape : grid_shapes(options.grid)) {
    problems.push_back(ProblemClass::of(shape));
    families.push_back(shape.family);
  }

  Cache cache = open_writable_cache(global, "build");
  BuildReport report;
  {
    ProgressDisplay progress(global.verbose);
    progress.start(fmt::format("build {}", options.arch));
    report = build_kernels(problems, *arch, cache, options.threads, [&progress](const CompileProgress& p) {
      const std::string detail = p.last == nullptr ? "" : p.last->config.name() + (p.last->kernel ? " ok" : " failed");
      progress.update("compile", p.done, p.total, detail);
    });
  }

  fmt::print("cache       {}\n", cache.path());
  fmt::print("problems    {}{}\n", problems.size(), problems.empty() ? "" : "  (" + family_counts(families) + ")");
  fmt::print("candidates  {}\n", report.candidates);
  fmt::print("reused      {}\n", report.reused);
  fmt::print("compiled    {}\n", report.compiled);
  fmt::print("failed      {}\n", report.failed);
  fmt::print("spilling    {}  (of those compiled, over the tuner's spill limit: stored, but not timed)\n",
             report.spilling);
  for (const std::string& failure : report.failures) fmt::print("  failed: {}\n", failure);
  if (report.failed > 0) {
    // Every candidate passed TileConfig::validate(), so a compile failure is a generator bug.
    fmt::print(stderr, "fa2-tune: {} of {} candidates failed to compile (listed above)\n", report.failed,
               report.candidates);
    return kError;
  }
  return kOk;
}

}  // namespace fa2::cli
