// emit(): deterministic, byte-identical to the committed golden file, and refusing invalid configs.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "codegen/emit.hpp"
#include "codegen/tile_config.hpp"
#include "common/error.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace {

const std::string kGoldenRelative = "tests/golden/fwd_d128_bf16_causal_default_sm90a.cu";

// The mma_sync kernel of d128 causal (the sm_90a default before the wgmma scheme), pinned so that the
// golden file changes only when emission does.
fa2::TileConfig golden_config() {
  fa2::TileConfig config;
  config.head_dim = 128;
  config.dtype = fa2::DType::bf16;
  config.causal = true;
  config.block_m = 128;
  config.block_n = 32;
  config.warps = 4;
  config.stages = 2;
  config.arch = fa2::Arch::sm_90a;
  config.scheme = fa2::Scheme::mma_sync;
  return config;
}

std::string first_difference(const std::string& a, const std::string& b) {
  std::size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  std::ostringstream out;
  out << "first difference at byte " << i << " (sizes " << a.size() << " vs " << b.size() << ")";
  return out.str();
}

}  // namespace

TEST_SUITE("emit") {

TEST_CASE("emission is deterministic across processes") {
  // Another process (fa2-tune emit) must print byte for byte what this one emits: nothing in the
  // source may depend on addresses, time or process state.
  for (int d : {32, 128, 256})
    for (bool causal : {false, true}) {
      const fa2::TileConfig config = fa2::default_config(d, fa2::DType::fp16, causal, fa2::Arch::sm_80);
      const fa2::test::Run other = fa2::test::run("emit --dtype fp16 --arch sm_80 --head-dim " + std::to_string(d) +
                                                  (causal ? " --causal" : ""));
      REQUIRE(other.status == 0);
      CHECK_MESSAGE(other.output == fa2::emit(config), config.name());
    }
}

TEST_CASE("emitted source includes the templates and defines the named kernel") {
  const fa2::TileConfig config = golden_config();
  const std::string source = fa2::emit(config);
  CHECK(source.find("#include \"fa2/fwd/fwd_kernel.cuh\"") != std::string::npos);
  CHECK(source.find("extern \"C\" __global__") != std::string::npos);
  CHECK(source.find(config.name() + "(") != std::string::npos);
  CHECK(source.find("/*head_dim*/ 128") != std::string::npos);
  CHECK(source.find("/*causal*/ true") != std::string::npos);
  CHECK(source.find("/*bf16*/ true") != std::string::npos);
}

TEST_CASE("the wgmma schemes emit their own kernel, with or without the overlap") {
  fa2::TileConfig config = golden_config();
  config.warps = 8;
  config.block_n = 64;
  for (fa2::Scheme scheme : {fa2::Scheme::wgmma, fa2::Scheme::wgmma_overlap}) {
    config.scheme = scheme;
    const std::string source = fa2::emit(config);
    CAPTURE(source);
    CHECK(source.find("#include \"fa2/fwd/fwd_kernel_wgmma.cuh\"") != std::string::npos);
    const bool overlap = scheme == fa2::Scheme::wgmma_overlap;
    CHECK(source.find(overlap ? "/*overlap*/ true" : "/*overlap*/ false") != std::string::npos);
    CHECK(source.find(config.name() + "(") != std::string::npos);
  }
}

TEST_CASE("different configs emit different sources") {
  const fa2::TileConfig a = golden_config();
  fa2::TileConfig b = a;
  b.dtype = fa2::DType::fp16;
  fa2::TileConfig c = a;
  c.causal = false;
  CHECK(fa2::emit(a) != fa2::emit(b));
  CHECK(fa2::emit(a) != fa2::emit(c));
  CHECK(fa2::emit(b).find("/*bf16*/ false") != std::string::npos);
  CHECK(fa2::emit(c).find("/*causal*/ false") != std::string::npos);
}

TEST_CASE("emission matches the committed golden file byte for byte") {
  const std::string path = std::string(FA2JIT_SOURCE_DIR) + "/" + kGoldenRelative;
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open golden file ", path);
  const std::string golden((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const fa2::TileConfig config = golden_config();
  CHECK(golden.find(config.name()) != std::string::npos);
  const std::string emitted = fa2::emit(config);
  CHECK_MESSAGE(emitted == golden, "emit(", config.name(), ") differs from ", kGoldenRelative, ": ",
                first_difference(emitted, golden),
                ". If the change is intended, regenerate it from the repo root with:\n"
                "  build/fa2-tune emit --head-dim 128 --dtype bf16 --causal --arch sm_90a > ",
                kGoldenRelative);
}

TEST_CASE("emit() of an invalid config throws fa2::Error with stage Config") {
  fa2::TileConfig config = golden_config();
  config.block_n = 24;
  bool threw = false;
  try {
    (void)fa2::emit(config);
  } catch (const fa2::Error& error) {
    threw = true;
    CHECK(error.stage() == fa2::Stage::Config);
    const std::string what = error.what();
    CHECK_MESSAGE(what.find("block_n 24") != std::string::npos, what);
    CHECK_MESSAGE(what.find(config.name()) != std::string::npos, what);
  }
  CHECK_MESSAGE(threw, "emit() accepted an invalid config");

  config = golden_config();
  config.head_dim = 48;
  CHECK_THROWS_AS((void)fa2::emit(config), fa2::Error);
}

}  // TEST_SUITE
