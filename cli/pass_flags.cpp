// --pass and --deterministic: which kernel family a subcommand works on. One definition for every
// subcommand that takes them, so the spellings, the help text and the rule that determinism is a
// property of the backward only cannot drift between subcommands.
#include <fmt/core.h>

#include <string>

#include "cli/commands.hpp"
#include "common/error.hpp"
#include "common/variant.hpp"

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

namespace {

// "L,R" with each side an integer >= -1.
std::optional<std::pair<int, int>> parse_window(const std::string& text) {
  const std::size_t comma = text.find(',');
  if (comma == std::string::npos) return std::nullopt;
  int left = 0, right = 0;
  if (!parse_int(text.substr(0, comma), left) || !parse_int(text.substr(comma + 1), right)) return std::nullopt;
  if (left < -1 || right < -1) return std::nullopt;
  return std::pair<int, int>{left, right};
}

}  // namespace

void add_variant_flags(CLI::App* sub, PassFlags& flags) {
  sub->add_option("--window", flags.window,
                  "Sliding window L,R: query row i (aligned bottom-right) sees keys i-L .. i+R; -1 = unbounded side "
                  "(flash-attn's window_size)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            return parse_window(text) ? std::string()
                                      : "'" + text + "' is not L,R with integers L, R >= -1 (e.g. 256,0)";
          },
          "L,R", "WINDOW"));
  sub->add_option("--softcap", flags.softcap, "Softcapping: logits = X * tanh(logits / X) (Gemma 2); 0 = off")
      ->check(CLI::Range(0.f, 1e30f));
  sub->add_flag("--alibi", flags.alibi, "ALiBi: a per-head linear bias on the query-key distance");
}

VariantArgs variant_args_of(const PassFlags& flags) {
  VariantArgs args;
  if (!flags.window.empty()) {
    const auto window = parse_window(flags.window);
    if (!window)
      throw Error(Stage::Argument, "", fmt::format("--window '{}' is not L,R with integers >= -1", flags.window));
    args.window_left = window->first;
    args.window_right = window->second;
  }
  args.softcap = flags.softcap;
  return args;
}

Variant variant_of_flags(const PassFlags& flags, bool causal) {
  constexpr int kLongest = 1 << 30;  // no side reaches every key
  Variant variant = fa2::variant_of(causal, variant_args_of(flags), kLongest, kLongest);
  variant.alibi = flags.alibi;
  return variant;
}

int page_size_for(Family family, int page_size) {
  if (page_size != 0 && family != Family::kvc)
    throw Error(Stage::Argument, "",
                fmt::format("--page-size {} applies to the KV-cache forward only: add --pass kvc", page_size));
  return page_size;
}

}  // namespace fa2::cli
