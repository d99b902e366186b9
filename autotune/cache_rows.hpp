// The row codec of the kernel cache's SQLite tables (autotune/cache.cpp): the column lists that inserts,
// selects and the import's copies share, so their order is written once, and the binding and reading of a
// config, its resources and the three kinds of rows in that order. Internal to the cache.
#pragma once

#include <string>

#include "autotune/cache.hpp"
#include "autotune/sqlite_statement.hpp"

namespace fa2::cache_rows {

constexpr int kConfigColumnCount = 14;
constexpr int kResourceColumnCount = 5;
constexpr int kKernelColumnCount = 7 + kConfigColumnCount + kResourceColumnCount;
constexpr int kTuningColumnCount = 10 + kConfigColumnCount;
constexpr int kMeasurementColumnCount = 10 + kConfigColumnCount + kResourceColumnCount;

std::string kernel_columns(bool with_cubin);
std::string tuning_columns();
std::string measurement_columns();
std::string placeholders(int count);  // "?1, ?2, ..., ?count"

// UTC with milliseconds, e.g. 2026-11-24T23:50:01.123Z: sorts as text in time order, which the
// import relies on to decide which of two tunings is newer.
std::string utc_now();

// Of two layers' tunings of one key, whether `candidate` replaces `held`: the newer (ISO 8601 UTC text
// compares in time order; a tie keeps the earlier layer's), as import decides.
bool newer_tuning(const TuningRecord& held, const TuningRecord& candidate);

// Bind the config (resources) columns starting at `index`; return the next free index.
int bind_config(sqlite::Statement& statement, int index, const TileConfig& config);
int bind_resources(sqlite::Statement& statement, int index, const ResourceUsage& resources);

// Read one row selected with kernel_columns(), tuning_columns() or measurement_columns(). A value no parser
// knows throws fa2::Error(Stage::Cache) naming the column, the row and `path`.
CachedKernel read_kernel(const sqlite::Statement& row, const std::string& path);
TuningRecord read_tuning(const sqlite::Statement& row, const std::string& path);
Measurement read_measurement(const sqlite::Statement& row, const std::string& path);

}  // namespace fa2::cache_rows
