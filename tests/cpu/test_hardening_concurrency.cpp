// Many writers on one cache file: 8 `fa2-tune build` processes with overlapping grids (one of them
// killed with SIGKILL midway) and 4 threads of this process writing and reading rows of their own and
// shared ones, all at once. Every process that was not killed succeeds, no row is lost or duplicated,
// nobody sees "database is locked", and the file passes integrity_check; a killed writer leaves no
// lock behind (a follow-up build finishes).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/cpu/test_hardening_support.hpp"

namespace {

using fa2::Cache;
using fa2::test::Child;
using fa2::test::contains;
using fa2::test::fake_kernel;
using fa2::test::integrity;
using fa2::test::raw_query;
using fa2::test::reported;
using fa2::test::TempDir;

constexpr int kProcesses = 8;
constexpr int kKilled = 7;  // the one killed midway
constexpr int kThreads = 4;
constexpr int kRowsPerThread = 40;
constexpr int kSharedRows = 10;  // written by every thread: replaced, never duplicated

// d32 (the fastest to compile) with causal on, off or both and a different seqlen each: the grids
// overlap in their configs (the search space does not depend on the seqlen) but are not identical.
std::vector<std::string> build_args(int process, const std::string& db) {
  const char* causal[] = {"on", "off", "both"};
  return {"build", "--arch", "sm_80", "--head-dim", "32", "--causal", causal[process % 3],
          "--seqlen", std::to_string(128 * (process + 1)), "--threads", "1", "--db", db};
}

// Rows of this process's own threads: put one at a time (a transaction each), read back others' rows.
void thread_writer(const std::string& db, int thread, std::exception_ptr& failure) {
  try {
    Cache cache = Cache::open(db);
    for (int i = 0; i < kRowsPerThread; ++i) {
      cache.put_kernels({fake_kernel("thread" + std::to_string(thread) + "-" + std::to_string(i), 16 * 1024),
                         fake_kernel("shared-" + std::to_string(i % kSharedRows), 1024)});
      const auto mine = cache.find_kernel("thread" + std::to_string(thread) + "-" + std::to_string(i));
      if (!mine || mine->cubin.size() != 16 * 1024) throw std::runtime_error("a row just written reads back wrong");
      (void)cache.find_kernel("thread" + std::to_string((thread + 1) % kThreads) + "-" + std::to_string(i));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (...) {
    failure = std::current_exception();
  }
}

}  // namespace

TEST_SUITE("hardening_concurrency") {

TEST_CASE("8 builds and 4 threads on one cache file: nothing lost, nothing locked, no stale lock") {
  TempDir dir;
  const std::string db = dir.file("kernels.db");
  const auto started = std::chrono::steady_clock::now();

  std::vector<std::unique_ptr<Child>> builds;
  for (int p = 0; p < kProcesses; ++p)
    builds.push_back(std::make_unique<Child>(build_args(p, db), dir.file("build" + std::to_string(p) + ".log")));
  std::vector<std::exception_ptr> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(thread_writer, db, t, std::ref(failures[t]));

  std::this_thread::sleep_for(std::chrono::seconds(4));  // mid-run: the builds take several times this
  builds[kKilled]->kill9();

  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    if (!failures[t]) continue;
    try {
      std::rethrow_exception(failures[t]);
    } catch (const std::exception& error) {
      FAIL_CHECK("thread ", t, " failed: ", error.what());
    }
  }
  for (int p = 0; p < kProcesses; ++p) {
    CAPTURE(p);
    const int status = builds[p]->wait(std::chrono::seconds(150));
    const std::string output = builds[p]->output();
    CHECK_MESSAGE(!contains(output, "locked"), output);
    CHECK_MESSAGE(!contains(output, "busy"), output);
    if (p == kKilled) {
      CHECK_MESSAGE(fa2::test::killed_by(status, SIGKILL), "it finished before it was killed: ", output);
    } else {
      CHECK_MESSAGE(fa2::test::exited_with(status, 0), output);
      CHECK(reported(output, "compiled") + reported(output, "reused") == reported(output, "candidates"));
    }
  }
  MESSAGE("8 builds and 4 threads done in ",
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), " s");
  CHECK(integrity(db) == "ok");

  // The killed build's grid again, and the union of all grids: both finish (no lock was left behind),
  // and the file holds each distinct config exactly once (cubin_key is the primary key, so a count
  // equal to the candidates means none is missing).
  Child rerun(build_args(kKilled, db), dir.file("rerun.log"));
  CHECK_MESSAGE(fa2::test::exited_with(rerun.wait(std::chrono::seconds(120)), 0), rerun.output());
  Child all({"build", "--arch", "sm_80", "--head-dim", "32", "--causal", "both", "--seqlen", "128", "--db", db},
            dir.file("all.log"));
  REQUIRE_MESSAGE(fa2::test::exited_with(all.wait(std::chrono::seconds(120)), 0), all.output());
  const int candidates = reported(all.output(), "candidates");
  MESSAGE("distinct configs: ", candidates, "; compiled by the follow-up: ", reported(all.output(), "compiled"));
  CHECK(candidates > 0);
  CHECK(std::stoi(raw_query(db, "SELECT count(*) FROM kernels WHERE cubin_key LIKE 'fa2_fwd_%'")) == candidates);
  CHECK(std::stoi(raw_query(db, "SELECT count(*) FROM kernels WHERE cubin_key LIKE 'thread%'")) ==
        kThreads * kRowsPerThread);
  CHECK(std::stoi(raw_query(db, "SELECT count(*) FROM kernels WHERE cubin_key LIKE 'shared-%'")) == kSharedRows);
  CHECK(integrity(db) == "ok");
}

}  // TEST_SUITE
