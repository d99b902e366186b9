// fa2-tune: registers the subcommands, parses, runs the one given, and turns every error into a
// message and an exit code. Nothing below main() prints errors or exits on its own.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "common/error.hpp"

namespace {

using fa2::cli::Command;
using fa2::cli::GlobalOptions;

int parse_and_run(int argc, char** argv, GlobalOptions& global) {
  CLI::App app{"fa2-tune: generate, compile, check and tune FlashAttention-2 kernels", "fa2-tune"};
  const std::vector<Command> commands = fa2::cli::build_app(app, global);

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
