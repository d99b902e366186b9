#include "autotune/cache_rows.hpp"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <optional>

#include "common/error.hpp"

namespace fa2::cache_rows {

using sqlite::Statement;

namespace {

// Column lists shared by inserts, selects and the import's copies, so their order is written once.
constexpr const char* kConfigColumns =
    "head_dim, dtype, causal, block_m, block_n, warps, stages, arch, scheme, blocks_per_sm, family, deterministic, "
    "splits, variant";
constexpr const char* kResourceColumns =
    "registers, spill_store_bytes, spill_load_bytes, stack_frame_bytes, static_smem_bytes";

}  // namespace

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

bool newer_tuning(const TuningRecord& held, const TuningRecord& candidate) {
  return candidate.created_at > held.created_at;
}

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
  statement.bind(index++, config.splits);
  statement.bind(index++, variant_tag(config.variant));
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

namespace {

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
  config.splits = statement.column_int(column++);
  const std::string variant = statement.column_text(column++);
  config.variant = parsed_or_throw(parse_variant_tag(variant), "variant", variant, row, path);
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

}  // namespace

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

}  // namespace fa2::cache_rows
