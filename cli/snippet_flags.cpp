// --score-mod, --score-mod-grad, --mask-mod and --extra: the user modifications of `fa2-tune emit`, so the
// generated source with the snippets in place (and with --compile, NVRTC's verdict on them) can be seen without
// writing a program.
#include <fmt/core.h>

#include <fstream>
#include <sstream>
#include <string>

#include "cli/commands.hpp"
#include "common/error.hpp"

namespace fa2::cli {

namespace {

// The snippet a flag gives: its text, or with a leading '@' the contents of that file.
std::string snippet_text(const std::string& value, const char* flag) {
  if (value.empty() || value[0] != '@') return value;
  std::ifstream file(value.substr(1));
  if (!file)
    throw Error(Stage::Argument, "", fmt::format("{}: cannot read the snippet file '{}'", flag, value.substr(1)));
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

void add_snippet_flags(CLI::App* sub, SnippetFlags& flags) {
  sub->add_option("--score-mod", flags.score_mod,
                  "score_mod snippet (or @FILE): a new logit from score, batch, head, q_idx, kv_idx, seqlen_q, "
                  "seqlen_k and the --extra arrays, e.g. 'score - 0.1f * (q_idx - kv_idx)'");
  sub->add_option("--score-mod-grad", flags.score_mod_grad,
                  "score_mod's derivative in score (or @FILE); default: derived by dual numbers");
  sub->add_option("--mask-mod", flags.mask_mod,
                  "mask_mod snippet (or @FILE): true where query q_idx sees key kv_idx, e.g. "
                  "'doc_id[q_idx] == doc_id[kv_idx]'");
  sub->add_option("--extra", flags.extras,
                  "An extra array the snippets read, NAME:TYPE with TYPE int32|int64|float32|uint8 (repeatable, at "
                  "most 4)");
}

UserMods user_mods_of_flags(const SnippetFlags& flags) {
  UserMods mods;
  mods.score_mod = snippet_text(flags.score_mod, "--score-mod");
  mods.score_mod_grad = snippet_text(flags.score_mod_grad, "--score-mod-grad");
  mods.mask_mod = snippet_text(flags.mask_mod, "--mask-mod");
  for (const std::string& extra : flags.extras) {
    const std::size_t colon = extra.find(':');
    const std::optional<ExtraType> type =
        colon == std::string::npos ? std::nullopt : parse_extra_type(extra.substr(colon + 1));
    if (!type)
      throw Error(Stage::Argument, "",
                  fmt::format("--extra '{}' is not NAME:TYPE with TYPE int32, int64, float32 or uint8", extra));
    mods.extras.push_back(ExtraArrayDecl{extra.substr(0, colon), *type});
  }
  return mods;
}

}  // namespace fa2::cli
