#include "autotune/cache_schema.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include "autotune/cache.hpp"
#include "autotune/sqlite_statement.hpp"
#include "common/error.hpp"

namespace fa2::cache_schema {

using sqlite::Statement;
using sqlite::Transaction;

namespace {

// kMigrations[v] takes a database from user_version v to v + 1. Steps are append-only: a released
// step is never edited, a schema change is a new step. The readable name columns (config_name,
// winner_name, dtype, arch...) sit beside the keys so that a plain `SELECT *` reads like a table.
// NULL in a measurement's REAL column stands for NaN, which SQLite cannot store.
const char* const kMigrations[] = {
    // v0 -> v1
    R"sql(
CREATE TABLE kernels (
  cubin_key         TEXT PRIMARY KEY NOT NULL,
  config_name       TEXT NOT NULL,
  head_dim          INTEGER NOT NULL,
  dtype             TEXT NOT NULL,
  causal            INTEGER NOT NULL CHECK (causal IN (0, 1)),
  block_m           INTEGER NOT NULL,
  block_n           INTEGER NOT NULL,
  warps             INTEGER NOT NULL,
  stages            INTEGER NOT NULL,
  arch              TEXT NOT NULL,
  scheme            TEXT NOT NULL,
  nvrtc_version     TEXT NOT NULL,
  template_hash     TEXT NOT NULL,
  cubin             BLOB NOT NULL,
  registers         INTEGER NOT NULL,
  spill_store_bytes INTEGER NOT NULL,
  spill_load_bytes  INTEGER NOT NULL,
  stack_frame_bytes INTEGER NOT NULL,
  static_smem_bytes INTEGER NOT NULL,
  compile_ms        REAL NOT NULL,
  created_at        TEXT NOT NULL
);
CREATE TABLE tunings (
  tuning_key        TEXT PRIMARY KEY NOT NULL,
  device_key        TEXT NOT NULL,
  problem_key       TEXT NOT NULL,
  winner_name       TEXT NOT NULL,
  head_dim          INTEGER NOT NULL,
  dtype             TEXT NOT NULL,
  causal            INTEGER NOT NULL CHECK (causal IN (0, 1)),
  block_m           INTEGER NOT NULL,
  block_n           INTEGER NOT NULL,
  warps             INTEGER NOT NULL,
  stages            INTEGER NOT NULL,
  arch              TEXT NOT NULL,
  scheme            TEXT NOT NULL,
  winner_cubin_key  TEXT NOT NULL,
  time_ms           REAL NOT NULL,
  tflops            REAL NOT NULL,
  tune_seconds      REAL NOT NULL,
  created_at        TEXT NOT NULL
);
CREATE TABLE measurements (
  tuning_key        TEXT NOT NULL REFERENCES tunings (tuning_key) ON DELETE CASCADE,
  ordinal           INTEGER NOT NULL,
  config_name       TEXT NOT NULL,
  head_dim          INTEGER NOT NULL,
  dtype             TEXT NOT NULL,
  causal            INTEGER NOT NULL CHECK (causal IN (0, 1)),
  block_m           INTEGER NOT NULL,
  block_n           INTEGER NOT NULL,
  warps             INTEGER NOT NULL,
  stages            INTEGER NOT NULL,
  arch              TEXT NOT NULL,
  scheme            TEXT NOT NULL,
  cubin_key         TEXT NOT NULL,
  status            TEXT NOT NULL
                    CHECK (status IN ('ok', 'invalid', 'compile_failed', 'spills', 'launch_failed', 'incorrect')),
  time_ms           REAL,
  spread_ms         REAL,
  tflops            REAL,
  o_rel_error       REAL,
  reason            TEXT NOT NULL,
  registers         INTEGER NOT NULL,
  spill_store_bytes INTEGER NOT NULL,
  spill_load_bytes  INTEGER NOT NULL,
  stack_frame_bytes INTEGER NOT NULL,
  static_smem_bytes INTEGER NOT NULL,
  PRIMARY KEY (tuning_key, ordinal)
);
)sql",
    // v1 -> v2: TileConfig::blocks_per_sm (kernels from before it are one-block kernels), and the
    // search-space hash of each tuning (tunings from before it read as stale).
    R"sql(
ALTER TABLE kernels ADD COLUMN blocks_per_sm INTEGER NOT NULL DEFAULT 1 CHECK (blocks_per_sm >= 1);
ALTER TABLE tunings ADD COLUMN blocks_per_sm INTEGER NOT NULL DEFAULT 1 CHECK (blocks_per_sm >= 1);
ALTER TABLE measurements ADD COLUMN blocks_per_sm INTEGER NOT NULL DEFAULT 1 CHECK (blocks_per_sm >= 1);
ALTER TABLE tunings ADD COLUMN space_hash TEXT NOT NULL DEFAULT '';
)sql",
    // v2 -> v3: kernel families (rows from before them are forward kernels) and the backward's
    // deterministic mode, in every table that holds a config.
    R"sql(
ALTER TABLE kernels ADD COLUMN family TEXT NOT NULL DEFAULT 'fwd' CHECK (family IN ('fwd', 'bwd'));
ALTER TABLE kernels ADD COLUMN deterministic INTEGER NOT NULL DEFAULT 0 CHECK (deterministic IN (0, 1));
ALTER TABLE tunings ADD COLUMN family TEXT NOT NULL DEFAULT 'fwd' CHECK (family IN ('fwd', 'bwd'));
ALTER TABLE tunings ADD COLUMN deterministic INTEGER NOT NULL DEFAULT 0 CHECK (deterministic IN (0, 1));
ALTER TABLE measurements ADD COLUMN family TEXT NOT NULL DEFAULT 'fwd' CHECK (family IN ('fwd', 'bwd'));
ALTER TABLE measurements ADD COLUMN deterministic INTEGER NOT NULL DEFAULT 0 CHECK (deterministic IN (0, 1));
)sql",
    // v3 -> v4: the kvc family (a CHECK widens, which SQLite does only by rebuilding the table) and its
    // key splits, 0 (chosen at launch) in every row from before. Run with foreign keys off (Cache::open
    // turns them on after migrating), so dropping the old tunings does not cascade into measurements;
    // measurements whose tuning is gone (possible in a file written with foreign keys off) are dropped.
    R"sql(
CREATE TABLE fa2_v4_kernels (
  cubin_key         TEXT PRIMARY KEY NOT NULL,
  config_name       TEXT NOT NULL,
  head_dim          INTEGER NOT NULL,
  dtype             TEXT NOT NULL,
  causal            INTEGER NOT NULL CHECK (causal IN (0, 1)),
  block_m           INTEGER NOT NULL,
  block_n           INTEGER NOT NULL,
  warps             INTEGER NOT NULL,
  stages            INTEGER NOT NULL,
  arch              TEXT NOT NULL,
  scheme            TEXT NOT NULL,
  nvrtc_version     TEXT NOT NULL,
  template_hash     TEXT NOT NULL,
  cubin             BLOB NOT NULL,
  registers         INTEGER NOT NULL,
  spill_store_bytes INTEGER NOT NULL,
  spill_load_bytes  INTEGER NOT NULL,
  stack_frame_bytes INTEGER NOT NULL,
  static_smem_bytes INTEGER NOT NULL,
  compile_ms        REAL NOT NULL,
  created_at        TEXT NOT NULL,
  blocks_per_sm     INTEGER NOT NULL DEFAULT 1 CHECK (blocks_per_sm >= 1),
  family            TEXT NOT NULL DEFAULT 'fwd' CHECK (family IN ('fwd', 'bwd', 'kvc')),
  deterministic     INTEGER NOT NULL DEFAULT 0 CHECK (deterministic IN (0, 1)),
  splits            INTEGER NOT NULL DEFAULT 0 CHECK (splits >= 0)
);
INSERT INTO fa2_v4_kernels (cubin_key, config_name, head_dim, dtype, causal, block_m, block_n, warps, stages, arch,
  scheme, nvrtc_version, template_hash, cubin, registers, spill_store_bytes, spill_load_bytes, stack_frame_bytes,
  static_smem_bytes, compile_ms, created_at, blocks_per_sm, family, deterministic)
SELECT cubin_key, config_name, head_dim, dtype, causal, block_m, block_n, warps, stages, arch,
  scheme, nvrtc_version, template_hash, cubin, registers, spill_store_bytes, spill_load_bytes, stack_frame_bytes,
  static_smem_bytes, compile_ms, created_at, blocks_per_sm, family, deterministic FROM kernels;
DROP TABLE kernels;
ALTER TABLE fa2_v4_kernels RENAME TO kernels;

CREATE TABLE fa2_v4_tunings (
  tuning_key        TEXT PRIMARY KEY NOT NULL,
  device_key        TEXT NOT NULL,
  problem_key       TEXT NOT NULL,
  winner_name       TEXT NOT NULL,
  head_dim          INTEGER NOT NULL,
  dtype             TEXT NOT NULL,
  causal            INTEGER NOT NULL CHECK (causal IN (0, 1)),
  block_m           INTEGER NOT NULL,
  block_n           INTEGER NOT NULL,
  warps             INTEGER NOT NULL,
  stages            INTEGER NOT NULL,
  arch              TEXT NOT NULL,
  scheme            TEXT NOT NULL,
  winner_cubin_key  TEXT NOT NULL,
  time_ms           REAL NOT NULL,
  tflops            REAL NOT NULL,
  tune_seconds      REAL NOT NULL,
  created_at        TEXT NOT NULL,
  blocks_per_sm     INTEGER NOT NULL DEFAULT 1 CHECK (blocks_per_sm >= 1),
  space_hash        TEXT NOT NULL DEFAULT '',
  family            TEXT NOT NULL DEFAULT 'fwd' CHECK (family IN ('fwd', 'bwd', 'kvc')),
  deterministic     INTEGER NOT NULL DEFAULT 0 CHECK (deterministic IN (0, 1)),
  splits            INTEGER NOT NULL DEFAULT 0 CHECK (splits >= 0)
);
INSERT INTO fa2_v4_tunings (tuning_key, device_key, problem_key, winner_name, head_dim, dtype, causal, block_m,
  block_n, warps, stages, arch, scheme, winner_cubin_key, time_ms, tflops, tune_seconds, created_at, blocks_per_sm,
  space_hash, family, deterministic)
SELECT tuning_key, device_key, problem_key, winner_name, head_dim, dtype, causal, block_m,
  block_n, warps, stages, arch, scheme, winner_cubin_key, time_ms, tflops, tune_seconds, created_at, blocks_per_sm,
  space_hash, family, deterministic FROM tunings;
DROP TABLE tunings;
ALTER TABLE fa2_v4_tunings RENAME TO tunings;

CREATE TABLE fa2_v4_measurements (
  tuning_key        TEXT NOT NULL REFERENCES tunings (tuning_key) ON DELETE CASCADE,
  ordinal           INTEGER NOT NULL,
  config_name       TEXT NOT NULL,
  head_dim          INTEGER NOT NULL,
  dtype             TEXT NOT NULL,
  causal            INTEGER NOT NULL CHECK (causal IN (0, 1)),
  block_m           INTEGER NOT NULL,
  block_n           INTEGER NOT NULL,
  warps             INTEGER NOT NULL,
  stages            INTEGER NOT NULL,
  arch              TEXT NOT NULL,
  scheme            TEXT NOT NULL,
  cubin_key         TEXT NOT NULL,
  status            TEXT NOT NULL
                    CHECK (status IN ('ok', 'invalid', 'compile_failed', 'spills', 'launch_failed', 'incorrect')),
  time_ms           REAL,
  spread_ms         REAL,
  tflops            REAL,
  o_rel_error       REAL,
  reason            TEXT NOT NULL,
  registers         INTEGER NOT NULL,
  spill_store_bytes INTEGER NOT NULL,
  spill_load_bytes  INTEGER NOT NULL,
  stack_frame_bytes INTEGER NOT NULL,
  static_smem_bytes INTEGER NOT NULL,
  blocks_per_sm     INTEGER NOT NULL DEFAULT 1 CHECK (blocks_per_sm >= 1),
  family            TEXT NOT NULL DEFAULT 'fwd' CHECK (family IN ('fwd', 'bwd', 'kvc')),
  deterministic     INTEGER NOT NULL DEFAULT 0 CHECK (deterministic IN (0, 1)),
  splits            INTEGER NOT NULL DEFAULT 0 CHECK (splits >= 0),
  PRIMARY KEY (tuning_key, ordinal)
);
INSERT INTO fa2_v4_measurements (tuning_key, ordinal, config_name, head_dim, dtype, causal, block_m, block_n, warps,
  stages, arch, scheme, cubin_key, status, time_ms, spread_ms, tflops, o_rel_error, reason, registers,
  spill_store_bytes, spill_load_bytes, stack_frame_bytes, static_smem_bytes, blocks_per_sm, family, deterministic)
SELECT tuning_key, ordinal, config_name, head_dim, dtype, causal, block_m, block_n, warps,
  stages, arch, scheme, cubin_key, status, time_ms, spread_ms, tflops, o_rel_error, reason, registers,
  spill_store_bytes, spill_load_bytes, stack_frame_bytes, static_smem_bytes, blocks_per_sm, family, deterministic
FROM measurements WHERE tuning_key IN (SELECT tuning_key FROM tunings);
DROP TABLE measurements;
ALTER TABLE fa2_v4_measurements RENAME TO measurements;
)sql",
    // v4 -> v5: the built-in variants (TileConfig::variant as its tag, "" for none: every row from before).
    R"sql(
ALTER TABLE kernels ADD COLUMN variant TEXT NOT NULL DEFAULT '';
ALTER TABLE tunings ADD COLUMN variant TEXT NOT NULL DEFAULT '';
ALTER TABLE measurements ADD COLUMN variant TEXT NOT NULL DEFAULT '';
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == Cache::kSchemaVersion,
              "one migration step per schema version");

}  // namespace

int query_int(sqlite3* db, const std::string& sql, const std::string& path) {
  Statement statement(db, sql, path);
  if (!statement.step()) throw Error(Stage::Cache, "sqlite3_step", "`" + sql + "` returned no row on " + path);
  return statement.column_int(0);
}

void require_newer_or_equal(int version, const std::string& path) {
  // A negative user_version indexes no migration (found by fuzz/fuzz_cache_row: it read kMigrations[-N]).
  if (version < 0)
    throw Error(Stage::Cache, "",
                fmt::format("{} has schema version {}, which no fa2jit writes: not an fa2jit cache (the file was left "
                            "untouched)",
                            path, version));
  if (version > Cache::kSchemaVersion)
    throw Error(Stage::Cache, "",
                fmt::format("{} has schema version {}, newer than the version {} this build of fa2jit knows; use "
                            "a newer fa2jit or another cache file (the file was left untouched)",
                            path, version, Cache::kSchemaVersion));
}

void migrate(sqlite3* db, const std::string& path, int target_version) {
  if (target_version < 0 || target_version > Cache::kSchemaVersion)
    throw Error(Stage::Cache, "", fmt::format("no schema version {} to migrate {} to (0..{})", target_version, path,
                                              Cache::kSchemaVersion));
  // A step that rebuilds tunings would cascade into measurements with foreign keys on.
  if (query_int(db, "PRAGMA foreign_keys", path) != 0)
    throw Error(Stage::Cache, "", fmt::format("migrating {} needs foreign keys off (turn them off before)", path));
  Transaction transaction(db, path);
  const int version = query_int(db, "PRAGMA user_version", path);
  require_newer_or_equal(version, path);
  if (version >= target_version) return;  // the destructor ends the empty transaction
  for (int step = version; step < target_version; ++step) sqlite::exec(db, kMigrations[step], path);
  sqlite::exec(db, fmt::format("PRAGMA user_version = {}", target_version).c_str(), path);
  // A rebuilt table must leave every measurement pointing at its tuning.
  if (query_int(db, "SELECT count(*) FROM pragma_foreign_key_check", path) != 0)
    throw Error(Stage::Cache, "", fmt::format("migrating {} to schema {} left measurements without a tuning; the "
                                              "file was left as it was",
                                              path, target_version));
  transaction.commit();
}

}  // namespace fa2::cache_schema
