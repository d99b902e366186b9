// fa2-tune's cache subcommands run as a process against a temporary cache: build, list, info, export,
// import, clear, show, and the one-line failures of bad flags and of GPU commands without a GPU.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "runtime/driver.hpp"
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

// A small grid: one head dim, causal only, one seqlen. About 40 configs at ~0.4 s each.
const char* const kBuild = "build --arch sm_80 --head-dim 64 --causal on --seqlen 512";

}  // namespace

TEST_SUITE("cli cache") {

TEST_CASE("build fills the cache, and list, info, export, import and clear see it") {
  TempDir dir;
  const std::string db = " --db '" + dir.file("k.db") + "'";

  const Run built = run(std::string(kBuild) + db);
  REQUIRE(built.status == 0);
  const int candidates = reported(built.output, "candidates");
  CHECK(candidates > 0);
  CHECK(reported(built.output, "compiled") == candidates);
  CHECK(reported(built.output, "failed") == 0);

  const Run listed = run("list --kernels --json" + db);
  REQUIRE(listed.status == 0);
  const int kernels = count(listed.output, "\"cubin_key\":");
  CHECK(kernels == candidates);
  const std::vector<std::string> archs = values_of(listed.output, "arch");
  const std::vector<std::string> configs = values_of(listed.output, "config");
  CHECK(archs.size() == static_cast<std::size_t>(kernels));
  CHECK(configs.size() == static_cast<std::size_t>(kernels));
  for (const std::string& arch : archs) CHECK(arch == "sm_80");
  for (const std::string& config : configs) CHECK_MESSAGE(contains(config, "_d64_"), config);
  const std::vector<std::string> families = values_of(listed.output, "family");
  CHECK(families.size() == static_cast<std::size_t>(kernels));
  for (const std::string& family : families) CHECK(family == "fwd");  // the default --pass
  CHECK(count(listed.output, "\"deterministic\": false") == kernels);
  CHECK(contains(listed.output, "\"tunings\": []"));

  // One case, steps in order (doctest re-runs a case per SUBCASE, and the build is the slow part).
  {  // a second identical build reuses everything
    const Run again = run(std::string(kBuild) + db);
    CHECK(again.status == 0);
    CHECK(reported(again.output, "reused") == candidates);
    CHECK(reported(again.output, "compiled") == 0);
  }
  {  // list prints a kernel summary per arch
    const Run r = run("list" + db);
    CHECK(r.status == 0);
    const std::string n = std::to_string(kernels);
    CHECK_MESSAGE(contains(r.output, "kernels: " + n + " (sm_80 " + n + "; fwd " + n + ")"), r.output);
  }
  {  // info shows the counts, the kernels' per family
    const Run r = run("info" + db);
    CHECK(r.status == 0);
    CHECK(reported(r.output, "kernels") == kernels);
    CHECK_MESSAGE(contains(r.output, "(fwd " + std::to_string(kernels) + ")"), r.output);
    CHECK(reported(r.output, "tunings") == 0);
    CHECK(contains(r.output, "nvrtc"));
  }
  {  // export then import into a second cache keeps every kernel; export never overwrites
    const std::string exported = dir.file("exported.db");
    const Run e = run("export '" + exported + "'" + db);
    CHECK(e.status == 0);
    CHECK(fs::exists(exported));
    const std::string db2 = " --db '" + dir.file("k2.db") + "'";
    const Run i = run("import '" + exported + "'" + db2);
    CHECK(i.status == 0);
    CHECK(contains(i.output, std::to_string(kernels) + " added"));
    const Run r = run("list --kernels --json" + db2);
    CHECK(count(r.output, "\"cubin_key\":") == kernels);

    const Run again = run("export '" + exported + "'" + db);
    CHECK(again.status != 0);
    CHECK_MESSAGE(contains(again.output, "exists"), again.output);
    CHECK_MESSAGE(one_line(again.output), again.output);
  }
  {  // show of an unknown key says it is not found
    const Run r = run("show nosuchkey" + db);
    CHECK(r.status != 0);
    CHECK_MESSAGE(contains(r.output, "not found"), r.output);
    CHECK_MESSAGE(one_line(r.output), r.output);
  }
  {  // clear needs --yes, and then empties the cache (last: the steps above need the kernels)
    const Run refused = run("clear" + db);
    CHECK(refused.status != 0);
    CHECK_MESSAGE(contains(refused.output, "--yes"), refused.output);
    CHECK_MESSAGE(one_line(refused.output), refused.output);
    CHECK(count(run("list --kernels --json" + db).output, "\"cubin_key\":") == kernels);

    const Run cleared = run("clear --yes" + db);
    CHECK(cleared.status == 0);
    CHECK(count(run("list --kernels --json" + db).output, "\"cubin_key\":") == 0);
  }
}

TEST_CASE("list of a cache that does not exist is empty and creates nothing") {
  TempDir dir;
  const std::string path = dir.file("none.db");
  const Run r = run("list --json --db '" + path + "'");
  CHECK(r.status == 0);
  CHECK(contains(r.output, "\"tunings\": []"));
  CHECK(contains(r.output, "\"kernels\": []"));
  CHECK(!fs::exists(path));
}

TEST_CASE("bad flags fail in one line naming the value") {
  TempDir dir;
  const std::string db = " --db '" + dir.file("k.db") + "'";
  for (const auto& [args, value] : {std::pair<std::string, std::string>{"build --arch sm_70", "sm_70"},
                                    {"tune --dtype fp32", "fp32"},
                                    {"build --arch sm_80 --head-dim 100", "100"},
                                    {"tune --causal maybe", "maybe"},
                                    {"tune --model nosuchmodel", "nosuchmodel"},
                                    {"check --policy sometimes", "sometimes"},
                                    {"tune --pass sideways", "fwd|bwd|kvc|both"},
                                    {"build --arch sm_80 --pass fwd --deterministic", "--pass bwd"},
                                    {"tune --deterministic", "--deterministic"},
                                    {"list --pass both", "fwd|bwd|kvc"},
                                    {"show --pass both somekey", "both"}}) {
    CAPTURE(args);
    const Run r = run(args + db);
    CHECK(r.status > 100);  // CLI11's own codes: a bad command line, not a failed command
    CHECK_MESSAGE(contains(r.output, value), r.output);
    CHECK_MESSAGE(one_line(r.output), r.output);
  }
  CHECK(!fs::exists(dir.file("k.db")));  // rejected before the cache was opened
}

TEST_CASE("tune and bench without a GPU fail in one line naming the driver") {
  if (fa2::driver::available()) {
    MESSAGE("a CUDA driver is available here: skipped (this checks the no-driver path)");
    return;
  }
  TempDir dir;
  // The pass flags parse (both passes, a deterministic backward) and the GPU is what is missing.
  for (const std::string args : {"tune --head-dim 64 --causal on --seqlen 512", "bench --head-dim 64",
                                 "tune --pass both --deterministic --head-dim 64 --causal on --seqlen 512",
                                 "bench --pass bwd --deterministic --head-dim 64"}) {
    CAPTURE(args);
    const Run r = run(args + " --db '" + dir.file("k.db") + "'");
    CHECK(r.status == 4);
    CHECK_MESSAGE(contains(r.output, "libcuda.so.1"), r.output);
    CHECK_MESSAGE(one_line(r.output), r.output);
  }
}

}  // TEST_SUITE
