// The backward family without a GPU: its config rules and names, its search space and keys, its emitted
// source (golden files), every default config compiling with NVRTC within the tuner's spill limit, and
// backward()'s argument checks, each bad value named.
#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "autotune/problem_shape.hpp"
#include "autotune/search_space.hpp"
#include "autotune/tuner.hpp"
#include "codegen/bwd_family.hpp"
#include "codegen/emit.hpp"
#include "fa2jit/fa2jit.h"
#include "fa2jit/fa2jit.hpp"
#include "runtime/args_check.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "tests/support/compile_check.hpp"

namespace {

using fa2::Arch;
using fa2::DType;
using fa2::Family;
using fa2::Scheme;
using fa2::TileConfig;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TileConfig backward(int head_dim, Scheme scheme, int block_m, int block_n, int warps, int stages = 2,
                    Arch arch = Arch::sm_90a) {
  TileConfig c = fa2::default_config(Family::bwd, head_dim, DType::bf16, true, arch);
  c.scheme = scheme;
  c.block_m = block_m;
  c.block_n = block_n;
  c.warps = warps;
  c.stages = stages;
  return c;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void* fake_pointer(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

// Valid backward arguments: fake aligned pointers, contiguous BSHD, d128 bf16, 2 x 1000 x 8/2 heads.
fa2::BwdArgs valid_args() {
  fa2::BwdArgs a;
  a.q = fake_pointer(0x10000);
  a.k = fake_pointer(0x20000);
  a.v = fake_pointer(0x30000);
  a.o = fake_pointer(0x40000);
  a.lse = static_cast<const float*>(fake_pointer(0x50000));
  a.dout = fake_pointer(0x60000);
  a.dq = fake_pointer(0x70000);
  a.dk = fake_pointer(0x80000);
  a.dv = fake_pointer(0x90000);
  a.batch = 2;
  a.heads_q = 8;
  a.heads_kv = 2;
  a.seqlen_q = a.seqlen_k = 1000;
  a.head_dim = 128;
  a.q_strides = a.o_strides = a.dout_strides = a.dq_strides = fa2::bshd_strides(1000, 8, 128);
  a.k_strides = a.v_strides = a.dk_strides = a.dv_strides = fa2::bshd_strides(1000, 2, 128);
  return a;
}

std::string rejection(const std::function<void(fa2::BwdArgs&)>& change) {
  fa2::BwdArgs args = valid_args();
  change(args);
  try {
    fa2::check_backward_args(args);
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Argument);
    MESSAGE("rejected: ", std::string(error.what()));
    return error.what();
  }
  FAIL("check_backward_args accepted invalid arguments");
  return {};
}

}  // namespace

TEST_SUITE("backward") {

TEST_CASE("backward configs: names, hashes and the family's rules") {
  const TileConfig mma = backward(128, Scheme::mma_sync, 64, 128, 8);
  CHECK(mma.name() == "fa2_bwd_mma_d128_bf16_causal_m64n128w8s2_sm90a");
  CHECK_FALSE(mma.validate().has_value());
  TileConfig det = mma;
  det.deterministic = true;
  CHECK(det.name() == "fa2_bwd_mma_d128_bf16_causal_det_m64n128w8s2_sm90a");
  CHECK(det.hash() != mma.hash());
  TileConfig forward = mma;
  forward.family = Family::fwd;
  CHECK(forward.hash() != mma.hash());
  CHECK(forward.name().rfind("fa2_fwd_", 0) == 0);
  forward.deterministic = true;
  REQUIRE(forward.validate().has_value());
  CHECK(contains(*forward.validate(), "deterministic applies to the backward only"));
  CHECK(mma.entry_points() == std::vector<std::string>{mma.name(), mma.name() + "_pre", mma.name() + "_post"});

  // mma_sync: P and dS are whole 32-column pages, and the warps must tile each product.
  REQUIRE(backward(128, Scheme::mma_sync, 64, 48, 8).validate().has_value());
  CHECK(contains(*backward(128, Scheme::mma_sync, 64, 48, 8).validate(), "block_n 48 must be a multiple of 32"));
  const auto untileable = backward(128, Scheme::mma_sync, 16, 32, 16).validate();
  REQUIRE(untileable.has_value());
  CHECK(contains(*untileable, "16 warps cannot tile"));
  // wgmma: sm_90a, d64/d128, 64 keys per warpgroup, dQ in whole 64 x 64 tiles.
  CHECK_FALSE(backward(128, Scheme::wgmma, 64, 128, 8).validate().has_value());
  CHECK_FALSE(backward(64, Scheme::wgmma, 128, 128, 8).validate().has_value());
  CHECK(contains(*backward(128, Scheme::wgmma, 64, 128, 8, 2, Arch::sm_80).validate(), "needs arch sm_90a"));
  CHECK(contains(*backward(96, Scheme::wgmma, 64, 128, 8).validate(), "head_dim 96 must be 64 or 128"));
  CHECK(contains(*backward(192, Scheme::wgmma, 64, 64, 8).validate(), "head_dim 192 must be 64, 128 or 256"));
  CHECK_FALSE(backward(256, Scheme::wgmma, 64, 64, 8).validate().has_value());
  CHECK(contains(*backward(256, Scheme::wgmma, 64, 128, 8).validate(), "warps 8, block_m 64 or 128, block_n 64"));
  CHECK(contains(*backward(128, Scheme::wgmma, 64, 64, 8).validate(), "block_n = 64 keys per warpgroup = 128"));
  CHECK(contains(*backward(64, Scheme::wgmma, 64, 128, 8).validate(), "use block_m 128"));
  CHECK(contains(*backward(128, Scheme::wgmma_overlap, 64, 128, 8).validate(), "no backward kernel"));
  // wgmma_ss: the same shapes as wgmma below d256, P^T and dS^T read from shared memory (one more tile there).
  const TileConfig shared_a = backward(128, Scheme::wgmma_ss, 64, 128, 8);
  CHECK_FALSE(shared_a.validate().has_value());
  CHECK(shared_a.name() == "fa2_bwd_wgmmass_d128_bf16_causal_m64n128w8s2_sm90a");
  CHECK(shared_a.hash() != backward(128, Scheme::wgmma, 64, 128, 8).hash());
  CHECK(shared_a.smem_bytes() == backward(128, Scheme::wgmma, 64, 128, 8).smem_bytes() + 64 * 128 * 2);
  CHECK(contains(*backward(256, Scheme::wgmma_ss, 64, 64, 8).validate(), "already reads P^T and dS^T from shared"));
  CHECK(contains(*backward(128, Scheme::wgmma_ss, 64, 128, 8, 2, Arch::sm_80).validate(),
                 "scheme wgmma_ss needs arch sm_90a"));
  CHECK(contains(*backward(64, Scheme::wgmma_ss, 64, 128, 8).validate(), "use block_m 128"));
  TileConfig forward_ss = shared_a;
  forward_ss.family = Family::fwd;
  forward_ss.block_m = 128;
  REQUIRE(forward_ss.validate().has_value());
  CHECK(contains(*forward_ss.validate(), "scheme wgmma_ss is the backward's"));
  CHECK(fa2::parse_scheme("wgmma_ss") == Scheme::wgmma_ss);
  CHECK(std::string(fa2::scheme_name(Scheme::wgmma_ss)) == "wgmma_ss");
}

TEST_CASE("backward warp grids: the squarest tiles of whole 16 x 16 blocks") {
  CHECK(fa2::squarest_warp_grid(64, 128, 8) == fa2::WarpGrid{2, 4});   // 32 x 32 tiles
  CHECK(fa2::squarest_warp_grid(128, 128, 8) == fa2::WarpGrid{4, 2});  // 32 x 64: ties go to the rows
  CHECK(fa2::squarest_warp_grid(128, 64, 8) == fa2::WarpGrid{4, 2});   // 32 x 32
  CHECK_FALSE(fa2::squarest_warp_grid(16, 32, 16).has_value());
  const auto grids = fa2::bwd_warp_grids(backward(128, Scheme::mma_sync, 64, 128, 8));
  REQUIRE(grids.has_value());
  CHECK(grids->sdp == fa2::WarpGrid{2, 4});
  CHECK(grids->dkv == fa2::WarpGrid{4, 2});
  CHECK(grids->dq == fa2::WarpGrid{2, 4});
}

TEST_CASE("backward defaults: wgmma on sm_90a at d64, d128 and d256, mma_sync elsewhere, all valid") {
  for (Arch arch : {Arch::sm_80, Arch::sm_86, Arch::sm_89, Arch::sm_90a})
    for (int d = 32; d <= 256; d += 32)
      for (bool deterministic : {false, true}) {
        const TileConfig c = fa2::default_config(Family::bwd, d, DType::fp16, false, arch, deterministic);
        CAPTURE(c.name());
        CHECK(c.family == Family::bwd);
        CHECK(c.deterministic == deterministic);
        CHECK_FALSE(c.validate().has_value());
        const bool wgmma = arch == Arch::sm_90a && (d == 64 || d == 128 || d == 256);
        CHECK(c.scheme == (wgmma ? Scheme::wgmma : Scheme::mma_sync));
      }
  // FA2's own table stays on mma_sync: the baseline the tuner must beat.
  const TileConfig fa2_tiles = fa2::fa2_static_config(Family::bwd, 128, DType::bf16, true, Arch::sm_90a);
  CHECK(fa2_tiles.name() == "fa2_bwd_mma_d128_bf16_causal_m64n128w8s2_sm90a");
}

TEST_CASE("backward classes: keys, FLOPs and a search space of both reductions") {
  fa2::ProblemShape shape;
  shape.family = Family::bwd;
  shape.head_dim = 128;
  shape.causal = true;
  shape.heads_q = 32;
  shape.heads_kv = 8;
  shape.seqlen_q = shape.seqlen_k = 4096;
  const fa2::ProblemClass problem = fa2::ProblemClass::of(shape);
  CHECK(problem.key() == "bwd bf16 d128 causal gqa4 bshd q4096 k4096 bh64");
  fa2::ProblemShape forward = shape;
  forward.family = Family::fwd;
  CHECK(fa2::ProblemClass::of(forward).key() == "bf16 d128 causal gqa4 bshd q4096 k4096 bh64");
  CHECK(shape.flops() == doctest::Approx(2.5 * forward.flops()));
  fa2::ProblemShape det = shape;
  det.deterministic = true;
  CHECK(fa2::ProblemClass::of(det).key() == "bwd bf16 d128 causal gqa4 bshd q4096 k4096 bh64 det");
  CHECK_FALSE(fa2::ProblemClass::of(det) == problem);

  CHECK(fa2::tuned_schemes(Family::bwd, Arch::sm_90a, 128) == std::vector<Scheme>{Scheme::wgmma, Scheme::mma_sync});
  CHECK(fa2::tuned_schemes(Family::bwd, Arch::sm_90a, 256) == std::vector<Scheme>{Scheme::wgmma, Scheme::mma_sync});
  CHECK(fa2::tuned_schemes(Family::bwd, Arch::sm_90a, 192) == std::vector<Scheme>{Scheme::mma_sync});
  CHECK(fa2::tuned_schemes(Family::bwd, Arch::sm_80, 128) == std::vector<Scheme>{Scheme::mma_sync});
  std::set<bool> reductions, det_reductions;
  std::set<Scheme> schemes;
  for (const TileConfig& c : fa2::buildable_configs(problem, Arch::sm_90a)) {
    CHECK(c.family == Family::bwd);
    reductions.insert(c.deterministic);
    schemes.insert(c.scheme);
  }
  CHECK(reductions == std::set<bool>{false, true});  // atomics are weighed against the ordered reduction
  CHECK(schemes == std::set<Scheme>{Scheme::mma_sync, Scheme::wgmma});
  for (const TileConfig& c : fa2::buildable_configs(fa2::ProblemClass::of(det), Arch::sm_90a))
    det_reductions.insert(c.deterministic);
  CHECK(det_reductions == std::set<bool>{true});  // a deterministic class never gets atomics
  CHECK(fa2::search_space_hash(problem, Arch::sm_90a) != fa2::search_space_hash(fa2::ProblemClass::of(det), Arch::sm_90a));
}

TEST_CASE("backward emission matches the committed golden files byte for byte") {
  struct Golden {
    const char* file;
    TileConfig config;
  };
  const Golden goldens[] = {
      {"tests/golden/bwd_d128_bf16_causal_default_sm90a.cu",
       fa2::default_config(Family::bwd, 128, DType::bf16, true, Arch::sm_90a)},
      {"tests/golden/bwd_d96_fp16_full_det_default_sm80.cu",
       fa2::default_config(Family::bwd, 96, DType::fp16, false, Arch::sm_80, true)},
  };
  for (const Golden& g : goldens) {
    CAPTURE(g.file);
    const std::string golden = read_file(std::string(FA2JIT_SOURCE_DIR) + "/" + g.file);
    REQUIRE_FALSE(golden.empty());
    const std::string emitted = fa2::emit(g.config);
    CHECK_MESSAGE(emitted == golden, "emit(", g.config.name(), ") differs from ", g.file,
                  "; if intended, regenerate it with build/fa2-tune emit --pass bwd ... > ", g.file);
    for (const std::string& entry : g.config.entry_points())
      CHECK(contains(emitted, "\n" + entry + "(const fa2::BwdParams params)"));
  }
}

TEST_CASE("every default backward config compiles for sm_80 and sm_90a within the tuner's spill limit") {
  std::vector<TileConfig> configs;
  for (Arch arch : {Arch::sm_80, Arch::sm_90a})
    for (int d = 32; d <= 256; d += 32)
      for (DType dtype : {DType::bf16, DType::fp16})
        for (bool causal : {false, true})
          for (bool deterministic : {false, true})
            configs.push_back(fa2::default_config(Family::bwd, d, dtype, causal, arch, deterministic));
  REQUIRE(configs.size() == 128);
  fa2::testing::check_compiles_within_spill_limit(configs);
}

TEST_CASE("the wgmma_ss backward (P^T and dS^T from shared memory) compiles at the default tiles of d64 and d128") {
  std::vector<TileConfig> configs;
  for (int d : {64, 128})
    for (bool causal : {false, true})
      for (bool deterministic : {false, true}) {
        TileConfig config = fa2::default_config(Family::bwd, d, DType::bf16, causal, Arch::sm_90a, deterministic);
        REQUIRE(config.scheme == Scheme::wgmma);
        config.scheme = Scheme::wgmma_ss;
        REQUIRE_FALSE(config.validate().has_value());
        configs.push_back(config);
      }
  fa2::testing::check_compiles_within_spill_limit(configs);
}

TEST_CASE("check_backward_args rejects each bad value, naming it") {
  CHECK_NOTHROW(fa2::check_backward_args(valid_args()));
  CHECK(contains(rejection([](fa2::BwdArgs& a) { a.dout = nullptr; }), "dout is a null pointer"));
  CHECK(contains(rejection([](fa2::BwdArgs& a) { a.lse = nullptr; }), "lse is a null pointer"));
  CHECK(contains(rejection([](fa2::BwdArgs& a) { a.dq = nullptr; }), "dq is a null pointer"));
  CHECK(contains(rejection([](fa2::BwdArgs& a) { a.dk = fake_pointer(0x80008); }), "0x80008"));
  CHECK(contains(rejection([](fa2::BwdArgs& a) { a.dv_strides.row = 100; }), "dv row stride 100"));
  CHECK(contains(rejection([](fa2::BwdArgs& a) { a.dout_strides.head = -8; }), "dout head stride -8"));
  CHECK(contains(rejection([](fa2::BwdArgs& a) { a.heads_kv = 3; }), "heads_q 8 is not a multiple of heads_kv 3"));
  CHECK(contains(rejection([](fa2::BwdArgs& a) { a.head_dim = 80; }), "head_dim 80"));
  CHECK(contains(rejection([](fa2::BwdArgs& a) { a.softmax_scale = -2.f; }), "softmax_scale -2"));
  const std::size_t needed = fa2::backward_workspace_bytes(valid_args());
  CHECK(needed >= 4ull * 2 * 8 * 1000 * 128);  // the fp32 dQ accumulator alone
  const std::string small = rejection([&](fa2::BwdArgs& a) {
    a.workspace = fake_pointer(0xa0000);
    a.workspace_bytes = needed - 1;
  });
  CHECK(contains(small, std::to_string(needed - 1)));
  CHECK(contains(small, std::to_string(needed)));
  CHECK(contains(rejection([&](fa2::BwdArgs& a) {
                   a.workspace = fake_pointer(0xa0010);
                   a.workspace_bytes = needed;
                 }),
                 "256-byte aligned"));
  fa2::BwdArgs bad_sizes = valid_args();
  bad_sizes.seqlen_q = 0;
  CHECK_THROWS_WITH_AS(fa2::backward_workspace_bytes(bad_sizes), doctest::Contains("seqlen_q 0"), fa2::Error);
}

TEST_CASE("C ABI: the backward's argument errors, workspace size and layout") {
  CHECK(fa2_abi_version() == FA2_ABI_VERSION);
  CHECK(fa2_backward_args_size() == static_cast<int>(sizeof(fa2_backward_args)));
  fa2_backward_args a;
  fa2_backward_args_init(&a);
  CHECK(a.struct_size == static_cast<int>(sizeof(fa2_backward_args)));
  CHECK(a.tune_policy == FA2_TUNE_DEFAULT);
  CHECK(fa2_backward(nullptr, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "args is a null pointer"));
  a.struct_size = 12;
  CHECK(fa2_backward(&a, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "fa2_backward_args"));
  fa2_backward_args_init(&a);
  a.dtype = 7;
  CHECK(fa2_backward(&a, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "dtype 7"));
  fa2_backward_args_init(&a);
  a.batch = 1;
  a.heads_q = a.heads_kv = 4;
  a.seqlen_q = a.seqlen_k = 100;
  a.head_dim = 64;
  size_t bytes = 0;
  CHECK(fa2_backward_workspace_size(&a, &bytes) == FA2_OK);
  CHECK(bytes >= 4u * 4 * 100 * 64);
  CHECK(fa2_backward_workspace_size(&a, nullptr) == FA2_ERROR_ARGUMENT);
  a.head_dim = 48;
  CHECK(fa2_backward_workspace_size(&a, &bytes) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "head_dim 48"));
}

}  // TEST_SUITE
