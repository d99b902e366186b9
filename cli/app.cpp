#include "cli/app.hpp"

#include <string>

namespace fa2::cli {

namespace {

// CLI11's default failure message adds a second line ("Run with --help ..."); one line is enough.
std::string one_line_failure(const CLI::App* /*app*/, const CLI::Error& error) {
  return std::string("fa2-tune: ") + error.what() + " (see --help)\n";
}

}  // namespace

std::vector<Command> build_app(CLI::App& app, GlobalOptions& global) {
  app.failure_message(one_line_failure);
  app.require_subcommand(1);
  // Lets global flags follow the subcommand too: `fa2-tune emit --compile --verbose`.
  app.fallthrough();
  app.add_flag("-v,--verbose", global.verbose,
               "Also print the NVRTC log and options on errors, and every candidate while tuning or building");
  app.add_option("--db", global.db,
                 "Cache file (default: the layers of $FA2JIT_CACHE_PATH, a ':'-separated list of cache files or "
                 "directories, else $FA2JIT_CACHE_DIR/kernels.db, else ${XDG_CACHE_HOME:-~/.cache}/fa2jit/kernels.db)");

  // One line per subcommand; each lives in its own cli/<name>_command.cpp.
  return {
      setup_emit(app, global),
      setup_check(app, global),
      setup_tune(app, global),
      setup_build(app, global),
      setup_bench(app, global),
      setup_list(app, global),
      setup_show(app, global),
      setup_info(app, global),
      setup_export(app, global),
      setup_import(app, global),
      setup_clear(app, global),
  };
}

}  // namespace fa2::cli
