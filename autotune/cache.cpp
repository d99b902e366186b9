#include "autotune/cache.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <system_error>

#include "autotune/cache_schema.hpp"
#include "autotune/sqlite_statement.hpp"
#include "common/error.hpp"

namespace fa2 {

namespace fs = std::filesystem;
using cache_schema::migrate;
using cache_schema::query_int;
using cache_schema::require_newer_or_equal;
using sqlite::Statement;
using sqlite::Transaction;

const char* measurement_status_name(MeasurementStatus status) {
  switch (status) {
    case MeasurementStatus::ok: return "ok";
    case MeasurementStatus::invalid: return "invalid";
    case MeasurementStatus::compile_failed: return "compile_failed";
    case MeasurementStatus::spills: return "spills";
    case MeasurementStatus::launch_failed: return "launch_failed";
    case MeasurementStatus::incorrect: return "incorrect";
  }
  return "unknown";  // rejected by the measurements.status CHECK, never stored
}

std::optional<MeasurementStatus> parse_measurement_status(const std::string& text) {
  for (MeasurementStatus status : {MeasurementStatus::ok, MeasurementStatus::invalid, MeasurementStatus::compile_failed,
                                   MeasurementStatus::spills, MeasurementStatus::launch_failed,
                                   MeasurementStatus::incorrect})
    if (text == measurement_status_name(status)) return status;
  return std::nullopt;
}

namespace {

// Column lists shared by inserts, selects and the import's copies, so their order is written once.
constexpr const char* kConfigColumns =
    "head_dim, dtype, causal, block_m, block_n, warps, stages, arch, scheme, blocks_per_sm, family, deterministic";
constexpr const char* kResourceColumns =
    "registers, spill_store_bytes, spill_load_bytes, stack_frame_bytes, static_smem_bytes";

std::string kernel_columns(bool with_cubin) {
  return fmt::format("cubin_key, config_name, {}, nvrtc_version, template_hash, {}, {}, compile_ms, created_at",
                     kConfigColumns, with_cubin ? "cubin" : "NULL AS cubin", kResourceColumns);
}
std::string tuning_columns() {
  return fmt::format("tuning_key, device_key, problem_key, winner_name, {}, winner_cubin_key, time_ms, tflops, "
                     "tune_seconds, created_at, space_hash",
                     kConfigColumns);
}
std::string measurement_columns() {
  return fmt::format("tuning_key, ordinal, config_name, {}, cubin_key, status, time_ms, spread_ms, tflops, "
                     "o_rel_error, reason, {}",
                     kConfigColumns, kResourceColumns);
}
std::string placeholders(int count) {
  std::string text;
  for (int i = 1; i <= count; ++i) text += (i > 1 ? ", ?" : "?") + std::to_string(i);
  return text;
}
constexpr int kConfigColumnCount = 12;
constexpr int kResourceColumnCount = 5;
constexpr int kKernelColumnCount = 7 + kConfigColumnCount + kResourceColumnCount;
constexpr int kTuningColumnCount = 10 + kConfigColumnCount;
constexpr int kMeasurementColumnCount = 10 + kConfigColumnCount + kResourceColumnCount;

// UTC with milliseconds, e.g. 2026-11-24T23:50:01.123Z: sorts as text in time order, which the
// import relies on to decide which of two tunings is newer.
std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03d}Z", text, static_cast<int>(millis));
}

// Binds the config columns starting at `index`; returns the next free index.
int bind_config(Statement& statement, int index, const TileConfig& config) {
  statement.bind(index++, config.head_dim);
  statement.bind(index++, dtype_name(config.dtype));
  statement.bind(index++, config.causal);
  statement.bind(index++, config.block_m);
  statement.bind(index++, config.block_n);
  statement.bind(index++, config.warps);
  statement.bind(index++, config.stages);
  statement.bind(index++, arch_name(config.arch));
  statement.bind(index++, scheme_name(config.scheme));
  statement.bind(index++, config.blocks_per_sm);
  statement.bind(index++, family_name(config.family));
  statement.bind(index++, config.deterministic);
  return index;
}

int bind_resources(Statement& statement, int index, const ResourceUsage& resources) {
  statement.bind(index++, resources.registers);
  statement.bind(index++, resources.spill_store_bytes);
  statement.bind(index++, resources.spill_load_bytes);
  statement.bind(index++, resources.stack_frame_bytes);
  statement.bind(index++, resources.static_smem_bytes);
  return index;
}

template <typename T>
T parsed_or_throw(std::optional<T> value, const char* column, const std::string& text, const std::string& row,
                  const std::string& path) {
  if (!value)
    throw Error(Stage::Cache, "", fmt::format("unknown {} '{}' in row '{}' of {}", column, text, row, path));
  return *value;
}

// Reads the config columns starting at `column` (0-based, as sqlite3_column_* count).
TileConfig read_config(const Statement& statement, int column, const std::string& row, const std::string& path) {
  TileConfig config;
  config.head_dim = statement.column_int(column++);
  const std::string dtype = statement.column_text(column++);
  config.dtype = parsed_or_throw(parse_dtype(dtype), "dtype", dtype, row, path);
  config.causal = statement.column_int(column++) != 0;
  config.block_m = statement.column_int(column++);
  config.block_n = statement.column_int(column++);
  config.warps = statement.column_int(column++);
  config.stages = statement.column_int(column++);
  const std::string arch = statement.column_text(column++);
  config.arch = parsed_or_throw(parse_arch(arch), "arch", arch, row, path);
  const std::string scheme = statement.column_text(column++);
  config.scheme = parsed_or_throw(parse_scheme(scheme), "scheme", scheme, row, path);
  config.blocks_per_sm = statement.column_int(column++);
  const std::string family = statement.column_text(column++);
  config.family = parsed_or_throw(parse_family(family), "family", family, row, path);
  config.deterministic = statement.column_int(column++) != 0;
  return config;
}

ResourceUsage read_resources(const Statement& statement, int column) {
  ResourceUsage resources;
  resources.registers = statement.column_int(column++);
  resources.spill_store_bytes = statement.column_int(column++);
  resources.spill_load_bytes = statement.column_int(column++);
  resources.stack_frame_bytes = statement.column_int(column++);
  resources.static_smem_bytes = statement.column_int(column++);
  return resources;
}

// The readers walk the columns in the order of kernel_columns(), tuning_columns() and
// measurement_columns(); `c` is the next column to read.
CachedKernel read_kernel(const Statement& row, const std::string& path) {
  CachedKernel kernel;
  int c = 0;
  kernel.cubin_key = row.column_text(c++);
  ++c;  // config_name, derived from the config
  kernel.config = read_config(row, c, kernel.cubin_key, path);
  c += kConfigColumnCount;
  kernel.nvrtc_version = row.column_text(c++);
  kernel.template_hash = row.column_text(c++);
  kernel.cubin = row.column_blob(c++);
  kernel.resources = read_resources(row, c);
  c += kResourceColumnCount;
  kernel.compile_ms = row.column_double(c++);
  kernel.created_at = row.column_text(c++);
  return kernel;
}

TuningRecord read_tuning(const Statement& row, const std::string& path) {
  TuningRecord record;
  int c = 0;
  record.tuning_key = row.column_text(c++);
  record.device_key = row.column_text(c++);
  record.problem_key = row.column_text(c++);
  ++c;  // winner_name
  record.winner = read_config(row, c, record.tuning_key, path);
  c += kConfigColumnCount;
  record.winner_cubin_key = row.column_text(c++);
  record.time_ms = row.column_double(c++);
  record.tflops = row.column_double(c++);
  record.tune_seconds = row.column_double(c++);
  record.created_at = row.column_text(c++);
  record.space_hash = row.column_text(c++);
  return record;
}

Measurement read_measurement(const Statement& row, const std::string& path) {
  Measurement measurement;
  const std::string row_name = row.column_text(0) + " #" + std::to_string(row.column_int(1));
  int c = 3;  // after tuning_key, ordinal, config_name
  measurement.config = read_config(row, c, row_name, path);
  c += kConfigColumnCount;
  measurement.cubin_key = row.column_text(c++);
  const std::string status = row.column_text(c++);
  measurement.status = parsed_or_throw(parse_measurement_status(status), "status", status, row_name, path);
  measurement.time_ms = row.column_double(c++);
  measurement.spread_ms = row.column_double(c++);
  measurement.tflops = row.column_double(c++);
  measurement.o_rel_error = row.column_double(c++);
  measurement.reason = row.column_text(c++);
  measurement.resources = read_resources(row, c);
  return measurement;
}

// A URI keeps paths containing '?' or '#' intact and lets ATTACH open the other file read-only.
std::string file_uri(const std::string& path, bool read_only) {
  std::string uri = "file:";
  for (unsigned char c : fs::absolute(path).string()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~')
      uri += static_cast<char>(c);
    else
      uri += fmt::format("%{:02X}", c);
  }
  return read_only ? uri + "?mode=ro" : uri;
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;

}  // namespace

std::string Cache::default_path() {
  auto non_empty_env = [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (value && *value) return std::string(value);
    return std::nullopt;
  };
  if (auto dir = non_empty_env("FA2JIT_CACHE_DIR")) return (fs::path(*dir) / "kernels.db").string();
  if (auto xdg = non_empty_env("XDG_CACHE_HOME")) return (fs::path(*xdg) / "fa2jit" / "kernels.db").string();
  if (auto home = non_empty_env("HOME")) return (fs::path(*home) / ".cache" / "fa2jit" / "kernels.db").string();
  throw Error(Stage::Cache, "",
              "no cache location: FA2JIT_CACHE_DIR, XDG_CACHE_HOME and HOME are all unset or empty; set "
              "FA2JIT_CACHE_DIR to the directory that should hold kernels.db");
}

Cache Cache::open(const std::string& path, bool read_only) {
  if (path.empty()) throw Error(Stage::Cache, "", "empty cache path");
  std::error_code error;
  // SQLite's own word for this is "disk I/O error" or "unable to open database file".
  if (fs::is_directory(path, error))
    throw Error(Stage::Cache, "", fmt::format("{} is a directory, not a cache file", path));
  if (read_only) {
    if (!fs::exists(path, error))
      throw Error(Stage::Cache, "", fmt::format("{} does not exist (opening it read-only)", path));
  } else {
    const fs::path parent = fs::absolute(path).parent_path();
    if (!fs::create_directories(parent, error) && error)
      throw Error(Stage::Cache, "std::filesystem::create_directories",
                  fmt::format("cannot create the cache directory {} for {}: {}", parent.string(), path,
                              error.message()));
  }

  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_URI | (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(file_uri(path, read_only).c_str(), &raw, flags, nullptr);
  DbHandle db(raw);  // sqlite3_open_v2 returns a handle to close even when it fails
  if (rc != SQLITE_OK)
    sqlite::fail(raw, "sqlite3_open_v2", path,
                 read_only ? "cannot open the cache read-only"
                           : "cannot open or create the cache (is its directory writable?)");
  if (sqlite3_busy_timeout(raw, 10000) != SQLITE_OK)
    sqlite::fail(raw, "sqlite3_busy_timeout", path, "setting the busy timeout");

  // Only reads until the file is known to be a SQLite database of a version we understand, so a
  // foreign or newer file is never modified (journal_mode=WAL and migrations both write its header).
  const int probe_rc = sqlite3_exec(raw, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
  if (probe_rc == SQLITE_NOTADB)
    throw Error(Stage::Cache, "sqlite3_exec",
                fmt::format("{} is not a SQLite database (is this the right cache file?): {}", path,
                            sqlite3_errmsg(raw)));
  if (probe_rc == SQLITE_CORRUPT)
    throw Error(Stage::Cache, "sqlite3_exec", fmt::format("{} is corrupt: {}", path, sqlite3_errmsg(raw)));
  if (probe_rc != SQLITE_OK) sqlite::fail(raw, "sqlite3_exec", path, "cannot read the cache");
  // SQLite quietly opens a file it may not write read-only; said now, not after a build's compiles.
  if (!read_only && sqlite3_db_readonly(raw, "main") == 1)
    throw Error(Stage::Cache, "",
                fmt::format("{} is read-only (check its permissions, or pass another cache file)", path));
  const int version = query_int(raw, "PRAGMA user_version", path);
  require_newer_or_equal(version, path);

  sqlite::exec(raw, "PRAGMA foreign_keys = ON", path);
  if (read_only) {
    if (version < kSchemaVersion)
      throw Error(Stage::Cache, "",
                  fmt::format("{} has schema version {}, older than {}; open it once writable to migrate it", path,
                              version, kSchemaVersion));
  } else {
    // WAL lets readers proceed during a write; NORMAL sync is durable in WAL except for the last
    // commits on power loss, which a cache of re-creatable kernels can afford.
    sqlite::exec(raw, "PRAGMA journal_mode = WAL", path);
    sqlite::exec(raw, "PRAGMA synchronous = NORMAL", path);
    migrate(raw, path);
  }
  return Cache(path, db.release());
}

Cache Cache::open_for_reading(const std::string& path) {
  try {
    return open(path, /*read_only=*/true);
  } catch (const Error& error) {
    if (error.stage() != Stage::Cache) throw;
    // Only an older schema is worth a writable open; every other refusal stands as it was.
    sqlite3* raw = nullptr;
    const bool opened = sqlite3_open_v2(file_uri(path, true).c_str(), &raw, SQLITE_OPEN_URI | SQLITE_OPEN_READONLY,
                                        nullptr) == SQLITE_OK;
    DbHandle db(raw);
    int version = -1;
    try {
      if (opened) version = query_int(raw, "PRAGMA user_version", path);
    } catch (const Error&) {
      // Unreadable: not an older cache, so the first refusal stands.
    }
    if (version < 0 || version >= kSchemaVersion) throw;
  }
  try {
    return open(path, /*read_only=*/false);
  } catch (const Error& error) {
    throw Error(Stage::Cache, "",
                fmt::format("{} has schema version older than {} and cannot be migrated: {}", path, kSchemaVersion,
                            error.what()));
  }
}

Cache::Cache(Cache&& other) noexcept : path_(std::move(other.path_)), db_(other.db_) { other.db_ = nullptr; }

Cache& Cache::operator=(Cache&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    path_ = std::move(other.path_);
    db_ = other.db_;
    other.db_ = nullptr;
  }
  return *this;
}

Cache::~Cache() { sqlite3_close_v2(db_); }

std::optional<CachedKernel> Cache::find_kernel(const std::string& cubin_key) const {
  Statement select(db_, fmt::format("SELECT {} FROM kernels WHERE cubin_key = ?1", kernel_columns(true)), path_);
  select.bind(1, cubin_key);
  if (!select.step()) return std::nullopt;
  return read_kernel(select, path_);
}

void Cache::put_kernels(const std::vector<CachedKernel>& kernels) {
  // Checked before the transaction opens: a rejected batch writes nothing.
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    if (kernels[i].cubin_key.empty())
      throw Error(Stage::Cache, "", fmt::format("kernel {} of {} ({}) has an empty cubin key; nothing written to {}",
                                                i, kernels.size(), kernels[i].config.name(), path_));
    if (kernels[i].cubin.empty())
      throw Error(Stage::Cache, "", fmt::format("kernel '{}' has an empty cubin; nothing written to {}",
                                                kernels[i].cubin_key, path_));
  }
  const std::string created_at = utc_now();
  Transaction transaction(db_, path_);
  Statement insert(db_,
                   fmt::format("INSERT OR REPLACE INTO kernels ({}) VALUES ({})", kernel_columns(true),
                               placeholders(kKernelColumnCount)),
                   path_);
  for (const CachedKernel& kernel : kernels) {
    insert.reset();
    insert.bind(1, kernel.cubin_key).bind(2, kernel.config.name());
    const int after_config = bind_config(insert, 3, kernel.config);
    insert.bind(after_config, kernel.nvrtc_version).bind(after_config + 1, kernel.template_hash);
    insert.bind_blob(after_config + 2, kernel.cubin);
    const int after_resources = bind_resources(insert, after_config + 3, kernel.resources);
    insert.bind(after_resources, kernel.compile_ms).bind(after_resources + 1, created_at);
    insert.run();
  }
  transaction.commit();
}

std::optional<TuningRecord> Cache::find_tuning(const std::string& tuning_key, bool with_measurements) const {
  Statement select(db_, fmt::format("SELECT {} FROM tunings WHERE tuning_key = ?1", tuning_columns()), path_);
  select.bind(1, tuning_key);
  if (!select.step()) return std::nullopt;
  TuningRecord record = read_tuning(select, path_);
  if (with_measurements) {
    Statement rows(db_,
                   fmt::format("SELECT {} FROM measurements WHERE tuning_key = ?1 ORDER BY ordinal",
                               measurement_columns()),
                   path_);
    rows.bind(1, tuning_key);
    while (rows.step()) record.measurements.push_back(read_measurement(rows, path_));
  }
  return record;
}

void Cache::put_tuning(const TuningRecord& record) {
  if (record.tuning_key.empty())
    throw Error(Stage::Cache, "", fmt::format("tuning of '{}' has an empty tuning key; nothing written to {}",
                                              record.problem_key, path_));
  const std::string created_at = utc_now();
  Transaction transaction(db_, path_);
  // The old row's measurements go with it through ON DELETE CASCADE.
  Statement remove(db_, "DELETE FROM tunings WHERE tuning_key = ?1", path_);
  remove.bind(1, record.tuning_key).run();

  Statement insert(db_,
                   fmt::format("INSERT INTO tunings ({}) VALUES ({})", tuning_columns(),
                               placeholders(kTuningColumnCount)),
                   path_);
  insert.bind(1, record.tuning_key).bind(2, record.device_key).bind(3, record.problem_key);
  insert.bind(4, record.winner.name());
  const int after_winner = bind_config(insert, 5, record.winner);
  insert.bind(after_winner, record.winner_cubin_key).bind(after_winner + 1, record.time_ms);
  insert.bind(after_winner + 2, record.tflops).bind(after_winner + 3, record.tune_seconds);
  insert.bind(after_winner + 4, created_at).bind(after_winner + 5, record.space_hash);
  insert.run();

  Statement measure(db_,
                    fmt::format("INSERT INTO measurements ({}) VALUES ({})", measurement_columns(),
                                placeholders(kMeasurementColumnCount)),
                    path_);
  for (std::size_t ordinal = 0; ordinal < record.measurements.size(); ++ordinal) {
    const Measurement& m = record.measurements[ordinal];
    measure.reset();
    measure.bind(1, record.tuning_key).bind(2, static_cast<long long>(ordinal)).bind(3, m.config.name());
    const int after_config = bind_config(measure, 4, m.config);
    measure.bind(after_config, m.cubin_key).bind(after_config + 1, measurement_status_name(m.status));
    measure.bind(after_config + 2, m.time_ms).bind(after_config + 3, m.spread_ms);
    measure.bind(after_config + 4, m.tflops).bind(after_config + 5, m.o_rel_error);
    measure.bind(after_config + 6, m.reason);
    bind_resources(measure, after_config + 7, m.resources);
    measure.run();
  }
  transaction.commit();
}

std::vector<TuningRecord> Cache::list_tunings() const {
  Statement select(db_, fmt::format("SELECT {} FROM tunings ORDER BY tuning_key", tuning_columns()), path_);
  std::vector<TuningRecord> records;
  while (select.step()) records.push_back(read_tuning(select, path_));
  return records;
}

std::vector<CachedKernel> Cache::list_kernels() const {
  Statement select(db_, fmt::format("SELECT {} FROM kernels ORDER BY cubin_key", kernel_columns(false)), path_);
  std::vector<CachedKernel> kernels;
  while (select.step()) kernels.push_back(read_kernel(select, path_));
  return kernels;
}

namespace {

// ATTACH and DETACH cannot run inside a transaction, so the attachment brackets the import's one.
class Attachment {
 public:
  Attachment(sqlite3* db, const std::string& other_path, const std::string& path) : db_(db) {
    Statement attach(db, "ATTACH DATABASE ?1 AS other", path);
    attach.bind(1, file_uri(other_path, true));
    try {
      attach.run();
    } catch (const Error&) {
      const bool foreign = sqlite3_errcode(db) == SQLITE_NOTADB;
      throw Error(Stage::Cache, "sqlite3_step",
                  fmt::format("cannot import {}: {}{}", other_path, foreign ? "not a SQLite database: " : "",
                              sqlite3_errmsg(db)));
    }
  }
  ~Attachment() { sqlite3_exec(db_, "DETACH DATABASE other", nullptr, nullptr, nullptr); }
  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;

 private:
  sqlite3* db_;
};

}  // namespace

ImportStats Cache::import_from(const std::string& other_path) {
  std::error_code error;
  if (!fs::is_regular_file(other_path, error))
    throw Error(Stage::Cache, "", fmt::format("cannot import {}: no such cache file", other_path));
  Attachment attachment(db_, other_path, path_);

  const int version = query_int(db_, "PRAGMA other.user_version", path_);
  if (version != kSchemaVersion)
    throw Error(Stage::Cache, "",
                fmt::format("cannot import {}: its schema version is {}, this build reads version {}{}", other_path,
                            version, kSchemaVersion,
                            version < kSchemaVersion ? " (open it once with this build to migrate it)" : ""));

  ImportStats stats;
  Transaction transaction(db_, path_);
  const int their_kernels = query_int(db_, "SELECT count(*) FROM other.kernels", path_);
  const std::string kernels = kernel_columns(true);
  Statement(db_, fmt::format("INSERT OR IGNORE INTO main.kernels ({0}) SELECT {0} FROM other.kernels", kernels), path_)
      .run();
  stats.kernels_added = sqlite3_changes(db_);
  stats.kernels_skipped = their_kernels - stats.kernels_added;

  // The keys to take from the other file: new ones, and ours that are strictly older. ISO 8601 UTC
  // text compares in time order.
  sqlite::exec(db_,
               "CREATE TEMP TABLE fa2_import_keys (tuning_key TEXT PRIMARY KEY, replaces INTEGER NOT NULL);"
               "INSERT INTO temp.fa2_import_keys SELECT o.tuning_key, m.tuning_key IS NOT NULL "
               "FROM other.tunings o LEFT JOIN main.tunings m ON m.tuning_key = o.tuning_key "
               "WHERE m.tuning_key IS NULL OR o.created_at > m.created_at;",
               path_);
  const int their_tunings = query_int(db_, "SELECT count(*) FROM other.tunings", path_);
  stats.tunings_replaced = query_int(db_, "SELECT count(*) FROM temp.fa2_import_keys WHERE replaces", path_);
  stats.tunings_added = query_int(db_, "SELECT count(*) FROM temp.fa2_import_keys WHERE NOT replaces", path_);
  stats.tunings_kept = their_tunings - stats.tunings_added - stats.tunings_replaced;

  const std::string tunings = tuning_columns();
  const std::string measurements = measurement_columns();
  const std::string copy = fmt::format(
      "DELETE FROM main.tunings WHERE tuning_key IN (SELECT tuning_key FROM temp.fa2_import_keys WHERE replaces);"
      "INSERT INTO main.tunings ({0}) SELECT {0} FROM other.tunings "
      "WHERE tuning_key IN (SELECT tuning_key FROM temp.fa2_import_keys);"
      "INSERT INTO main.measurements ({1}) SELECT {1} FROM other.measurements "
      "WHERE tuning_key IN (SELECT tuning_key FROM temp.fa2_import_keys);"
      "DROP TABLE temp.fa2_import_keys;",
      tunings, measurements);
  sqlite::exec(db_, copy.c_str(), path_);
  transaction.commit();
  return stats;
}

void Cache::export_to(const std::string& destination) const {
  std::error_code error;
  if (fs::exists(fs::symlink_status(destination, error)))
    throw Error(Stage::Cache, "", fmt::format("refusing to export to {}: it already exists", destination));
  const fs::path parent = fs::absolute(destination).parent_path();
  if (!fs::create_directories(parent, error) && error)
    throw Error(Stage::Cache, "std::filesystem::create_directories",
                fmt::format("cannot create {} to export {}: {}", parent.string(), path_, error.message()));
  Statement vacuum(db_, "VACUUM INTO ?1", path_);
  vacuum.bind(1, destination).run();
}

void Cache::clear() {
  Transaction transaction(db_, path_);
  sqlite::exec(db_, "DELETE FROM measurements; DELETE FROM tunings; DELETE FROM kernels;", path_);
  transaction.commit();
}

CacheInfo Cache::info() const {
  CacheInfo info;
  info.path = path_;
  std::error_code error;
  for (const std::string& file : {path_, path_ + "-wal"}) {
    const auto size = fs::file_size(file, error);
    if (!error) info.bytes += static_cast<long long>(size);
  }
  info.schema_version = query_int(db_, "PRAGMA user_version", path_);
  info.kernels = query_int(db_, "SELECT count(*) FROM kernels", path_);
  info.tunings = query_int(db_, "SELECT count(*) FROM tunings", path_);
  info.measurements = query_int(db_, "SELECT count(*) FROM measurements", path_);
  return info;
}

}  // namespace fa2
