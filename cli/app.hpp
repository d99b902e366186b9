// The fa2-tune command line without main(): builds the CLI11 app with every subcommand registered,
// so that main() and the CLI fuzz target (fuzz/fuzz_cli.cpp) parse with the very same parser.
#pragma once

#include <CLI/CLI.hpp>

#include <vector>

#include "cli/commands.hpp"

namespace fa2::cli {

// Registers the global flags and the subcommands on `app`, writing into `global`; both must outlive
// the returned Commands. Nothing runs until the caller calls the parsed Command's run().
std::vector<Command> build_app(CLI::App& app, GlobalOptions& global);

}  // namespace fa2::cli
