// The cache file's schema: its versions and the append-only migrations between them, and the small
// queries opening a file needs. Private to autotune/cache.cpp (and the tests that build older files).
#pragma once

#include <string>

struct sqlite3;

namespace fa2::cache_schema {

// The first column of the first row of `sql`; throws fa2::Error(Stage::Cache) when there is none.
int query_int(sqlite3* db, const std::string& sql, const std::string& path);

// Throws fa2::Error(Stage::Cache), leaving the file alone, when `version` is negative or newer than
// Cache::kSchemaVersion.
void require_newer_or_equal(int version, const std::string& path);

// Brings the schema to target_version (the current one unless a test builds an older file) in one
// transaction. The version is read again under the write lock, because another process may have migrated
// the file between our check and BEGIN. Foreign keys must be off (a step may rebuild a table).
void migrate(sqlite3* db, const std::string& path, int target_version);

}  // namespace fa2::cache_schema
