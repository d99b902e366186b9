// Shared by the hardening suites: fa2-tune as a child process we hold the pid of (to kill it), raw
// SQLite reads that do not go through the code under test, and cache rows with fake cubins.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "autotune/cache.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace fa2::test {

// A child `fa2-tune <args>` whose stdout and stderr go to `log`. With drop_file_override (root only),
// the child gives up the capabilities that let root ignore file permissions, so a chmod 0444 file is
// read-only to it as to anyone else.
class Child {
 public:
  Child(const std::vector<std::string>& args, std::string log, bool drop_file_override = false)
      : log_(std::move(log)) {
    const std::string tool = tool_path();
    std::vector<std::string> argv_text{tool};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : argv_text) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    REQUIRE_MESSAGE(pid_ >= 0, "fork failed");
    if (pid_ == 0) {  // only async-signal-safe calls from here to exec
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) ::_exit(126);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      if (drop_file_override)
        for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER})
          if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) ::_exit(125);
      ::execv(tool.c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void kill9() { ::kill(pid_, SIGKILL); }

  // Waits at most `limit`; the raw waitpid status, or -1 (after killing it) when it ran over.
  int wait(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill9();
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    reaped_ = true;
    return status;
  }
  std::string output() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

inline bool exited_with(int status, int code) { return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == code; }
inline bool killed_by(int status, int signal) { return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == signal; }

// The first column of the first row of `sql`, read with a connection of our own; on an error, the
// error text prefixed by "error: " (so a damaged file gives a value to check, not a test crash).
inline std::string raw_query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string result;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);  // RW: may need to replay a WAL
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt* stmt = nullptr;
  if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    if (const auto* text = sqlite3_column_text(stmt, 0)) result = reinterpret_cast<const char*>(text);
  } else if (rc != SQLITE_DONE) {
    result = std::string("error: ") + sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

inline std::string integrity(const std::string& path) { return raw_query(path, "PRAGMA integrity_check"); }
inline int row_count(const std::string& path, const std::string& table) {
  return std::atoi(raw_query(path, "SELECT count(*) FROM " + table).c_str());
}

// A kernel row with a fake cubin of `bytes` bytes (the cache does not look inside it).
inline CachedKernel fake_kernel(const std::string& key, std::size_t bytes = 256) {
  CachedKernel kernel;
  kernel.cubin_key = key;
  kernel.config.head_dim = 64;
  kernel.config.arch = Arch::sm_80;
  kernel.nvrtc_version = "test";
  kernel.template_hash = "test";
  kernel.cubin.assign(bytes, 'c');
  kernel.compile_ms = 1.0;
  return kernel;
}

}  // namespace fa2::test
