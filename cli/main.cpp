// fa2-tune: registers the subcommands, parses, runs the one given, and turns every error into a
// message and an exit code. Nothing below main() prints errors or exits on its own.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "runtime/error.hpp"

namespace {

using fa2::cli::Command;
using fa2::cli::GlobalOptions;

// CLI11's default failure message adds a second line ("Run with --help ..."); one line is enough.
std::string one_line_failure(const CLI::App* /*app*/, const CLI::Error& error) {
  return std::string("fa2-tune: ") + error.what() + " (see --help)\n";
}

int parse_and_run(int argc, char** argv, GlobalOptions& global) {
  CLI::App app{"fa2-tune: generate, compile, check and tune FlashAttention-2 kernels", "fa2-tune"};
  app.failure_message(one_line_failure);
  app.require_subcommand(1);
  // Lets global flags follow the subcommand too: `fa2-tune emit --compile --verbose`.
  app.fallthrough();
  app.add_flag("-v,--verbose", global.verbose,
               "Also print the NVRTC log and options on errors, and every candidate while tuning or building");
  app.add_option("--db", global.db,
                 "Cache file (default: $FA2JIT_CACHE_DIR/kernels.db, else ${XDG_CACHE_HOME:-~/.cache}/fa2jit/kernels.db)");

  // One line per subcommand; each lives in its own cli/<name>_command.cpp.
  const std::vector<Command> commands = {
      fa2::cli::setup_emit(app, global),
      fa2::cli::setup_check(app, global),
      fa2::cli::setup_tune(app, global),
      fa2::cli::setup_build(app, global),
      fa2::cli::setup_bench(app, global),
      fa2::cli::setup_list(app, global),
      fa2::cli::setup_show(app, global),
      fa2::cli::setup_info(app, global),
      fa2::cli::setup_export(app, global),
      fa2::cli::setup_import(app, global),
      fa2::cli::setup_clear(app, global),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return fa2::cli::kError;  // unreachable: require_subcommand(1) guarantees one was parsed
}

void print_block(const std::string& text) {
  if (text.empty()) return;
  fmt::print(stderr, "{}{}", text, text.back() == '\n' ? "" : "\n");
}

}  // namespace

int main(int argc, char** argv) {
  GlobalOptions global;
  try {
    return parse_and_run(argc, argv, global);
  } catch (const fa2::Error& error) {
    fmt::print(stderr, "fa2-tune: {}\n", error.what());
    if (global.verbose) {
      if (!error.options().empty()) {
        std::string joined = "options:";
        for (const std::string& option : error.options()) joined += " " + option;
        print_block(joined);
      }
      print_block(error.log());
    }
    return fa2::cli::kError;
  } catch (const std::exception& error) {
    fmt::print(stderr, "fa2-tune: {}\n", error.what());
    return fa2::cli::kError;
  } catch (...) {
    fmt::print(stderr, "fa2-tune: unknown error\n");
    return fa2::cli::kError;
  }
}
