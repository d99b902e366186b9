// Tuning end to end on the GPU: tune-on-first-use stores a tuning that a second process loads without
// compiling, cache-only misses fail with the command that fills them, threads tune a class once; the timing's
// give-up bound.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <array>
#include <filesystem>
#include <string>
#include <thread>

#include "autotune/benchmark.hpp"
#include "autotune/cache.hpp"
#include "api/checks.hpp"
#include "autotune/problem_buffers.hpp"
#include "autotune/tuner.hpp"
#include "codegen/emit.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "fa2jit/fa2jit.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace {

namespace fs = std::filesystem;
using fa2::test::TempDir;

fa2::ProblemShape small_shape(int head_dim, bool causal, int seqlen_q, int seqlen_k) {
  fa2::ProblemShape shape;
  shape.head_dim = head_dim;
  shape.causal = causal;
  shape.batch = 1;
  shape.heads_q = 8;
  shape.heads_kv = 2;
  shape.seqlen_q = seqlen_q;
  shape.seqlen_k = seqlen_k;
  return shape;
}

}  // namespace

TEST_CASE("on-first-use tunes once and stores; a second process loads it and compiles nothing") {
  TempDir dir;
  const std::string db = dir.file("kernels.db");
  fa2::CheckSpec spec;
  spec.shape = small_shape(64, true, 300, 300);
  spec.policy = fa2::TunePolicy::on_first_use;
  spec.cache_path = db;

  const fa2::RuntimeStats before = fa2::runtime_stats();
  const fa2::ForwardCheckResult first = fa2::run_forward_check(spec);
  const fa2::RuntimeStats after = fa2::runtime_stats();
  INFO(first.kernel_name, " ", first.comparison.summary());
  CHECK(first.passed);
  CHECK(after.tunings == before.tunings + 1);

  // The stored tuning: every candidate measured, the winner the fastest that passed.
  fa2::Cache cache = fa2::Cache::open(db);
  const std::vector<fa2::TuningRecord> tunings = cache.list_tunings();
  REQUIRE(tunings.size() == 1);
  const auto record = cache.find_tuning(tunings[0].tuning_key, true);
  REQUIRE(record.has_value());
  CHECK(record->winner.name() == first.kernel_name);
  int ok = 0;
  for (const fa2::Measurement& m : record->measurements) {
    if (m.status != fa2::MeasurementStatus::ok) continue;
    ++ok;
    CHECK(m.time_ms >= record->time_ms);
    CHECK(m.o_rel_error <= fa2::o_tolerance(spec.shape.dtype));
  }
  CHECK(ok >= 2);
  CHECK(cache.find_kernel(record->winner_cubin_key).has_value());

  // A fresh process with FA2JIT_TUNE=cache-only finds the tuning and the cubin: nothing compiles.
  const fa2::test::Run second = fa2::test::run(fmt::format(
      "--db '{}' check --policy cache-only --head-dim 64 --causal --batch 1 --heads 8 --heads-kv 2 "
      "--seqlen-q 300 --seqlen-k 300",
      db));
  CHECK(second.status == 0);
  CHECK(second.output.find(first.kernel_name) != std::string::npos);
  CHECK(second.output.find("compiled 0,") != std::string::npos);
  CHECK(second.output.find("tuned 0") != std::string::npos);
  CHECK(second.output.find("cubins from cache 1") != std::string::npos);
}

TEST_CASE("cache-only with no tuning is an error that names the fa2-tune command") {
  TempDir dir;
  fa2::CheckSpec spec;
  spec.shape = small_shape(128, false, 200, 333);
  spec.policy = fa2::TunePolicy::cache_only;
  spec.cache_path = dir.file("empty.db");
  try {
    fa2::run_forward_check(spec);
    FAIL("cache-only with an empty cache did not throw");
  } catch (const fa2::Error& error) {
    const std::string message = error.what();
    INFO(message);
    CHECK(error.stage() == fa2::Stage::Cache);
    CHECK(message.find("fa2-tune tune --pass fwd --head-dim 128") != std::string::npos);
    CHECK(message.find("bf16 d128 full gqa4") != std::string::npos);
  }
}

TEST_CASE("threads that meet the same new problem class tune it once") {
  TempDir dir;
  fa2::ProblemBuffers buffers(small_shape(96, false, 257, 257));
  fa2::FwdArgs args = buffers.args();
  args.tune_policy = fa2::TunePolicy::on_first_use;
  args.cache_path = dir.file("threads.db");

  const fa2::RuntimeStats before = fa2::runtime_stats();
  std::array<std::string, 4> names;
  std::array<std::thread, 4> threads;
  for (std::size_t t = 0; t < threads.size(); ++t)
    threads[t] = std::thread([&, t] { names[t] = fa2::forward_config(args).name(); });
  for (std::thread& thread : threads) thread.join();
  const fa2::RuntimeStats after = fa2::runtime_stats();
  CHECK(after.tunings == before.tunings + 1);
  CHECK(after.resolutions == before.resolutions + 1);
  for (const std::string& name : names) CHECK(name == names[0]);
}

TEST_CASE("the heuristic policy neither tunes nor touches the cache") {
  TempDir dir;
  fa2::CheckSpec spec;
  spec.shape = small_shape(160, true, 100, 50);
  spec.policy = fa2::TunePolicy::heuristic;
  spec.cache_path = dir.file("untouched.db");
  const fa2::RuntimeStats before = fa2::runtime_stats();
  CHECK(fa2::run_forward_check(spec).passed);
  CHECK(fa2::runtime_stats().tunings == before.tunings);
  CHECK_FALSE(fs::exists(spec.cache_path));
}

TEST_CASE("a cached cubin the driver refuses is never used: it is compiled again and replaced") {
  TempDir dir;
  const std::string db = dir.file("kernels.db");
  fa2::CheckSpec spec;
  spec.shape = small_shape(64, false, 200, 200);
  spec.policy = fa2::TunePolicy::on_first_use;
  spec.cache_path = db;
  REQUIRE(fa2::run_forward_check(spec).passed);

  // Store, under the winner's own key, a cubin built for sm_80: a well-formed ELF with the right kernel
  // name that an sm_90 device cannot load.
  std::string winner_key;
  {
    fa2::Cache cache = fa2::Cache::open(db);
    const auto record = cache.find_tuning(cache.list_tunings().at(0).tuning_key);
    REQUIRE(record.has_value());
    fa2::CachedKernel row = *cache.find_kernel(record->winner_cubin_key);
    // The winner may be a wgmma config, which has no sm_80 build: compile sm_80's default under its name.
    const fa2::TileConfig sm80 = fa2::default_config(64, fa2::DType::bf16, false, fa2::Arch::sm_80);
    std::string source = fa2::emit(sm80);
    source.replace(source.find(sm80.name()), sm80.name().size(), row.config.name());
    const fa2::CompiledKernel foreign = fa2::compile_source(source, row.config.name(), fa2::Arch::sm_80);
    REQUIRE(foreign.cubin != row.cubin);
    row.cubin = foreign.cubin;
    cache.put_kernels({row});
    winner_key = record->winner_cubin_key;
  }

  const fa2::test::Run second = fa2::test::run(fmt::format(
      "--db '{}' check --policy cache-only --head-dim 64 --batch 1 --heads 8 --heads-kv 2 --seqlen-q 200 "
      "--seqlen-k 200",
      db));
  CHECK(second.status == 0);
  CHECK(second.output.find("PASS") != std::string::npos);
  CHECK(second.output.find("cubins rejected 1") != std::string::npos);
  CHECK(second.output.find("compiled 1,") != std::string::npos);

  // The row now holds a cubin this device loads: a third process takes it from the cache.
  const fa2::test::Run third = fa2::test::run(fmt::format(
      "--db '{}' check --policy cache-only --head-dim 64 --batch 1 --heads 8 --heads-kv 2 --seqlen-q 200 "
      "--seqlen-k 200",
      db));
  CHECK(third.status == 0);
  CHECK(third.output.find("compiled 0,") != std::string::npos);
  CHECK(third.output.find("cubins rejected 0") != std::string::npos);
}

TEST_CASE("a class resolved from one cache is resolved again for another cache") {
  TempDir dir;
  fa2::CheckSpec spec;
  spec.shape = small_shape(32, true, 120, 120);
  spec.policy = fa2::TunePolicy::on_first_use;
  spec.cache_path = dir.file("first.db");
  REQUIRE(fa2::run_forward_check(spec).passed);

  // Same process, same problem class, another (empty) cache: cache-only must not be served from the first.
  spec.policy = fa2::TunePolicy::cache_only;
  CHECK(fa2::run_forward_check(spec).passed);  // the first cache still answers
  spec.cache_path = dir.file("second.db");
  CHECK_THROWS_AS(fa2::run_forward_check(spec), fa2::Error);
}

TEST_CASE("a candidate slower than the give-up bound is timed on its warm-up only, the others fully") {
  // The launch is a device memset of 64 MiB (tens of microseconds): any bound below that gives up.
  fa2::DeviceBuffer buffer(64ull << 20);
  // On the legacy default stream, where time_launches records its events when given no stream.
  const auto launch = [&](int, CUstream) {
    fa2::driver::check(fa2::driver::api().MemsetD8(buffer.address(), 0x5a, buffer.bytes()), "cuMemsetD8");
  };
  fa2::TimingOptions options;
  const fa2::Timing full = fa2::time_launches(launch, 1, nullptr, options);
  CHECK(full.runs >= options.min_repeats);
  options.give_up_above_ms = full.median_ms / 100;
  const fa2::Timing given_up = fa2::time_launches(launch, 1, nullptr, options);
  CHECK(given_up.runs == options.warmup);
  CHECK(given_up.median_ms > options.give_up_above_ms);
  options.give_up_above_ms = full.median_ms * 100;
  CHECK(fa2::time_launches(launch, 1, nullptr, options).runs >= options.min_repeats);
}
