#include "autotune/builder.hpp"

#include <fmt/format.h>

#include <set>

#include "autotune/kernel_store.hpp"
#include "autotune/search_space.hpp"

namespace fa2 {

BuildReport build_kernels(const std::vector<ProblemClass>& problems, Arch arch, Cache& cache, int threads,
                          const std::function<void(const CompileProgress&)>& progress) {
  BuildReport report;
  std::set<std::string> seen;
  std::vector<TileConfig> to_compile;
  for (const ProblemClass& problem : problems)
    for (const TileConfig& config : buildable_configs(problem, arch)) {
      if (!seen.insert(config.name()).second) continue;
      ++report.candidates;
      if (cache.find_kernel(cubin_key(config)))
        ++report.reused;
      else
        to_compile.push_back(config);
    }

  std::vector<CachedKernel> compiled;
  for (CompileOutcome& outcome : compile_all(to_compile, threads, progress)) {
    if (!outcome.kernel) {
      ++report.failed;
      report.failures.push_back(outcome.config.name() + ": " + outcome.failure.substr(0, outcome.failure.find('\n')));
      continue;
    }
    ++report.compiled;
    if (outcome.kernel->resources.spills()) ++report.spilling;
    compiled.push_back(cached_kernel_of(outcome.config, std::move(*outcome.kernel)));
  }
  cache.put_kernels(compiled);  // one transaction: a build killed midway stores nothing half-done
  return report;
}

}  // namespace fa2
