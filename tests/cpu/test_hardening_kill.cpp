// A `fa2-tune build` killed with SIGKILL, twice, mid-compile: the cache file stays consistent (SQLite
// rolls back or ignores what was not committed), keeps the batches the killed runs finished, and the
// next run compiles only the rest; a run after that compiles nothing.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/cpu/test_hardening_support.hpp"

namespace {

using fa2::test::Child;
using fa2::test::integrity;
using fa2::test::reported;
using fa2::test::row_count;
using fa2::test::TempDir;

std::vector<std::string> build_args(const std::string& db) {
  return {"build", "--arch", "sm_80", "--head-dim", "64", "--causal", "on", "--seqlen", "512", "--db", db};
}

// Starts a build, kills it after `after`, and returns how many kernels the file then holds.
int killed_build(const TempDir& dir, const std::string& db, std::chrono::milliseconds after) {
  Child child(build_args(db), dir.file("killed.log"));
  std::this_thread::sleep_for(after);
  child.kill9();
  const int status = child.wait(std::chrono::seconds(10));
  REQUIRE_MESSAGE(fa2::test::killed_by(status, SIGKILL), "the build ended before it was killed: ", child.output());
  CHECK(integrity(db) == "ok");
  const int rows = row_count(db, "kernels");
  MESSAGE("killed after ", after.count(), " ms: ", rows, " kernels stored");
  return rows;
}

}  // namespace

TEST_SUITE("hardening_kill") {

TEST_CASE("SIGKILL during build leaves a consistent cache and the next run finishes the job") {
  TempDir dir;
  const std::string db = dir.file("kernels.db");
  // Batches commit one at a time: how many a killed run finished depends on the machine, so the counts
  // are only checked against each other.
  const int first = killed_build(dir, db, std::chrono::milliseconds(1500));
  const int second = killed_build(dir, db, std::chrono::milliseconds(3500));
  CHECK(second >= first);

  Child finish(build_args(db), dir.file("finish.log"));
  const int status = finish.wait(std::chrono::seconds(120));
  const std::string output = finish.output();
  MESSAGE(output);
  REQUIRE(fa2::test::exited_with(status, 0));
  const int candidates = reported(output, "candidates");
  CHECK(candidates > 0);
  CHECK(reported(output, "reused") == second);  // what the killed runs stored is whole, and used
  CHECK(reported(output, "compiled") + reported(output, "reused") == candidates);
  CHECK(reported(output, "failed") == 0);
  CHECK(row_count(db, "kernels") == candidates);
  CHECK(integrity(db) == "ok");

  Child again(build_args(db), dir.file("again.log"));
  REQUIRE(fa2::test::exited_with(again.wait(std::chrono::seconds(60)), 0));
  CHECK(reported(again.output(), "compiled") == 0);
  CHECK(reported(again.output(), "reused") == candidates);
}

}  // TEST_SUITE
