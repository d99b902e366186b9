// Test support: running the fa2-tune executable (built next to the test executables) as a process,
// reading what it prints, and temporary directories for cache files. Shared by the CPU and GPU suites.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace fa2::test {

inline std::string tool_path() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  REQUIRE_MESSAGE(!ec, "cannot read /proc/self/exe: ", ec.message());
  const std::filesystem::path tool = self.parent_path() / "fa2-tune";
  REQUIRE_MESSAGE(std::filesystem::exists(tool), "fa2-tune not found at ", tool.string());
  return tool.string();
}

struct Run {
  int status = -1;     // exit code, or -1 when the process did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs `fa2-tune <args>` through the shell and logs the command, its exit code and (the start of) its output.
inline Run run(const std::string& args) {
  const std::string command = "'" + tool_path() + "' " + args + " 2>&1";
  Run result;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe != nullptr, "popen failed for ", command);
  std::array<char, 4096> buffer;
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int raw = ::pclose(pipe);
  result.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
  MESSAGE("fa2-tune ", args, " -> exit ", result.status, "\n", result.output.substr(0, 2000));
  return result;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// How many times `part` occurs in `text`, without overlaps.
inline int count(const std::string& text, const std::string& part) {
  int n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

// The values of `"key": ...` in order, strings without their quotes, numbers and booleans as written:
// enough JSON parsing for `list --json` and `show --json` (no escapes in the values looked at).
inline std::vector<std::string> values_of(const std::string& json, const std::string& key) {
  std::vector<std::string> values;
  const std::string opening = "\"" + key + "\": ";
  for (auto at = json.find(opening); at != std::string::npos; at = json.find(opening, at + 1)) {
    std::size_t start = at + opening.size();
    if (start < json.size() && json[start] == '"') {
      ++start;
      values.push_back(json.substr(start, json.find('"', start) - start));
    } else {
      values.push_back(json.substr(start, json.find_first_of(",}\n", start) - start));
    }
  }
  return values;
}

// One line of text: ends in a newline, and has no other.
// The number after `key` on a "key   value" line, as `build` and `info` print them; -1 when absent.
inline int reported(const std::string& output, const std::string& key) {
  const std::string text = "\n" + output;
  const auto line = text.find("\n" + key + " ");
  if (line == std::string::npos) return -1;
  const auto start = text.find_first_not_of(' ', line + 1 + key.size());
  return std::atoi(text.c_str() + start);
}

inline bool one_line(const std::string& text) {
  return !text.empty() && text.back() == '\n' && text.find('\n') == text.size() - 1;
}

// A fresh directory, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "fa2jit_test_XXXXXX").string();
    REQUIRE_MESSAGE(::mkdtemp(pattern.data()) != nullptr, "mkdtemp failed for ", pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace fa2::test
