#include "autotune/benchmark.hpp"

#include <algorithm>
#include <vector>

#include "runtime/driver.hpp"

namespace fa2 {

namespace {

class Event {
 public:
  Event() { driver::check(driver::api().EventCreate(&event_, CU_EVENT_DEFAULT), "cuEventCreate"); }
  ~Event() { driver::api().EventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  CUevent get() const { return event_; }

 private:
  CUevent event_ = nullptr;
};

double percentile(const std::vector<double>& sorted, double fraction) {
  const std::size_t index = static_cast<std::size_t>(fraction * (sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace

Timing time_launches(const std::function<void(int set, CUstream stream)>& launch, int sets, CUstream stream,
                     const TimingOptions& options) {
  const driver::Api& cu = driver::api();
  Event warm_start, warm_end;
  driver::check(cu.EventRecord(warm_start.get(), stream), "cuEventRecord");
  const int warmup = std::max(1, options.warmup);
  for (int i = 0; i < warmup; ++i) launch(i % sets, stream);
  driver::check(cu.EventRecord(warm_end.get(), stream), "cuEventRecord");
  driver::check(cu.EventSynchronize(warm_end.get()), "cuEventSynchronize");
  float warm_ms = 0;
  driver::check(cu.EventElapsedTime(&warm_ms, warm_start.get(), warm_end.get()), "cuEventElapsedTime");
  const double per_run_ms = std::max(1e-3, static_cast<double>(warm_ms) / warmup);
  if (options.give_up_above_ms > 0 && per_run_ms > options.give_up_above_ms)
    return Timing{per_run_ms, per_run_ms, per_run_ms, warmup};

  const int affordable = static_cast<int>(options.target_ms / per_run_ms);
  const int repeats = std::max(1, std::min(options.repeats, std::max(options.min_repeats, affordable)));
  std::vector<Event> starts(repeats), ends(repeats);
  for (int i = 0; i < repeats; ++i) {
    driver::check(cu.EventRecord(starts[i].get(), stream), "cuEventRecord");
    launch(i % sets, stream);
    driver::check(cu.EventRecord(ends[i].get(), stream), "cuEventRecord");
  }
  driver::check(cu.EventSynchronize(ends.back().get()), "cuEventSynchronize");

  std::vector<double> times(repeats);
  for (int i = 0; i < repeats; ++i) {
    float ms = 0;
    driver::check(cu.EventElapsedTime(&ms, starts[i].get(), ends[i].get()), "cuEventElapsedTime");
    times[i] = ms;
  }
  std::sort(times.begin(), times.end());
  return Timing{percentile(times, 0.5), percentile(times, 0.1), percentile(times, 0.9), repeats};
}

int rotation_sets(const ProblemShape& shape, long long l2_bytes) {
  // 16-bit inputs: Q, K, V; the backward also reads O and dO (query-sized) and the LSE.
  const long long query_tensors = shape.family == Family::bwd ? 3 : 1;
  const long long set_bytes =
      2ll * shape.head_dim *
      (query_tensors * shape.batch * shape.seqlen_q * shape.heads_q + 2ll * shape.batch * shape.seqlen_k * shape.heads_kv);
  const long long sets = (2 * l2_bytes + set_bytes - 1) / std::max(1ll, set_bytes);
  return static_cast<int>(std::clamp(sets, 1ll, 8ll));
}

}  // namespace fa2
