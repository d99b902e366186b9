// fa2-tune, run as a process: exit codes and one-line messages of `emit` and `check`.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "codegen/tile_config.hpp"
#include "runtime/driver.hpp"

namespace {

// fa2-tune is built next to this test executable.
std::string tool_path() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  REQUIRE_MESSAGE(!ec, "cannot read /proc/self/exe: ", ec.message());
  const std::filesystem::path tool = self.parent_path() / "fa2-tune";
  REQUIRE_MESSAGE(std::filesystem::exists(tool), "fa2-tune not found at ", tool.string());
  return tool.string();
}

struct Run {
  int status = -1;  // exit code, or -1 when the process did not exit normally
  std::string output;  // stdout and stderr together
};

Run run(const std::string& args) {
  const std::string command = "'" + tool_path() + "' " + args + " 2>&1";
  Run result;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe != nullptr, "popen failed for ", command);
  std::array<char, 4096> buffer;
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int raw = ::pclose(pipe);
  result.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
  MESSAGE("fa2-tune ", args, " -> exit ", result.status, "\n", result.output);
  return result;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// One line of text: ends in a newline, and has no other.
bool one_line(const std::string& text) {
  return !text.empty() && text.back() == '\n' && text.find('\n') == text.size() - 1;
}

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("emit prints the generated source") {
  const Run r = run("emit --head-dim 128 --dtype bf16 --causal");
  CHECK(r.status == 0);
  const std::string name = fa2::default_config(128, fa2::DType::bf16, true, fa2::Arch::sm_90a).name();
  CHECK_MESSAGE(contains(r.output, name), r.output);
  CHECK(contains(r.output, "#include \"fa2/fwd_kernel.cuh\""));
}

TEST_CASE("emit --compile prints a resource report") {
  const Run r = run("emit --head-dim 128 --causal --arch sm_80 --compile");
  CHECK(r.status == 0);
  CHECK_MESSAGE(contains(r.output, "registers"), r.output);
  CHECK_MESSAGE(contains(r.output, "spill"), r.output);
  CHECK(contains(r.output, fa2::default_config(128, fa2::DType::bf16, true, fa2::Arch::sm_80).name()));
  CHECK(!contains(r.output, "#include"));  // the report, not the source
}

TEST_CASE("emit rejects an unsupported head dim in one line") {
  const Run r = run("emit --head-dim 100");
  CHECK(r.status != 0);
  CHECK_MESSAGE(contains(r.output, "100"), r.output);
  CHECK_MESSAGE(one_line(r.output), r.output);
}

TEST_CASE("emit rejects an unknown dtype") {
  const Run r = run("emit --dtype fp32");
  CHECK(r.status != 0);
  CHECK_MESSAGE(contains(r.output, "fp32"), r.output);
  CHECK_MESSAGE(one_line(r.output), r.output);
}

TEST_CASE("emit rejects an unsupported arch") {
  const Run r = run("emit --arch sm_70");
  CHECK(r.status != 0);
  CHECK_MESSAGE(contains(r.output, "sm_70"), r.output);
}

TEST_CASE("emit of an invalid config exits 2 naming the reason") {
  const Run r = run("emit --head-dim 256 --block-m 128 --warps 4");
  CHECK(r.status == 2);
  fa2::TileConfig config = fa2::default_config(256, fa2::DType::bf16, false, fa2::Arch::sm_90a);
  config.block_m = 128;
  config.warps = 4;
  REQUIRE(config.validate().has_value());
  CHECK_MESSAGE(contains(r.output, *config.validate()), r.output);
  CHECK_MESSAGE(contains(r.output, std::to_string(config.accumulator_registers())), r.output);
  CHECK_MESSAGE(one_line(r.output), r.output);
}

TEST_CASE("no subcommand is an error") {
  const Run r = run("");
  CHECK(r.status != 0);
  CHECK(!r.output.empty());
}

TEST_CASE("check without a GPU fails with a one-line driver message") {
  if (fa2::driver::available()) {
    MESSAGE("a CUDA driver is available here: skipped (this checks the no-driver path)");
    return;
  }
  const Run r = run("check");
  CHECK(r.status != 0);
  CHECK_MESSAGE(contains(r.output, "libcuda.so.1"), r.output);
  CHECK_MESSAGE(one_line(r.output), r.output);
}

}  // TEST_SUITE
