// libFuzzer target: the kernel cache reading files it did not write, or rows it did not write.
// The first byte picks how the rest becomes a cache file in a private temp dir:
//   0: the bytes are the whole file (foreign files, truncated headers);
//   1: the bytes overwrite part of a valid cache file at a fuzzed offset (corrupt pages);
//   2: a valid cache file, then raw sqlite3 UPDATEs put fuzzed values (any type: integer, real, text,
//      blob, NULL) into fuzzed columns of its rows, bypassing the CHECK constraints, as a file written by
//      another program or an older, buggier fa2jit could hold.
// Contract checked: Cache::open and every read (list_tunings, list_kernels, find_kernel, find_tuning
// with measurements, info) either work or throw fa2::Error; a crash, a hang (scripts/fuzz.sh sets
// -timeout), a sanitizer report or any other exception is a finding. Configs read back are also passed
// through validate() and name(), as `fa2-tune list` and forward() do with them.
#include <fuzzer/FuzzedDataProvider.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "autotune/cache.hpp"
#include "common/error.hpp"

namespace {

namespace fs = std::filesystem;

struct State {
  fs::path dir;                        // mkdtemp under $TMPDIR; scripts/fuzz.sh removes it
  std::string db;                      // the file each input becomes
  std::vector<char> valid;             // a cache file with two kernels and one tuning, as written by Cache
  std::vector<std::vector<std::string>> columns;  // per table in kTables, from PRAGMA table_info
};
const char* const kTables[] = {"kernels", "tunings", "measurements"};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fuzz_cache_row: %s\n", what.c_str());
  std::abort();
}

void remove_db(const std::string& db) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(db + suffix, ignored);
}

void write_file(const std::string& path, const char* bytes, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes, static_cast<std::streamsize>(size));
  if (!out) die("cannot write " + path);
}

fa2::CachedKernel kernel(const std::string& key, int block_n) {
  fa2::CachedKernel k;
  k.cubin_key = key;
  k.config.block_n = block_n;
  k.nvrtc_version = "13.0";
  k.template_hash = "0123456789abcdef";
  k.cubin = {'\x7f', 'E', 'L', 'F', 0, 1, 2};
  k.resources.registers = 168;
  k.compile_ms = 812.5;
  return k;
}

State make_state() {
  State state;
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/fa2jit_fuzz_cache_XXXXXX";
  if (!::mkdtemp(pattern.data())) die("mkdtemp failed for " + pattern);
  state.dir = pattern;
  state.db = (state.dir / "kernels.db").string();

  const std::string seed = (state.dir / "valid.db").string();
  {
    fa2::Cache cache = fa2::Cache::open(seed);
    cache.put_kernels({kernel("k1", 64), kernel("k2", 32)});
    fa2::TuningRecord record;
    record.tuning_key = "H100#d128_bf16";
    record.device_key = "H100";
    record.problem_key = "d128_bf16";
    record.winner_cubin_key = "k1";
    record.time_ms = 0.25;
    record.tflops = 310;
    record.tune_seconds = 42;
    for (int i = 0; i < 2; ++i) {
      fa2::Measurement m;
      m.cubin_key = i == 0 ? "k1" : "";
      m.status = i == 0 ? fa2::MeasurementStatus::ok : fa2::MeasurementStatus::compile_failed;
      m.reason = i == 0 ? "" : "ptxas error";
      record.measurements.push_back(m);
    }
    cache.put_tuning(record);
  }  // closing the last connection checkpoints the WAL into the file, so the file alone is complete
  std::ifstream in(seed, std::ios::binary);
  state.valid.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (state.valid.empty()) die("the valid cache file is empty");

  sqlite3* db = nullptr;
  if (sqlite3_open_v2(seed.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) die("cannot reopen " + seed);
  for (const char* table : kTables) {
    std::vector<std::string> names;
    sqlite3_stmt* info = nullptr;
    sqlite3_prepare_v2(db, (std::string("PRAGMA table_info(") + table + ")").c_str(), -1, &info, nullptr);
    while (sqlite3_step(info) == SQLITE_ROW) names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(info, 1)));
    sqlite3_finalize(info);
    if (names.empty()) die(std::string("no columns in ") + table);
    state.columns.push_back(names);
  }
  sqlite3_close_v2(db);
  remove_db(seed);
  return state;
}

State& state() {
  static State instance = make_state();
  return instance;
}

// Mode 2: fuzzed values into fuzzed cells of the valid file, through a raw connection.
void update_cells(FuzzedDataProvider& data, const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) die("cannot open " + path);
  // The file is scratch: no fsync, which would otherwise dominate the time per input.
  sqlite3_exec(db, "PRAGMA synchronous = OFF", nullptr, nullptr, nullptr);
  // Lets a row hold what the schema forbids (causal = 7, status = 'bogus'); NOT NULL still holds.
  sqlite3_exec(db, "PRAGMA ignore_check_constraints = ON", nullptr, nullptr, nullptr);
  const int updates = data.ConsumeIntegralInRange(1, 4);
  for (int u = 0; u < updates && data.remaining_bytes() > 0; ++u) {
    const size_t table = data.ConsumeIntegralInRange<size_t>(0, 2);
    const std::vector<std::string>& names = state().columns[table];
    const std::string& column = names[data.ConsumeIntegralInRange<size_t>(0, names.size() - 1)];
    const std::string sql = std::string("UPDATE ") + kTables[table] + " SET " + column + " = ?1 WHERE rowid = " +
                            "(SELECT rowid FROM " + kTables[table] + " ORDER BY rowid LIMIT 1 OFFSET ?2)";
    sqlite3_stmt* update = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &update, nullptr) != SQLITE_OK) die("cannot prepare " + sql);
    switch (data.ConsumeIntegralInRange(0, 4)) {
      case 0: sqlite3_bind_null(update, 1); break;
      case 1: sqlite3_bind_int64(update, 1, data.ConsumeIntegral<int64_t>()); break;
      case 2: sqlite3_bind_double(update, 1, data.ConsumeFloatingPoint<double>()); break;
      case 3: {
        const std::string text = data.ConsumeRandomLengthString(64);  // not necessarily UTF-8
        sqlite3_bind_text(update, 1, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
        break;
      }
      default: {
        const std::vector<uint8_t> blob = data.ConsumeBytes<uint8_t>(data.ConsumeIntegralInRange(0, 64));
        sqlite3_bind_blob(update, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
      }
    }
    sqlite3_bind_int(update, 2, data.ConsumeIntegralInRange(0, 1));
    sqlite3_step(update);  // a NOT NULL or primary key violation just leaves the row as it was
    sqlite3_finalize(update);
  }
  sqlite3_close_v2(db);
}

void touch(const fa2::TileConfig& config) {
  (void)config.validate();
  (void)config.name();
  (void)config.hash();
}

void read_everything(const std::string& path, bool read_only, const std::string& extra_key) {
  const fa2::Cache cache = fa2::Cache::open(path, read_only);
  for (const fa2::CachedKernel& listed : cache.list_kernels()) {
    touch(listed.config);
    if (auto found = cache.find_kernel(listed.cubin_key)) touch(found->config);
  }
  for (const fa2::TuningRecord& listed : cache.list_tunings()) {
    touch(listed.winner);
    if (auto found = cache.find_tuning(listed.tuning_key, true))
      for (const fa2::Measurement& m : found->measurements) touch(m.config);
  }
  (void)cache.find_kernel(extra_key);
  (void)cache.find_tuning(extra_key, true);
  (void)cache.info();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const State& s = state();
  FuzzedDataProvider data(bytes, size);
  const int mode = data.ConsumeIntegralInRange(0, 2);
  const bool read_only = data.ConsumeBool();
  const std::string extra_key = data.ConsumeRandomLengthString(32);
  remove_db(s.db);
  if (mode == 0) {
    const std::vector<char> file = data.ConsumeRemainingBytes<char>();
    write_file(s.db, file.data(), file.size());
  } else if (mode == 1) {
    std::vector<char> file = s.valid;
    const size_t offset = data.ConsumeIntegralInRange<size_t>(0, file.size() - 1);
    const std::vector<char> patch = data.ConsumeRemainingBytes<char>();
    for (size_t i = 0; i < patch.size() && offset + i < file.size(); ++i) file[offset + i] = patch[i];
    write_file(s.db, file.data(), file.size());
  } else {
    write_file(s.db, s.valid.data(), s.valid.size());
    update_cells(data, s.db);
  }
  try {
    read_everything(s.db, read_only, extra_key);
  } catch (const fa2::Error&) {
    // The documented failure: a message naming the file, which fa2-tune prints.
  }
  return 0;
}
