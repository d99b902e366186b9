// User modifications compiled into the kernels (issue 13 step 2b): a score_mod snippet that rewrites each logit,
// a mask_mod snippet that hides (query, key) pairs, and up to kMaxExtraArrays named read-only device arrays the
// snippets may read. The snippet texts and the arrays' names and types are compile time (UserMods, part of the
// Variant and so of every kernel name, cubin key and tuning key); the arrays' addresses are per call.
//
// The snippets are CUDA C++ inlined into the generated source, in functions of these parameters:
//   score_mod:      (Score score, int batch, int head, int q_idx, int kv_idx, int seqlen_q, int seqlen_k) -> Score
//   score_mod_grad: (float score, ...same...) -> float, d(score_mod)/d(score)
//   mask_mod:       (int batch, int head, int q_idx, int kv_idx, int seqlen_q, int seqlen_k) -> bool
// `score` is the scaled logit (softmax_scale * q . k, after softcap and ALiBi when those are on), head the query
// head, q_idx and kv_idx the positions in the sequences (not aligned to the diagonal), and every extra array a
// `const T*` of its name. A snippet is an expression (`score + bias[q_idx - kv_idx]`) or a function body with
// its own `return` statements. Without score_mod_grad the backward derives the derivative by evaluating
// score_mod on a dual number (`Score` is then fa2::Dual, a float with its derivative): that covers expressions
// built from + - * /, unary minus, comparisons, ?: and the functions tanhf, expf, logf, sqrtf, fabsf, fminf,
// fmaxf, sinf, cosf (so a bias, score * c, c * tanhf(score / c) and their sums and products); a snippet that
// converts score to float or calls another function of it needs score_mod_grad.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace fa2 {

constexpr int kMaxExtraArrays = 4;

// The element types an extra array may have.
enum class ExtraType { i32, i64, f32, u8 };
const char* extra_type_name(ExtraType type);  // "int32" | "int64" | "float32" | "uint8"
std::optional<ExtraType> parse_extra_type(const std::string& text);

// An extra array as the kernel is compiled for it: the name the snippets use and its element type.
struct ExtraArrayDecl {
  std::string name;
  ExtraType type = ExtraType::i32;
  bool operator==(const ExtraArrayDecl& o) const { return name == o.name && type == o.type; }
};

// An extra array of a call: its declaration and its device address (read only, at least as long as the
// snippets index; nothing checks the indices).
struct ExtraArray {
  std::string name;
  ExtraType type = ExtraType::i32;
  const void* data = nullptr;
};

// The user modifications a kernel is compiled for; empty strings are off.
struct UserMods {
  std::string score_mod;
  std::string score_mod_grad;  // optional, with score_mod: its derivative; empty: derived (see above)
  std::string mask_mod;
  std::vector<ExtraArrayDecl> extras;
  // Set only on a UserMods read back from a cache row, which stores the digest and not the texts.
  std::string stored_digest;

  bool any() const { return !score_mod.empty() || !mask_mod.empty() || !stored_digest.empty(); }
  // 8 hex digits over every text, name and type (stored_digest when the texts are not known): the part of
  // kernel names ("_umod1f2e3d4c") and tuning keys that stands for the snippets.
  std::string digest() const;
  bool operator==(const UserMods& o) const { return digest() == o.digest(); }
  bool operator!=(const UserMods& o) const { return !(*this == o); }
};

// Why these mods cannot be compiled (a bad extra name, too many arrays, a gradient without score_mod), or
// nullopt. The snippets' own errors come from NVRTC, with their lines.
std::optional<std::string> validate_user_mods(const UserMods& mods);

}  // namespace fa2
