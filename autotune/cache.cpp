#include "autotune/cache.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <system_error>

#include "autotune/cache_file.hpp"
#include "autotune/cache_rows.hpp"
#include "autotune/cache_schema.hpp"
#include "autotune/sqlite_statement.hpp"
#include "common/error.hpp"

namespace fa2 {

namespace fs = std::filesystem;
using cache_rows::kernel_columns;
using cache_rows::tuning_columns;
using cache_rows::measurement_columns;
using cache_rows::placeholders;
using cache_rows::kKernelColumnCount;
using cache_rows::kTuningColumnCount;
using cache_rows::kMeasurementColumnCount;
using cache_rows::utc_now;
using cache_rows::newer_tuning;
using cache_rows::bind_config;
using cache_rows::bind_resources;
using cache_rows::read_kernel;
using cache_rows::read_tuning;
using cache_rows::read_measurement;
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

Cache::Cache(Cache&& other) noexcept
    : layers_(std::move(other.layers_)), write_layer_(other.write_layer_), skipped_(std::move(other.skipped_)) {
  other.layers_.clear();
  other.write_layer_ = -1;
}

Cache& Cache::operator=(Cache&& other) noexcept {
  if (this != &other) {
    close();
    layers_ = std::move(other.layers_);
    write_layer_ = other.write_layer_;
    skipped_ = std::move(other.skipped_);
    other.layers_.clear();
    other.write_layer_ = -1;
  }
  return *this;
}

Cache::~Cache() { close(); }

void Cache::close() {
  for (Layer& layer : layers_) sqlite3_close_v2(layer.db);
  layers_.clear();
  write_layer_ = -1;
}

void Cache::add_layer(const std::string& path, sqlite3* db, bool writable) {
  if (writable) write_layer_ = static_cast<int>(layers_.size());
  layers_.push_back({path, db, writable});
}

const std::string& Cache::path() const {
  static const std::string closed = "(a closed cache)";
  if (layers_.empty()) return closed;
  return layers_[write_layer_ >= 0 ? write_layer_ : 0].path;
}

std::string Cache::describe() const {
  std::string text;
  for (const Layer& layer : layers_)
    text += fmt::format("{}{}{}", text.empty() ? "" : ", ", layer.path,
                        layer.writable || layers_.size() == 1 ? "" : " (read-only)");
  if (layers_.size() == 1 && !layers_[0].writable) text += " (read-only)";
  return text.empty() ? path() : text;
}

std::vector<CacheLayer> Cache::layers() const {
  std::vector<CacheLayer> result;
  for (const Layer& layer : layers_) result.push_back({layer.path, layer.writable});
  return result;
}

sqlite3* Cache::write_db(const char* doing) const {
  if (layers_.empty()) sqlite::require_open(nullptr, path());
  if (write_layer_ < 0)
    throw Error(Stage::Cache, "",
                fmt::format("cannot {}: no layer of the cache {} may be written by this process (nothing was written; "
                            "put a writable cache file or directory in FA2JIT_CACHE_PATH, or pass one)",
                            doing, describe()));
  return layers_[write_layer_].db;
}

std::optional<CachedKernel> Cache::find_kernel(const std::string& cubin_key) const {
  // The writable layer first: a cubin recompiled because a read-only layer's row was rejected is found there.
  for (const Layer* layer : layers_in(LookupOrder::writable_first)) {
    Statement select(layer->db, fmt::format("SELECT {} FROM kernels WHERE cubin_key = ?1", kernel_columns(true)),
                     layer->path);
    select.bind(1, cubin_key);
    if (select.step()) return read_kernel(select, layer->path);
  }
  return std::nullopt;
}

void Cache::put_kernels(const std::vector<CachedKernel>& kernels) {
  sqlite3* const db_ = write_db("store kernels");
  const std::string& path_ = path();
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
  // The newest of the layers' rows: a class tuned again here (its shipped tuning stale after an upgrade)
  // is then found, not the stale row again.
  std::optional<TuningRecord> found;
  const Layer* found_in = nullptr;
  for (const Layer* layer : layers_in(LookupOrder::listed)) {
    Statement select(layer->db, fmt::format("SELECT {} FROM tunings WHERE tuning_key = ?1", tuning_columns()),
                     layer->path);
    select.bind(1, tuning_key);
    if (!select.step()) continue;
    TuningRecord record = read_tuning(select, layer->path);
    if (!found || newer_tuning(*found, record)) {
      found = std::move(record);
      found_in = layer;
    }
  }
  if (found && with_measurements) {
    Statement rows(found_in->db,
                   fmt::format("SELECT {} FROM measurements WHERE tuning_key = ?1 ORDER BY ordinal",
                               measurement_columns()),
                   found_in->path);
    rows.bind(1, tuning_key);
    while (rows.step()) found->measurements.push_back(read_measurement(rows, found_in->path));
  }
  return found;
}

void Cache::put_tuning(const TuningRecord& record) {
  sqlite3* const db_ = write_db("store a tuning");
  const std::string& path_ = path();
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

// Every layer's rows (layers in the given order), ordered by key; of a key in several layers, the row a
// lookup finds: the first, unless `replaces(held, candidate)` prefers a later one.
template <typename Row, typename LayerPointers, typename ReadRow, typename Replaces>
std::vector<Row> union_by_key(const LayerPointers& layers, const std::string& sql, ReadRow read_row,
                              std::string Row::*key, Replaces replaces) {
  std::map<std::string, Row> rows;
  for (const auto* layer : layers) {
    Statement select(layer->db, sql, layer->path);
    while (select.step()) {
      Row row = read_row(select, layer->path);
      auto [held, inserted] = rows.emplace(row.*key, row);
      if (!inserted && replaces(held->second, row)) held->second = std::move(row);
    }
  }
  std::vector<Row> result;
  for (auto& [unused, row] : rows) result.push_back(std::move(row));
  return result;
}

std::vector<const Cache::Layer*> Cache::layers_in(LookupOrder order) const {
  if (layers_.empty()) sqlite::require_open(nullptr, path());
  const int first = order == LookupOrder::writable_first ? write_layer_ : -1;
  std::vector<const Layer*> result;
  if (first >= 0) result.push_back(&layers_[first]);
  for (int i = 0; i < static_cast<int>(layers_.size()); ++i)
    if (i != first) result.push_back(&layers_[i]);
  return result;
}

std::vector<TuningRecord> Cache::list_tunings() const {
  return union_by_key<TuningRecord>(layers_in(LookupOrder::listed),
                                    fmt::format("SELECT {} FROM tunings", tuning_columns()), read_tuning,
                                    &TuningRecord::tuning_key, newer_tuning);
}

std::vector<CachedKernel> Cache::list_kernels() const {
  return union_by_key<CachedKernel>(layers_in(LookupOrder::writable_first),
                                    fmt::format("SELECT {} FROM kernels", kernel_columns(false)), read_kernel,
                                    &CachedKernel::cubin_key, [](const CachedKernel&, const CachedKernel&) {
                                      return false;
                                    });
}

namespace {

// ATTACH and DETACH cannot run inside a transaction, so the attachment brackets the import's one.
class Attachment {
 public:
  Attachment(sqlite3* db, const std::string& other_path, const std::string& path) : db_(db) {
    Statement attach(db, "ATTACH DATABASE ?1 AS other", path);
    attach.bind(1, cache_file::read_only_uri(other_path));
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
  sqlite3* const db_ = write_db(fmt::format("import {}", other_path).c_str());
  const std::string& path_ = path();
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
  if (layers_.empty()) sqlite::require_open(nullptr, path());
  const std::string& path_ = layers_[0].path;
  std::error_code error;
  if (fs::exists(fs::symlink_status(destination, error)))
    throw Error(Stage::Cache, "", fmt::format("refusing to export to {}: it already exists", destination));
  const fs::path parent = fs::absolute(destination).parent_path();
  if (!fs::create_directories(parent, error) && error)
    throw Error(Stage::Cache, "std::filesystem::create_directories",
                fmt::format("cannot create {} to export {}: {}", parent.string(), path_, error.message()));
  // Built under a temporary name and linked into place whole: a failed export leaves nothing behind, and
  // the destination is never replaced (link fails when it exists).
  std::string temp = destination + ".exporting-XXXXXX";
  const int fd = ::mkstemp(temp.data());  // an empty file, which VACUUM INTO accepts
  if (fd < 0)
    throw Error(Stage::Cache, "mkstemp", fmt::format("cannot create a file beside {} to export {}", destination, path_));
  ::close(fd);
  struct Remover {
    std::string temp;
    ~Remover() {
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((temp + suffix).c_str());
    }
  } remover{temp};
  Statement vacuum(layers_[0].db, "VACUUM INTO ?1", path_);
  vacuum.bind(1, temp).run();
  if (layers_.size() > 1) {
    // The other layers' rows join the first's; of a tuning in two layers the newer stays, as a lookup finds.
    {
      Cache copy = Cache::open(temp);
      for (std::size_t i = 1; i < layers_.size(); ++i) copy.import_from(layers_[i].path);
    }
    // Back to a rollback journal, as VACUUM INTO writes: the file reads anywhere with nothing beside it.
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(temp.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
    const int mode_rc = rc == SQLITE_OK ? sqlite3_exec(raw, "PRAGMA journal_mode = DELETE", nullptr, nullptr, nullptr) : rc;
    const std::string detail = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close_v2(raw);
    if (mode_rc != SQLITE_OK)
      throw Error(Stage::Cache, "sqlite3_exec", fmt::format("exporting to {}: {}", destination, detail));
  }
  if (::link(temp.c_str(), destination.c_str()) != 0)
    throw Error(Stage::Cache, "link",
                fmt::format("cannot export to {}: {}", destination,
                            errno == EEXIST ? "it already exists" : std::strerror(errno)));
}

void Cache::clear() {
  sqlite3* const db_ = write_db("clear the cache");
  const std::string& path_ = path();
  Transaction transaction(db_, path_);
  sqlite::exec(db_, "DELETE FROM measurements; DELETE FROM tunings; DELETE FROM kernels;", path_);
  transaction.commit();
}

std::vector<CacheInfo> Cache::layer_info() const {
  if (layers_.empty()) sqlite::require_open(nullptr, path());
  std::vector<CacheInfo> result;
  for (const Layer& layer : layers_) {
    CacheInfo info;
    info.path = layer.path;
    std::error_code error;
    for (const std::string& file : {layer.path, layer.path + "-wal"}) {
      const auto size = fs::file_size(file, error);
      if (!error) info.bytes += static_cast<long long>(size);
    }
    info.schema_version = query_int(layer.db, "PRAGMA user_version", layer.path);
    info.kernels = query_int(layer.db, "SELECT count(*) FROM kernels", layer.path);
    info.tunings = query_int(layer.db, "SELECT count(*) FROM tunings", layer.path);
    info.measurements = query_int(layer.db, "SELECT count(*) FROM measurements", layer.path);
    result.push_back(std::move(info));
  }
  return result;
}

CacheInfo Cache::info() const {
  const std::vector<CacheInfo> layers = layer_info();
  if (layers.size() == 1) return layers[0];
  CacheInfo total;
  total.path = describe();
  total.schema_version = layers[0].schema_version;
  for (const CacheInfo& layer : layers) {
    total.bytes += layer.bytes;
    total.kernels += layer.kernels;
    total.tunings += layer.tunings;
    total.measurements += layer.measurements;
  }
  return total;
}

}  // namespace fa2
