// Shared by the cache suites: a private temp dir, environment guards, raw SQLite that does not go through
// the code under test, and cache rows with every field set to a non-default value.
#pragma once

#include <doctest/doctest.h>

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "autotune/cache.hpp"
#include "common/error.hpp"

namespace fa2::cache_test {

namespace fs = std::filesystem;
using fa2::Cache;
using fa2::CachedKernel;
using fa2::Measurement;
using fa2::MeasurementStatus;
using fa2::TuningRecord;

// Takes a current file back to schema v4's columns (v5 added the built-in variants).
inline constexpr const char* kDropV5Columns =
    "ALTER TABLE kernels DROP COLUMN variant; ALTER TABLE tunings DROP COLUMN variant; "
    "ALTER TABLE measurements DROP COLUMN variant; ";

// Then back to schema v3's columns (v4 added the kvc family's splits); its CHECKs stay v4's.
inline constexpr const char* kDropV4Columns =
    "ALTER TABLE kernels DROP COLUMN variant; ALTER TABLE tunings DROP COLUMN variant; "
    "ALTER TABLE measurements DROP COLUMN variant; "
    "ALTER TABLE kernels DROP COLUMN splits; ALTER TABLE tunings DROP COLUMN splits; "
    "ALTER TABLE measurements DROP COLUMN splits; ";

// Then back to schema v2 (before kernel families): the columns v3 added, dropped.
inline constexpr const char* kDropV3Columns =
    "ALTER TABLE kernels DROP COLUMN family; ALTER TABLE kernels DROP COLUMN deterministic; "
    "ALTER TABLE tunings DROP COLUMN family; ALTER TABLE tunings DROP COLUMN deterministic; "
    "ALTER TABLE measurements DROP COLUMN family; ALTER TABLE measurements DROP COLUMN deterministic; ";

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/fa2jit_cache_test_XXXXXX";
    const char* made = ::mkdtemp(pattern);
    REQUIRE_MESSAGE(made != nullptr, "mkdtemp failed under /tmp");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Sets (or, with nullopt, unsets) one environment variable and restores what was there before.
class EnvGuard {
 public:
  EnvGuard(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value)
      ::setenv(name_.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ~EnvGuard() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read ", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE_MESSAGE(out.good(), "cannot write ", path);
}

// The message of the fa2::Error(Stage::Cache) that `action` throws; fails the test if it throws none.
inline std::string cache_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Cache);
    return error.what();
  }
  FAIL("expected a fa2::Error, none was thrown");
  return {};
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Raw SQLite, independent of the code under test.
inline void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open(path.c_str(), &db);
  char* message = nullptr;
  const int exec_rc = rc == SQLITE_OK ? sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) : rc;
  const std::string detail = message ? message : sqlite3_errmsg(db);
  sqlite3_free(message);
  sqlite3_close(db);
  REQUIRE_MESSAGE(exec_rc == SQLITE_OK, sql, " on ", path, ": ", detail);
}

inline std::string raw_text(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string result;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
    if (const auto* text = sqlite3_column_text(stmt, 0)) result = reinterpret_cast<const char*>(text);
  const std::string error = sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  INFO(sql, " on ", path, ": ", error);
  return result;
}

inline void check_integrity(const std::string& path) { CHECK(raw_text(path, "PRAGMA integrity_check") == "ok"); }

inline fa2::TileConfig config_variant(int variant) {
  fa2::TileConfig config;
  config.head_dim = 64 + 32 * (variant % 3);
  config.dtype = variant % 2 ? fa2::DType::fp16 : fa2::DType::bf16;
  config.causal = variant % 2 == 0;
  config.block_m = 64 << (variant % 2);
  config.block_n = 32 << (variant % 3);
  config.warps = 4 << (variant % 2);
  config.stages = 1 + variant % 2;
  config.arch = variant % 2 ? fa2::Arch::sm_80 : fa2::Arch::sm_90a;
  config.scheme = variant % 3 == 2 ? fa2::Scheme::wgmma_overlap : fa2::Scheme::mma_sync;
  config.blocks_per_sm = 1 + variant % 2;
  return config;
}

inline CachedKernel make_kernel(const std::string& key, int variant = 0, std::size_t cubin_bytes = 64) {
  CachedKernel kernel;
  kernel.cubin_key = key;
  kernel.config = config_variant(variant);
  kernel.nvrtc_version = "13.0";
  kernel.template_hash = "3f2a9c0011223344";
  kernel.cubin.resize(cubin_bytes);
  for (std::size_t i = 0; i < cubin_bytes; ++i) kernel.cubin[i] = static_cast<char>((i * 31 + variant) % 251);
  kernel.resources = {168 + variant, 8, 12, 24, 1024};
  kernel.compile_ms = 1234.5 + variant;
  return kernel;
}

inline Measurement make_measurement(MeasurementStatus status, int variant) {
  Measurement m;
  m.config = config_variant(variant);
  m.cubin_key = status == MeasurementStatus::compile_failed ? "" : "cubin-" + std::to_string(variant);
  m.status = status;
  if (status == MeasurementStatus::ok) {
    m.time_ms = 0.8125;
    m.spread_ms = 0.0125;
    m.tflops = 512.25;
    m.o_rel_error = 1.5e-3;
  } else {
    m.reason = std::string("candidate ") + fa2::measurement_status_name(status);
  }
  m.resources = {200 + variant, variant, 2 * variant, 16, 0};
  return m;
}

inline TuningRecord make_tuning(const std::string& key, const std::vector<Measurement>& measurements = {}) {
  TuningRecord record;
  record.tuning_key = key;
  record.device_key = "NVIDIA H100 80GB HBM3|sm90|132sm|drv13000";
  record.problem_key = key + " problem";
  record.winner = config_variant(3);  // two blocks per SM: a non-default value survives every copy
  record.space_hash = "0123456789abcdef";
  record.winner_cubin_key = "winner-cubin";
  record.time_ms = 0.75;
  record.tflops = 600.5;
  record.tune_seconds = 42.25;
  record.measurements = measurements;
  return record;
}

inline void check_same_config(const fa2::TileConfig& a, const fa2::TileConfig& b) {
  CHECK(a.name() == b.name());
  CHECK(a == b);
}

inline void check_same_resources(const fa2::ResourceUsage& a, const fa2::ResourceUsage& b) {
  CHECK(a.registers == b.registers);
  CHECK(a.spill_store_bytes == b.spill_store_bytes);
  CHECK(a.spill_load_bytes == b.spill_load_bytes);
  CHECK(a.stack_frame_bytes == b.stack_frame_bytes);
  CHECK(a.static_smem_bytes == b.static_smem_bytes);
}

// 2026-11-24T23:50:01.123Z
inline bool is_utc_millis(const std::string& text) {
  if (text.size() != 24) return false;
  const std::string shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(text[i])) : text[i] != shape[i]) return false;
  return true;
}

}  // namespace fa2::cache_test
