// The SQLite kernel cache: cubins (as blobs, under their cubin key), tunings (the winner per device and
// problem class) and every measurement a tuning made, so a tuning can be inspected later.
// Schema versioned with PRAGMA user_version; WAL; a busy timeout; every write is one transaction.
// Threads: one Cache object per thread (a Cache is not to be shared between threads). Any number of
// Cache objects, in any threads or processes, may open the same file: SQLite's file locks order their
// writes, and the 10 s busy timeout makes a writer wait for another's transaction instead of failing.
// A missing file is created whole under a temporary name and linked into place, so processes racing to
// create one all succeed.
//
// Layers (a fleet's tunings): a Cache may stack several files, e.g. a read-only one shipped in a container
// image under a per-user writable one. Lookups take the first layer holding the key, in the order given;
// writes go to the one writable layer (the first entry this process may write); the others are opened
// read-only and never written, nor is anything created beside them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "codegen/tile_config.hpp"
#include "runtime/nvrtc_compiler.hpp"

struct sqlite3;

namespace fa2 {

struct CachedKernel {
  std::string cubin_key;
  TileConfig config;
  std::string nvrtc_version;
  std::string template_hash;
  std::vector<char> cubin;  // empty when listed without cubins
  ResourceUsage resources;
  double compile_ms = 0;
  std::string created_at;  // UTC, ISO 8601, set by the cache
};

// Status of one candidate in a tuning.
enum class MeasurementStatus { ok, invalid, compile_failed, spills, launch_failed, incorrect };
const char* measurement_status_name(MeasurementStatus status);
std::optional<MeasurementStatus> parse_measurement_status(const std::string& text);

struct Measurement {
  TileConfig config;
  std::string cubin_key;  // empty when it never compiled
  MeasurementStatus status = MeasurementStatus::ok;
  double time_ms = 0;     // median, only for ok
  double spread_ms = 0;   // (p90 - p10) of the timed runs, only for ok
  double tflops = 0;
  double o_rel_error = 0;
  std::string reason;     // why it is not ok
  ResourceUsage resources;
};

struct TuningRecord {
  std::string tuning_key;   // device key + "#" + problem key
  std::string device_key;
  std::string problem_key;
  TileConfig winner;
  std::string winner_cubin_key;
  double time_ms = 0;
  double tflops = 0;
  double tune_seconds = 0;  // wall time of the whole tuning
  // search_space_hash() of what was swept: a tuning from another space or other kernel templates (an
  // older fa2jit) is stale, and on-first-use tunes it again. "" in rows from before schema v2.
  std::string space_hash;
  std::string created_at;
  std::vector<Measurement> measurements;  // filled by put_tuning's caller; by find_tuning only on request
};

struct CacheInfo {
  std::string path;
  long long bytes = 0;  // database file plus its WAL
  int schema_version = 0;
  int kernels = 0;
  int tunings = 0;
  int measurements = 0;
};

struct CacheLayer {
  std::string path;
  bool writable = false;  // the layer taking writes; the others are read-only
};

struct ImportStats {
  int kernels_added = 0;
  int kernels_skipped = 0;  // already present under the same cubin key
  int tunings_added = 0;
  int tunings_replaced = 0;  // the imported one was newer
  int tunings_kept = 0;      // ours was newer or equal
};

class Cache {
 public:
  static constexpr int kSchemaVersion = 5;

  // $FA2JIT_CACHE_DIR/kernels.db, else ${XDG_CACHE_HOME:-$HOME/.cache}/fa2jit/kernels.db.
  static std::string default_path();
  // FA2JIT_CACHE_PATH when set and not empty: a ':'-separated search list of cache files or directories,
  // first looked up first. An entry that is an existing file or ends in ".db" is a cache file; any other
  // is a directory standing for its kernels.db (created on first write, like FA2JIT_CACHE_DIR).
  static std::optional<std::string> search_path_from_env();

  // Opens one file (creating the file and its directory if needed, unless read_only) and migrates the
  // schema. Throws fa2::Error(Stage::Cache) naming the path: a directory, not a SQLite file, a newer schema
  // than this build knows, unwritable (a read-only file is refused here unless read_only), corrupt.
  static Cache open(const std::string& path, bool read_only = false);
  // Opens an existing cache for reading. A file of an older schema is migrated in place first (a read
  // command after an upgrade must not fail on it); one that cannot be written throws, naming the path.
  static Cache open_for_reading(const std::string& path);
  // The cache files of a ':'-separated search list (FA2JIT_CACHE_PATH's form, see search_path_from_env()):
  // a directory entry becomes its kernels.db; empty entries are dropped.
  static std::vector<std::string> search_path_files(const std::string& list);
  // The file of `files` that would take writes: the first this process may write, or create.
  static std::optional<std::string> writable_file(const std::vector<std::string>& files);
  // Layers over cache `files`, looked up in this order. The first file this process may write (or create,
  // with create_missing) takes the writes; every other file that exists is opened read-only. A file that
  // cannot be used (missing, foreign, another schema) is skipped and said in skipped(); throws only when no
  // file can be used, with every file's reason. One file: a cache served even where it cannot be written.
  static Cache open_layers(const std::vector<std::string>& files, bool create_missing = true);
  // open_layers over a search list's files; create_missing false for commands that only read.
  static Cache open_search_path(const std::string& list, bool create_missing = true);
  // What a call with no cache path uses: FA2JIT_CACHE_PATH's layers when it is set, else default_path()
  // (written when it can be, else read-only).
  static Cache open_default();

  Cache(Cache&& other) noexcept;
  Cache& operator=(Cache&& other) noexcept;
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;
  ~Cache();

  // The layer taking writes, else the first layer: the file messages name.
  const std::string& path() const;
  // Every layer in lookup order, e.g. "/opt/fa2jit/kernels.db (read-only), /home/u/.cache/fa2jit/kernels.db".
  std::string describe() const;
  std::vector<CacheLayer> layers() const;
  bool writable() const { return write_layer_ >= 0; }
  // The entries of open_layers that were not used, each "path: why".
  const std::vector<std::string>& skipped() const { return skipped_; }

  std::optional<CachedKernel> find_kernel(const std::string& cubin_key) const;
  void put_kernels(const std::vector<CachedKernel>& kernels);  // one transaction; existing keys are replaced

  std::optional<TuningRecord> find_tuning(const std::string& tuning_key, bool with_measurements = false) const;
  void put_tuning(const TuningRecord& record);  // winner + its measurements, replacing that key's, in one transaction

  std::vector<TuningRecord> list_tunings() const;                 // without measurements, ordered by key
  std::vector<CachedKernel> list_kernels() const;                 // without cubins, ordered by key

  // Writes go to the writable layer; without one they throw fa2::Error(Stage::Cache) and write nothing.
  ImportStats import_from(const std::string& other_path);  // merge another cache file, one transaction
  // A consistent copy of every layer in one new file (VACUUM INTO, then the lower layers imported);
  // refuses to overwrite.
  void export_to(const std::string& destination) const;
  void clear();  // every row of the writable layer, one transaction
  CacheInfo info() const;  // totals over the layers (a key in two layers counted twice), path = describe()
  std::vector<CacheInfo> layer_info() const;

 private:
  struct Layer {
    std::string path;
    sqlite3* db = nullptr;
    bool writable = false;
  };
  enum class LookupOrder { listed, writable_first };
  Cache() = default;
  // Kernels are looked up writable layer first (any layer's row of a cubin key is the same kernel, and a
  // rejected row's replacement lands there); tunings in list order, the newest row winning.
  std::vector<const Layer*> layers_in(LookupOrder order) const;
  void add_layer(const std::string& path, sqlite3* db, bool writable);
  sqlite3* write_db(const char* doing) const;  // throws when there is no writable layer
  void close();

  std::vector<Layer> layers_;
  int write_layer_ = -1;
  std::vector<std::string> skipped_;
};

}  // namespace fa2
