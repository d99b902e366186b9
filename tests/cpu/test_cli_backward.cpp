// fa2-tune with --pass and --deterministic, run as a process: the backward's source and resources from
// `emit`, backward (and both passes') kernels from `build`, and `list`/`show` telling the families apart.
// Tunings need a GPU to make, so the ones `list` and `show` read here are written through fa2::Cache.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "autotune/cache.hpp"
#include "autotune/problem_shape.hpp"
#include "codegen/tile_config.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace {

namespace fs = std::filesystem;

using fa2::test::contains;
using fa2::test::count;
using fa2::test::one_line;
using fa2::test::reported;
using fa2::test::run;
using fa2::test::Run;
using fa2::test::TempDir;
using fa2::test::values_of;

fa2::TileConfig backward_default(bool deterministic, fa2::Arch arch, int head_dim = 128) {
  return fa2::default_config(fa2::Family::bwd, head_dim, fa2::DType::bf16, false, arch, deterministic);
}

// The number on the report line of `emit --compile` that starts with `key`; -1 when absent.
int report_value(const std::string& output, const std::string& key) {
  const std::size_t at = output.find("\n" + key + " ");
  if (at == std::string::npos) return -1;
  return std::atoi(output.c_str() + output.find_first_of("0123456789", at + key.size() + 1));
}

// The line of `output` that starts with `start` (without its newline); "" when none does.
std::string line_starting(const std::string& output, const std::string& start) {
  const std::size_t at = ("\n" + output).find("\n" + start);
  return at == std::string::npos ? std::string() : output.substr(at, output.find('\n', at) - at);
}

// The grid of the build steps: one head dim, causal only, one seqlen, on sm_86 (whose smaller shared memory
// keeps the backward's space small): about 25 backward and 40 forward configs, a second or less each.
const char* const kGrid = " --arch sm_86 --head-dim 32 --causal on --seqlen 512";

// A tuning of `shape`'s class on a made-up device, won by `winner`, with one ok measurement per config of
// `measured` (the winner first): what `tune` would store, without a GPU.
fa2::TuningRecord make_tuning(const fa2::ProblemShape& shape, const fa2::TileConfig& winner,
                              const std::vector<fa2::TileConfig>& measured) {
  fa2::DeviceFingerprint device;
  device.name = "Test GPU";
  device.compute_capability = 86;
  device.sm_count = 84;
  device.driver_version = 13000;
  const fa2::ProblemClass problem = fa2::ProblemClass::of(shape);
  fa2::TuningRecord record;
  record.device_key = device.key();
  record.problem_key = problem.key();
  record.tuning_key = fa2::tuning_key(device, problem);
  record.winner = winner;
  record.winner_cubin_key = winner.name() + "@test";
  record.time_ms = 1.5;
  record.tflops = 100;
  record.tune_seconds = 10;
  record.space_hash = "0123456789abcdef";
  double time_ms = record.time_ms;
  for (const fa2::TileConfig& config : measured) {
    fa2::Measurement m;
    m.config = config;
    m.cubin_key = config.name() + "@test";
    m.time_ms = time_ms;
    m.tflops = 100 * record.time_ms / time_ms;
    m.resources.registers = 128;
    time_ms += 0.5;
    record.measurements.push_back(m);
  }
  return record;
}

}  // namespace

TEST_SUITE("cli backward") {

TEST_CASE("emit --pass bwd prints the backward module: the main kernel and its two helpers") {
  // On sm_80, where mma_sync is the backward's one scheme.
  const Run r = run("emit --pass bwd --head-dim 128 --arch sm_80");
  CHECK(r.status == 0);
  const std::string name = backward_default(false, fa2::Arch::sm_80).name();
  REQUIRE_MESSAGE(contains(name, "fa2_bwd_"), name);
  CHECK_MESSAGE(contains(r.output, "#include \"fa2/bwd/bwd_kernel.cuh\""), r.output);
  CHECK(!contains(r.output, "fa2/fwd/"));
  CHECK(count(r.output, "extern \"C\" __global__") == 3);
  CHECK(contains(r.output, "\n" + name + "(const fa2::BwdParams params)"));
  CHECK(contains(r.output, "\n" + name + "_pre(const fa2::BwdParams params)"));
  CHECK(contains(r.output, "\n" + name + "_post(const fa2::BwdParams params)"));
  CHECK(contains(r.output, "/*deterministic*/ false"));
}

TEST_CASE("emit --pass bwd --deterministic names every kernel _det_ and orders the dQ adds") {
  const Run r = run("emit --pass bwd --deterministic --head-dim 64 --arch sm_80");
  CHECK(r.status == 0);
  const std::string name = backward_default(true, fa2::Arch::sm_80, 64).name();
  REQUIRE_MESSAGE(contains(name, "_det_"), name);
  CHECK(contains(r.output, "\n" + name + "(const"));
  CHECK(contains(r.output, "\n" + name + "_pre(const"));
  CHECK(contains(r.output, "\n" + name + "_post(const"));
  CHECK(count(r.output, "_det_") == 3);
  CHECK(contains(r.output, "/*deterministic*/ true"));
}

TEST_CASE("emit --pass bwd --compile reports the main kernel's resources and names the helpers") {
  const Run r = run("emit --pass bwd --arch sm_80 --head-dim 64 --block-n 64 --compile");
  REQUIRE(r.status == 0);
  fa2::TileConfig config = backward_default(false, fa2::Arch::sm_80, 64);
  config.block_n = 64;
  CHECK_MESSAGE(contains(r.output, "kernel        " + config.name() + "\n"), r.output);
  CHECK(contains(r.output, "helpers       " + config.name() + "_pre, " + config.name() + "_post\n"));
  CHECK(contains(r.output, "dynamic smem  " + std::to_string(config.smem_bytes()) + " bytes"));
  CHECK(report_value(r.output, "threads") == config.threads());
  const int registers = report_value(r.output, "registers");
  CHECK(registers > 0);
  CHECK(registers <= 255);
  CHECK(!contains(r.output, "#include"));
}

TEST_CASE("emit: --deterministic without --pass bwd, and an unknown --pass, are bad command lines") {
  for (const std::string args : {"emit --deterministic", "emit --pass fwd --deterministic --compile",
                                 "check --deterministic", "bench --deterministic"}) {
    CAPTURE(args);
    const Run r = run(args);
    CHECK(r.status > 100);  // CLI11's code, given before anything compiles or looks for a GPU
    CHECK_MESSAGE(contains(r.output, "--deterministic: applies to the backward only: add --pass bwd"), r.output);
    CHECK_MESSAGE(one_line(r.output), r.output);
  }
  for (const std::string args : {"emit --pass bogus", "check --pass bogus", "bench --pass both"}) {
    CAPTURE(args);
    const Run r = run(args);
    CHECK(r.status > 100);
    CHECK_MESSAGE(contains(r.output, "unknown pass"), r.output);
    CHECK_MESSAGE(contains(r.output, "(expected fwd|bwd|kvc)"), r.output);
    CHECK_MESSAGE(one_line(r.output), r.output);
  }
  const Run tune = run("tune --pass bogus");
  CHECK(tune.status > 100);
  CHECK_MESSAGE(contains(tune.output, "unknown pass 'bogus' (expected fwd|bwd|kvc|both)"), tune.output);
}

TEST_CASE("build --pass bwd, then --pass both, then --pass bwd --deterministic; list and info by family") {
  TempDir dir;
  const std::string db = " --db '" + dir.file("k.db") + "'";

  // One case, steps in order: each build relies on what the one before stored.
  const Run bwd = run("build --pass bwd" + std::string(kGrid) + db);
  REQUIRE(bwd.status == 0);
  CHECK_MESSAGE(contains(bwd.output, "problems    1  (bwd 1)\n"), bwd.output);
  const int backward = reported(bwd.output, "candidates");
  CHECK(backward > 0);
  CHECK(reported(bwd.output, "compiled") == backward);
  CHECK(reported(bwd.output, "failed") == 0);
  int ordered = 0;  // the backward kernels with the deterministic dQ reduction
  {  // every kernel is a backward one, with the atomic or the ordered dQ reduction
    const Run r = run("list --kernels --json" + db);
    REQUIRE(r.status == 0);
    const std::vector<std::string> families = values_of(r.output, "family");
    CHECK(families.size() == static_cast<std::size_t>(backward));
    for (const std::string& family : families) CHECK(family == "bwd");
    for (const std::string& config : values_of(r.output, "config")) CHECK_MESSAGE(contains(config, "fa2_bwd_"), config);
    CHECK(values_of(r.output, "deterministic").size() == families.size());
    ordered = count(r.output, "\"deterministic\": true");
    CHECK(ordered > 0);
    CHECK(ordered < backward);
    CHECK(ordered + count(r.output, "\"deterministic\": false") == backward);
    CHECK(count(r.output, "_det_") == 2 * ordered);  // in the config name and the cubin key
    const Run text = run("list --kernels" + db);
    CHECK(text.status == 0);
    CHECK_MESSAGE(contains(text.output, "pass  cubin key"), text.output);
    CHECK(count(text.output, "\nbwd   fa2_bwd_") == backward);
  }

  const Run both = run("build --pass both" + std::string(kGrid) + db);
  REQUIRE(both.status == 0);
  CHECK_MESSAGE(contains(both.output, "problems    2  (fwd 1, bwd 1)\n"), both.output);
  CHECK(reported(both.output, "reused") == backward);  // the backward space is the one built above
  const int forward = reported(both.output, "compiled");
  CHECK(forward > 0);
  CHECK(reported(both.output, "candidates") == backward + forward);
  CHECK(reported(both.output, "failed") == 0);

  const int total = backward + forward;
  {  // list: both families, then each alone
    const Run all = run("list --kernels --json" + db);
    CHECK(count(all.output, "\"family\": \"fwd\"") == forward);
    CHECK(count(all.output, "\"family\": \"bwd\"") == backward);
    for (const auto& [pass, n] : {std::pair<std::string, int>{"fwd", forward}, {"bwd", backward}}) {
      CAPTURE(pass);
      const Run one = run("list --kernels --json --pass " + pass + db);
      REQUIRE(one.status == 0);
      const std::vector<std::string> families = values_of(one.output, "family");
      CHECK(families.size() == static_cast<std::size_t>(n));
      for (const std::string& family : families) CHECK(family == pass);
      const Run summary = run("list --pass " + pass + db);
      CHECK_MESSAGE(contains(summary.output, "no " + pass + " tunings\n"), summary.output);
      CHECK_MESSAGE(contains(summary.output, "kernels: " + std::to_string(n) + " (sm_86 " + std::to_string(n) +
                                                 "; " + pass + " " + std::to_string(n) + ")"),
                    summary.output);
    }
    const Run summary = run("list" + db);
    CHECK_MESSAGE(contains(summary.output, "kernels: " + std::to_string(total) + " (sm_86 " + std::to_string(total) +
                                               "; fwd " + std::to_string(forward) + ", bwd " +
                                               std::to_string(backward) + ")"),
                  summary.output);
    const Run info = run("info" + db);
    CHECK(reported(info.output, "kernels") == total);
    CHECK_MESSAGE(contains(info.output, "(fwd " + std::to_string(forward) + ", bwd " + std::to_string(backward) + ")"),
                  info.output);
  }

  // A class asking for determinism sweeps only the ordered reduction, which the first build compiled.
  const Run det = run("build --pass bwd --deterministic" + std::string(kGrid) + db);
  REQUIRE(det.status == 0);
  CHECK(reported(det.output, "candidates") == ordered);
  CHECK(reported(det.output, "reused") == ordered);
  CHECK(reported(det.output, "compiled") == 0);
}

TEST_CASE("list --pass and show --pass tell a forward tuning from the backward one of the same shape") {
  TempDir dir;
  const std::string path = dir.file("k.db");
  const std::string db = " --db '" + path + "'";
  fa2::ProblemShape shape;
  shape.head_dim = 64;
  shape.causal = true;
  shape.seqlen_q = shape.seqlen_k = 512;
  const fa2::TileConfig fwd_winner = fa2::default_config(64, fa2::DType::bf16, true, fa2::Arch::sm_86);
  fa2::ProblemShape backward = shape;
  backward.family = fa2::Family::bwd;
  // A class without the determinism request sweeps both dQ reductions; here the ordered one won.
  const fa2::TileConfig ordered = fa2::default_config(fa2::Family::bwd, 64, fa2::DType::bf16, true, fa2::Arch::sm_86,
                                                      /*deterministic=*/true);
  fa2::TileConfig atomics = ordered;
  atomics.deterministic = false;
  const std::string problem = fa2::ProblemClass::of(shape).key();
  const std::string backward_problem = fa2::ProblemClass::of(backward).key();
  REQUIRE(backward_problem == "bwd " + problem);
  {
    fa2::Cache cache = fa2::Cache::open(path);
    cache.put_tuning(make_tuning(shape, fwd_winner, {fwd_winner}));
    cache.put_tuning(make_tuning(backward, ordered, {ordered, atomics}));
  }

  {  // list: a pass column, and --pass keeps one family
    const Run all = run("list" + db);
    CHECK(all.status == 0);
    CHECK_MESSAGE(contains(all.output, "pass  problem"), all.output);
    CHECK(contains(all.output, "\nfwd   " + problem + " "));
    CHECK(contains(all.output, "\nbwd   " + backward_problem + " "));
    const Run bwd = run("list --pass bwd --json" + db);
    CHECK(values_of(bwd.output, "problem") == std::vector<std::string>{backward_problem});
    CHECK(values_of(bwd.output, "family") == std::vector<std::string>{"bwd"});
    CHECK(values_of(bwd.output, "deterministic") == std::vector<std::string>{"true"});  // the winner's
    const Run fwd = run("list --pass fwd --json" + db);
    CHECK(values_of(fwd.output, "problem") == std::vector<std::string>{problem});
    CHECK(values_of(fwd.output, "family") == std::vector<std::string>{"fwd"});
    CHECK(values_of(fwd.output, "deterministic") == std::vector<std::string>{"false"});
  }
  {  // the same problem key is the forward tuning by default and the backward one with --pass bwd
    const Run fwd = run("show '" + problem + "'" + db);
    CHECK(fwd.status == 0);
    CHECK_MESSAGE(contains(fwd.output, "pass     fwd\n"), fwd.output);
    CHECK(contains(fwd.output, "winner   " + fwd_winner.name()));
    CHECK(!contains(fwd.output, " dQ "));

    const Run bwd = run("show --pass bwd '" + problem + "'" + db);
    CHECK(bwd.status == 0);
    CHECK_MESSAGE(contains(bwd.output, "pass     bwd (winner's dQ reduction: ordered, reproducible)\n"), bwd.output);
    CHECK(contains(bwd.output, "winner   " + ordered.name()));
    CHECK(contains(line_starting(bwd.output, "config "), " dQ "));
    CHECK(contains(line_starting(bwd.output, ordered.name() + " "), " ordered "));
    CHECK(contains(line_starting(bwd.output, atomics.name() + " "), " atomics "));

    const Run full = run("show '" + backward_problem + "'" + db);  // a key naming its family needs no --pass
    CHECK(full.status == 0);
    CHECK(contains(full.output, "winner   " + ordered.name()));
  }
  {  // show --json: family and determinism of the winner and of each measurement
    const Run r = run("show --pass bwd --json '" + problem + "'" + db);
    REQUIRE(r.status == 0);
    CHECK(values_of(r.output, "family") == std::vector<std::string>{"bwd", "bwd", "bwd"});
    CHECK(values_of(r.output, "deterministic") == std::vector<std::string>{"true", "true", "false"});
    CHECK(values_of(r.output, "config") == std::vector<std::string>{ordered.name(), atomics.name()});
  }
  {  // --deterministic looks up the class that asks for it, which nothing tuned here
    const Run r = run("show --pass bwd --deterministic '" + problem + "'" + db);
    CHECK(r.status == 5);
    CHECK_MESSAGE(contains(r.output, "'" + backward_problem + " det' not found"), r.output);
    CHECK_MESSAGE(one_line(r.output), r.output);
  }
}

TEST_CASE("show --pass bwd finds nothing in an empty cache, or with no cache at all: exit 5") {
  TempDir dir;
  const std::string problem = "bf16 d128 causal gqa4 bshd q4096 k4096 bh128";
  const Run none = run("show --pass bwd '" + problem + "' --db '" + dir.file("none.db") + "'");
  CHECK(none.status == 5);
  CHECK_MESSAGE(contains(none.output, "tuning 'bwd " + problem + "' not found"), none.output);
  CHECK_MESSAGE(one_line(none.output), none.output);
  CHECK(!fs::exists(dir.file("none.db")));

  { fa2::Cache::open(dir.file("empty.db")); }
  const Run empty = run("show --pass bwd '" + problem + "' --db '" + dir.file("empty.db") + "'");
  CHECK(empty.status == 5);
  CHECK_MESSAGE(contains(empty.output, "tuning 'bwd " + problem + "' not found"), empty.output);
  CHECK_MESSAGE(one_line(empty.output), empty.output);
}

}  // TEST_SUITE
