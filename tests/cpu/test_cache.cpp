// The SQLite kernel cache: round trips of every field, replacement, ordering, schema migration and
// refusal of foreign or newer files (left byte-for-byte untouched), import/export, all-or-nothing
// writes, default paths from the environment, and two writers on one file.
#include <doctest/doctest.h>

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "autotune/cache.hpp"
#include "common/error.hpp"

#include "tests/support/cache_fixtures.hpp"

using namespace fa2::cache_test;  // NOLINT: the fixtures are this suite's vocabulary
namespace fs = std::filesystem;

TEST_CASE("cache: kernel round trip keeps every field, including a 1 MB cubin with zero bytes") {
  TempDir dir;
  const std::string path = dir.file("nested/dir/kernels.db");  // open() creates the directories
  CachedKernel kernel = make_kernel("fa2_fwd_d96_fp16_m128n64w8s2_sm80@sm_80@nvrtc13.0@abc", 1, 1 << 20);
  kernel.created_at = "1999-01-01T00:00:00.000Z";  // the cache sets its own
  REQUIRE(std::count(kernel.cubin.begin(), kernel.cubin.end(), '\0') > 0);
  {
    Cache cache = Cache::open(path);
    cache.put_kernels({kernel});
  }
  const Cache cache = Cache::open(path, /*read_only=*/true);
  const auto found = cache.find_kernel(kernel.cubin_key);
  REQUIRE(found.has_value());
  CHECK(found->cubin_key == kernel.cubin_key);
  check_same_config(found->config, kernel.config);
  CHECK(found->nvrtc_version == kernel.nvrtc_version);
  CHECK(found->template_hash == kernel.template_hash);
  CHECK(found->cubin.size() == kernel.cubin.size());
  CHECK(found->cubin == kernel.cubin);
  check_same_resources(found->resources, kernel.resources);
  CHECK(found->compile_ms == kernel.compile_ms);
  CHECK(is_utc_millis(found->created_at));
  CHECK(found->created_at != kernel.created_at);
  CHECK(raw_text(path, "SELECT config_name FROM kernels") == kernel.config.name());
  check_integrity(path);
}

TEST_CASE("cache: tuning round trip with measurements of different statuses") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  Measurement incorrect = make_measurement(MeasurementStatus::incorrect, 3);
  incorrect.o_rel_error = std::numeric_limits<double>::quiet_NaN();  // a kernel that wrote NaN
  const TuningRecord record =
      make_tuning("dev#bf16 d128 causal", {make_measurement(MeasurementStatus::ok, 0),
                                           make_measurement(MeasurementStatus::compile_failed, 1), incorrect});
  Cache cache = Cache::open(path);
  cache.put_tuning(record);

  const auto without = cache.find_tuning(record.tuning_key);
  REQUIRE(without.has_value());
  CHECK(without->measurements.empty());

  const auto found = cache.find_tuning(record.tuning_key, /*with_measurements=*/true);
  REQUIRE(found.has_value());
  CHECK(found->tuning_key == record.tuning_key);
  CHECK(found->device_key == record.device_key);
  CHECK(found->problem_key == record.problem_key);
  check_same_config(found->winner, record.winner);
  CHECK(found->winner.blocks_per_sm == 2);
  CHECK(found->space_hash == record.space_hash);
  CHECK(found->winner_cubin_key == record.winner_cubin_key);
  CHECK(found->time_ms == record.time_ms);
  CHECK(found->tflops == record.tflops);
  CHECK(found->tune_seconds == record.tune_seconds);
  CHECK(is_utc_millis(found->created_at));
  REQUIRE(found->measurements.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    const Measurement& got = found->measurements[i];
    const Measurement& want = record.measurements[i];
    check_same_config(got.config, want.config);
    CHECK(got.cubin_key == want.cubin_key);
    CHECK(got.status == want.status);
    CHECK(got.time_ms == want.time_ms);
    CHECK(got.spread_ms == want.spread_ms);
    CHECK(got.tflops == want.tflops);
    CHECK(got.reason == want.reason);
    check_same_resources(got.resources, want.resources);
  }
  CHECK(found->measurements[0].o_rel_error == record.measurements[0].o_rel_error);
  CHECK(std::isnan(found->measurements[2].o_rel_error));
  CHECK(raw_text(path, "SELECT group_concat(status, ',') FROM measurements") == "ok,compile_failed,incorrect");
  check_integrity(path);
}

TEST_CASE("cache: measurement status names round trip") {
  for (MeasurementStatus status : {MeasurementStatus::ok, MeasurementStatus::invalid, MeasurementStatus::compile_failed,
                                   MeasurementStatus::spills, MeasurementStatus::launch_failed,
                                   MeasurementStatus::incorrect})
    CHECK(fa2::parse_measurement_status(fa2::measurement_status_name(status)) == status);
  CHECK_FALSE(fa2::parse_measurement_status("fast").has_value());
}

TEST_CASE("cache: find of a missing key is nullopt") {
  TempDir dir;
  Cache cache = Cache::open(dir.file("kernels.db"));
  cache.put_kernels({make_kernel("present")});
  cache.put_tuning(make_tuning("present"));
  CHECK_FALSE(cache.find_kernel("absent").has_value());
  CHECK_FALSE(cache.find_tuning("absent").has_value());
  CHECK_FALSE(cache.find_tuning("absent", true).has_value());
}

TEST_CASE("cache: put_tuning twice replaces the row and its measurements") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  Cache cache = Cache::open(path);
  cache.put_tuning(make_tuning("key", {make_measurement(MeasurementStatus::ok, 0),
                                       make_measurement(MeasurementStatus::spills, 1),
                                       make_measurement(MeasurementStatus::invalid, 2)}));
  TuningRecord second = make_tuning("key", {make_measurement(MeasurementStatus::launch_failed, 4),
                                            make_measurement(MeasurementStatus::ok, 5)});
  second.time_ms = 0.5;
  cache.put_tuning(second);
  const auto found = cache.find_tuning("key", true);
  REQUIRE(found.has_value());
  CHECK(found->time_ms == 0.5);
  REQUIRE(found->measurements.size() == 2);
  CHECK(found->measurements[0].status == MeasurementStatus::launch_failed);
  CHECK(found->measurements[1].status == MeasurementStatus::ok);
  const fa2::CacheInfo info = cache.info();
  CHECK(info.tunings == 1);
  CHECK(info.measurements == 2);
}

TEST_CASE("cache: list_kernels and list_tunings are ordered by key, without cubins or measurements") {
  TempDir dir;
  Cache cache = Cache::open(dir.file("kernels.db"));
  cache.put_kernels({make_kernel("kb", 1), make_kernel("kc", 2), make_kernel("ka", 0)});
  cache.put_tuning(make_tuning("tc", {make_measurement(MeasurementStatus::ok, 0)}));
  cache.put_tuning(make_tuning("ta", {make_measurement(MeasurementStatus::ok, 0)}));
  cache.put_tuning(make_tuning("tb"));

  const std::vector<CachedKernel> kernels = cache.list_kernels();
  REQUIRE(kernels.size() == 3);
  CHECK(kernels[0].cubin_key == "ka");
  CHECK(kernels[1].cubin_key == "kb");
  CHECK(kernels[2].cubin_key == "kc");
  for (const CachedKernel& kernel : kernels) CHECK(kernel.cubin.empty());
  check_same_config(kernels[1].config, make_kernel("kb", 1).config);
  CHECK(kernels[1].resources.registers == make_kernel("kb", 1).resources.registers);

  const std::vector<TuningRecord> tunings = cache.list_tunings();
  REQUIRE(tunings.size() == 3);
  CHECK(tunings[0].tuning_key == "ta");
  CHECK(tunings[1].tuning_key == "tb");
  CHECK(tunings[2].tuning_key == "tc");
  for (const TuningRecord& tuning : tunings) CHECK(tuning.measurements.empty());
}

TEST_CASE("cache: info counts rows and reports the schema version") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  Cache cache = Cache::open(path);
  fa2::CacheInfo info = cache.info();
  CHECK(info.path == path);
  CHECK(info.schema_version == Cache::kSchemaVersion);
  CHECK(info.kernels == 0);
  CHECK(info.tunings == 0);
  CHECK(info.measurements == 0);

  cache.put_kernels({make_kernel("a", 0, 100000), make_kernel("b")});
  cache.put_tuning(make_tuning("t", {make_measurement(MeasurementStatus::ok, 0),
                                     make_measurement(MeasurementStatus::spills, 1)}));
  info = cache.info();
  CHECK(info.kernels == 2);
  CHECK(info.tunings == 1);
  CHECK(info.measurements == 2);
  CHECK(info.bytes > 100000);  // the cubin is somewhere in the file or its WAL
}

TEST_CASE("cache: default_path follows FA2JIT_CACHE_DIR, then XDG_CACHE_HOME, then HOME") {
  SUBCASE("FA2JIT_CACHE_DIR") {
    EnvGuard dir("FA2JIT_CACHE_DIR", std::string("/srv/fa2"));
    EnvGuard xdg("XDG_CACHE_HOME", std::string("/xdg"));
    CHECK(Cache::default_path() == "/srv/fa2/kernels.db");
  }
  SUBCASE("XDG_CACHE_HOME when FA2JIT_CACHE_DIR is empty") {
    EnvGuard dir("FA2JIT_CACHE_DIR", std::string(""));
    EnvGuard xdg("XDG_CACHE_HOME", std::string("/xdg"));
    CHECK(Cache::default_path() == "/xdg/fa2jit/kernels.db");
  }
  SUBCASE("HOME") {
    EnvGuard dir("FA2JIT_CACHE_DIR", std::nullopt);
    EnvGuard xdg("XDG_CACHE_HOME", std::nullopt);
    EnvGuard home("HOME", std::string("/home/someone"));
    CHECK(Cache::default_path() == "/home/someone/.cache/fa2jit/kernels.db");
  }
  SUBCASE("nothing set") {
    EnvGuard dir("FA2JIT_CACHE_DIR", std::nullopt);
    EnvGuard xdg("XDG_CACHE_HOME", std::nullopt);
    EnvGuard home("HOME", std::nullopt);
    CHECK(contains(cache_error_of([] { Cache::default_path(); }), "FA2JIT_CACHE_DIR"));
  }
}

TEST_CASE("cache: a newer schema version is refused and the file left untouched") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  raw_exec(path, "CREATE TABLE future (x); INSERT INTO future VALUES (1); PRAGMA user_version = 99;");
  const std::string before = file_bytes(path);
  for (bool read_only : {false, true}) {
    CAPTURE(read_only);
    const std::string message = cache_error_of([&] { Cache::open(path, read_only); });
    CHECK(contains(message, path));
    CHECK(contains(message, "99"));
    CHECK(contains(message, "version " + std::to_string(Cache::kSchemaVersion)));
    CHECK(file_bytes(path) == before);
  }
  CHECK_FALSE(fs::exists(path + "-wal"));
}

TEST_CASE("cache: a negative schema version is refused and the file left untouched") {
  // Regression: found by fuzz/fuzz_cache_row, which made the migration loop index kMigrations[-N].
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  raw_exec(path, "CREATE TABLE odd (x); PRAGMA user_version = -7;");
  const std::string before = file_bytes(path);
  for (bool read_only : {false, true}) {
    CAPTURE(read_only);
    const std::string message = cache_error_of([&] { Cache::open(path, read_only); });
    CHECK(contains(message, path));
    CHECK(contains(message, "-7"));
    CHECK(file_bytes(path) == before);
  }
}

TEST_CASE("cache: a text file is not a SQLite database and is left untouched") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  const std::string text = "these are my notes, not a database\n" + std::string(2000, 'x') + "\n";
  write_file(path, text);
  for (bool read_only : {false, true}) {
    CAPTURE(read_only);
    const std::string message = cache_error_of([&] { Cache::open(path, read_only); });
    CHECK(contains(message, "not a SQLite database"));
    CHECK(contains(message, path));
    CHECK(file_bytes(path) == text);
  }
  CHECK_FALSE(fs::exists(path + "-wal"));
  CHECK_FALSE(fs::exists(path + "-journal"));

  // A short text file too (less than one SQLite header).
  write_file(path, "hi\n");
  CHECK(contains(cache_error_of([&] { Cache::open(path); }), "not a SQLite database"));
  CHECK(file_bytes(path) == "hi\n");
}

TEST_CASE("cache: an unwritable location gives a clear error") {
  TempDir dir;
  SUBCASE("read-only directory") {
    if (::geteuid() == 0) {
      MESSAGE("skipped: running as root, which ignores directory permissions");
      return;
    }
    const fs::path locked = dir.path() / "locked";
    fs::create_directory(locked);
    REQUIRE(::chmod(locked.c_str(), 0555) == 0);
    struct Unlock {
      const fs::path& path;
      ~Unlock() { ::chmod(path.c_str(), 0755); }
    } unlock{locked};
    const std::string path = (locked / "kernels.db").string();
    const std::string message = cache_error_of([&] { Cache::open(path); });
    CHECK(contains(message, path));
    CHECK_FALSE(fs::exists(path));
    // A subdirectory it would have to create names that directory.
    const std::string deeper = (locked / "sub" / "kernels.db").string();
    CHECK(contains(cache_error_of([&] { Cache::open(deeper); }), (locked / "sub").string()));
  }
  SUBCASE("a file where the directory should be") {
    write_file(dir.file("blocker"), "x");
    const std::string path = dir.file("blocker/kernels.db");
    const std::string message = cache_error_of([&] { Cache::open(path); });
    CHECK(contains(message, "cannot create the cache directory"));
    CHECK(contains(message, path));
  }
  SUBCASE("read-only open of a missing file") {
    const std::string path = dir.file("missing.db");
    const std::string message = cache_error_of([&] { Cache::open(path, true); });
    CHECK(contains(message, path));
    CHECK(contains(message, "does not exist"));
    CHECK_FALSE(fs::exists(path));
  }
  SUBCASE("read-only cache refuses writes") {
    const std::string path = dir.file("kernels.db");
    Cache::open(path).put_kernels({make_kernel("k")});
    Cache cache = Cache::open(path, true);
    const std::string message = cache_error_of([&] { cache.put_kernels({make_kernel("other")}); });
    CHECK(contains(message, path));
    CHECK(contains(message, "readonly"));
    CHECK(cache.list_kernels().size() == 1);
  }
}

TEST_CASE("cache: export then import reproduces the rows; a second import skips everything") {
  TempDir dir;
  const std::string source_path = dir.file("source.db");
  const std::string exported = dir.file("exports/copy.db");
  Cache source = Cache::open(source_path);
  source.put_kernels({make_kernel("k1", 0, 5000), make_kernel("k2", 1), make_kernel("k3", 2)});
  source.put_tuning(make_tuning("t1", {make_measurement(MeasurementStatus::ok, 0),
                                       make_measurement(MeasurementStatus::incorrect, 1)}));
  source.put_tuning(make_tuning("t2", {make_measurement(MeasurementStatus::spills, 2)}));
  source.export_to(exported);
  check_integrity(exported);

  Cache fresh = Cache::open(dir.file("fresh.db"));
  fresh.put_kernels({make_kernel("k_own")});
  const fa2::ImportStats first = fresh.import_from(exported);
  CHECK(first.kernels_added == 3);
  CHECK(first.kernels_skipped == 0);
  CHECK(first.tunings_added == 2);
  CHECK(first.tunings_replaced == 0);
  CHECK(first.tunings_kept == 0);

  const fa2::CacheInfo info = fresh.info();
  CHECK(info.kernels == 4);
  CHECK(info.tunings == 2);
  CHECK(info.measurements == 3);
  for (const std::string key : {"k1", "k2", "k3"}) {
    CAPTURE(key);
    const auto theirs = source.find_kernel(key);
    const auto ours = fresh.find_kernel(key);
    REQUIRE(theirs.has_value());
    REQUIRE(ours.has_value());
    CHECK(ours->cubin == theirs->cubin);
    CHECK(ours->created_at == theirs->created_at);  // imported rows keep their own time
    check_same_config(ours->config, theirs->config);
  }
  const auto t1 = fresh.find_tuning("t1", true);
  REQUIRE(t1.has_value());
  CHECK(t1->created_at == source.find_tuning("t1")->created_at);
  check_same_config(t1->winner, source.find_tuning("t1")->winner);
  CHECK(t1->space_hash == "0123456789abcdef");
  REQUIRE(t1->measurements.size() == 2);
  CHECK(t1->measurements[1].status == MeasurementStatus::incorrect);

  const fa2::ImportStats second = fresh.import_from(exported);
  CHECK(second.kernels_added == 0);
  CHECK(second.kernels_skipped == 3);
  CHECK(second.tunings_added == 0);
  CHECK(second.tunings_replaced == 0);
  CHECK(second.tunings_kept == 2);
  CHECK(fresh.info().measurements == 3);
  check_integrity(fresh.path());
}

TEST_CASE("cache: import replaces a tuning only with a newer one") {
  TempDir dir;
  Cache older = Cache::open(dir.file("older.db"));
  older.put_tuning(make_tuning("shared", {make_measurement(MeasurementStatus::ok, 0)}));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // created_at has millisecond resolution
  Cache newer = Cache::open(dir.file("newer.db"));
  TuningRecord record = make_tuning("shared", {make_measurement(MeasurementStatus::ok, 1),
                                               make_measurement(MeasurementStatus::invalid, 2)});
  record.time_ms = 0.25;
  newer.put_tuning(record);
  REQUIRE(newer.find_tuning("shared")->created_at > older.find_tuning("shared")->created_at);

  const fa2::ImportStats into_newer = newer.import_from(older.path());
  CHECK(into_newer.tunings_kept == 1);
  CHECK(into_newer.tunings_replaced == 0);
  CHECK(newer.find_tuning("shared")->time_ms == 0.25);

  const fa2::ImportStats into_older = older.import_from(newer.path());
  CHECK(into_older.tunings_replaced == 1);
  CHECK(into_older.tunings_added == 0);
  const auto replaced = older.find_tuning("shared", true);
  REQUIRE(replaced.has_value());
  CHECK(replaced->time_ms == 0.25);
  CHECK(replaced->measurements.size() == 2);  // the old one's measurement went with it
  CHECK(older.info().measurements == 2);
  check_integrity(older.path());
}

TEST_CASE("cache: import refuses foreign, newer and missing files") {
  TempDir dir;
  Cache cache = Cache::open(dir.file("kernels.db"));
  const std::string text = dir.file("notes.db");
  write_file(text, std::string(4096, 'n'));
  CHECK(contains(cache_error_of([&] { cache.import_from(text); }), text));
  const std::string future = dir.file("future.db");
  raw_exec(future, "CREATE TABLE x (y); PRAGMA user_version = 99;");
  const std::string message = cache_error_of([&] { cache.import_from(future); });
  CHECK(contains(message, future));
  CHECK(contains(message, "99"));
  CHECK(contains(cache_error_of([&] { cache.import_from(dir.file("absent.db")); }), "absent.db"));
  // The attachment is gone after each failure: a valid import still works.
  const std::string good = dir.file("good.db");
  Cache::open(good).put_kernels({make_kernel("k")});
  CHECK(cache.import_from(good).kernels_added == 1);
}

TEST_CASE("cache: export refuses to overwrite") {
  TempDir dir;
  Cache cache = Cache::open(dir.file("kernels.db"));
  cache.put_kernels({make_kernel("k")});
  const std::string destination = dir.file("existing.db");
  write_file(destination, "keep me");
  const std::string message = cache_error_of([&] { cache.export_to(destination); });
  CHECK(contains(message, destination));
  CHECK(contains(message, "exists"));
  CHECK(file_bytes(destination) == "keep me");
  CHECK(contains(cache_error_of([&] { cache.export_to(cache.path()); }), "exists"));
}

TEST_CASE("cache: clear empties every table") {
  TempDir dir;
  Cache cache = Cache::open(dir.file("kernels.db"));
  cache.put_kernels({make_kernel("a"), make_kernel("b")});
  cache.put_tuning(make_tuning("t", {make_measurement(MeasurementStatus::ok, 0)}));
  cache.clear();
  const fa2::CacheInfo info = cache.info();
  CHECK(info.kernels == 0);
  CHECK(info.tunings == 0);
  CHECK(info.measurements == 0);
  CHECK(info.schema_version == Cache::kSchemaVersion);
  CHECK_FALSE(cache.find_kernel("a").has_value());
  check_integrity(cache.path());
}

TEST_CASE("cache: a failed write leaves no partial rows") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  Cache cache = Cache::open(path);
  cache.put_kernels({make_kernel("before")});
  cache.put_tuning(make_tuning("t", {make_measurement(MeasurementStatus::ok, 0)}));

  SUBCASE("rejected before writing: an empty cubin key in a batch") {
    CachedKernel bad = make_kernel("");
    const std::string message = cache_error_of([&] { cache.put_kernels({make_kernel("x1"), bad, make_kernel("x2")}); });
    CHECK(contains(message, "empty cubin key"));
    CHECK(contains(message, path));
  }
  SUBCASE("rejected before writing: an empty cubin") {
    CachedKernel bad = make_kernel("x2");
    bad.cubin.clear();
    CHECK(contains(cache_error_of([&] { cache.put_kernels({make_kernel("x1"), bad}); }), "empty cubin"));
  }
  SUBCASE("failing inside the transaction: the second kernel violates NOT NULL") {
    CachedKernel bad = make_kernel("x2");
    bad.compile_ms = std::numeric_limits<double>::quiet_NaN();  // SQLite stores NaN as NULL
    const std::string message = cache_error_of([&] { cache.put_kernels({make_kernel("x1"), bad, make_kernel("x3")}); });
    CHECK(contains(message, "NOT NULL"));
    CHECK(contains(message, path));
  }
  SUBCASE("failing inside the transaction: the third measurement violates the status CHECK") {
    Measurement bad = make_measurement(MeasurementStatus::ok, 2);
    bad.status = static_cast<MeasurementStatus>(42);
    TuningRecord replacement = make_tuning("t", {make_measurement(MeasurementStatus::ok, 5),
                                                 make_measurement(MeasurementStatus::spills, 6), bad});
    replacement.time_ms = 9.0;
    CHECK(contains(cache_error_of([&] { cache.put_tuning(replacement); }), "CHECK"));
    // The old row and its measurement survive: the DELETE that preceded the failure was rolled back.
    const auto kept = cache.find_tuning("t", true);
    REQUIRE(kept.has_value());
    CHECK(kept->time_ms == 0.75);
    CHECK(kept->measurements.size() == 1);
  }

  const fa2::CacheInfo info = cache.info();
  CHECK(info.kernels == 1);
  CHECK(info.tunings == 1);
  CHECK(info.measurements == 1);
  CHECK_FALSE(cache.find_kernel("x1").has_value());
  // The connection is usable again afterwards: no transaction was left open.
  cache.put_kernels({make_kernel("after")});
  CHECK(cache.info().kernels == 2);
  check_integrity(path);
}

TEST_CASE("cache: a moved-from Cache says it is closed") {
  TempDir dir;
  Cache first = Cache::open(dir.file("kernels.db"));
  Cache second = std::move(first);
  second.put_kernels({make_kernel("k")});
  CHECK(contains(cache_error_of([&] { first.find_kernel("k"); }), "closed"));
  CHECK(second.find_kernel("k").has_value());
}

TEST_CASE("cache: two Cache objects in two threads write 400 kernels to one file") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  constexpr int kPerThread = 200;
  std::exception_ptr failures[2];
  auto writer = [&](int thread) {
    try {
      Cache cache = Cache::open(path);
      for (int i = 0; i < kPerThread; ++i)
        cache.put_kernels({make_kernel("t" + std::to_string(thread) + "-" + std::to_string(i), i, 256)});
    } catch (...) {
      failures[thread] = std::current_exception();
    }
  };
  std::thread a(writer, 0);
  std::thread b(writer, 1);
  a.join();
  b.join();
  for (const std::exception_ptr& failure : failures) {
    if (!failure) continue;
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& error) {
      const std::string message = std::string("writer thread threw: ") + error.what();
      FAIL(message);
    }
  }
  const Cache cache = Cache::open(path, true);
  CHECK(cache.info().kernels == 2 * kPerThread);
  CHECK(cache.find_kernel("t0-199").has_value());
  CHECK(cache.find_kernel("t1-0").has_value());
  check_integrity(path);
}
