// Private to the cache: a thin RAII layer over sqlite3 so that every return code is checked and every
// failure becomes one fa2::Error(Stage::Cache) that names the database path and SQLite's own message.
#pragma once

#include <sqlite3.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace fa2::sqlite {

// The first line of a statement is enough to tell which one failed without flooding the message.
inline std::string statement_summary(const char* sql) {
  std::string text = sql ? sql : "";
  const std::size_t start = text.find_first_not_of(" \n\t");
  if (start == std::string::npos) return {};
  text = text.substr(start, text.find('\n', start) - start);
  return text.size() > 80 ? text.substr(0, 77) + "..." : text;
}

[[noreturn]] inline void fail(sqlite3* db, const char* api_call, const std::string& path, const std::string& doing) {
  const char* detail = db ? sqlite3_errmsg(db) : "out of memory";
  throw Error(Stage::Cache, api_call, doing + " on " + path + ": " + detail);
}

// A moved-from Cache has no handle; saying so beats SQLite's SQLITE_MISUSE.
inline void require_open(sqlite3* db, const std::string& path) {
  if (!db) throw Error(Stage::Cache, "", "the cache of " + path + " is closed (its Cache was moved from)");
}

// Runs SQL text that returns no rows (schema steps, PRAGMA assignments, BEGIN/COMMIT).
inline void exec(sqlite3* db, const char* sql, const std::string& path) {
  require_open(db, path);
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string detail = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    throw Error(Stage::Cache, "sqlite3_exec", "`" + statement_summary(sql) + "` failed on " + path + ": " + detail);
  }
}

class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::string& path) : db_(db), path_(path) {
    require_open(db, path);
    if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK)
      fail(db, "sqlite3_prepare_v2", path, "preparing `" + statement_summary(sql.c_str()) + "`");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, int value) { return check_bind(sqlite3_bind_int(stmt_, index, value)); }
  Statement& bind(int index, long long value) { return check_bind(sqlite3_bind_int64(stmt_, index, value)); }
  Statement& bind(int index, bool value) { return bind(index, value ? 1 : 0); }
  // SQLite stores NaN as NULL anyway; binding NULL explicitly keeps that visible (and column_double
  // reads it back as NaN), so a NaN error metric of a broken candidate can still be recorded.
  Statement& bind(int index, double value) {
    if (std::isnan(value)) return check_bind(sqlite3_bind_null(stmt_, index));
    return check_bind(sqlite3_bind_double(stmt_, index, value));
  }
  Statement& bind(int index, const std::string& text) {
    return check_bind(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Statement& bind(int index, const char* text) { return bind(index, std::string(text)); }
  // Not copied (cubins are large): `bytes` must outlive the next step(). An empty vector binds an empty
  // blob, not NULL, which a null data pointer would otherwise turn it into.
  Statement& bind_blob(int index, const std::vector<char>& bytes) {
    if (bytes.empty()) return check_bind(sqlite3_bind_zeroblob(stmt_, index, 0));
    return check_bind(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC));
  }

  // True while there is a row to read, false once the statement is done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, "sqlite3_step", path_, "`" + statement_summary(sqlite3_sql(stmt_)) + "` failed");
  }
  // Steps a statement that returns no rows.
  void run() {
    if (step())
      throw Error(Stage::Cache, "sqlite3_step",
                  "`" + statement_summary(sqlite3_sql(stmt_)) + "` returned a row where none was expected on " + path_);
  }
  // Ready for the next set of bindings; the error of a failed step was already reported by step().
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  bool column_is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  int column_int(int column) const { return sqlite3_column_int(stmt_, column); }
  long long column_int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  double column_double(int column) const {
    return column_is_null(column) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(stmt_, column);
  }
  std::string column_text(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return text ? std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
  }
  std::vector<char> column_blob(int column) const {
    const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);  // after column_blob, as SQLite requires
    return bytes ? std::vector<char>(bytes, bytes + size) : std::vector<char>();
  }

 private:
  Statement& check_bind(int rc) {
    if (rc != SQLITE_OK) fail(db_, "sqlite3_bind", path_, "binding `" + statement_summary(sqlite3_sql(stmt_)) + "`");
    return *this;
  }

  sqlite3* db_;
  const std::string& path_;  // the Cache's path, which outlives every statement it prepares
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE takes the write lock up front, so a writer waits in the busy handler at the start
// instead of failing with SQLITE_BUSY halfway through. Rolls back unless commit() was reached, which
// makes "roll back on any failure, then rethrow" the default path of every exception.
class Transaction {
 public:
  Transaction(sqlite3* db, const std::string& path) : db_(db), path_(path) { exec(db, "BEGIN IMMEDIATE", path); }
  ~Transaction() {
    // SQLite may already have rolled back on its own (e.g. SQLITE_FULL); a second ROLLBACK would fail.
    if (!committed_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    exec(db_, "COMMIT", path_);
    committed_ = true;
  }

 private:
  sqlite3* db_;
  const std::string& path_;
  bool committed_ = false;
};

}  // namespace fa2::sqlite
