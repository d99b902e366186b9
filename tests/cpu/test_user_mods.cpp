// User modifications (score_mod, mask_mod, extra arrays) without a GPU: the digest in names, problem keys and
// cache tags, the generated source with the snippets under #line, NVRTC's errors pointing at the snippet's own
// line, argument errors, the C ABI fields, fa2-tune emit, and the snippet kernels (and the reference compiled
// with them) compiling for sm_80 and sm_90a.
#include <doctest/doctest.h>

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "autotune/problem_shape.hpp"
#include "autotune/reference.hpp"
#include "codegen/emit.hpp"
#include "codegen/snippet_source.hpp"
#include "codegen/tile_config.hpp"
#include "common/error.hpp"
#include "common/variant.hpp"
#include "fa2jit/fa2jit.h"
#include "runtime/args_check.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "tests/support/compile_check.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace {

using fa2::Arch;
using fa2::DType;
using fa2::Family;
using fa2::UserMods;
using fa2::Variant;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A document mask read from an extra array, and a relative-position bias.
UserMods document_mask() {
  UserMods mods;
  mods.mask_mod = "doc_id[q_idx] == doc_id[kv_idx]";
  mods.extras = {{"doc_id", fa2::ExtraType::i32}};
  return mods;
}
UserMods relative_bias() {
  UserMods mods;
  mods.score_mod = "score + bias[(q_idx - kv_idx) + seqlen_k]";
  mods.extras = {{"bias", fa2::ExtraType::f32}};
  return mods;
}
UserMods tanh_cap() {
  UserMods mods;
  mods.score_mod = "30.f * tanhf(score / 30.f)";
  return mods;
}
UserMods prefix_lm() {
  UserMods mods;
  mods.mask_mod = "kv_idx < 64 || kv_idx <= q_idx";
  return mods;
}

Variant with_mods(const UserMods& mods) {
  Variant variant;
  variant.user = mods;
  return variant;
}

fa2::TileConfig config_with(Family family, Arch arch, const UserMods& mods, bool causal = false,
                            bool deterministic = false) {
  return fa2::default_config(family, 128, DType::bf16, causal, arch, deterministic, 0, with_mods(mods));
}

// The physical line (1-based) of `text` at character `at`.
int line_at(const std::string& text, std::size_t at) {
  int line = 1;
  for (std::size_t i = 0; i < at; ++i) line += text[i] == '\n';
  return line;
}

alignas(256) unsigned char g_tensor[256];
alignas(16) int g_doc_id[64];

fa2::FwdArgs forward_args() {
  fa2::FwdArgs args;
  args.q = args.k = args.v = args.o = g_tensor;
  args.batch = 2;
  args.heads_q = 8;
  args.heads_kv = 2;
  args.seqlen_q = 100;
  args.seqlen_k = 130;
  args.head_dim = 64;
  args.q_strides = args.o_strides = fa2::bshd_strides(100, 8, 64);
  args.k_strides = args.v_strides = fa2::bshd_strides(130, 2, 64);
  return args;
}

std::string forward_error(const fa2::FwdArgs& args) {
  try {
    fa2::check_forward_args(args);
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Argument);
    return error.what();
  }
  return {};
}

}  // namespace

TEST_SUITE("user mods") {

TEST_CASE("the snippets' digest is in the kernel name, the problem key and the cache tag") {
  const fa2::TileConfig plain = fa2::default_config(Family::fwd, 128, DType::bf16, false, Arch::sm_80);
  const fa2::TileConfig doc = config_with(Family::fwd, Arch::sm_80, document_mask());
  const std::string digest = document_mask().digest();
  CHECK(digest.size() == 8);
  CHECK(contains(doc.name(), "_umod" + digest + "_"));
  CHECK(doc.hash() != plain.hash());
  // Any change of text, name or type changes the digest, so the name, the source and both keys.
  UserMods other = document_mask();
  other.mask_mod = "doc_id[q_idx] == doc_id[kv_idx] ";
  CHECK(other.digest() != digest);
  UserMods renamed = document_mask();
  renamed.extras[0].type = fa2::ExtraType::i64;
  CHECK(renamed.digest() != digest);
  CHECK(config_with(Family::fwd, Arch::sm_80, other).name() != doc.name());
  CHECK(fa2::emit(config_with(Family::fwd, Arch::sm_80, other)) != fa2::emit(doc));
  // The cache stores the tag; reading it back keeps the digest, equal to the full mods.
  const std::string tag = fa2::variant_tag(doc.variant);
  CHECK(tag == "umod" + digest);
  const auto parsed = fa2::parse_variant_tag("win_umod" + digest);
  REQUIRE(parsed.has_value());
  CHECK(parsed->window);
  CHECK(parsed->user.stored_digest == digest);
  Variant expected = with_mods(document_mask());
  expected.window = true;
  CHECK(*parsed == expected);
  CHECK_FALSE(fa2::parse_variant_tag("umod12").has_value());
  CHECK_FALSE(fa2::parse_variant_tag("umod" + digest + "_").has_value());
  // A config read back from the cache cannot be emitted until the call's snippets complete it.
  fa2::TileConfig cached = doc;
  cached.variant = *fa2::parse_variant_tag(tag);
  REQUIRE(cached.validate().has_value());
  CHECK(contains(*cached.validate(), "not known here"));
  // The problem class (the tuning key).
  fa2::FwdArgs args = forward_args();
  args.variant.mask_mod = document_mask().mask_mod;
  args.variant.extra = {{"doc_id", fa2::ExtraType::i32, g_doc_id}};
  const fa2::ProblemShape shape = fa2::ProblemShape::of(args);
  CHECK(contains(fa2::ProblemClass::of(shape).key(), " umod" + digest));
  CHECK(shape.variant() == with_mods(document_mask()));
  CHECK(shape.variant_args().extra.size() == 1);
}

TEST_CASE("the generated source holds the snippets under #line, numbered back to the program after them") {
  UserMods mods = relative_bias();
  mods.mask_mod = "kv_idx <= q_idx ||\n   kv_idx < 16";
  for (Family family : {Family::fwd, Family::bwd})
    for (Arch arch : {Arch::sm_80, Arch::sm_90a}) {
      const fa2::TileConfig config = config_with(family, arch, mods);
      const std::string source = fa2::emit(config);
      CAPTURE(source);
      CHECK(contains(source, "#line 1 \"score_mod\"\nreturn (score + bias[(q_idx - kv_idx) + seqlen_k]);"));
      CHECK(contains(source, "#line 1 \"mask_mod\"\nreturn (kv_idx <= q_idx ||\n   kv_idx < 16);"));
      CHECK(contains(source, "const float* bias;"));
      CHECK(contains(source, "fa2::ScoreVariant</*window*/ false, /*softcap*/ false, /*alibi*/ false, FA2UserMods>"));
      CHECK(contains(source, config.name() + "_bmask("));
      // Every restoring directive names the line that follows it.
      const std::string program = "\"" + config.name() + ".cu\"";
      int restored = 0;
      for (std::size_t at = source.find("#line "); at != std::string::npos; at = source.find("#line ", at + 1)) {
        const std::size_t end = source.find('\n', at);
        const std::string directive = source.substr(at, end - at);
        if (!contains(directive, program)) continue;
        std::istringstream fields(directive.substr(6));
        int number = 0;
        fields >> number;
        CHECK(number == line_at(source, end + 1));
        ++restored;
      }
      CHECK(restored == 2);
    }
  // A body with its own return is placed as it is.
  UserMods body;
  body.score_mod = "if (q_idx == kv_idx) return score;\nreturn score * 0.5f;";
  const std::string source = fa2::emit(config_with(Family::fwd, Arch::sm_80, body));
  CHECK(contains(source, "#line 1 \"score_mod\"\nif (q_idx == kv_idx) return score;\nreturn score * 0.5f;\n"));
  // The deterministic backward walks every tile: no tile-list kernel.
  const fa2::TileConfig det = config_with(Family::bwd, Arch::sm_80, document_mask(), false, true);
  CHECK_FALSE(contains(fa2::emit(det), "_bmask"));
  CHECK(det.entry_points().size() == 3);
  CHECK(config_with(Family::bwd, Arch::sm_80, document_mask()).entry_points().back() ==
        config_with(Family::bwd, Arch::sm_80, document_mask()).name() + "_bmask");
  CHECK(config_with(Family::fwd, Arch::sm_80, relative_bias()).entry_points().size() == 1);
}

TEST_CASE("an invalid snippet is a compile error with the snippet's line pointed out") {
  UserMods mods;
  mods.score_mod = "score +\n  undefined_bias[q_idx]";
  const fa2::TileConfig config = config_with(Family::fwd, Arch::sm_80, mods);
  try {
    fa2::compile_source(fa2::emit(config), config.name(), config.arch);
    FAIL("the snippet compiled");
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Compile);
    CAPTURE(error.log());
    CHECK(contains(error.log(), "score_mod(2)"));
    CHECK(contains(error.log(), "undefined_bias"));
  }
  UserMods mask;
  mask.mask_mod = "doc_id[q_idx] == ";
  mask.extras = {{"doc_id", fa2::ExtraType::i32}};
  const fa2::TileConfig bad_mask = config_with(Family::bwd, Arch::sm_90a, mask);
  try {
    fa2::compile_source(fa2::emit(bad_mask), bad_mask.name(), bad_mask.arch);
    FAIL("the snippet compiled");
  } catch (const fa2::Error& error) {
    CAPTURE(error.log());
    CHECK(contains(error.log(), "mask_mod(1)"));
  }
}

TEST_CASE("user mods are refused where a family or scheme has none, and bad mods are named") {
  fa2::TileConfig kvc = fa2::default_config(Family::kvc, 128, DType::bf16, true, Arch::sm_90a);
  kvc.variant.user = tanh_cap();
  REQUIRE(kvc.validate().has_value());
  CHECK(contains(*kvc.validate(), "not supported yet by the kvc family"));
  fa2::TileConfig tma =
      fa2::with_scheme(fa2::default_config(128, DType::bf16, false, Arch::sm_90a), fa2::Scheme::tma_ws);
  tma.variant.user = document_mask();
  REQUIRE(tma.validate().has_value());
  CHECK(contains(*tma.validate(), "not supported yet by scheme tma_ws"));

  UserMods mods;
  mods.score_mod_grad = "1.f";
  CHECK(contains(*fa2::validate_user_mods(mods), "without score_mod"));
  mods = document_mask();
  mods.extras.push_back({"q_idx", fa2::ExtraType::f32});
  CHECK(contains(*fa2::validate_user_mods(mods), "'q_idx' is a parameter"));
  mods.extras.back().name = "2bad";
  CHECK(contains(*fa2::validate_user_mods(mods), "not a C identifier"));
  mods.extras.back().name = "doc_id";
  CHECK(contains(*fa2::validate_user_mods(mods), "given twice"));
  mods.extras = {{"a"}, {"b"}, {"c"}, {"d"}, {"e"}};
  CHECK(contains(*fa2::validate_user_mods(mods), "at most 4"));
  mods = UserMods{};
  mods.mask_mod = "  \n";
  CHECK(contains(*fa2::validate_user_mods(mods), "blank"));
}

TEST_CASE("bad user-mod arguments are argument errors naming them") {
  fa2::FwdArgs args = forward_args();
  args.variant.mask_mod = "doc_id[q_idx] == doc_id[kv_idx]";
  args.variant.extra = {{"doc_id", fa2::ExtraType::i32, g_doc_id}};
  CHECK(forward_error(args).empty());
  args.variant.extra[0].data = nullptr;
  CHECK(contains(forward_error(args), "extra array 'doc_id' is a null pointer"));
  args.variant.extra[0].data = reinterpret_cast<const char*>(g_doc_id) + 2;
  CHECK(contains(forward_error(args), "4-byte aligned"));
  args.variant.extra[0] = {"seqlen_k", fa2::ExtraType::i32, g_doc_id};
  CHECK(contains(forward_error(args), "'seqlen_k' is a parameter"));
  args.variant = fa2::VariantArgs{};
  args.variant.score_mod_grad = "1.f";
  CHECK(contains(forward_error(args), "without score_mod"));
}

TEST_CASE("C ABI: the user-mod fields are read; structs from before them are still accepted") {
  fa2_forward_args args;
  fa2_forward_args_init(&args);
  CHECK(args.score_mod == nullptr);
  CHECK(args.num_extra == 0);
  args.q = args.k = args.v = args.o = g_tensor;
  args.batch = 1;
  args.heads_q = args.heads_kv = 2;
  args.seqlen_q = args.seqlen_k = 64;
  args.head_dim = 64;
  args.q_row_stride = args.k_row_stride = args.v_row_stride = args.o_row_stride = 128;
  args.q_head_stride = args.k_head_stride = args.v_head_stride = args.o_head_stride = 64;
  args.q_batch_stride = args.k_batch_stride = args.v_batch_stride = args.o_batch_stride = 64 * 128;
  char name[256];
  args.num_extra = 5;
  CHECK(fa2_forward_config_name(&args, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "num_extra 5"));
  args.num_extra = 1;
  args.extra_names[0] = "doc_id";
  args.extra_types[0] = 7;
  args.extra_data[0] = g_doc_id;
  args.mask_mod = "doc_id[q_idx] == doc_id[kv_idx]";
  CHECK(fa2_forward_config_name(&args, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "extra_types[0] 7"));
  args.extra_types[0] = FA2_EXTRA_INT32;
  args.extra_data[0] = nullptr;
  CHECK(fa2_forward_config_name(&args, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "extra array 'doc_id' is a null pointer"));
  // The size before the user modifications: their fields are not read (num_extra 5 would be refused).
  args.num_extra = 5;
  args.struct_size = static_cast<int>(offsetof(fa2_forward_args, score_mod));
  args.q = nullptr;
  CHECK(fa2_forward_config_name(&args, name, sizeof(name)) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "q is a null pointer"));
  fa2_backward_args backward;
  fa2_backward_args_init(&backward);
  backward.struct_size = static_cast<int>(offsetof(fa2_backward_args, score_mod)) + 8;
  size_t bytes = 0;
  CHECK(fa2_backward_workspace_size(&backward, &bytes) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "struct_size"));
}

TEST_CASE("fa2-tune emit shows the snippets in place; --compile reports a bad one with its line") {
  using fa2::test::run;
  const fa2::test::Run emitted =
      run("emit --pass bwd --head-dim 64 --arch sm_80 --mask-mod 'doc_id[q_idx] == doc_id[kv_idx]' "
          "--extra doc_id:int32 --score-mod 'score * 0.5f'");
  CHECK(emitted.status == 0);
  CHECK(contains(emitted.output, "#line 1 \"mask_mod\"\nreturn (doc_id[q_idx] == doc_id[kv_idx]);"));
  CHECK(contains(emitted.output, "return (score * 0.5f);"));
  CHECK(contains(emitted.output, "const int* doc_id;"));
  CHECK(contains(emitted.output, "_umod"));
  const fa2::test::Run bad = run("emit --head-dim 64 --arch sm_80 --score-mod 'score +' --compile -v");
  CHECK(bad.status != 0);
  CHECK(contains(bad.output, "score_mod(1)"));
  CHECK(run("emit --extra doc_id:int16 --mask-mod 'true'").status != 0);
  const fa2::test::Run kvc = run("emit --pass kvc --score-mod 'score'");
  CHECK(kvc.status == 2);
  CHECK(contains(kvc.output, "not supported yet by the kvc family"));
}

TEST_CASE("snippet kernels compile for sm_80 and sm_90a, forward and backward, and so does their reference") {
  std::vector<fa2::TileConfig> forward, backward;
  UserMods both = relative_bias();
  both.mask_mod = document_mask().mask_mod;
  both.extras.push_back(document_mask().extras[0]);
  UserMods given_grad = tanh_cap();
  given_grad.score_mod_grad = "1.f - (score / 30.f) * (score / 30.f) * 0.f + 0.f * tanhf(score)";
  for (Arch arch : {Arch::sm_80, Arch::sm_90a})
    for (const UserMods& mods : {document_mask(), relative_bias(), tanh_cap(), prefix_lm(), both, given_grad}) {
      forward.push_back(config_with(Family::fwd, arch, mods));
      backward.push_back(config_with(Family::bwd, arch, mods));
    }
  // The overlapped wgmma forward, the deterministic backward, and snippets beside the built-in variants.
  fa2::TileConfig overlap = config_with(Family::fwd, Arch::sm_90a, document_mask(), true);
  overlap.scheme = fa2::Scheme::wgmma_overlap;
  forward.push_back(overlap);
  backward.push_back(config_with(Family::bwd, Arch::sm_90a, document_mask(), true, true));
  Variant mixed = with_mods(both);
  mixed.window = mixed.softcap = mixed.alibi = true;
  forward.push_back(fa2::default_config(Family::fwd, 64, DType::fp16, true, Arch::sm_80, false, 0, mixed));
  backward.push_back(fa2::default_config(Family::bwd, 64, DType::fp16, true, Arch::sm_80, false, 0, mixed));
  backward.push_back(fa2::default_config(Family::bwd, 256, DType::bf16, false, Arch::sm_90a, false, 0, mixed));
  fa2::testing::check_compiles_within_spill_limit(forward);
  fa2::testing::check_compiles_within_spill_limit(backward);
  for (const UserMods& mods : {both, given_grad, prefix_lm()})
    try {
      fa2::compile_source(fa2::reference_source(mods), fa2::reference_program(mods), Arch::sm_80);
    } catch (const fa2::Error& error) {
      const std::string failure = std::string(error.what()) + "\n" + error.log();
      FAIL_CHECK(failure);
    }
}

}  // TEST_SUITE
