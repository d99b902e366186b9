// Opening cache files and stacking them into layers (autotune/cache_file.hpp, Cache::open*).
#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include "autotune/cache.hpp"
#include "autotune/cache_file.hpp"
#include "autotune/cache_schema.hpp"
#include "autotune/sqlite_statement.hpp"
#include "common/error.hpp"

namespace fa2 {

namespace fs = std::filesystem;

namespace cache_file {

namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;

// A URI keeps paths containing '?' or '#' intact and carries the open mode (ATTACH takes one too).
std::string uri_of(const std::string& path, const char* query) {
  std::string uri = "file:";
  for (unsigned char c : fs::absolute(path).string()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~')
      uri += static_cast<char>(c);
    else
      uri += fmt::format("%{:02X}", c);
  }
  return *query ? uri + "?" + query : uri;
}

fs::path parent_of(const std::string& path) { return fs::absolute(path).parent_path(); }

// Judged as the kernel would judge a write: effective ids and capabilities (root without CAP_DAC_OVERRIDE
// may not write a 0444 file), a read-only mount.
bool may_write(const fs::path& path, bool directory) {
  return ::faccessat(AT_FDCWD, path.c_str(), directory ? W_OK | X_OK : W_OK, AT_EACCESS) == 0;
}

// Bytes 18 and 19 of a SQLite header are 2 in WAL mode.
bool wal_mode_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char header[20];
  return in.read(header, sizeof(header)) && header[18] == 2 && header[19] == 2;
}

// The file mode a plain creation would give: 0666 less the umask (read from /proc, since umask() can only
// be read by setting it, which would race with other threads creating files).
mode_t created_file_mode() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Umask:", 0) == 0) return 0666 & ~static_cast<mode_t>(std::strtol(line.c_str() + 6, nullptr, 8));
  return 0644;
}

void open_database(const std::string& path, const std::string& uri, int flags, DbHandle& db, const char* doing) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(uri.c_str(), &raw, flags | SQLITE_OPEN_URI, nullptr);
  db.reset(raw);  // sqlite3_open_v2 returns a handle to close even when it fails
  if (rc != SQLITE_OK) sqlite::fail(raw, "sqlite3_open_v2", path, doing);
  if (sqlite3_busy_timeout(raw, 10000) != SQLITE_OK)
    sqlite::fail(raw, "sqlite3_busy_timeout", path, "setting the busy timeout");
}

// Only reads until the file is known to be a SQLite database of a version we understand, so a foreign or
// newer file is never modified (journal_mode=WAL and migrations both write its header). Returns the version.
int check_database(sqlite3* db, const std::string& path) {
  const int probe_rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
  if (probe_rc == SQLITE_NOTADB)
    throw Error(Stage::Cache, "sqlite3_exec",
                fmt::format("{} is not a SQLite database (is this the right cache file?): {}", path,
                            sqlite3_errmsg(db)));
  if (probe_rc == SQLITE_CORRUPT)
    throw Error(Stage::Cache, "sqlite3_exec", fmt::format("{} is corrupt: {}", path, sqlite3_errmsg(db)));
  if (probe_rc != SQLITE_OK) sqlite::fail(db, "sqlite3_exec", path, "cannot read the cache");
  const int version = cache_schema::query_int(db, "PRAGMA user_version", path);
  cache_schema::require_newer_or_equal(version, path);
  return version;
}

std::string journal_mode(sqlite3* db, const std::string& path) {
  sqlite::Statement mode(db, "PRAGMA journal_mode", path);
  return mode.step() ? mode.column_text(0) : std::string();
}

// WAL lets readers proceed during a write. Switching a file to it needs an exclusive lock, and SQLite
// answers SQLITE_BUSY at once (not through the busy handler) when another connection holds the file
// open: retried with a growing, jittered pause for up to 30 s.
void switch_to_wal(sqlite3* db, const std::string& path) {
  if (journal_mode(db, path) == "wal") return;
  std::minstd_rand jitter(static_cast<unsigned>(::getpid()));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int attempt = 0;; ++attempt) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", nullptr, nullptr, &message);
    const std::string detail = message ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    if (rc == SQLITE_OK) return;
    const int primary = rc & 0xff;
    if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) || std::chrono::steady_clock::now() > deadline)
      throw Error(Stage::Cache, "sqlite3_exec",
                  fmt::format("`PRAGMA journal_mode = WAL` failed on {} after {} attempts: {}", path, attempt + 1,
                              detail));
    const int pause_ms = std::min(2 + 2 * attempt, 50) + static_cast<int>(jitter() % 5);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
}

// A missing cache file is built whole under a temporary name (WAL, current schema) and hard-linked into
// place: link() never replaces a file, so of several processes creating it at once one wins and the others
// open the winner's. Where hard links are not supported, a rename while the path is still free.
void create_whole(const std::string& path) {
  std::string temp = path + ".creating-XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return;  // the open that follows says why the directory cannot take the file
  ::fchmod(fd, created_file_mode());
  ::close(fd);
  struct Remover {
    std::string temp;
    ~Remover() {
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((temp + suffix).c_str());
    }
  } remover{temp};
  {
    DbHandle db;
    open_database(temp, uri_of(temp, ""), SQLITE_OPEN_READWRITE, db, "creating the cache");
    sqlite::exec(db.get(), "PRAGMA foreign_keys = OFF", temp);
    sqlite::exec(db.get(), "PRAGMA journal_mode = WAL", temp);
    cache_schema::migrate(db.get(), temp, Cache::kSchemaVersion);
  }  // the last connection's close checkpoints the WAL into the file and removes -wal and -shm
  if (::link(temp.c_str(), path.c_str()) == 0 || errno == EEXIST) return;
  // No hard links on this file system: a rename that never replaces (else SQLite creates the file itself
  // in the open that follows, and the WAL switch's retry covers the race).
  ::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
}

void check_not_directory(const std::string& path) {
  if (path.empty()) throw Error(Stage::Cache, "", "empty cache path");
  std::error_code error;
  // SQLite's own word for this is "disk I/O error" or "unable to open database file".
  if (fs::is_directory(path, error))
    throw Error(Stage::Cache, "", fmt::format("{} is a directory, not a cache file", path));
}

}  // namespace

std::string read_only_uri(const std::string& path) {
  // A rollback-journal file (what `fa2-tune export` writes) is read with nothing created beside it. A WAL
  // file is read through its -shm index: where one exists (a connection has the file open, or had), SQLite
  // reads it, even read-only. Where none exists, reading would create -shm and -wal beside the file, owned
  // by this process, which can lock the file's owner out of their own cache (they may not replace our
  // files in a sticky directory), and cannot happen at all in a read-only directory: the file is read as
  // immutable instead, without an index or locks. No connection has it open then, so nothing is writing it.
  std::error_code error;
  if (!wal_mode_file(path) || fs::exists(path + "-shm", error)) return uri_of(path, "mode=ro");
  const auto wal_bytes = fs::file_size(path + "-wal", error);
  if (!error && wal_bytes > 0)
    throw Error(Stage::Cache, "",
                fmt::format("{} has changes in {}-wal that were never checkpointed into it and no -shm index beside "
                            "it (a copy taken while it was being written?), so they cannot be read without writing "
                            "there; ship a copy made by `fa2-tune export` instead",
                            path, path));
  return uri_of(path, "mode=ro&immutable=1");
}

bool can_write(const std::string& path) {
  std::error_code error;
  if (fs::exists(path, error)) return may_write(path, false) && may_write(parent_of(path), true);
  fs::path existing = parent_of(path);
  while (!fs::exists(existing, error)) {
    if (existing == existing.parent_path()) return false;
    existing = existing.parent_path();
  }
  return fs::is_directory(existing, error) && may_write(existing, true);
}

OpenedFile open_read_write(const std::string& path) {
  check_not_directory(path);
  std::error_code error;
  const fs::path parent = parent_of(path);
  if (!fs::create_directories(parent, error) && error)
    throw Error(Stage::Cache, "std::filesystem::create_directories",
                fmt::format("cannot create the cache directory {} for {}: {}", parent.string(), path,
                            error.message()));
  if (!fs::exists(path, error)) create_whole(path);

  DbHandle db;
  open_database(path, uri_of(path, ""), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, db,
                "cannot open or create the cache (is its directory writable?)");
  check_database(db.get(), path);
  // SQLite quietly opens a file it may not write read-only; said now, not after a build's compiles.
  if (sqlite3_db_readonly(db.get(), "main") == 1)
    throw Error(Stage::Cache, "",
                fmt::format("{} is read-only (check its permissions, or pass another cache file)", path));
  switch_to_wal(db.get(), path);
  // NORMAL sync is durable in WAL except for the last commits on power loss, which a cache of re-creatable
  // kernels can afford.
  sqlite::exec(db.get(), "PRAGMA synchronous = NORMAL", path);
  // Off while migrating (a step may rebuild a table; a build of SQLite may default them on), outside the
  // migration's transaction, where the pragma would be ignored.
  sqlite::exec(db.get(), "PRAGMA foreign_keys = OFF", path);
  cache_schema::migrate(db.get(), path, Cache::kSchemaVersion);
  sqlite::exec(db.get(), "PRAGMA foreign_keys = ON", path);
  return {path, db.release(), true};
}

OpenedFile open_read_only(const std::string& path) {
  check_not_directory(path);
  std::error_code error;
  if (!fs::exists(path, error))
    throw Error(Stage::Cache, "", fmt::format("{} does not exist (opening it read-only)", path));
  DbHandle db;
  open_database(path, read_only_uri(path), SQLITE_OPEN_READONLY, db, "cannot open the cache read-only");
  const int version = check_database(db.get(), path);
  if (version < Cache::kSchemaVersion)
    throw Error(Stage::Cache, "",
                fmt::format("{} has schema version {}, older than {}; open it once writable to migrate it", path,
                            version, Cache::kSchemaVersion));
  sqlite::exec(db.get(), "PRAGMA foreign_keys = ON", path);
  return {path, db.release(), false};
}

}  // namespace cache_file

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

std::optional<std::string> Cache::search_path_from_env() {
  const char* value = std::getenv("FA2JIT_CACHE_PATH");
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

Cache Cache::open(const std::string& path, bool read_only) {
  const cache_file::OpenedFile file = read_only ? cache_file::open_read_only(path) : cache_file::open_read_write(path);
  Cache cache;
  cache.add_layer(file.path, file.db, file.writable);
  return cache;
}

Cache Cache::open_for_reading(const std::string& path) {
  try {
    return open(path, /*read_only=*/true);
  } catch (const Error& error) {
    if (error.stage() != Stage::Cache) throw;
    // Only an older schema is worth a writable open; every other refusal stands as it was.
    sqlite3* raw = nullptr;
    const bool opened = sqlite3_open_v2(cache_file::uri_of(path, "mode=ro").c_str(), &raw,
                                        SQLITE_OPEN_URI | SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK;
    cache_file::DbHandle db(raw);
    int version = -1;
    try {
      if (opened) version = cache_schema::query_int(raw, "PRAGMA user_version", path);
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

std::vector<std::string> Cache::search_path_files(const std::string& list) {
  std::vector<std::string> files;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t end = std::min(list.find(':', start), list.size());
    const std::string entry = list.substr(start, end - start);
    start = end + 1;
    if (entry.empty()) continue;
    // A file that exists, or a name ending in ".db", is a cache file; anything else a directory, which is
    // created on first write like FA2JIT_CACHE_DIR.
    std::error_code error;
    const bool file = fs::is_regular_file(entry, error) || (entry.size() > 3 && entry.substr(entry.size() - 3) == ".db");
    files.push_back(file ? entry : (fs::path(entry) / "kernels.db").string());
  }
  return files;
}

std::optional<std::string> Cache::writable_file(const std::vector<std::string>& files) {
  for (const std::string& file : files)
    if (cache_file::can_write(file)) return file;
  return std::nullopt;
}

Cache Cache::open_layers(const std::vector<std::string>& files, bool create_missing) {
  Cache cache;
  std::vector<fs::path> opened;  // the same file named twice is one layer
  for (const std::string& path : files) {
    std::error_code error;
    const fs::path canonical = fs::weakly_canonical(path, error);
    if (std::find(opened.begin(), opened.end(), canonical) != opened.end()) continue;
    const bool exists = fs::exists(path, error);
    try {
      cache_file::OpenedFile file;
      std::string write_failure;
      if (!cache.writable() && (exists || create_missing) && cache_file::can_write(path)) {
        try {
          file = cache_file::open_read_write(path);
        } catch (const Error& failure) {
          // Still read what it holds (a writer holding it for too long, a foreign -shm): writes move on.
          if (failure.stage() != Stage::Cache || !fs::exists(path, error)) throw;
          write_failure = failure.what();
        }
      }
      if (file.db == nullptr) {
        if (!fs::exists(path, error))
          throw Error(Stage::Cache, "", fmt::format("{} does not exist{}", path,
                                                    cache.writable() || !create_missing
                                                        ? ""
                                                        : " and cannot be created by this process"));
        file = cache_file::open_read_only(path);
        if (!write_failure.empty()) cache.skipped_.push_back(write_failure + " (read-only instead)");
      }
      cache.add_layer(file.path, file.db, file.writable);
      opened.push_back(canonical);
    } catch (const Error& error) {
      if (error.stage() != Stage::Cache) throw;
      cache.skipped_.push_back(error.what());
    }
  }
  if (cache.layers_.empty()) {
    if (cache.skipped_.size() == 1) throw Error(Stage::Cache, "", cache.skipped_[0]);
    std::string reasons;
    for (const std::string& reason : cache.skipped_) reasons += "\n  " + reason;
    throw Error(Stage::Cache, "",
                fmt::format("no usable cache among {} entries{}", files.size(),
                            reasons.empty() ? std::string(": the list is empty") : ":" + reasons));
  }
  return cache;
}

Cache Cache::open_search_path(const std::string& list, bool create_missing) {
  try {
    return open_layers(search_path_files(list), create_missing);
  } catch (const Error& error) {
    if (error.stage() != Stage::Cache) throw;
    throw Error(Stage::Cache, "", fmt::format("FA2JIT_CACHE_PATH='{}': {}", list, error.what()));
  }
}

Cache Cache::open_default() {
  if (const auto list = search_path_from_env()) return open_search_path(*list);
  return open_layers({default_path()});
}

}  // namespace fa2
