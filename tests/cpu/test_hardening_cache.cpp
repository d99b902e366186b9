// Cache faults: a cache path that is a directory, a text file, a truncated database, a full disk or a
// read-only file. The library reports each as fa2::Error(Stage::Cache) naming the path and never
// crashes; fa2-tune prints one line and exits non-zero; forward()'s resolution falls back to the
// built-in config (on-first-use) or throws (cache-only); a cached cubin that is damaged is rejected
// before the driver sees it. (test_cache.cpp covers the Cache API's own refusals.)
#include <doctest/doctest.h>

#include <elf.h>
#include <sys/resource.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>

#include "autotune/kernel_store.hpp"
#include "autotune/search_space.hpp"
#include "codegen/emit.hpp"
#include "common/error.hpp"
#include "api/kernel_memo.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "api/tune_resolution.hpp"
#include "tests/cpu/test_hardening_support.hpp"

namespace {

namespace fs = std::filesystem;
using fa2::Cache;
using fa2::CachedKernel;
using fa2::test::Child;
using fa2::test::contains;
using fa2::test::fake_kernel;
using fa2::test::integrity;
using fa2::test::one_line;
using fa2::test::raw_query;
using fa2::test::row_count;
using fa2::test::run;
using fa2::test::Run;
using fa2::test::TempDir;

// The message of the fa2::Error that `action` throws, checking its stage; "" (and a failure) if none.
std::string error_of(const std::function<void()>& action, fa2::Stage stage = fa2::Stage::Cache) {
  try {
    action();
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == stage);
    return error.what();
  }
  FAIL("expected a fa2::Error, none was thrown");
  return {};
}

// The one line of `output` that starts with "fa2-tune:" ("" and a failure when there is not exactly one):
// `info` prints what it knows of the driver and NVRTC before it reaches the cache.
std::string error_line(const std::string& output) {
  std::string found;
  int lines = 0;
  for (std::size_t at = 0; at < output.size();) {
    const std::size_t end = std::min(output.find('\n', at), output.size());
    if (output.compare(at, 9, "fa2-tune:") == 0) {
      found = output.substr(at, end - at);
      ++lines;
    }
    at = end + 1;
  }
  CHECK_MESSAGE(lines == 1, output);
  return found;
}

// Every way the CLI reads or writes a cache, each of which must fail in one line naming `path`.
void check_cli_refuses(const std::string& path, const std::string& expected) {
  for (const std::string command : {"build --arch sm_80 --head-dim 32 --causal on --seqlen 128", "list", "info",
                                    "list --kernels --json", "clear --yes"}) {
    CAPTURE(command);
    const Run r = run(command + " --db '" + path + "'");
    CHECK(r.status == 1);
    const std::string error = error_line(r.output);
    CHECK_MESSAGE(contains(error, path), r.output);
    CHECK_MESSAGE(contains(error, expected), r.output);
  }
}

// A database of `kernels` rows of 4 KiB fake cubins, checkpointed into the main file (no WAL left).
void write_database(const std::string& path, int kernels) {
  Cache cache = Cache::open(path);
  std::vector<CachedKernel> rows;
  for (int i = 0; i < kernels; ++i) rows.push_back(fake_kernel("k" + std::to_string(i), 4096));
  cache.put_kernels(rows);
}

fa2::ProblemShape small_shape() {
  fa2::ProblemShape shape;
  shape.head_dim = 64;
  shape.dtype = fa2::DType::bf16;
  shape.causal = true;
  shape.batch = 1;
  shape.heads_q = shape.heads_kv = 8;
  shape.seqlen_q = shape.seqlen_k = 512;
  return shape;
}

const fa2::Arch kArch = fa2::Arch::sm_80;

fa2::TuningRecord tuned(const fa2::TileConfig& winner) {
  fa2::TuningRecord record;
  record.tuning_key = "dev#problem";
  record.device_key = "dev";
  record.problem_key = "problem";
  record.winner = winner;
  record.winner_cubin_key = "k";
  record.time_ms = 1.0;
  record.space_hash = fa2::search_space_hash(fa2::ProblemClass::of(small_shape()), kArch);
  return record;
}

// A tune_now that must not run (the cache should have answered, or the call should have failed first).
fa2::TuningRecord no_tuning(Cache&, std::string*) {
  FAIL("tune_now ran");
  return {};
}


fa2::TileConfig builtin() {
  const fa2::ProblemShape shape = small_shape();
  return fa2::default_config(shape.head_dim, shape.dtype, shape.causal, kArch);
}

// A valid config of the shape's class that is not the built-in one, as a tuner would pick.
fa2::TileConfig tuned_winner() {
  fa2::TileConfig winner = builtin();
  winner.block_n = winner.block_n == 64 ? 32 : 64;
  winner.stages = winner.stages == 2 ? 1 : 2;
  REQUIRE_MESSAGE(!winner.validate(), winner.name());
  return winner;
}

}  // namespace

TEST_SUITE("hardening_cache") {

TEST_CASE("a directory as the cache: Cache::open and the CLI name the path") {
  TempDir dir;
  const std::string path = dir.file("a_directory.db");
  fs::create_directory(path);
  for (bool read_only : {false, true}) {
    CAPTURE(read_only);
    const std::string message = error_of([&] { Cache::open(path, read_only); });
    CHECK(contains(message, path));
    CHECK(contains(message, "is a directory, not a cache file"));
  }
  check_cli_refuses(path, "is a directory");
  CHECK(fs::is_directory(path));
  CHECK(fs::is_empty(path));
}

TEST_CASE("a cache of the previous schema: read commands migrate it in place instead of failing") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  write_database(path, 2);
  // What the release before blocks_per_sm wrote: no such columns, user_version 1.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  const int downgraded = sqlite3_exec(
      db,
      "ALTER TABLE kernels DROP COLUMN splits; ALTER TABLE tunings DROP COLUMN splits; "
      "ALTER TABLE measurements DROP COLUMN splits; "
      "ALTER TABLE kernels DROP COLUMN family; ALTER TABLE kernels DROP COLUMN deterministic; "
      "ALTER TABLE tunings DROP COLUMN family; ALTER TABLE tunings DROP COLUMN deterministic; "
      "ALTER TABLE measurements DROP COLUMN family; ALTER TABLE measurements DROP COLUMN deterministic; "
      "ALTER TABLE kernels DROP COLUMN blocks_per_sm; ALTER TABLE tunings DROP COLUMN blocks_per_sm; "
      "ALTER TABLE measurements DROP COLUMN blocks_per_sm; ALTER TABLE tunings DROP COLUMN space_hash; "
      "PRAGMA user_version = 1;",
      nullptr, nullptr, nullptr);
  sqlite3_close(db);
  REQUIRE(downgraded == SQLITE_OK);
  REQUIRE(raw_query(path, "PRAGMA user_version") == "1");
  const Run listed = run("list --kernels --json --db '" + path + "'");
  CHECK_MESSAGE(listed.status == 0, listed.output);
  CHECK_MESSAGE(contains(listed.output, "\"blocks_per_sm\": 1"), listed.output);
  CHECK(raw_query(path, "PRAGMA user_version") == std::to_string(fa2::Cache::kSchemaVersion));
  CHECK(row_count(path, "kernels") == 2);
  CHECK(integrity(path) == "ok");
}

TEST_CASE("a text file as the cache: the CLI names it, says what it is, and leaves it alone") {
  TempDir dir;
  const std::string path = dir.file("notes.db");
  const std::string text = "not a database\n" + std::string(5000, 'n');
  { std::ofstream(path) << text; }
  check_cli_refuses(path, "not a SQLite database");
  CHECK(fs::file_size(path) == text.size());
}

TEST_CASE("a truncated database: every read either works or throws a Cache error naming the path") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  write_database(path, 60);
  REQUIRE(integrity(path) == "ok");
  REQUIRE_FALSE(fs::exists(path + "-wal"));  // everything is in the main file, which we cut
  const auto full = fs::file_size(path);
  fs::resize_file(path, full / 3);
  CHECK(integrity(path) != "ok");  // the damage is real (SQLite reads the missing pages as corrupt)

  int failures = 0;
  auto attempt = [&](const char* what, const std::function<void()>& action) {
    CAPTURE(what);
    try {
      action();
    } catch (const fa2::Error& error) {
      ++failures;
      CHECK(error.stage() == fa2::Stage::Cache);
      CHECK_MESSAGE(contains(error.what(), path), error.what());
    }
  };
  std::optional<Cache> cache;
  attempt("open", [&] { cache = Cache::open(path); });
  if (cache) {
    attempt("info", [&] { cache->info(); });
    attempt("list_kernels", [&] { cache->list_kernels(); });
    for (int i = 0; i < 60; i += 7)
      attempt("find_kernel", [&] {
        // A row that reads back is whole: the cubin is all of what was written.
        if (const auto row = cache->find_kernel("k" + std::to_string(i))) CHECK(row->cubin == fake_kernel("k", 4096).cubin);
      });
    attempt("put_kernels", [&] { cache->put_kernels({fake_kernel("new")}); });
  }
  CHECK_MESSAGE(failures > 0, "nothing noticed that two thirds of the file are gone");

  // The CLI: one line, non-zero, naming the file (list reads every row).
  for (const std::string command : {"list --kernels", "info"}) {
    CAPTURE(command);
    const Run r = run(command + " --db '" + path + "'");
    CHECK(r.status == 1);
    CHECK_MESSAGE(contains(error_line(r.output), path), r.output);
  }
}

TEST_CASE("a full disk: the write throws a Cache error, and the file keeps what it had, intact") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  write_database(path, 3);
  const std::string message_file = dir.file("message");

  // In a child: RLIMIT_FSIZE makes every file (database, WAL) unable to grow past the limit, as a full
  // disk does; SIGXFSZ is ignored so that the write fails with EFBIG instead of killing the process.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 3;
    try {
      ::signal(SIGXFSZ, SIG_IGN);
      const rlimit limit{256 * 1024, 256 * 1024};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(4);
      Cache cache = Cache::open(path);
      try {
        cache.put_kernels({fake_kernel("small", 1024), fake_kernel("big", 4 << 20)});
        code = 1;  // the 4 MiB write fit under a 256 KiB limit: the limit did nothing
      } catch (const fa2::Error& error) {
        std::ofstream(message_file) << error.what();
        code = error.stage() == fa2::Stage::Cache ? 0 : 2;
      }
      cache.put_kernels({fake_kernel("after", 1024)});  // a small write after the failure still works
    } catch (...) {
      code = 5;
    }
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE_MESSAGE(WIFEXITED(status), "the child died of signal ", WTERMSIG(status));
  CHECK_MESSAGE(WEXITSTATUS(status) == 0, "child exit code ", WEXITSTATUS(status));
  std::ifstream in(message_file);
  const std::string message((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  MESSAGE("full disk: ", message);
  CHECK(contains(message, path));
  CHECK((contains(message, "full") || contains(message, "I/O")));

  CHECK(integrity(path) == "ok");
  Cache cache = Cache::open(path);
  for (const std::string key : {"k0", "k1", "k2", "after"}) CHECK_MESSAGE(cache.find_kernel(key), key);
  CHECK_FALSE(cache.find_kernel("big"));
  CHECK_FALSE(cache.find_kernel("small"));  // same transaction as the big one: all or nothing
}

TEST_CASE("a read-only file: fa2-tune build fails in one line, list and info still read it") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  write_database(path, 2);
  REQUIRE(::chmod(path.c_str(), 0444) == 0);
  const bool root = ::geteuid() == 0;  // root ignores the mode unless the child drops its capabilities

  auto cli = [&](const std::vector<std::string>& args) {
    std::vector<std::string> all = args;
    all.insert(all.end(), {"--db", path});
    Child child(all, dir.file("log"), root);
    const int status = child.wait(std::chrono::seconds(60));
    const std::string output = child.output();
    MESSAGE("fa2-tune ", args[0], " -> ", output);
    if (fa2::test::exited_with(status, 125)) return std::make_pair(-125, output);
    return std::make_pair(status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1, output);
  };
  const auto [built, build_output] =
      cli({"build", "--arch", "sm_80", "--head-dim", "32", "--causal", "on", "--seqlen", "128"});
  if (built == -125) {
    MESSAGE("skipped: running as root without CAP_SETPCAP, so a read-only file cannot be simulated");
    return;
  }
  CHECK(built == 1);
  CHECK_MESSAGE(contains(build_output, path), build_output);
  CHECK_MESSAGE(contains(build_output, "is read-only"), build_output);
  CHECK_MESSAGE(!contains(build_output, "compiled"), build_output);  // refused before any compile
  CHECK_MESSAGE(one_line(build_output), build_output);
  const auto [listed, list_output] = cli({"list", "--kernels", "--json"});
  CHECK_MESSAGE(listed == 0, list_output);
  CHECK_MESSAGE(contains(list_output, "\"k1\""), list_output);
  const auto [informed, info_output] = cli({"info"});
  CHECK_MESSAGE(informed == 0, info_output);
  CHECK_MESSAGE(fa2::test::reported(info_output, "kernels") == 2, info_output);
  ::chmod(path.c_str(), 0644);
  CHECK(integrity(path) == "ok");
  CHECK(fa2::test::row_count(path, "kernels") == 2);
}

TEST_CASE("forward's resolution: a broken cache falls back to the built-in config under on-first-use") {
  TempDir dir;
  const fa2::ProblemShape shape = small_shape();
  const std::string directory = dir.file("dir.db");
  fs::create_directory(directory);
  const std::string text = dir.file("text.db");
  { std::ofstream(text) << std::string(3000, 't'); }

  for (const std::string& path : {directory, text}) {
    CAPTURE(path);
    const fa2::TunedResolution resolved =
        fa2::resolve_tuned(fa2::TunePolicy::on_first_use, shape, kArch, "dev#problem", path, no_tuning);
    CHECK(resolved.config == builtin());
    CHECK_FALSE(resolved.cache.has_value());
    CHECK_FALSE(resolved.tuned);
    CHECK_MESSAGE(contains(resolved.cache_fault, path), resolved.cache_fault);
    CHECK_MESSAGE(contains(resolved.cache_fault, "built-in config " + builtin().name()), resolved.cache_fault);

    // cache-only promised the tuned winner: it throws instead.
    CHECK(contains(error_of([&] {
            fa2::resolve_tuned(fa2::TunePolicy::cache_only, shape, kArch, "dev#problem", path, no_tuning);
          }),
          path));
  }
}

TEST_CASE("forward's resolution: cached winner, miss, unusable winner, and a store that fails") {
  TempDir dir;
  const fa2::ProblemShape shape = small_shape();
  const std::string path = dir.file("kernels.db");
  const fa2::TileConfig winner = tuned_winner();

  SUBCASE("a cached winner is used, with the cache, and nothing is tuned") {
    Cache::open(path).put_tuning(tuned(winner));
    for (auto policy : {fa2::TunePolicy::on_first_use, fa2::TunePolicy::cache_only}) {
      const auto resolved = fa2::resolve_tuned(policy, shape, kArch, "dev#problem", path, no_tuning);
      CHECK(resolved.config == winner);
      CHECK(resolved.cache.has_value());
      CHECK(resolved.cache_fault.empty());
    }
  }
  SUBCASE("a stale tuning (another release's kernels or space) is tuned again; cache-only still uses it") {
    fa2::TuningRecord stale = tuned(winner);
    stale.space_hash = "";  // as read from a schema v1 file
    Cache::open(path).put_tuning(stale);
    const auto kept = fa2::resolve_tuned(fa2::TunePolicy::cache_only, shape, kArch, "dev#problem", path, no_tuning);
    CHECK(kept.config == winner);
    CHECK_FALSE(kept.tuned);
    fa2::TileConfig fresh = winner;
    fresh.block_n = winner.block_n == 64 ? 32 : 64;
    int tunings = 0;
    const auto resolved = fa2::resolve_tuned(fa2::TunePolicy::on_first_use, shape, kArch, "dev#problem", path,
                                             [&](Cache& cache, std::string*) {
                                               ++tunings;
                                               cache.put_tuning(tuned(fresh));
                                               return tuned(fresh);
                                             });
    CHECK(tunings == 1);
    CHECK(resolved.config == fresh);
    CHECK(resolved.cache_fault.empty());
    // Now current: found without tuning.
    CHECK(fa2::resolve_tuned(fa2::TunePolicy::on_first_use, shape, kArch, "dev#problem", path, no_tuning).config ==
          fresh);
  }
  SUBCASE("a miss tunes under on-first-use and throws, naming the fill command, under cache-only") {
    int tunings = 0;
    const auto resolved = fa2::resolve_tuned(fa2::TunePolicy::on_first_use, shape, kArch, "dev#problem", path,
                                             [&](Cache& cache, std::string*) {
                                               ++tunings;
                                               cache.put_tuning(tuned(winner));
                                               return tuned(winner);
                                             });
    CHECK(tunings == 1);
    CHECK(resolved.tuned);
    CHECK(resolved.config == winner);
    CHECK(resolved.cache_fault.empty());
    const std::string message = error_of([&] {
      fa2::resolve_tuned(fa2::TunePolicy::cache_only, shape, kArch, "dev#other", path, no_tuning);
    });
    CHECK(contains(message, "fa2-tune tune --pass fwd --head-dim 64"));
    CHECK(contains(message, path));
  }
  SUBCASE("a cached winner of another class is not run: tuned again, or refused by cache-only") {
    fa2::TileConfig wrong = winner;
    wrong.head_dim = 128;  // a d128 kernel on d64 data would read and write the wrong bytes
    Cache::open(path).put_tuning(tuned(wrong));
    const auto resolved = fa2::resolve_tuned(fa2::TunePolicy::on_first_use, shape, kArch, "dev#problem", path,
                                             [&](Cache& cache, std::string*) {
                                               cache.put_tuning(tuned(winner));
                                               return tuned(winner);
                                             });
    CHECK(resolved.tuned);
    CHECK(resolved.config == winner);
    CHECK_MESSAGE(contains(resolved.cache_fault, "not a fwd d64 bf16 causal kernel"), resolved.cache_fault);
    CHECK(Cache::open(path).find_tuning("dev#problem")->winner == winner);  // the bad row was replaced

    Cache::open(path).put_tuning(tuned(wrong));
    CHECK(contains(error_of([&] {
            fa2::resolve_tuned(fa2::TunePolicy::cache_only, shape, kArch, "dev#problem", path, no_tuning);
          }),
          "not usable"));
    fa2::TileConfig other_arch = winner;
    other_arch.arch = fa2::Arch::sm_90a;
    CHECK(contains(fa2::winner_mismatch(other_arch, shape, kArch), "needs sm_80"));
    fa2::TileConfig invalid = winner;
    invalid.warps = 3;
    CHECK(contains(fa2::winner_mismatch(invalid, shape, kArch), "invalid"));
    CHECK(fa2::winner_mismatch(winner, shape, kArch).empty());
  }
  SUBCASE("a tuning whose store fails keeps the tuned winner, without the cache, and says why") {
    const auto resolved = fa2::resolve_tuned(fa2::TunePolicy::on_first_use, shape, kArch, "dev#problem", path,
                                             [&](Cache&, std::string* store_fault) {
                                               *store_fault = "database or disk is full on " + path;
                                               return tuned(winner);
                                             });
    CHECK(resolved.tuned);
    CHECK(resolved.config == winner);
    CHECK_FALSE(resolved.cache.has_value());
    CHECK_MESSAGE(contains(resolved.cache_fault, "disk is full"), resolved.cache_fault);
    CHECK_MESSAGE(contains(resolved.cache_fault, "without storing"), resolved.cache_fault);
  }
  SUBCASE("a cache error during the tuning falls back; other errors pass through") {
    const auto resolved = fa2::resolve_tuned(fa2::TunePolicy::on_first_use, shape, kArch, "dev#problem", path,
                                             [&](Cache&, std::string*) -> fa2::TuningRecord {
                                               throw fa2::Error(fa2::Stage::Cache, "", "disk I/O error on " + path);
                                             });
    CHECK(resolved.config == builtin());
    CHECK(contains(resolved.cache_fault, "disk I/O error"));
    CHECK(contains(error_of(
                       [&] {
                         fa2::resolve_tuned(fa2::TunePolicy::on_first_use, shape, kArch, "dev#problem", path,
                                            [](Cache&, std::string*) -> fa2::TuningRecord {
                                              throw fa2::Error(fa2::Stage::Tune, "tune", "no candidate passed");
                                            });
                       },
                       fa2::Stage::Tune),
                   "no candidate"));
  }
}

TEST_CASE("a cached cubin that is damaged or not this build's is rejected before the driver sees it") {
  fa2::TileConfig config = fa2::default_config(32, fa2::DType::bf16, true, fa2::Arch::sm_80);
  const std::string key = fa2::cubin_key(config);
  fa2::CachedKernel good = fa2::cached_kernel_of(config, fa2::compile_source(fa2::emit(config), config.name(), config.arch));
  REQUIRE(fa2::cached_kernel_rejection(good, config, key).empty());

  auto rejected = [&](const std::function<void(CachedKernel&)>& damage) {
    CachedKernel row = good;
    damage(row);
    const std::string reason = fa2::cached_kernel_rejection(row, config, key);
    MESSAGE("rejected: ", reason);
    CHECK_FALSE(reason.empty());
    return reason;
  };
  CHECK(contains(rejected([](CachedKernel& r) { r.cubin.resize(r.cubin.size() / 2); }), "truncated"));
  CHECK(contains(rejected([](CachedKernel& r) { r.cubin.resize(40); }), "shorter than an ELF header"));
  CHECK(contains(rejected([](CachedKernel& r) { r.cubin.clear(); }), "0 bytes"));
  CHECK(contains(rejected([](CachedKernel& r) { r.cubin.assign(r.cubin.size(), 'x'); }), "not a 64-bit ELF"));
  CHECK(contains(rejected([](CachedKernel& r) { r.nvrtc_version = "11.0"; }), "NVRTC 11.0"));
  CHECK(contains(rejected([](CachedKernel& r) { r.template_hash = "0000"; }), "templates 0000"));
  CHECK(contains(rejected([](CachedKernel& r) { r.config.block_n = 16; }), "its row is for"));
  CHECK(contains(rejected([](CachedKernel& r) { r.cubin_key = "other"; }), "other"));
  // A section table pointing past the end (a header that survived, with its body cut).
  CHECK(contains(rejected([](CachedKernel& r) { r.cubin.resize(r.cubin.size() - 1); }), "truncated"));
  // A section whose body is said to lie past the end (its header damaged, the tables whole).
  CHECK(contains(rejected([](CachedKernel& r) {
          Elf64_Ehdr header;
          std::memcpy(&header, r.cubin.data(), sizeof(header));
          Elf64_Shdr section;
          char* last = r.cubin.data() + header.e_shoff + (header.e_shnum - 1) * sizeof(Elf64_Shdr);
          std::memcpy(&section, last, sizeof(section));
          section.sh_type = SHT_PROGBITS;
          section.sh_offset = r.cubin.size() - 4;
          section.sh_size = 64;
          std::memcpy(last, &section, sizeof(section));
        }),
        "section"));
}

}  // TEST_SUITE
