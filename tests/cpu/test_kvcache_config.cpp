// The KV-cache family without a GPU: its config rules and names, the split heuristic and workspace, its
// classes and search space, its emitted source (a golden file), every default config compiling with NVRTC
// within the tuner's spill limit, and forward_with_kvcache()'s argument checks, each bad value named.
#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "autotune/problem_shape.hpp"
#include "autotune/search_space.hpp"
#include "codegen/emit.hpp"
#include "fa2jit/fa2jit.h"
#include "fa2jit/fa2jit.hpp"
#include "runtime/args_check.hpp"
#include "runtime/params_builder.hpp"
#include "tests/support/compile_check.hpp"

namespace {

using fa2::Arch;
using fa2::DType;
using fa2::Family;
using fa2::Scheme;
using fa2::TileConfig;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void* fake_pointer(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

// Valid arguments: fake aligned pointers, a Llama-3-8B-shaped decode step (32 query heads, 8 KV heads,
// d128) of 4 sequences against a paged cache of 16-key pages.
fa2::KvcacheArgs valid_args() {
  fa2::KvcacheArgs a;
  a.q = fake_pointer(0x10000);
  a.k_cache = fake_pointer(0x20000);
  a.v_cache = fake_pointer(0x30000);
  a.o = fake_pointer(0x40000);
  a.cache_seqlens = static_cast<const int*>(fake_pointer(0x50000));
  a.block_table = static_cast<const int*>(fake_pointer(0x60000));
  a.page_size = 16;
  a.num_pages = 1000;
  a.block_table_stride = 256;
  a.batch = 4;
  a.heads_q = 32;
  a.heads_kv = 8;
  a.seqlen_q = 1;
  a.seqlen_k = 4096;
  a.head_dim = 128;
  a.q_strides = a.o_strides = fa2::bshd_strides(1, 32, 128);
  a.k_strides = a.v_strides = fa2::Strides{16 * 8 * 128, 128, 8 * 128};
  return a;
}

std::string rejection(const std::function<void(fa2::KvcacheArgs&)>& change) {
  fa2::KvcacheArgs args = valid_args();
  change(args);
  try {
    fa2::check_kvcache_args(args);
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Argument);
    MESSAGE("rejected: ", std::string(error.what()));
    return error.what();
  }
  FAIL("check_kvcache_args accepted invalid arguments");
  return {};
}

TileConfig kvcache(int head_dim, int block_m, int block_n, int warps, Arch arch = Arch::sm_90a) {
  TileConfig c = fa2::default_config(Family::kvc, head_dim, DType::bf16, true, arch);
  c.block_m = block_m;
  c.block_n = block_n;
  c.warps = warps;
  return c;
}

}  // namespace

TEST_SUITE("kvcache") {

TEST_CASE("kvcache configs: names, hashes and the family's rules") {
  const TileConfig config = fa2::default_config(Family::kvc, 128, DType::bf16, true, Arch::sm_90a);
  CHECK(config.name() == "fa2_kvc_mma_d128_bf16_causal_m16n64w4s3b2_sm90a");
  CHECK_FALSE(config.validate().has_value());
  TileConfig split = config;
  split.splits = 16;
  CHECK(split.name() == "fa2_kvc_mma_d128_bf16_causal_m16n64w4s3b2k16_sm90a");
  CHECK(split.hash() != config.hash());
  CHECK_FALSE(split == config);
  CHECK(config.entry_points() ==
        std::vector<std::string>{config.name(), config.name() + "_combine", config.name() + "_append"});

  split.splits = fa2::kMaxKeySplits + 1;
  CHECK(contains(split.validate().value_or(""), "splits 129"));
  TileConfig forward = fa2::default_config(Family::fwd, 128, DType::bf16, true, Arch::sm_90a);
  forward.splits = 4;
  CHECK(contains(forward.validate().value_or(""), "kvc family only"));
  // wgmma (chunked prefill on sm_90a): a warpgroup per 64 rows, every key of a tile, head dims of whole pages.
  TileConfig wgmma = kvcache(128, 128, 64, 8);
  wgmma.scheme = Scheme::wgmma;
  wgmma.stages = 2;
  CHECK_FALSE(wgmma.validate().has_value());
  CHECK(wgmma.name() == "fa2_kvc_wgmma_d128_bf16_causal_m128n64w8s2b2_sm90a");
  TileConfig decode_rows = config;
  decode_rows.scheme = Scheme::wgmma;
  CHECK(contains(decode_rows.validate().value_or(""), "block_m a multiple of 64 and warps = block_m / 16"));
  TileConfig on_ampere = wgmma;
  on_ampere.arch = Arch::sm_80;
  CHECK(contains(on_ampere.validate().value_or(""), "needs arch sm_90a"));
  TileConfig d96 = wgmma;
  d96.head_dim = 96;
  CHECK(contains(d96.validate().value_or(""), "head_dim a multiple of 64"));
  TileConfig overlap = wgmma;
  overlap.scheme = Scheme::wgmma_overlap;
  CHECK(contains(overlap.validate().value_or(""), "schemes mma_sync and wgmma"));
  // 64 rows are four row warps: with four warps no key warps are left over for a fifth.
  CHECK(contains(kvcache(128, 128, 64, 4).validate().value_or(""), "row warps"));
  // Four key warps of 16 keys need 64 keys per tile at least.
  CHECK(contains(kvcache(128, 16, 32, 4).validate().value_or(""), "block_n 32"));
  CHECK_FALSE(kvcache(128, 64, 64, 4).validate().has_value());  // four row warps, one key warp
  CHECK_FALSE(kvcache(128, 32, 64, 8).validate().has_value());  // two row warps x four key warps
}

TEST_CASE("kvcache defaults: valid on every arch and head dim, one or two blocks per SM") {
  for (Arch arch : {Arch::sm_80, Arch::sm_86, Arch::sm_89, Arch::sm_90a})
    for (int d = 32; d <= 256; d += 32) {
      const TileConfig c = fa2::default_config(Family::kvc, d, DType::fp16, false, arch);
      CAPTURE(c.name());
      CHECK_FALSE(c.validate().has_value());
      CHECK(c.family == Family::kvc);
      CHECK(c.scheme == Scheme::mma_sync);
      CHECK(c.splits == 0);
      // Chunked prefill (hundreds of packed rows) gets 64-row mma.sync blocks, or on sm_90a at head dims of
      // whole swizzle pages 128-row wgmma blocks; valid either way.
      const TileConfig prefill = fa2::default_config(Family::kvc, d, DType::fp16, false, arch, false, 512);
      CAPTURE(prefill.name());
      CHECK_FALSE(prefill.validate().has_value());
      const bool hopper = arch == Arch::sm_90a && d % 64 == 0;
      CHECK(prefill.scheme == (hopper ? Scheme::wgmma : Scheme::mma_sync));
      CHECK(prefill.block_m == (hopper ? 128 : 64));
    }
}

TEST_CASE("kvcache default: decode tiles for a few packed rows, chunked-prefill tiles from 48 rows") {
  auto block_m = [](int packed_rows) {
    return fa2::default_config(Family::kvc, 128, DType::bf16, true, Arch::sm_90a, false, packed_rows).block_m;
  };
  CHECK(block_m(0) == 16);
  CHECK(block_m(8) == 16);   // seqlen_q 1, GQA 8:1
  CHECK(block_m(32) == 16);  // seqlen_q 4, GQA 8:1
  CHECK(block_m(64) == 128);  // seqlen_q 16, GQA 4:1: the wgmma prefill tiles
  CHECK(block_m(4096) == 128);
  CHECK(fa2::default_config(Family::kvc, 96, DType::bf16, true, Arch::sm_90a, false, 64).block_m == 64);
  CHECK(fa2::default_config(Family::kvc, 128, DType::bf16, true, Arch::sm_80, false, 64).block_m == 64);
  // The class carries the hint: seqlen_q bucket x query heads per KV head, kvc only.
  fa2::ProblemShape shape;
  shape.family = Family::kvc;
  shape.heads_q = 32;
  shape.heads_kv = 8;
  shape.batch = 2;
  shape.seqlen_q = 300;
  shape.seqlen_k = 8192;
  CHECK(fa2::ProblemClass::of(shape).packed_rows() == 512 * 4);
  shape.seqlen_q = 1;
  CHECK(fa2::ProblemClass::of(shape).packed_rows() == 4);
  shape.family = Family::fwd;
  CHECK(fa2::ProblemClass::of(shape).packed_rows() == 0);
}

TEST_CASE("kvcache splits: given, tuned, or the fewest that fill every resident slot") {
  fa2::KvcacheArgs args = valid_args();
  args.batch = 1;
  args.seqlen_k = 32768;  // 512 tiles of 64 keys
  // 8 blocks (one per KV head) on 264 resident slots: split until the grid fills them.
  const int heuristic = fa2::kvc_splits(args, 16, 64, 0, 264);
  CHECK(heuristic >= 20);
  CHECK(heuristic <= 33);
  CHECK(fa2::kvc_splits(args, 16, 64, 5, 264) == 5);  // the tuned choice
  args.num_splits = 3;
  CHECK(fa2::kvc_splits(args, 16, 64, 5, 264) == 3);  // the caller's, over the tuned one
  args.num_splits = 0;
  args.batch = 64;  // 512 blocks: more than resident, no split
  CHECK(fa2::kvc_splits(args, 16, 64, 0, 264) == 1);
  args.batch = 1;
  args.seqlen_k = 100;  // two tiles: never more splits than tiles
  CHECK(fa2::kvc_splits(args, 16, 64, 0, 264) == 2);
  args.num_splits = 50;
  CHECK(fa2::kvc_splits(args, 16, 64, 0, 264) == 2);
  args.num_splits = 0;
  CHECK(fa2::kvc_splits(args, 16, 64, 0, 0) == 1);  // residency unknown: no split
  // Decode tiles on 132 SMs x 2 slots, 8 KV heads: the grid fills both slots of nearly every SM in one wave
  // (256 of 264), the measured best on the H200 (bench/NOTES.md); 1.45 waves (384 blocks) is never chosen.
  args.seqlen_k = 131072;
  const std::pair<int, int> batch_splits[] = {{1, 32}, {2, 16}, {4, 8}, {8, 4}, {16, 2}};
  for (auto [batch, splits] : batch_splits) {
    args.batch = batch;
    CHECK(fa2::kvc_splits(args, 16, 64, 0, 264) == splits);
  }
  args.batch = 1;
  args.heads_kv = 1;  // one block: as many splits as allowed
  args.heads_q = 8;
  CHECK(fa2::kvc_splits(args, 16, 64, 0, 264) > 120);  // within 95% of the 128 allowed
  args.heads_q = 32;
  args.heads_kv = 8;
  args.seqlen_k = 100;

  CHECK(fa2::kvc_workspace_layout(args, 1).bytes == 0);
  const fa2::KvcWorkspaceLayout layout = fa2::kvc_workspace_layout(args, 4);
  CHECK(layout.lse_partial >= 4u * 32 * 128 * 4);  // after 4 splits x 32 rows x d128 fp32
  CHECK(layout.lse_partial % 256 == 0);
  CHECK(layout.bytes >= layout.lse_partial + 4u * 32 * 4);
}

TEST_CASE("kvcache classes: keys bucket the query rows from 1, and the search space sweeps splits") {
  fa2::ProblemShape shape;
  shape.family = Family::kvc;
  shape.head_dim = 128;
  shape.causal = true;
  shape.batch = 8;
  shape.heads_q = 32;
  shape.heads_kv = 8;
  shape.seqlen_q = 1;
  shape.seqlen_k = 131072;
  shape.page_size = 16;
  CHECK(shape.describe() == "kvc d128 bf16 causal b8 hq32 hkv8 sq1 sk131072 bshd page16");
  const fa2::ProblemClass problem = fa2::ProblemClass::of(shape);
  CHECK(problem.key() == "kvc bf16 d128 causal gqa4 bshd q1 k131072 bh256");
  fa2::ProblemShape contiguous = shape;
  contiguous.page_size = 0;
  CHECK(fa2::ProblemClass::of(contiguous) == problem);  // the same kernels read both
  fa2::ProblemShape chunk = shape;
  chunk.seqlen_q = 5;
  CHECK(fa2::ProblemClass::of(chunk).key() == "kvc bf16 d128 causal gqa4 bshd q8 k131072 bh256");

  CHECK(fa2::tuned_schemes(Family::kvc, Arch::sm_90a, 128) == std::vector<Scheme>{Scheme::mma_sync, Scheme::wgmma});
  CHECK(fa2::tuned_schemes(Family::kvc, Arch::sm_90a, 96) == std::vector<Scheme>{Scheme::mma_sync});
  CHECK(fa2::tuned_schemes(Family::kvc, Arch::sm_80, 128) == std::vector<Scheme>{Scheme::mma_sync});
  std::set<int> splits, block_m;
  for (const TileConfig& c : fa2::buildable_configs(problem, Arch::sm_90a)) {
    CHECK(c.family == Family::kvc);
    splits.insert(c.splits);
    block_m.insert(c.block_m);
  }
  CHECK(splits == std::set<int>{0, 1, 16});
  CHECK(block_m == std::set<int>{16, 64, 128});
}

TEST_CASE("kvcache emission matches the committed golden file byte for byte") {
  const std::string file = "tests/golden/kvc_d128_bf16_causal_default_sm90a.cu";
  std::ifstream in(std::string(FA2JIT_SOURCE_DIR) + "/" + file, std::ios::binary);
  const std::string golden((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE_FALSE(golden.empty());
  const TileConfig config = fa2::default_config(Family::kvc, 128, DType::bf16, true, Arch::sm_90a);
  const std::string emitted = fa2::emit(config);
  CHECK_MESSAGE(emitted == golden, "emit(", config.name(), ") differs from ", file,
                "; if intended, regenerate it with build/fa2-tune emit --pass kvc --head-dim 128 --causal > ", file);
  for (const std::string& entry : config.entry_points())
    CHECK(contains(emitted, "\n" + entry + "(const fa2::KvcParams params)"));
}

TEST_CASE("every default kvcache config compiles for sm_80 and sm_90a within the tuner's spill limit") {
  std::vector<TileConfig> configs;
  for (Arch arch : {Arch::sm_80, Arch::sm_90a})
    for (int d = 32; d <= 256; d += 32) {
      configs.push_back(fa2::default_config(Family::kvc, d, DType::bf16, true, arch));
      configs.push_back(fa2::default_config(Family::kvc, d, DType::fp16, false, arch));
    }
  // The chunked-prefill defaults (wgmma on sm_90a, four row warps elsewhere) over the head dims.
  for (Arch arch : {Arch::sm_80, Arch::sm_90a})
    for (int d : {64, 96, 128, 192, 256})
      configs.push_back(fa2::default_config(Family::kvc, d, DType::bf16, true, arch, false, 1024));
  fa2::testing::check_compiles_within_spill_limit(configs);
}

TEST_CASE("check_kvcache_args rejects each bad value, naming it") {
  CHECK_NOTHROW(fa2::check_kvcache_args(valid_args()));
  CHECK(contains(rejection([](auto& a) { a.k_cache = nullptr; }), "k_cache is a null pointer"));
  CHECK(contains(rejection([](auto& a) { a.block_table = static_cast<const int*>(fake_pointer(0x60002)); }),
                 "block_table"));
  CHECK(contains(rejection([](auto& a) { a.page_size = 48; }), "page_size 48"));
  CHECK(contains(rejection([](auto& a) { a.page_size = 512; }), "page_size 512"));
  CHECK(contains(rejection([](auto& a) { a.num_pages = 0; }), "num_pages 0"));
  CHECK(contains(rejection([](auto& a) { a.block_table_stride = 255; }), "block_table_stride 255"));
  CHECK(contains(rejection([](auto& a) { a.num_splits = 129; }), "num_splits 129"));
  CHECK(contains(rejection([](auto& a) { a.num_splits = -1; }), "num_splits -1"));
  CHECK(contains(rejection([](auto& a) { a.heads_kv = 5; }), "heads_q 32 is not a multiple of heads_kv 5"));
  CHECK(contains(rejection([](auto& a) { a.head_dim = 40; }), "head_dim 40"));
  CHECK(contains(rejection([](auto& a) { a.seqlen_q = 0; }), "seqlen_q 0"));
  CHECK(contains(rejection([](auto& a) { a.k_strides.row = 100; }), "k_cache row stride 100"));
  CHECK(contains(rejection([](auto& a) {
                   a.block_table = nullptr;
                 }),
                 "without a block_table"));
  CHECK(contains(rejection([](auto& a) { a.num_pages = 1 << 30; }), "num_pages 1073741824"));
  // Varlen: a row count with its offsets, and one source of key lengths.
  const int* offsets = static_cast<const int*>(fake_pointer(0x70000));
  CHECK(contains(rejection([&](auto& a) { a.cu_seqlens_q = offsets; }), "total_q 0"));
  CHECK(contains(rejection([](auto& a) { a.total_q = 100; }), "total_q 100 is given without cu_seqlens_q"));
  CHECK(contains(rejection([&](auto& a) { a.cu_seqlens_k = offsets; }), "cu_seqlens_k and block_table"));
  CHECK(contains(rejection([&](auto& a) {
                   a.block_table = nullptr;
                   a.page_size = a.num_pages = 0;
                   a.cu_seqlens_k = offsets;
                 }),
                 "cu_seqlens_k and cache_seqlens"));
  CHECK(contains(rejection([](auto& a) { a.cu_seqlens_q = static_cast<const int*>(fake_pointer(0x70002)); }),
                 "cu_seqlens_q"));
  // Appended rows: both tensors, a count within the cache, lengths to place them after, no varlen keys.
  const void* rows = fake_pointer(0x80000);
  auto appending = [rows](fa2::KvcacheArgs& a) {
    a.k_new = a.v_new = rows;
    a.seqlen_new = 3;
    a.k_new_strides = a.v_new_strides = fa2::bshd_strides(3, 8, 128);
  };
  fa2::KvcacheArgs append = valid_args();
  appending(append);
  CHECK_NOTHROW(fa2::check_kvcache_args(append));
  CHECK(contains(rejection([&](auto& a) {
                   appending(a);
                   a.v_new = nullptr;
                 }),
                 "k_new is given but v_new is null"));
  CHECK(contains(rejection([](auto& a) { a.seqlen_new = 2; }), "seqlen_new 2 is given without k_new"));
  CHECK(contains(rejection([&](auto& a) {
                   appending(a);
                   a.seqlen_new = 0;
                 }),
                 "seqlen_new 0 must be in [1, seqlen_k 4096]"));
  CHECK(contains(rejection([&](auto& a) {
                   appending(a);
                   a.seqlen_new = 4097;
                 }),
                 "seqlen_new 4097"));
  CHECK(contains(rejection([&](auto& a) {
                   appending(a);
                   a.cache_seqlens = nullptr;
                 }),
                 "need cache_seqlens"));
  CHECK(contains(rejection([&](auto& a) {
                   appending(a);
                   a.cu_seqlens_q = static_cast<const int*>(fake_pointer(0x70000));
                   a.total_q = 10;
                 }),
                 "cannot be appended in a variable-length batch"));
  CHECK(contains(rejection([&](auto& a) {
                   appending(a);
                   a.k_new = fake_pointer(0x80008);
                 }),
                 "k_new = 0x80008 is not 16-byte aligned"));
  CHECK(contains(rejection([&](auto& a) {
                   appending(a);
                   a.v_new_strides.head = 100;
                 }),
                 "v_new head stride 100"));
  fa2::KvcacheArgs varlen = valid_args();
  varlen.block_table = nullptr;
  varlen.page_size = varlen.num_pages = 0;
  varlen.cache_seqlens = nullptr;
  varlen.cu_seqlens_q = varlen.cu_seqlens_k = offsets;
  varlen.total_q = 1000;
  varlen.q_strides = varlen.o_strides = fa2::Strides{0, 128, 32 * 128};
  varlen.k_strides = varlen.v_strides = fa2::Strides{0, 128, 8 * 128};
  CHECK_NOTHROW(fa2::check_kvcache_args(varlen));
  CHECK(fa2::ProblemShape::of(varlen).layout == fa2::Layout::bshd);  // packed rows judged by head and row strides
}

TEST_CASE("C ABI: the kvcache's argument errors and layout") {
  CHECK(fa2_kvcache_args_size() == static_cast<int>(sizeof(fa2_kvcache_args)));
  fa2_kvcache_args a;
  fa2_kvcache_args_init(&a);
  CHECK(a.struct_size == static_cast<int>(sizeof(fa2_kvcache_args)));
  CHECK(a.tune_policy == FA2_TUNE_DEFAULT);
  CHECK(fa2_forward_with_kvcache(nullptr, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "args is a null pointer"));
  a.struct_size = 12;
  CHECK(fa2_forward_with_kvcache(&a, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "fa2_kvcache_args"));
  fa2_kvcache_args_init(&a);
  a.q = a.k = a.v = a.o = fake_pointer(0x10000);
  a.batch = 1;
  a.heads_q = a.heads_kv = 4;
  a.seqlen_q = 1;
  a.seqlen_k = 100;
  a.head_dim = 64;
  a.q_row_stride = a.k_row_stride = a.v_row_stride = a.o_row_stride = 256;
  a.page_size = 16;  // no block table
  CHECK(fa2_forward_with_kvcache(&a, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "page_size 16 and num_pages 0"));
  a.page_size = 0;
  a.k_new = fake_pointer(0x20000);
  a.seqlen_new = 1;
  CHECK(fa2_forward_with_kvcache(&a, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "k_new is given but v_new is null"));
  a.v_new = fake_pointer(0x30000);
  a.cache_seqlens = static_cast<const int*>(fake_pointer(0x50000));
  a.k_new_row_stride = 256;
  a.v_new_row_stride = 255;
  CHECK(fa2_forward_with_kvcache(&a, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(contains(fa2_last_error(), "v_new row stride 255"));
  a.k_new = a.v_new = nullptr;
  a.seqlen_new = 0;
  a.page_size = 16;
  char name[8];
  CHECK(fa2_kvcache_config_name(&a, nullptr, 8) == FA2_ERROR_ARGUMENT);
  CHECK(fa2_kvcache_config_name(&a, name, sizeof name) == FA2_ERROR_ARGUMENT);
  size_t bytes = 0;
  CHECK(fa2_kvcache_workspace_size(&a, nullptr) == FA2_ERROR_ARGUMENT);
  CHECK(fa2_kvcache_workspace_size(&a, &bytes) == FA2_ERROR_ARGUMENT);
}

}  // TEST_SUITE
