// The cache file's schema migrations: every older version a release wrote (v0 empty, v1 before
// blocks_per_sm, v2 before kernel families, v3 before the kvc family) opens, is migrated in place, keeps its
// rows (measurements with their tunings) and then takes rows of every family.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <sqlite3.h>

#include <string>

#include "autotune/cache.hpp"
#include "autotune/cache_schema.hpp"
#include "codegen/tile_config.hpp"
#include "tests/support/cache_fixtures.hpp"

using namespace fa2::cache_test;  // NOLINT: the fixtures are this suite's vocabulary

namespace {

// A file exactly as the release of schema `version` created it: the real migration steps up to there.
void write_schema(const std::string& path, int version) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  try {
    fa2::cache_schema::migrate(db, path, version);
  } catch (const fa2::Error& error) {
    sqlite3_close(db);
    FAIL(error.what());
  }
  sqlite3_close(db);
}

fa2::TileConfig kvc_config(int splits) {
  fa2::TileConfig config = fa2::default_config(fa2::Family::kvc, 128, fa2::DType::bf16, true, fa2::Arch::sm_90a);
  config.splits = splits;
  return config;
}

}  // namespace

TEST_CASE("cache: an empty (v0) file is migrated to the current version") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  write_file(path, "");  // zero bytes is a valid, empty SQLite database with user_version 0
  {
    Cache cache = Cache::open(path);
    CHECK(cache.info().schema_version == Cache::kSchemaVersion);
    cache.put_kernels({make_kernel("k")});
    cache.put_tuning(make_tuning("t", {make_measurement(MeasurementStatus::ok, 0)}));
  }
  CHECK(raw_text(path, "PRAGMA user_version") == std::to_string(Cache::kSchemaVersion));
  CHECK(raw_text(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'") == "3");
  CHECK(raw_text(path, "PRAGMA journal_mode") == "wal");
  // Opening again is a no-op on the schema.
  CHECK(Cache::open(path).info().kernels == 1);
  check_integrity(path);
}

TEST_CASE("cache: a v1 file (before blocks_per_sm) is migrated, its rows read as one-block kernels") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  // A v1 file: the current schema without the column v2 added, written by the release before it.
  CachedKernel kernel = make_kernel("k", 2);
  kernel.config.blocks_per_sm = 1;
  {
    Cache cache = Cache::open(path);
    cache.put_kernels({kernel});
    cache.put_tuning(make_tuning("t", {make_measurement(MeasurementStatus::ok, 0)}));
  }
  raw_exec(path, (std::string(kDropV4Columns) + kDropV3Columns +
                  "ALTER TABLE kernels DROP COLUMN blocks_per_sm; ALTER TABLE tunings DROP COLUMN blocks_per_sm; "
                  "ALTER TABLE measurements DROP COLUMN blocks_per_sm; ALTER TABLE tunings DROP COLUMN space_hash; "
                  "PRAGMA user_version = 1;")
                     .c_str());
  REQUIRE(raw_text(path, "SELECT count(*) FROM pragma_table_info('kernels') WHERE name = 'blocks_per_sm'") == "0");

  // Read-only opening refuses to migrate (and so to read) it; a writable one migrates it in place.
  CHECK(contains(cache_error_of([&] { Cache::open(path, true); }), "older than 5"));
  Cache cache = Cache::open(path);
  CHECK(cache.info().schema_version == Cache::kSchemaVersion);
  const auto found = cache.find_kernel("k");
  REQUIRE(found.has_value());
  CHECK(found->config == kernel.config);
  CHECK(found->cubin == kernel.cubin);
  const auto tuning = cache.find_tuning("t", true);
  REQUIRE(tuning.has_value());
  CHECK(tuning->winner.blocks_per_sm == 1);
  CHECK(tuning->space_hash.empty());  // stale: forward() tunes the class again
  REQUIRE(tuning->measurements.size() == 1);
  CHECK(tuning->measurements[0].config.blocks_per_sm == 1);
  check_integrity(path);
}

TEST_CASE("cache: a v2 file (before kernel families) is migrated, its rows read as forward kernels") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  const CachedKernel kernel = make_kernel("k");
  REQUIRE(kernel.config.family == fa2::Family::fwd);
  {
    Cache cache = Cache::open(path);
    cache.put_kernels({kernel});
    cache.put_tuning(make_tuning("t", {make_measurement(MeasurementStatus::ok, 0)}));
  }
  raw_exec(path, (std::string(kDropV4Columns) + kDropV3Columns + "PRAGMA user_version = 2;").c_str());
  REQUIRE(raw_text(path, "SELECT count(*) FROM pragma_table_info('tunings') WHERE name = 'family'") == "0");

  CHECK(contains(cache_error_of([&] { Cache::open(path, true); }), "older than 5"));
  Cache cache = Cache::open(path);
  CHECK(cache.info().schema_version == Cache::kSchemaVersion);
  const auto found = cache.find_kernel("k");
  REQUIRE(found.has_value());
  CHECK(found->config == kernel.config);
  CHECK(found->config.family == fa2::Family::fwd);
  CHECK_FALSE(found->config.deterministic);
  const auto tuning = cache.find_tuning("t", true);
  REQUIRE(tuning.has_value());
  CHECK(tuning->winner.family == fa2::Family::fwd);
  REQUIRE(tuning->measurements.size() == 1);
  CHECK(tuning->measurements[0].config.family == fa2::Family::fwd);
  // A backward row now fits beside them.
  CachedKernel backward = make_kernel("b");
  backward.config = fa2::default_config(fa2::Family::bwd, 128, fa2::DType::bf16, true, fa2::Arch::sm_90a, true);
  cache.put_kernels({backward});
  CHECK(cache.find_kernel("b")->config == backward.config);
  check_integrity(path);
}

TEST_CASE("cache: a v3 file (families fwd and bwd only) is migrated, keeps its rows, and takes kvc rows") {
  TempDir dir;
  const std::string current = dir.file("current.db");
  const std::string path = dir.file("v3.db");
  {
    Cache cache = Cache::open(current);
    cache.put_kernels({make_kernel("k", 1)});
    cache.put_tuning(make_tuning(
        "t", {make_measurement(MeasurementStatus::ok, 0), make_measurement(MeasurementStatus::spills, 2)}));
  }
  write_schema(path, 3);
  REQUIRE(raw_text(path, "PRAGMA user_version") == "3");
  // v3's rows, copied in by column name (the v3 file has no splits column and refuses family 'kvc').
  const char* const config = "head_dim, dtype, causal, block_m, block_n, warps, stages, arch, scheme, blocks_per_sm, "
                             "family, deterministic";
  raw_exec(path, fmt::format(
      "ATTACH DATABASE '{0}' AS cur;"
      "INSERT INTO kernels (cubin_key, config_name, {1}, nvrtc_version, template_hash, cubin, registers, "
      "spill_store_bytes, spill_load_bytes, stack_frame_bytes, static_smem_bytes, compile_ms, created_at) "
      "SELECT cubin_key, config_name, {1}, nvrtc_version, template_hash, cubin, registers, spill_store_bytes, "
      "spill_load_bytes, stack_frame_bytes, static_smem_bytes, compile_ms, created_at FROM cur.kernels;"
      "INSERT INTO tunings (tuning_key, device_key, problem_key, winner_name, {1}, winner_cubin_key, time_ms, tflops, "
      "tune_seconds, created_at, space_hash) SELECT tuning_key, device_key, problem_key, winner_name, {1}, "
      "winner_cubin_key, time_ms, tflops, tune_seconds, created_at, space_hash FROM cur.tunings;"
      "INSERT INTO measurements (tuning_key, ordinal, config_name, {1}, cubin_key, status, time_ms, spread_ms, tflops, "
      "o_rel_error, reason, registers, spill_store_bytes, spill_load_bytes, stack_frame_bytes, static_smem_bytes) "
      "SELECT tuning_key, ordinal, config_name, {1}, cubin_key, status, time_ms, spread_ms, tflops, o_rel_error, "
      "reason, registers, spill_store_bytes, spill_load_bytes, stack_frame_bytes, static_smem_bytes "
      "FROM cur.measurements;",
      current, config));
  REQUIRE(raw_text(path, "SELECT count(*) FROM measurements") == "2");

  CHECK(contains(cache_error_of([&] { Cache::open(path, true); }), "older than 5"));
  Cache cache = Cache::open(path);
  CHECK(cache.info().schema_version == Cache::kSchemaVersion);
  const auto kernel = cache.find_kernel("k");
  REQUIRE(kernel.has_value());
  CHECK(kernel->config == make_kernel("k", 1).config);
  CHECK(kernel->cubin == make_kernel("k", 1).cubin);
  CHECK(kernel->config.splits == 0);
  // Rebuilding tunings did not cascade into its measurements.
  const auto tuning = cache.find_tuning("t", true);
  REQUIRE(tuning.has_value());
  CHECK(tuning->winner == make_tuning("t").winner);
  CHECK(tuning->space_hash == make_tuning("t").space_hash);
  REQUIRE(tuning->measurements.size() == 2);
  CHECK(tuning->measurements[1].status == MeasurementStatus::spills);
  CHECK(raw_text(path, "SELECT count(*) FROM pragma_foreign_key_check") == "0");
  // ON DELETE CASCADE still holds in the rebuilt measurements.
  cache.put_tuning(make_tuning("t", {make_measurement(MeasurementStatus::ok, 1)}));
  CHECK(raw_text(path, "SELECT count(*) FROM measurements") == "1");

  // A kvc kernel with its key splits, and a kvc tuning, fit beside them and read back whole.
  CachedKernel split = make_kernel("kvc");
  split.config = kvc_config(16);
  cache.put_kernels({split});
  CHECK(cache.find_kernel("kvc")->config == split.config);
  CHECK(cache.find_kernel("kvc")->config.splits == 16);
  TuningRecord decode = make_tuning("kvc-t");
  decode.winner = kvc_config(8);
  Measurement measured = make_measurement(MeasurementStatus::ok, 0);
  measured.config = kvc_config(3);
  decode.measurements = {measured};
  cache.put_tuning(decode);
  const auto found = cache.find_tuning("kvc-t", true);
  REQUIRE(found.has_value());
  CHECK(found->winner == decode.winner);
  CHECK(found->winner.name() == decode.winner.name());
  REQUIRE(found->measurements.size() == 1);
  CHECK(found->measurements[0].config.splits == 3);
  check_integrity(path);
}

TEST_CASE("cache: migrating refuses to run with foreign keys on, and drops measurements without a tuning") {
  TempDir dir;
  const std::string path = dir.file("v3.db");
  write_schema(path, 3);
  raw_exec(path,
           "INSERT INTO measurements (tuning_key, ordinal, config_name, head_dim, dtype, causal, block_m, block_n, "
           "warps, stages, arch, scheme, cubin_key, status, reason, registers, spill_store_bytes, spill_load_bytes, "
           "stack_frame_bytes, static_smem_bytes) VALUES ('orphan', 0, 'c', 64, 'bf16', 0, 64, 64, 4, 2, 'sm_80', "
           "'mma_sync', '', 'ok', '', 1, 0, 0, 0, 0)");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA foreign_keys = ON", nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK_THROWS_WITH_AS(fa2::cache_schema::migrate(db, path, Cache::kSchemaVersion),
                       doctest::Contains("foreign keys off"), fa2::Error);
  sqlite3_close(db);
  CHECK(raw_text(path, "PRAGMA user_version") == "3");
  Cache cache = Cache::open(path);  // turns them off itself
  CHECK(cache.info().schema_version == Cache::kSchemaVersion);
  CHECK(raw_text(path, "SELECT count(*) FROM measurements") == "0");
  check_integrity(path);
}

TEST_CASE("cache: a current file refuses rows no release may write (negative splits, unknown family)") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  { Cache::open(path).put_kernels({make_kernel("k")}); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "UPDATE kernels SET splits = -1", nullptr, nullptr, nullptr) == SQLITE_CONSTRAINT);
  CHECK(sqlite3_exec(db, "UPDATE kernels SET family = 'xyz'", nullptr, nullptr, nullptr) == SQLITE_CONSTRAINT);
  CHECK(sqlite3_exec(db, "UPDATE kernels SET family = 'kvc'", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}
