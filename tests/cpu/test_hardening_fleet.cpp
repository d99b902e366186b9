// One tuning for a fleet: a cache shipped read-only (a file in a read-only directory, as in a container
// image) is read without writing anything, layered under a writable per-user cache through
// FA2JIT_CACHE_PATH, and many processes creating one fresh cache file at once all succeed.
// Permissions are simulated as root by children that drop the capabilities that ignore file modes.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/tune_resolution.hpp"
#include "autotune/cache.hpp"
#include "autotune/search_space.hpp"
#include "common/error.hpp"
#include "tests/cpu/test_hardening_support.hpp"

namespace {

namespace fs = std::filesystem;
using fa2::Cache;
using fa2::test::Child;
using fa2::test::contains;
using fa2::test::fake_kernel;
using fa2::test::integrity;
using fa2::test::row_count;
using fa2::test::TempDir;

// Sets (or unsets) an environment variable for the scope; children started meanwhile inherit it.
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

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A cache file holding kernels under `keys`, each cubin spelling the file it came from.
void write_cache(const std::string& path, const std::vector<std::string>& keys, char mark = 'c') {
  Cache cache = Cache::open(path);
  std::vector<fa2::CachedKernel> rows;
  for (const std::string& key : keys) {
    fa2::CachedKernel row = fake_kernel(key);
    row.cubin.assign(64, mark);
    rows.push_back(row);
  }
  cache.put_kernels(rows);
}

struct CliResult {
  int code = -1;  // -125: the child could not drop its capabilities (then the test is skipped)
  std::string output;
};

// fa2-tune <args> as a process that may not write what the file modes forbid (root drops the override).
CliResult cli(const std::vector<std::string>& args, const std::string& log) {
  Child child(args, log, ::geteuid() == 0);
  const int status = child.wait(std::chrono::seconds(60));
  CliResult result;
  result.output = child.output();
  if (fa2::test::exited_with(status, 125)) result.code = -125;
  else if (status != -1 && WIFEXITED(status)) result.code = WEXITSTATUS(status);
  MESSAGE("fa2-tune ", args[0], " -> ", result.code, "\n", result.output);
  return result;
}

// A shipped cache: a WAL file (as a tuning machine leaves it) in a directory nobody may write.
struct ShippedCache {
  std::string dir;
  std::string path;
  std::string bytes;
  ShippedCache(const TempDir& temp, const std::vector<std::string>& keys) : dir(temp.file("image")) {
    fs::create_directory(dir);
    path = dir + "/kernels.db";
    write_cache(path, keys, 's');
    REQUIRE(bytes_of(path).substr(18, 2) == std::string("\x02\x02", 2));  // WAL mode, checkpointed on close
    REQUIRE(::chmod(path.c_str(), 0444) == 0);
    REQUIRE(::chmod(dir.c_str(), 0555) == 0);
    bytes = bytes_of(path);
  }
  ~ShippedCache() { ::chmod(dir.c_str(), 0755); }
  // Nothing written to it, nothing created beside it.
  void check_untouched() const {
    CHECK(bytes_of(path) == bytes);
    std::error_code error;
    CHECK_FALSE(fs::exists(path + "-shm", error));
    CHECK_FALSE(fs::exists(path + "-wal", error));
    CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  }
};

}  // namespace

TEST_SUITE("hardening_fleet") {

TEST_CASE("a read-only cache in a read-only directory is read, not refused, and nothing is written") {
  TempDir temp;
  const ShippedCache shipped(temp, {"k0", "k1"});
  const CliResult listed = cli({"list", "--kernels", "--json", "--db", shipped.path}, temp.file("log"));
  if (listed.code == -125) {
    MESSAGE("skipped: running as root without CAP_SETPCAP, so read-only files cannot be simulated");
    return;
  }
  CHECK(listed.code == 0);
  CHECK(contains(listed.output, "\"k0\""));
  CHECK(contains(listed.output, "\"k1\""));
  CHECK_FALSE(contains(listed.output, "readonly database"));
  const CliResult info = cli({"info", "--db", shipped.path}, temp.file("log"));
  CHECK(fa2::test::reported(info.output, "kernels") == 2);
  shipped.check_untouched();
}

TEST_CASE("FA2JIT_CACHE_PATH: a read-only layer under a writable one; writes go up, reads see both") {
  TempDir temp;
  const ShippedCache shipped(temp, {"shipped", "both"});
  const std::string user_dir = temp.file("user");
  const std::string extra = temp.file("extra.db");
  write_cache(extra, {"imported", "both"}, 'i');
  EnvGuard layers("FA2JIT_CACHE_PATH", shipped.dir + ":" + user_dir);

  const CliResult imported = cli({"import", extra}, temp.file("log"));
  if (imported.code == -125) return;
  CHECK(imported.code == 0);
  CHECK(contains(imported.output, user_dir + "/kernels.db"));
  CHECK(row_count(user_dir + "/kernels.db", "kernels") == 2);
  shipped.check_untouched();

  const CliResult listed = cli({"list", "--kernels", "--json"}, temp.file("log"));
  CHECK(listed.code == 0);
  for (const char* key : {"\"shipped\"", "\"both\"", "\"imported\""}) CHECK_MESSAGE(contains(listed.output, key), key);
  CHECK(fa2::test::count(listed.output, "\"both\"") == 1);  // the first layer's row: one per key
  const CliResult info = cli({"info"}, temp.file("log"));
  CHECK(contains(info.output, shipped.path + " (read-only; 2 kernels"));
  CHECK(contains(info.output, user_dir + "/kernels.db (takes writes; 2 kernels"));
  shipped.check_untouched();
}

TEST_CASE("FA2JIT_CACHE_PATH with no writable entry: reads work, writes are refused naming it") {
  TempDir temp;
  const ShippedCache shipped(temp, {"k0"});
  const std::string extra = temp.file("extra.db");
  write_cache(extra, {"new"});
  EnvGuard layers("FA2JIT_CACHE_PATH", shipped.dir);
  const CliResult imported = cli({"import", extra}, temp.file("log"));
  if (imported.code == -125) return;
  CHECK(imported.code == 1);
  CHECK(contains(imported.output, "FA2JIT_CACHE_PATH"));
  CHECK(contains(imported.output, "may be written"));
  CHECK(fa2::test::one_line(imported.output));
  const CliResult listed = cli({"list", "--kernels", "--json"}, temp.file("log"));
  CHECK(listed.code == 0);
  CHECK(contains(listed.output, "\"k0\""));
  shipped.check_untouched();
}

TEST_CASE("a shipped WAL file with uncheckpointed changes is refused with the way out, not misread") {
  TempDir temp;
  const std::string dir = temp.file("image");
  fs::create_directory(dir);
  const std::string source = temp.file("live.db");
  write_cache(source, {"old"});
  // A copy taken while a writer still holds changes in its -wal: the file alone lacks them.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(source.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA wal_autocheckpoint = 0; UPDATE kernels SET compile_ms = 2", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  fs::copy_file(source, dir + "/kernels.db");
  fs::copy_file(source + "-wal", dir + "/kernels.db-wal");
  sqlite3_close(db);
  REQUIRE(fs::file_size(dir + "/kernels.db-wal") > 0);
  REQUIRE(::chmod(dir.c_str(), 0555) == 0);
  const CliResult listed = cli({"list", "--kernels", "--db", dir + "/kernels.db"}, temp.file("log"));
  ::chmod(dir.c_str(), 0755);
  if (listed.code == -125) return;
  CHECK(listed.code == 1);
  CHECK(contains(listed.output, "never checkpointed"));
  CHECK(contains(listed.output, "fa2-tune export"));
}

TEST_CASE("layers: lookups in list order, writes to the first writable entry, the rest never written") {
  TempDir temp;
  const std::string upper = temp.file("upper.db");
  const std::string lower = temp.file("lower.db");
  write_cache(upper, {"upper", "both"}, 'u');
  write_cache(lower, {"lower", "both"}, 'l');
  const std::string lower_bytes = bytes_of(lower);
  {
    Cache cache = Cache::open_layers({upper, lower});
    REQUIRE(cache.layers().size() == 2);
    CHECK(cache.layers()[0].writable);
    CHECK_FALSE(cache.layers()[1].writable);
    CHECK(cache.path() == upper);
    CHECK(cache.describe() == upper + ", " + lower + " (read-only)");
    CHECK(cache.find_kernel("both")->cubin[0] == 'u');
    CHECK(cache.find_kernel("lower")->cubin[0] == 'l');
    CHECK_FALSE(cache.find_kernel("nowhere"));
    const auto kernels = cache.list_kernels();
    REQUIRE(kernels.size() == 3);  // one row per key
    cache.put_kernels({fake_kernel("new")});
    CHECK(cache.info().kernels == 2 + 1 + 2);  // per layer, summed

    const std::string exported = temp.file("fleet.db");
    cache.export_to(exported);
    Cache copy = Cache::open(exported, true);
    CHECK(copy.list_kernels().size() == 4);
    CHECK(copy.find_kernel("both")->cubin[0] == 'u');
  }
  CHECK(row_count(upper, "kernels") == 3);
  CHECK(bytes_of(lower) == lower_bytes);
  CHECK(integrity(upper) == "ok");
}

TEST_CASE("layers: a tuning tuned again above a stale one is found; kernels come from the writable layer") {
  TempDir temp;
  const std::string upper = temp.file("upper.db");
  const std::string lower = temp.file("lower.db");
  fa2::TuningRecord stale;
  stale.tuning_key = "key";
  stale.problem_key = "problem";
  stale.winner.stages = 1;
  Cache::open(lower).put_tuning(stale);  // first, so older
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  fa2::TuningRecord fresh = stale;
  fresh.winner.stages = 3;
  Cache::open(upper).put_tuning(fresh);
  // Lookups over [lower, upper] (lower first in the list, upper writable): the newer row wins either way.
  for (const auto& files : {std::vector<std::string>{upper, lower}, std::vector<std::string>{lower, upper}}) {
    Cache cache = Cache::open_layers(files);
    CHECK(cache.find_tuning("key")->winner.stages == 3);
    const auto listed = cache.list_tunings();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].winner.stages == 3);
  }
}

TEST_CASE("reading creates nothing: a WAL cache opened read-only, a search list with a missing entry") {
  TempDir temp;
  const std::string path = temp.file("kernels.db");
  write_cache(path, {"k"});
  std::error_code error;
  REQUIRE_FALSE(fs::exists(path + "-shm", error));  // the last writer's close removed them
  {
    Cache cache = Cache::open(path, /*read_only=*/true);
    CHECK(cache.find_kernel("k").has_value());
    CHECK_FALSE(fs::exists(path + "-shm", error));
    CHECK_FALSE(fs::exists(path + "-wal", error));
  }
  const std::string missing_dir = temp.file("not-yet");
  Cache reader = Cache::open_search_path(missing_dir + ":" + path, /*create_missing=*/false);
  CHECK_FALSE(fs::exists(missing_dir, error));
  CHECK(reader.layers().size() == 1);
  CHECK(contains(reader.skipped().at(0), "does not exist"));
  CHECK(Cache::writable_file(Cache::search_path_files(missing_dir + ":" + path)) == missing_dir + "/kernels.db");
}

TEST_CASE("an explicit cache path is a file whatever its name; an export of layers is one self-contained file") {
  TempDir temp;
  const std::string odd = temp.file("cache.sqlite");  // no ".db": still the file itself, not a directory
  {
    Cache cache = Cache::open_layers({odd});
    CHECK(cache.path() == odd);
    cache.put_kernels({fake_kernel("a")});
  }
  CHECK(fs::is_regular_file(odd));
  const std::string other = temp.file("other.db");
  write_cache(other, {"b"});
  const std::string exported = temp.file("out/fleet.db");
  Cache::open_layers({odd, other}).export_to(exported);
  CHECK(bytes_of(exported).substr(18, 2) == std::string("\x01\x01", 2));  // rollback journal: nothing beside it
  CHECK(Cache::open(exported, true).list_kernels().size() == 2);
  for (const auto& entry : fs::directory_iterator(temp.file("out")))
    CHECK_MESSAGE(entry.path() == exported, entry.path().string());  // no temporary left
  try {
    Cache::open_layers({odd}).export_to(exported);
    FAIL("expected a refusal");
  } catch (const fa2::Error& error) {
    CHECK(contains(error.what(), "already exists"));
  }
}

TEST_CASE("layers: unusable entries are skipped with their reason; none usable throws them all") {
  TempDir temp;
  const std::string text = temp.file("notes.txt");
  { std::ofstream(text) << std::string(4096, 'x'); }
  const std::string good = temp.file("good.db");
  write_cache(good, {"k"});
  const std::string under_file = text + "/sub/kernels.db";  // its "directory" is a file: cannot be created

  Cache cache = Cache::open_search_path(under_file + "::" + text + ":" + good + ":" + good + ":" + temp.file("gone.db"));
  REQUIRE(cache.layers().size() == 1);  // good, once, and writable: the first entry that may be written
  CHECK(cache.writable());
  CHECK(cache.path() == good);
  REQUIRE(cache.skipped().size() == 3);
  CHECK(contains(cache.skipped()[0], under_file));
  CHECK(contains(cache.skipped()[1], "not a SQLite database"));
  CHECK(contains(cache.skipped()[2], "gone.db does not exist"));

  try {
    Cache::open_search_path(under_file + ":" + text);
    FAIL("expected a Cache error");
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Cache);
    CHECK(contains(error.what(), "FA2JIT_CACHE_PATH"));
    CHECK(contains(error.what(), under_file));
    CHECK(contains(error.what(), "not a SQLite database"));
  }
  CHECK(bytes_of(text) == std::string(4096, 'x'));
}

TEST_CASE("layers: a directory entry stands for its kernels.db; open_default follows FA2JIT_CACHE_PATH") {
  TempDir temp;
  const std::string dir = temp.file("fleet-cache");
  fs::create_directory(dir);
  {
    EnvGuard layers("FA2JIT_CACHE_PATH", dir);
    Cache cache = Cache::open_default();
    CHECK(cache.path() == dir + "/kernels.db");
    cache.put_kernels({fake_kernel("k")});
  }
  CHECK(row_count(dir + "/kernels.db", "kernels") == 1);
  EnvGuard unset("FA2JIT_CACHE_PATH", std::nullopt);
  EnvGuard cache_dir("FA2JIT_CACHE_DIR", dir);
  CHECK(Cache::open_default().find_kernel("k").has_value());
}

TEST_CASE("forward's resolution serves a winner from a lower, read-only layer without tuning") {
  TempDir temp;
  const std::string upper = temp.file("user.db");
  const std::string lower = temp.file("shipped.db");
  fa2::ProblemShape shape;
  shape.head_dim = 64;
  shape.batch = 1;
  shape.heads_q = shape.heads_kv = 8;
  shape.seqlen_q = shape.seqlen_k = 512;
  const fa2::Arch arch = fa2::Arch::sm_90a;
  const std::string key = "device#" + fa2::ProblemClass::of(shape).key();
  fa2::TuningRecord record;
  record.tuning_key = key;
  record.device_key = "device";
  record.problem_key = fa2::ProblemClass::of(shape).key();
  record.winner = fa2::default_config(64, shape.dtype, shape.causal, arch);
  record.winner.stages = 1;  // not the default: the winner is what came back
  record.space_hash = fa2::search_space_hash(fa2::ProblemClass::of(shape), arch);
  Cache::open(lower).put_tuning(record);
  const std::string lower_bytes = bytes_of(lower);

  EnvGuard layers("FA2JIT_CACHE_PATH", upper + ":" + lower);
  bool tuned = false;
  const fa2::TunedResolution resolved =
      fa2::resolve_tuned(fa2::TunePolicy::on_first_use, shape, arch, key, "", [&](Cache&, std::string*) {
        tuned = true;
        return record;
      });
  CHECK_FALSE(tuned);
  CHECK(resolved.cache_fault.empty());
  CHECK(resolved.config == record.winner);
  CHECK(bytes_of(lower) == lower_bytes);
}

TEST_CASE("16 processes x 50 trials create one fresh cache file at once under CPU load: every one succeeds") {
  TempDir temp;
  constexpr int kProcesses = 16;
  constexpr int kTrials = 50;
  std::vector<std::string> sources;
  for (int p = 0; p < kProcesses; ++p) {
    sources.push_back(temp.file("source" + std::to_string(p) + ".db"));
    write_cache(sources.back(), {"kernel-of-" + std::to_string(p)});
  }
  std::atomic<bool> loading{true};
  std::vector<std::thread> load;
  for (unsigned i = 0; i < 2 * std::max(2u, std::thread::hardware_concurrency()); ++i)
    load.emplace_back([&] {
      volatile unsigned long spin = 0;
      while (loading.load(std::memory_order_relaxed)) spin = spin + 1;
    });
  int failed_processes = 0, bad_files = 0;
  std::string first_failure;
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::string fresh = temp.file("fresh" + std::to_string(trial) + ".db");
    std::vector<std::unique_ptr<Child>> children;
    for (int p = 0; p < kProcesses; ++p)
      children.push_back(std::make_unique<Child>(
          std::vector<std::string>{"import", sources[p], "--db", fresh},
          temp.file("log" + std::to_string(p))));
    for (auto& child : children) {
      const int status = child->wait(std::chrono::seconds(120));
      if (!fa2::test::exited_with(status, 0)) {
        ++failed_processes;
        if (first_failure.empty()) first_failure = child->output();
      }
    }
    if (integrity(fresh) != "ok" || row_count(fresh, "kernels") != kProcesses) ++bad_files;
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(fresh + suffix, ignored);
  }
  loading = false;
  for (std::thread& thread : load) thread.join();
  CHECK_MESSAGE(failed_processes == 0, first_failure);
  CHECK(bad_files == 0);
  // No temporary file is left behind by the processes that lost the race.
  for (const auto& entry : fs::directory_iterator(fs::path(sources[0]).parent_path()))
    CHECK_MESSAGE(!contains(entry.path().filename().string(), ".creating-"), entry.path().string());
}

}  // TEST_SUITE
