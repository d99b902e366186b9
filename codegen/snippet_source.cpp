#include "codegen/snippet_source.hpp"

#include <fmt/format.h>

#include <cctype>

namespace fa2 {

namespace {

const char* extra_pointer_type(ExtraType type) {
  switch (type) {
    case ExtraType::i32: return "const int*";
    case ExtraType::i64: return "const long long*";
    case ExtraType::f32: return "const float*";
    case ExtraType::u8: return "const unsigned char*";
  }
  return "const void*";
}

// Whether the snippet has a `return` of its own (a function body) rather than being one expression.
bool has_return(const std::string& snippet) {
  for (std::size_t at = snippet.find("return"); at != std::string::npos; at = snippet.find("return", at + 1)) {
    const bool starts = at == 0 || !(std::isalnum(static_cast<unsigned char>(snippet[at - 1])) || snippet[at - 1] == '_');
    const std::size_t end = at + 6;
    const bool ends =
        end == snippet.size() || !(std::isalnum(static_cast<unsigned char>(snippet[end])) || snippet[end] == '_');
    if (starts && ends) return true;
  }
  return false;
}

// Appends one snippet function: its signature, `#line 1 "<label>"`, the snippet (wrapped in `return (...);` when
// it is an expression), then the line numbering of the program restored. `line` is the 1-based line of the
// program the next text starts on, advanced over what is appended.
void append_function(std::string& out, int& line, const std::string& program, const std::string& signature,
                     const char* label, const std::string& snippet) {
  auto add = [&](const std::string& text) {
    out += text;
    line += line_count(text);
  };
  add(signature + " {\n");
  add(fmt::format("#line 1 \"{}\"\n", label));
  // An expression closes on its own last line (so an incomplete one is reported there), unless a // comment
  // could swallow the closing parenthesis.
  const bool comment = snippet.find("//") != std::string::npos;
  add((has_return(snippet) ? snippet : "return (" + snippet + (comment ? "\n);" : ");")) + "\n");
  // `line` is now the directive's own line: the one after it is line + 1.
  add(fmt::format("#line {} \"{}\"\n", line + 1, program));
  add("  }\n");
}

}  // namespace

int line_count(const std::string& text) {
  int lines = 0;
  for (char c : text) lines += c == '\n';
  return lines;
}

std::string user_mods_struct(const TileConfig& config, int first_line) {
  return user_mods_struct(config.variant.user, config.name() + ".cu", first_line);
}

std::string user_mods_struct(const UserMods& mods, const std::string& program, int first_line) {
  if (!mods.any()) return {};
  std::string out;
  int line = first_line;
  auto add = [&](const std::string& text) {
    out += text;
    line += line_count(text);
  };
  add(fmt::format("// The user's modifications (digest {}): score_mod, mask_mod and their extra arrays.\n"
                  "struct {} {{\n"
                  "  static constexpr bool kScoreMod = {};\n"
                  "  static constexpr bool kScoreGrad = {};\n"
                  "  static constexpr bool kMaskMod = {};\n",
                  mods.digest(), kUserModsType, mods.score_mod.empty() ? "false" : "true",
                  mods.score_mod_grad.empty() ? "false" : "true", mods.mask_mod.empty() ? "false" : "true"));
  std::string init;
  for (std::size_t i = 0; i < mods.extras.size(); ++i) {
    const char* type = extra_pointer_type(mods.extras[i].type);
    add(fmt::format("  {} {};\n", type, mods.extras[i].name));
    init += fmt::format("{}{}(static_cast<{}>(p.extra[{}]))", init.empty() ? "\n      : " : ",\n        ",
                        mods.extras[i].name, type, i);
  }
  add(fmt::format("  __device__ __forceinline__ explicit {}(const fa2::UserModParams& p){} {{}}\n", kUserModsType,
                  init));
  if (!mods.score_mod.empty()) {
    append_function(out, line, program,
                    "  template <class Score>\n  __device__ __forceinline__ Score score_mod(Score score, int batch, "
                    "int head, int q_idx, int kv_idx, int seqlen_q,\n                                             "
                    "  int seqlen_k) const",
                    "score_mod", mods.score_mod);
  }
  if (!mods.score_mod_grad.empty()) {
    append_function(out, line, program,
                    "  __device__ __forceinline__ float score_mod_grad(float score, int batch, int head, int q_idx, "
                    "int kv_idx, int seqlen_q,\n                                                    int seqlen_k) "
                    "const",
                    "score_mod_grad", mods.score_mod_grad);
  }
  if (!mods.mask_mod.empty()) {
    append_function(out, line, program,
                    "  __device__ __forceinline__ bool mask_mod(int batch, int head, int q_idx, int kv_idx, int "
                    "seqlen_q, int seqlen_k) const",
                    "mask_mod", mods.mask_mod);
  }
  add("};\n\n");
  return out;
}

bool uses_tile_lists(const TileConfig& config) {
  if (config.variant.user.mask_mod.empty()) return false;
  return config.family == Family::fwd || (config.family == Family::bwd && !config.deterministic);
}

std::string tile_lists_entry(const TileConfig& config, const char* params_type, const char* function) {
  if (!uses_tile_lists(config)) return {};
  return fmt::format(
      "\n"
      "// mask_mod's tile lists, over the main kernel's grid, just before it.\n"
      "extern \"C\" __global__ void __launch_bounds__(Config::kThreads)\n"
      "{}_bmask(const fa2::{} params, const fa2::VariantParams variant) {{\n"
      "  fa2::{}<Config>(params, variant);\n"
      "}}\n",
      config.name(), params_type, function);
}

}  // namespace fa2
