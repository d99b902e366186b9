#include "autotune/builder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <thread>

#include <unistd.h>

#include "autotune/kernel_store.hpp"
#include "autotune/search_space.hpp"
#include "autotune/tuner.hpp"

namespace fa2 {

namespace {

// Compiles run outside any transaction and each batch is written in one short transaction, so that
// (a) a build killed midway keeps every batch it finished, and (b) concurrent builders on one file
// hold the write lock for milliseconds, well inside the busy timeout. A batch of a few per thread
// keeps the threads busy between writes.
int batch_size(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(8, 4 * threads);
}

}  // namespace

BuildReport build_kernels(const std::vector<ProblemClass>& problems, Arch arch, Cache& cache, int threads,
                          const std::function<void(const CompileProgress&)>& progress) {
  BuildReport report;
  std::set<std::string> seen;
  std::vector<TileConfig> missing;
  for (const ProblemClass& problem : problems)
    for (const TileConfig& config : buildable_configs(problem, arch)) {
      if (!seen.insert(config.name()).second) continue;
      ++report.candidates;
      if (cache.find_kernel(cubin_key(config)))
        ++report.reused;
      else
        missing.push_back(config);
    }

  const int total = static_cast<int>(missing.size());
  const std::size_t batch = static_cast<std::size_t>(batch_size(threads));
  // Builders of one grid started together would compile the same batch at the same time; starting at a
  // batch picked by the process id spreads them over the grid, and the look-up before each batch then
  // skips what the others stored.
  const std::size_t batches = (missing.size() + batch - 1) / batch;
  if (batches > 1)
    std::rotate(missing.begin(), missing.begin() + static_cast<std::ptrdiff_t>(batch * (::getpid() % batches)),
                missing.end());
  int done = 0;
  for (std::size_t begin = 0; begin < missing.size(); begin += batch) {
    // Another builder on the same file may have stored some of these since: looked up again, not compiled.
    std::vector<TileConfig> to_compile;
    for (std::size_t i = begin; i < std::min(missing.size(), begin + batch); ++i) {
      if (cache.find_kernel(cubin_key(missing[i]))) {
        ++report.reused;
        ++done;
      } else {
        to_compile.push_back(missing[i]);
      }
    }
    const int done_before = done;
    std::vector<CachedKernel> compiled;
    for (CompileOutcome& outcome : compile_all(to_compile, threads, [&](const CompileProgress& p) {
           if (progress) progress(CompileProgress{done_before + p.done, total, p.last});
         })) {
      ++done;
      if (!outcome.kernel) {
        ++report.failed;
        report.failures.push_back(outcome.config.name() + ": " + outcome.failure.substr(0, outcome.failure.find('\n')));
        continue;
      }
      ++report.compiled;
      if (!within_tuned_spill_limit(outcome.kernel->resources)) ++report.spilling;
      compiled.push_back(cached_kernel_of(outcome.config, std::move(*outcome.kernel)));
    }
    if (!compiled.empty()) cache.put_kernels(compiled);
  }
  return report;
}

}  // namespace fa2
