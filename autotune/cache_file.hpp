// Private to the cache: opening one cache file. Read-write opening creates a missing file race-free (it is
// built under a temporary name and linked into place whole, so no process ever sees a half-made cache) and
// switches an older file to WAL with a bounded retry; read-only opening never writes the file or beside it
// (a WAL file in a directory this process may not write is opened immutable).
#pragma once

#include <string>

struct sqlite3;

namespace fa2::cache_file {

struct OpenedFile {
  std::string path;
  sqlite3* db = nullptr;  // the caller's to close
  bool writable = false;
};

// Opens `path` read-write, creating it and its directory when missing, migrating it to the current schema.
// Throws fa2::Error(Stage::Cache) naming the path when it cannot be written (or is not an fa2jit cache).
OpenedFile open_read_write(const std::string& path);

// Opens an existing `path` for reading only. Throws fa2::Error(Stage::Cache) naming the path when it is
// missing, not an fa2jit cache, of another schema version, or unreadable.
OpenedFile open_read_only(const std::string& path);

// Whether this process may write `path`, or create it (and its directory): the file and its directory,
// which must take the WAL's -wal and -shm files. Judged with the effective ids and capabilities.
bool can_write(const std::string& path);

// The URI SQLite reads an existing cache file through without writing: mode=ro, plus immutable=1 for a WAL
// file whose directory cannot take a -shm file. Throws when such a file has uncheckpointed changes in its
// -wal file (immutable would not see them).
std::string read_only_uri(const std::string& path);

}  // namespace fa2::cache_file
