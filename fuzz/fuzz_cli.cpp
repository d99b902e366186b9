// libFuzzer target: arbitrary command lines through the fa2-tune parser (fa2::cli::build_app).
// Parse only: no subcommand's run() is called, so nothing compiles, launches or writes a file, and
// the target needs no GPU. A parse may fail only the way main() expects (a CLI::ParseError, which
// includes --help, or an fa2::Error); any other exception, a crash or a sanitizer report is a finding.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/app.hpp"
#include "common/error.hpp"

namespace {

constexpr std::size_t kMaxArgs = 12;

// NUL, space, tab and newline separate arguments, so text corpora and dictionaries work as they are.
std::vector<std::string> split(const uint8_t* bytes, size_t size) {
  std::vector<std::string> args{"fa2-tune"};
  std::string current;
  bool in_arg = false;
  for (size_t i = 0; i < size && args.size() <= kMaxArgs; ++i) {
    const char c = static_cast<char>(bytes[i]);
    if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
      if (in_arg) args.push_back(current);
      current.clear();
      in_arg = false;
    } else {
      current += c;
      in_arg = true;
    }
  }
  if (in_arg && args.size() <= kMaxArgs) args.push_back(current);
  return args;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::vector<std::string> args = split(bytes, size);
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());

  CLI::App app{"fa2-tune", "fa2-tune"};
  fa2::cli::GlobalOptions global;
  const std::vector<fa2::cli::Command> commands = fa2::cli::build_app(app, global);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
    return 0;  // main() prints it through app.exit(); not printed here to keep the fuzzer's log short
  } catch (const fa2::Error&) {
    return 0;  // main() prints it and exits 1
  }
  // require_subcommand(1): a successful parse selected exactly one subcommand for main() to run.
  int parsed = 0;
  for (const fa2::cli::Command& command : commands) parsed += command.app->parsed() ? 1 : 0;
  if (parsed != 1) {
    std::fprintf(stderr, "fuzz_cli: a successful parse selected %d subcommands\n", parsed);
    std::abort();
  }
  return 0;
}
