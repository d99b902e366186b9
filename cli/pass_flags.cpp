// --pass and --deterministic: which kernel family a subcommand works on. One definition for every
// subcommand that takes them, so the spellings, the help text and the rule that determinism is a
// property of the backward only cannot drift between subcommands.
#include <fmt/core.h>

#include <string>

#include "cli/commands.hpp"
#include "common/error.hpp"

namespace fa2::cli {

void add_pass_flags(CLI::App* sub, PassFlags& flags, bool allow_both) {
  const std::string choices = allow_both ? "fwd|bwd|kvc|both" : "fwd|bwd|kvc";
  const std::string help = allow_both ? "Kernel family: fwd (the forward), bwd (the backward), kvc (the forward "
                                        "against a KV cache) or both (each problem as a forward and a backward one)"
                                      : "Kernel family: fwd (the forward), bwd (the backward) or kvc (the forward "
                                        "against a KV cache)";
  sub->add_option("--pass", flags.pass, help)
      ->check(parsed_by([allow_both](const std::string& text) { return (allow_both && text == "both") ||
                                                                       parse_family(text).has_value(); },
                        "pass", choices))
      ->capture_default_str();
  sub->add_flag("--deterministic", flags.deterministic,
                "Backward: add dQ in a fixed order (bitwise-reproducible gradients) instead of with atomics");
  // Checked while parsing, not when the command runs: a contradiction between two flags is a bad
  // command line like a bad value, so it gets CLI11's one-line message and exit code, before any cache
  // is opened or GPU looked for. The subcommand's final callback runs once every option is set.
  sub->callback([&flags] {
    if (flags.deterministic && flags.pass == "fwd")
      throw CLI::ValidationError("--deterministic", "applies to the backward only: add --pass bwd");
  });
}

Family family_of(const PassFlags& flags) {
  const std::optional<Family> family = parse_family(flags.pass);
  // The flag's validator rejects unknown names (and "both" where a single family is needed); this
  // guards direct callers of the run functions.
  if (!family)
    throw Error(Stage::Argument, "", fmt::format("--pass must be fwd, bwd or kvc here, got '{}'", flags.pass));
  if (flags.deterministic && *family != Family::bwd)
    throw Error(Stage::Argument, "", "--deterministic applies to the backward only: add --pass bwd");
  return *family;
}

int page_size_for(Family family, int page_size) {
  if (page_size != 0 && family != Family::kvc)
    throw Error(Stage::Argument, "",
                fmt::format("--page-size {} applies to the KV-cache forward only: add --pass kvc", page_size));
  return page_size;
}

}  // namespace fa2::cli
