#include "autotune/compile_pool.hpp"

#include <atomic>
#include <mutex>
#include <thread>

#include "codegen/emit.hpp"
#include "common/error.hpp"

namespace fa2 {

std::vector<CompileOutcome> compile_all(const std::vector<TileConfig>& configs, int threads,
                                        const std::function<void(const CompileProgress&)>& progress) {
  std::vector<CompileOutcome> outcomes(configs.size());
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min<int>(threads, static_cast<int>(configs.size()));

  std::atomic<std::size_t> next{0};
  std::mutex progress_mutex;
  int done = 0;
  auto worker = [&] {
    for (std::size_t i = next++; i < configs.size(); i = next++) {
      CompileOutcome& outcome = outcomes[i];
      outcome.config = configs[i];
      try {
        outcome.kernel = compile_source(emit(configs[i]), configs[i].name(), configs[i].arch);
      } catch (const std::exception& error) {
        outcome.failure = error.what();
      }
      std::lock_guard<std::mutex> lock(progress_mutex);
      ++done;
      if (progress) progress(CompileProgress{done, static_cast<int>(configs.size()), &outcome});
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& thread : pool) thread.join();
  return outcomes;
}

}  // namespace fa2
