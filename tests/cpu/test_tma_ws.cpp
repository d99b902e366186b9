// Schemes tma_ws and tma_ws_overlap (the warp-specialized Hopper forward) without a GPU: their rules and names,
// the source they generate, that they are never a default and are tuned only where enabled, the tensor maps'
// shapes, and that every config of their validated set and search space compiles for sm_90a with the register
// split intact.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "api/tune_resolution.hpp"
#include "autotune/search_space.hpp"
#include "autotune/tuner.hpp"
#include "codegen/emit.hpp"
#include "codegen/tile_config.hpp"
#include "common/error.hpp"
#include "runtime/nvrtc_compiler.hpp"
#include "runtime/tma_maps.hpp"

namespace {

using fa2::Arch;
using fa2::DType;
using fa2::Family;
using fa2::Scheme;
using fa2::TileConfig;

// The scheme's own tiles for a forward class (what `fa2-tune emit --scheme tma_ws` starts from).
TileConfig tma_ws(int head_dim, DType dtype = DType::bf16, bool causal = false, Scheme scheme = Scheme::tma_ws) {
  return fa2::with_scheme(fa2::default_config(head_dim, dtype, causal, Arch::sm_90a), scheme);
}

TileConfig tma_ws_tiles(int head_dim, int block_m, int block_n, int warps, int stages = 2) {
  TileConfig config = tma_ws(head_dim);
  config.block_m = block_m;
  config.block_n = block_n;
  config.warps = warps;
  config.stages = stages;
  return config;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string rejection(const TileConfig& config) {
  const auto reason = config.validate();
  REQUIRE_MESSAGE(reason.has_value(), config.name(), " was accepted");
  MESSAGE("rejected ", config.name(), ": ", *reason);
  return *reason;
}

// The validated set: each scheme's own tiles for every head dim, dtype and mask.
std::vector<TileConfig> validated_set() {
  std::vector<TileConfig> configs;
  for (Scheme scheme : {Scheme::tma_ws, Scheme::tma_ws_overlap, Scheme::tma_ws_pingpong})
    for (int head_dim : {64, 128, 192, 256})
      for (DType dtype : {DType::bf16, DType::fp16})
        for (bool causal : {false, true}) configs.push_back(tma_ws(head_dim, dtype, causal, scheme));
  return configs;
}

fa2::ProblemShape forward_shape(int head_dim, DType dtype, bool causal) {
  fa2::ProblemShape shape;
  shape.head_dim = head_dim;
  shape.dtype = dtype;
  shape.causal = causal;
  shape.batch = 2;
  shape.heads_q = 16;
  shape.heads_kv = 4;
  shape.seqlen_q = shape.seqlen_k = 2048;
  return shape;
}

struct Compiled {
  bool ok = false;
  std::string error;
  fa2::ResourceUsage resources;
  std::string log;
};

// NVRTC on every core; no doctest assertion runs off the main thread.
std::vector<Compiled> compile_all(const std::vector<TileConfig>& configs) {
  std::vector<Compiled> out(configs.size());
  std::atomic<std::size_t> next{0};
  std::vector<std::future<void>> pool;
  for (unsigned w = 0; w < std::max(1u, std::thread::hardware_concurrency()); ++w)
    pool.push_back(std::async(std::launch::async, [&] {
      for (std::size_t i = next++; i < configs.size(); i = next++) {
        try {
          const fa2::CompiledKernel kernel =
              fa2::compile_source(fa2::emit(configs[i]), configs[i].name(), configs[i].arch);
          out[i] = Compiled{true, "", kernel.resources, kernel.log};
        } catch (const fa2::Error& error) {
          out[i].error = std::string(error.what()) + "\n" + error.log();
        }
      }
    }));
  for (auto& f : pool) f.get();
  return out;
}

// What a tma_ws cubin must show besides its spills: ptxas kept every setmaxnreg (it drops them all, with a
// C7507/C7508 note, when it cannot honour them, and then the consumers' claim would wait forever), gave the
// kernel the whole register file at entry (the pool the producer's release and the consumers' claim split;
// fewer would also leave the claim waiting), and did not serialize the wgmmas.
void check_register_split(const TileConfig& config, const Compiled& compiled) {
  CAPTURE(compiled.log);
  CHECK_FALSE(contains(compiled.log, "setmaxnreg"));
  CHECK_FALSE(contains(compiled.log, "serialized"));
  const int entry = 65536 / config.threads() / 8 * 8;
  CHECK(compiled.resources.registers == std::min(entry, 255));
}

}  // namespace

TEST_SUITE("tma_ws") {

TEST_CASE("validate() accepts the scheme's own tiles on sm_90a and rejects everything else with a reason") {
  for (const TileConfig& config : validated_set()) {
    CAPTURE(config.name());
    CHECK_FALSE(config.validate().has_value());
    CHECK(config.warps == 12);
    CHECK(config.threads() == 384);
    CHECK(config.register_cap() == 240);
    CHECK(config.smem_bytes() <= fa2::max_smem_per_block(Arch::sm_90a));
  }
  CHECK_FALSE(tma_ws_tiles(64, 192, 128, 16).validate().has_value());
  CHECK(tma_ws_tiles(64, 192, 128, 16).register_cap() == 160);

  TileConfig sm80 = tma_ws(128);
  sm80.arch = Arch::sm_80;
  CHECK(contains(rejection(sm80), "scheme tma_ws needs arch sm_90a"));
  TileConfig overlap_sm80 = tma_ws(128, DType::fp16, true, Scheme::tma_ws_overlap);
  overlap_sm80.arch = Arch::sm_80;
  CHECK(contains(rejection(overlap_sm80), "scheme tma_ws_overlap needs arch sm_90a"));
  for (Family family : {Family::bwd, Family::kvc}) {
    TileConfig other = tma_ws(128);
    other.family = family;
    const std::string reason = rejection(other);
    CHECK(contains(reason, "tma_ws"));
  }
  TileConfig bwd = tma_ws(128);
  bwd.family = Family::bwd;
  CHECK(contains(rejection(bwd), "scheme tma_ws has no backward kernel"));
  TileConfig kvc = tma_ws(128);
  kvc.family = Family::kvc;
  CHECK(contains(rejection(kvc), "the kvcache family has schemes mma_sync and wgmma, not tma_ws"));
  TileConfig bwd_overlap = tma_ws(64, DType::bf16, false, Scheme::tma_ws_overlap);
  bwd_overlap.family = Family::bwd;
  CHECK(contains(rejection(bwd_overlap), "scheme tma_ws_overlap has no backward kernel"));

  CHECK(contains(rejection(tma_ws_tiles(96, 128, 64, 12)), "head_dim 64, 128, 192 or 256"));
  CHECK(contains(rejection(tma_ws_tiles(128, 128, 64, 8)), "warps 12"));
  CHECK(contains(rejection(tma_ws_tiles(128, 192, 64, 12)), "block_m = 64 rows per consumer warpgroup = 128"));
  CHECK(contains(rejection(tma_ws_tiles(128, 128, 48, 12)), "generated wgmma width"));
  TileConfig two_blocks = tma_ws(64);
  two_blocks.blocks_per_sm = 2;
  CHECK(contains(rejection(two_blocks), "one block per SM"));
  CHECK(contains(rejection(tma_ws_tiles(256, 128, 128, 12)), "bytes of shared memory"));
  CHECK(contains(rejection(tma_ws_tiles(256, 192, 64, 16)), "accumulator registers"));
  // The overlap holds P besides O and S: three consumer warpgroups leave it too few registers at d128 n112.
  TileConfig overlap_wide = tma_ws_tiles(128, 192, 112, 16);
  CHECK_FALSE(overlap_wide.validate().has_value());
  overlap_wide.scheme = Scheme::tma_ws_overlap;
  CHECK(contains(rejection(overlap_wide), "holds O, S and P at once, 148 registers"));
  overlap_wide.block_n = 80;
  CHECK_FALSE(overlap_wide.validate().has_value());

  // Twelve warps are the producer's warpgroup plus two: no other scheme takes them.
  TileConfig wgmma12 = fa2::default_config(128, DType::bf16, false, Arch::sm_90a);
  wgmma12.warps = 12;
  wgmma12.block_m = 192;
  CHECK(contains(rejection(wgmma12), "12: the tma_ws schemes only"));
}

TEST_CASE("name, parse and generated source") {
  const TileConfig config = tma_ws(128, DType::bf16, true);
  CHECK(config.name() == "fa2_fwd_tmaws_d128_bf16_causal_m128n128w12s2_sm90a");
  CHECK(fa2::parse_scheme("tma_ws") == Scheme::tma_ws);
  CHECK(std::string(fa2::scheme_name(Scheme::tma_ws)) == "tma_ws");
  CHECK(fa2::is_wgmma(Scheme::tma_ws));
  CHECK(fa2::is_tma_ws(Scheme::tma_ws));
  CHECK(fa2::is_tma_ws(Scheme::tma_ws_overlap));
  CHECK_FALSE(fa2::is_tma_ws(Scheme::wgmma_overlap));
  CHECK(fa2::parse_scheme("tma_ws_overlap") == Scheme::tma_ws_overlap);
  CHECK(std::string(fa2::scheme_name(Scheme::tma_ws_overlap)) == "tma_ws_overlap");
  CHECK(config.entry_points() == std::vector<std::string>{config.name()});
  CHECK(config.hash() != fa2::with_scheme(config, Scheme::wgmma).hash());

  const std::string source = fa2::emit(config);
  CAPTURE(source);
  CHECK(contains(source, "#include \"fa2/fwd/fwd_kernel_tma_ws.cuh\""));
  CHECK(contains(source, "__launch_bounds__(Config::kBlockThreads, 1)"));
  CHECK(contains(source, config.name() + "(const fa2::FwdParams params, const __grid_constant__ fa2::TmaDescriptor "
                                         "q_map,"));
  CHECK(contains(source, "const __grid_constant__ fa2::TmaDescriptor k_map, const __grid_constant__ "
                         "fa2::TmaDescriptor v_map)"));
  CHECK(contains(source, "/*producer registers*/ 24,\n"));
  CHECK(contains(source, "/*consumer registers*/ 240>;"));
  CHECK(contains(source,
                 "fa2::fwd_kernel_tma_ws<Config, /*overlap*/ false, /*ping-pong*/ false>(params, q_map, k_map, v_map);"));
  const TileConfig overlap = tma_ws(128, DType::bf16, true, Scheme::tma_ws_overlap);
  CHECK(overlap.name() == "fa2_fwd_tmawso_d128_bf16_causal_m128n128w12s2_sm90a");
  CHECK(overlap.hash() != config.hash());
  const std::string overlap_source = fa2::emit(overlap);
  CHECK(contains(overlap_source, "scheme tma_ws_overlap"));
  CHECK(contains(overlap_source,
                 "fa2::fwd_kernel_tma_ws<Config, /*overlap*/ true, /*ping-pong*/ false>(params, q_map, k_map, v_map);"));
  const TileConfig pingpong = tma_ws(128, DType::bf16, true, Scheme::tma_ws_pingpong);
  CHECK(pingpong.name() == "fa2_fwd_tmawsp_d128_bf16_causal_m128n128w12s2_sm90a");
  CHECK(pingpong.hash() != overlap.hash());
  CHECK(fa2::is_tma_ws(Scheme::tma_ws_pingpong));
  CHECK(fa2::parse_scheme("tma_ws_pingpong") == Scheme::tma_ws_pingpong);
  const std::string pingpong_source = fa2::emit(pingpong);
  CHECK(contains(pingpong_source, "scheme tma_ws_pingpong"));
  CHECK(contains(pingpong_source,
                 "fa2::fwd_kernel_tma_ws<Config, /*overlap*/ true, /*ping-pong*/ true>(params, q_map, k_map, v_map);"));
  const std::string three_consumers = fa2::emit(tma_ws_tiles(64, 192, 128, 16));
  CHECK(contains(three_consumers, "/*producer registers*/ 32,\n"));
  CHECK(contains(three_consumers, "/*consumer registers*/ 160>;"));

  // FA3's key tiles per head dim, narrower at d128 when causal.
  CHECK(tma_ws(64).block_n == 128);
  CHECK(tma_ws(128).block_n == 176);
  CHECK(tma_ws(128, DType::bf16, true).block_n == 128);
  CHECK(tma_ws(192).block_n == 112);
  CHECK(tma_ws(256).block_n == 80);
  // Moving to another scheme keeps the tiles; the backward is not given the forward's.
  const TileConfig wgmma = fa2::with_scheme(tma_ws(128), Scheme::wgmma);
  CHECK(wgmma.block_n == 176);
  CHECK(wgmma.scheme == Scheme::wgmma);
  const TileConfig bwd = fa2::default_config(Family::bwd, 128, DType::bf16, false, Arch::sm_90a);
  const TileConfig bwd_tma = fa2::with_scheme(bwd, Scheme::tma_ws);
  CHECK(bwd_tma.warps == bwd.warps);
  CHECK(bwd_tma.validate().has_value());
}

TEST_CASE("never a built-in config; swept by the tuner for packed layouts on sm_90a") {
  for (Family family : {Family::fwd, Family::bwd, Family::kvc})
    for (int head_dim = 32; head_dim <= 256; head_dim += 32)
      for (DType dtype : {DType::bf16, DType::fp16})
        for (bool causal : {false, true})
          for (Arch arch : {Arch::sm_80, Arch::sm_86, Arch::sm_89, Arch::sm_90a})
            CHECK_FALSE(fa2::is_tma_ws(fa2::default_config(family, head_dim, dtype, causal, arch).scheme));

  // tma_ws_overlap is not swept: tma_ws_pingpong beat it everywhere it was measured.
  const std::vector<Scheme> swept{Scheme::wgmma, Scheme::wgmma_overlap, Scheme::tma_ws, Scheme::tma_ws_pingpong};
  for (int head_dim : {64, 128, 192, 256}) {
    CHECK(fa2::tuned_schemes(Family::fwd, Arch::sm_90a, head_dim) == swept);
    CHECK(fa2::tuned_schemes(Family::fwd, Arch::sm_90a, head_dim, fa2::Layout::bhsd) == swept);
    // A strided class may hold a broadcast (stride 0), which a tensor map cannot describe.
    CHECK(fa2::tuned_schemes(Family::fwd, Arch::sm_90a, head_dim, fa2::Layout::strided) ==
          std::vector<Scheme>{Scheme::wgmma, Scheme::wgmma_overlap});
  }
  CHECK(fa2::tuned_schemes(Family::fwd, Arch::sm_90a, 96) == std::vector<Scheme>{Scheme::mma_sync});
  CHECK(fa2::tuned_schemes(Family::fwd, Arch::sm_80, 128) == std::vector<Scheme>{Scheme::mma_sync});
  CHECK(fa2::tuned_schemes(Family::bwd, Arch::sm_90a, 128) == std::vector<Scheme>{Scheme::wgmma, Scheme::mma_sync});

  const fa2::ProblemClass d128 = fa2::ProblemClass::of(forward_shape(128, DType::bf16, true));
  int tma_ws_buildable = 0, overlap_buildable = 0, pingpong_buildable = 0;
  for (const TileConfig& c : fa2::buildable_configs(d128, Arch::sm_90a)) {
    tma_ws_buildable += c.scheme == Scheme::tma_ws;
    overlap_buildable += c.scheme == Scheme::tma_ws_overlap;
    pingpong_buildable += c.scheme == Scheme::tma_ws_pingpong;
  }
  CHECK(tma_ws_buildable >= 5);
  CHECK(overlap_buildable == 0);
  CHECK(pingpong_buildable >= 5);
  fa2::ProblemShape strided = forward_shape(128, DType::bf16, true);
  strided.layout = fa2::Layout::strided;
  for (const fa2::Candidate& c : fa2::enumerate_candidates(fa2::ProblemClass::of(strided), Arch::sm_90a))
    CHECK_FALSE(fa2::is_tma_ws(c.config.scheme));
}

TEST_CASE("a cached tma_ws winner is refused for a strided call, served for packed ones") {
  fa2::ProblemShape shape = forward_shape(128, DType::bf16, false);
  const TileConfig winner = tma_ws(128);
  const TileConfig overlap_winner = tma_ws(128, DType::bf16, false, Scheme::tma_ws_overlap);
  CHECK(fa2::winner_mismatch(winner, shape, Arch::sm_90a).empty());
  CHECK(fa2::winner_mismatch(overlap_winner, shape, Arch::sm_90a).empty());
  shape.layout = fa2::Layout::bhsd;
  CHECK(fa2::winner_mismatch(winner, shape, Arch::sm_90a).empty());
  shape.layout = fa2::Layout::strided;
  const std::string why = fa2::winner_mismatch(winner, shape, Arch::sm_90a);
  CHECK(contains(why, winner.name()));
  CHECK(contains(why, "TMA tensor maps"));
  CHECK(contains(why, "not strided tensors"));
  CHECK_FALSE(fa2::winner_mismatch(overlap_winner, shape, Arch::sm_90a).empty());
  CHECK(fa2::winner_mismatch(fa2::default_config(128, DType::bf16, false, Arch::sm_90a), shape, Arch::sm_90a).empty());
}

TEST_CASE("tma_tensor_shape: the real strides of bshd and bhsd, packed strides for size-1 dims, clear rejections") {
  // A 16-byte aligned stand-in for a device pointer: the function only checks the address.
  alignas(16) static const unsigned char base[16] = {};
  const int batch = 3, seqlen = 509, heads = 8, head_dim = 128;

  const fa2::TmaTensorShape bshd =
      fa2::tma_tensor_shape("q", base, batch, seqlen, heads, head_dim, fa2::bshd_strides(seqlen, heads, head_dim), 128);
  CHECK(bshd.dims == std::array<std::uint64_t, 4>{128, 509, 8, 3});
  CHECK(bshd.strides == std::array<std::uint64_t, 3>{8 * 128 * 2, 128 * 2, 509ull * 8 * 128 * 2});
  CHECK(bshd.box == std::array<std::uint32_t, 4>{64, 128, 1, 1});

  const fa2::TmaTensorShape bhsd =
      fa2::tma_tensor_shape("k", base, batch, seqlen, heads, head_dim, fa2::bhsd_strides(seqlen, heads, head_dim), 80);
  CHECK(bhsd.dims == std::array<std::uint64_t, 4>{128, 509, 8, 3});
  CHECK(bhsd.strides == std::array<std::uint64_t, 3>{128 * 2, 509ull * 128 * 2, 8ull * 509 * 128 * 2});
  CHECK(bhsd.box == std::array<std::uint32_t, 4>{64, 80, 1, 1});

  // Padded rows (a row stride above head_dim) and one head, one batch whose strides the caller left 0.
  fa2::Strides padded{0, 0, 192};
  const fa2::TmaTensorShape single = fa2::tma_tensor_shape("v", base, 1, 100, 1, 64, padded, 64);
  CHECK(single.dims == std::array<std::uint64_t, 4>{64, 100, 1, 1});
  CHECK(single.strides == std::array<std::uint64_t, 3>{192 * 2, 192 * 2 * 100, 192 * 2 * 100});
  // One row: the row stride is never stepped over either.
  const fa2::TmaTensorShape one_row = fa2::tma_tensor_shape("q", base, 2, 1, 4, 64, fa2::Strides{512, 64, 0}, 128);
  CHECK(one_row.strides == std::array<std::uint64_t, 3>{128, 128, 1024});

  auto rejected = [&](const char* part, const void* pointer, int rows, const fa2::Strides& strides, int dim = 128,
                      int box = 128) {
    try {
      (void)fa2::tma_tensor_shape("k", pointer, batch, rows, heads, dim, strides, box);
      FAIL("accepted, expected a rejection naming ", part);
    } catch (const fa2::Error& error) {
      const std::string what = error.what();
      CAPTURE(what);
      CHECK(error.stage() == fa2::Stage::Argument);
      CHECK(contains(what, part));
      CHECK(contains(what, "k:"));
      CHECK(contains(what, "use another scheme"));
    }
  };
  const fa2::Strides good = fa2::bshd_strides(seqlen, heads, head_dim);
  rejected("not 16-byte aligned", base + 8, seqlen, good);
  rejected("head stride is 0", base, seqlen, fa2::Strides{good.batch, 0, good.row});
  rejected("batch stride is 0", base, seqlen, fa2::Strides{0, good.head, good.row});
  rejected("row stride is -1024", base, seqlen, fa2::Strides{good.batch, good.head, -1024});
  rejected("not a multiple of 16", base, seqlen, fa2::Strides{good.batch, 4, good.row});
  rejected("not below 2^40", base, seqlen, fa2::Strides{1ll << 40, good.head, good.row});
  rejected("head_dim 96 is not a multiple of 64", base, seqlen, fa2::bshd_strides(seqlen, heads, 96), 96);
  rejected("a box of 257 rows", base, seqlen, good, 128, 257);
}

}  // TEST_SUITE

TEST_SUITE("compile") {

TEST_CASE("tma_ws: the validated set compiles for sm_90a with no spills and its register split intact") {
  const std::vector<TileConfig> configs = validated_set();
  REQUIRE(configs.size() == 48);  // three schemes x four head dims x two dtypes x two masks
  const std::vector<Compiled> compiled = compile_all(configs);
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string name = configs[i].name();
    CAPTURE(name);
    REQUIRE_MESSAGE(compiled[i].ok, compiled[i].error);
    const fa2::ResourceUsage& r = compiled[i].resources;
    MESSAGE(name, ": registers ", r.registers, ", spill stores ", r.spill_store_bytes, " B, loads ",
            r.spill_load_bytes, " B, stack ", r.stack_frame_bytes, " B, dynamic smem ", configs[i].smem_bytes(), " B");
    CHECK(r.spill_store_bytes == 0);
    CHECK(r.spill_load_bytes == 0);
    CHECK(r.stack_frame_bytes == 0);
    check_register_split(configs[i], compiled[i]);
  }
}

TEST_CASE("tma_ws: its search space compiles for sm_90a within the tuner's spill limit") {
  // bf16 only: the dtype changes two conversion instructions, not the registers (the validated set has both).
  std::vector<TileConfig> configs;
  // Ping-pong adds named barriers to tma_ws_overlap's code, not registers: its non-causal half stands for it.
  for (Scheme scheme : {Scheme::tma_ws, Scheme::tma_ws_overlap, Scheme::tma_ws_pingpong})
    for (int head_dim : {64, 128, 192, 256})
      for (bool causal : {false, true}) {
        if (scheme == Scheme::tma_ws_pingpong && causal) continue;
        for (const TileConfig& c : fa2::buildable_configs(
                 fa2::ProblemClass::of(forward_shape(head_dim, DType::bf16, causal)), Arch::sm_90a, 0, scheme))
          configs.push_back(c);
      }
  MESSAGE(configs.size(), " candidates of the tma_ws schemes");
  CHECK(configs.size() >= 80);
  const std::vector<Compiled> compiled = compile_all(configs);
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string name = configs[i].name();
    CAPTURE(name);
    REQUIRE_MESSAGE(compiled[i].ok, compiled[i].error);
    const fa2::ResourceUsage& r = compiled[i].resources;
    if (r.spills())
      MESSAGE(name, ": spill stores ", r.spill_store_bytes, " B, loads ", r.spill_load_bytes, " B");
    CHECK(fa2::within_tuned_spill_limit(r));
    check_register_split(configs[i], compiled[i]);
  }
}

}  // TEST_SUITE
