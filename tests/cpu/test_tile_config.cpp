// TileConfig: validation (every default accepted, every broken rule rejected with a reason naming the
// bad value), name() and hash() identity, and the dtype/arch parsers.
#include <doctest/doctest.h>

#include <cctype>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "codegen/tile_config.hpp"

namespace {

using fa2::Arch;
using fa2::DType;
using fa2::TileConfig;

const std::vector<int> kHeadDims = {32, 64, 96, 128, 160, 192, 224, 256};
const std::vector<DType> kDTypes = {DType::fp16, DType::bf16};
const std::vector<Arch> kArchs = {Arch::sm_80, Arch::sm_86, Arch::sm_89, Arch::sm_90a};

bool is_c_identifier(const std::string& s) {
  if (s.empty()) return false;
  if (!(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

bool is_hex16(const std::string& s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// validate()'s reason for `config`; fails the test when the config is (wrongly) accepted.
std::string rejection(const TileConfig& config) {
  const auto reason = config.validate();
  REQUIRE_MESSAGE(reason.has_value(), "config ", config.name(), " was accepted but should be rejected");
  MESSAGE("rejected ", config.name(), ": ", *reason);
  return *reason;
}

// The default d128 bf16 non-causal sm_90a config with one change.
TileConfig with(const std::function<void(TileConfig&)>& change) {
  TileConfig config = fa2::default_config(128, DType::bf16, false, Arch::sm_90a);
  change(config);
  return config;
}

}  // namespace

TEST_SUITE("tile_config") {

TEST_CASE("every default config validates and is supported") {
  int count = 0;
  for (int d : kHeadDims)
    for (DType dtype : kDTypes)
      for (bool causal : {false, true})
        for (Arch arch : kArchs) {
          const TileConfig config = fa2::default_config(d, dtype, causal, arch);
          const auto reason = config.validate();
          CHECK_MESSAGE(!reason.has_value(), config.name(), ": ", reason.value_or(""));
          CHECK(config.head_dim == d);
          CHECK(config.dtype == dtype);
          CHECK(config.causal == causal);
          CHECK(config.arch == arch);
          CHECK(config.smem_bytes() <= fa2::max_smem_per_block(arch));
          ++count;
        }
  CHECK(count == 8 * 2 * 2 * 4);
}

TEST_CASE("supported head dims are exactly the multiples of 32 up to 256") {
  for (int d = -32; d <= 320; ++d) {
    const bool expected = d >= 32 && d <= 256 && d % 32 == 0;
    CHECK_MESSAGE(fa2::is_supported_head_dim(d) == expected, "head_dim ", d);
  }
}

TEST_CASE("unsupported head dims are rejected, naming the value") {
  for (int d : {48, 0, 288}) {
    const std::string reason = rejection(with([d](TileConfig& c) { c.head_dim = d; }));
    CHECK_MESSAGE(reason.find("head_dim " + std::to_string(d)) != std::string::npos, reason);
  }
}

TEST_CASE("block_m must be a multiple of 16 * warps") {
  const std::string reason = rejection(with([](TileConfig& c) {
    c.block_m = 64;
    c.warps = 8;
  }));
  CHECK_MESSAGE(reason.find("64") != std::string::npos, reason);
  CHECK_MESSAGE(reason.find("128") != std::string::npos, reason);  // 16 * 8
}

TEST_CASE("block_m that is not a multiple of 16 is rejected") {
  const std::string reason = rejection(with([](TileConfig& c) { c.block_m = 72; }));
  CHECK_MESSAGE(reason.find("block_m 72") != std::string::npos, reason);
}

TEST_CASE("block_n 24 is rejected") {
  const std::string reason = rejection(with([](TileConfig& c) { c.block_n = 24; }));
  CHECK_MESSAGE(reason.find("block_n 24") != std::string::npos, reason);
}

TEST_CASE("warps 3 is rejected") {
  const std::string reason = rejection(with([](TileConfig& c) { c.warps = 3; }));
  CHECK_MESSAGE(reason.find("warps 3") != std::string::npos, reason);
}

TEST_CASE("stages 0 and 5 are rejected") {
  for (int s : {0, 5}) {
    const std::string reason = rejection(with([s](TileConfig& c) { c.stages = s; }));
    CHECK_MESSAGE(reason.find("stages " + std::to_string(s)) != std::string::npos, reason);
  }
}

TEST_CASE("shared memory over the arch limit is rejected") {
  TileConfig config = fa2::default_config(256, DType::bf16, false, Arch::sm_86);
  config.block_m = 128;
  config.block_n = 128;
  config.stages = 4;
  const int needed = (128 + 2 * 4 * 128) * 256 * 2;
  CHECK(config.smem_bytes() == needed);
  const std::string reason = rejection(config);
  CHECK_MESSAGE(reason.find(std::to_string(needed)) != std::string::npos, reason);
  CHECK_MESSAGE(reason.find(std::to_string(fa2::max_smem_per_block(Arch::sm_86))) != std::string::npos, reason);
  CHECK_MESSAGE(reason.find("sm_86") != std::string::npos, reason);

  // The same tile shape with one stage fits sm_90a's larger limit but not sm_86's.
  TileConfig one_stage = config;
  one_stage.stages = 1;
  one_stage.block_n = 64;
  one_stage.arch = Arch::sm_90a;
  CHECK(one_stage.smem_bytes() <= fa2::max_smem_per_block(Arch::sm_90a));
  CHECK(one_stage.smem_bytes() > fa2::max_smem_per_block(Arch::sm_86));
  CHECK(!one_stage.validate().has_value());
  one_stage.arch = Arch::sm_86;
  CHECK(one_stage.validate().has_value());
}

TEST_CASE("accumulator registers over the limit are rejected") {
  TileConfig config = fa2::default_config(256, DType::bf16, false, Arch::sm_90a);
  config.scheme = fa2::Scheme::mma_sync;
  config.block_m = 128;
  config.warps = 4;
  // 32 rows per warp: two 16-row tiles, each with 256/8 O fragments and block_n/8 S fragments of 4 floats.
  const int expected = 2 * (256 / 8) * 4 + 2 * (config.block_n / 8) * 4;
  CHECK(config.accumulator_registers() == expected);
  const std::string reason = rejection(config);
  CHECK_MESSAGE(reason.find(std::to_string(expected)) != std::string::npos, reason);
  CHECK_MESSAGE(reason.find("register") != std::string::npos, reason);
}

// A fixed config (not a default, which may change with new measurements) for pinned names and hashes.
TileConfig pinned_config() {
  TileConfig config;
  config.head_dim = 128;
  config.dtype = DType::bf16;
  config.causal = true;
  config.block_m = 128;
  config.block_n = 64;
  config.warps = 8;
  config.stages = 2;
  config.arch = Arch::sm_90a;
  return config;
}

TEST_CASE("the wgmma schemes: sm_90a, whole 64-column pages, 64 rows per warpgroup") {
  for (fa2::Scheme scheme : {fa2::Scheme::wgmma, fa2::Scheme::wgmma_overlap}) {
    TileConfig config = pinned_config();  // d128, 128 rows, 8 warps: valid
    config.scheme = scheme;
    CAPTURE(config.name());
    CHECK_FALSE(config.validate().has_value());
    CHECK(config.smem_bytes() == (128 + 2 * 2 * 64) * 128 * 2 + 1024);  // + slack to align the tiles
    struct Bad {
      std::function<void(TileConfig&)> apply;
      const char* named;
    };
    const std::vector<Bad> bad = {
        {[](TileConfig& c) { c.arch = Arch::sm_80; }, "needs arch sm_90a, not sm_80"},
        {[](TileConfig& c) { c.head_dim = 96; }, "multiple of 64"},
        {[](TileConfig& c) { c.warps = 2; c.block_m = 32; }, "whole warpgroups"},
        {[](TileConfig& c) { c.block_m = 256; }, "block_m = 16 * warps = 128"},
        {[](TileConfig& c) { c.block_n = 48; }, "block_n a multiple of 32"},
    };
    for (const Bad& b : bad) {
      TileConfig changed = config;
      b.apply(changed);
      const std::string reason = rejection(changed);
      CHECK_MESSAGE(reason.find(b.named) != std::string::npos, reason);
      CHECK_MESSAGE(reason.find(fa2::scheme_name(scheme)) != std::string::npos, reason);
    }
  }
}

TEST_CASE("blocks_per_sm: spelled in the name only above 1, bounded by the SM's threads, shared memory, registers") {
  TileConfig config = pinned_config();  // d128 causal, 128x64, 8 warps, 2 stages
  config.scheme = fa2::Scheme::wgmma;
  CHECK(config.name() == "fa2_fwd_wgmma_d128_bf16_causal_m128n64w8s2_sm90a");
  CHECK(config.register_cap() == 255);
  config.blocks_per_sm = 2;
  CHECK(config.name() == "fa2_fwd_wgmma_d128_bf16_causal_m128n64w8s2b2_sm90a");
  CHECK(is_c_identifier(config.name()));
  CHECK(config.register_cap() == 128);
  CHECK_FALSE(config.validate().has_value());  // 2 x 100 KB of 228 KB; O + S = 96 registers of 128

  for (int blocks : {0, 5, -1}) {
    TileConfig bad = config;
    bad.blocks_per_sm = blocks;
    CHECK(rejection(bad) == fmt::format("blocks_per_sm {} must be in [1, 4]", blocks));
  }
  TileConfig threads = config;
  threads.blocks_per_sm = 4;  // 4 x 256 threads fit 2048, but O + S do not fit 64 registers
  CHECK(rejection(threads).find("leave 64 registers per thread") != std::string::npos);
  threads.arch = Arch::sm_89;  // 1536 threads per SM there: 4 blocks of 512 do not fit
  threads.scheme = fa2::Scheme::mma_sync;
  threads.warps = 16;
  threads.block_m = 256;
  const std::string too_many_threads = rejection(threads);
  CHECK_MESSAGE(too_many_threads.find("exceeds the 1536 threads") != std::string::npos, too_many_threads);

  TileConfig smem = config;
  smem.stages = 3;  // 132 KB per block: two do not fit 228 KB
  const std::string smem_reason = rejection(smem);
  CHECK_MESSAGE(smem_reason.find("shared memory per SM") != std::string::npos, smem_reason);
  CHECK_MESSAGE(smem_reason.find(std::to_string(fa2::smem_per_sm(Arch::sm_90a))) != std::string::npos, smem_reason);

  TileConfig registers = config;
  registers.block_n = 96;  // O 64 + S 48 registers: too many under 128
  const std::string register_reason = rejection(registers);
  CHECK_MESSAGE(register_reason.find("leave 128 registers per thread") != std::string::npos, register_reason);
  CHECK_MESSAGE(register_reason.find("112") != std::string::npos, register_reason);
  CHECK_MESSAGE(register_reason.find("fewer blocks per SM") != std::string::npos, register_reason);

  // One block of 16 warps is capped at 128 registers too; the advice is then fewer warps.
  TileConfig wide = pinned_config();
  wide.scheme = fa2::Scheme::mma_sync;
  wide.warps = 16;
  wide.block_m = 256;
  wide.block_n = 128;  // O 64 + S 64 per thread
  const std::string wide_reason = rejection(wide);
  CHECK_MESSAGE(wide_reason.find("1 block(s) per SM of 512 threads leave 128") != std::string::npos, wide_reason);
  CHECK_MESSAGE(wide_reason.find("fewer warps") != std::string::npos, wide_reason);
}

TEST_CASE("name() is a deterministic C identifier") {
  const TileConfig config = pinned_config();
  CHECK(config.name() == "fa2_fwd_mma_d128_bf16_causal_m128n64w8s2_sm90a");
  for (int d : kHeadDims)
    for (DType dtype : kDTypes)
      for (bool causal : {false, true})
        for (Arch arch : kArchs) {
          const std::string name = fa2::default_config(d, dtype, causal, arch).name();
          CHECK_MESSAGE(is_c_identifier(name), name);
        }
}

TEST_CASE("name() and hash() change when any single field changes") {
  const TileConfig base = pinned_config();
  struct Change {
    const char* field;
    std::function<void(TileConfig&)> apply;
  };
  const std::vector<Change> changes = {
      {"scheme", [](TileConfig& c) { c.scheme = fa2::Scheme::wgmma; }},
      {"head_dim", [](TileConfig& c) { c.head_dim = 64; }},
      {"dtype", [](TileConfig& c) { c.dtype = DType::fp16; }},
      {"causal", [](TileConfig& c) { c.causal = false; }},
      {"block_m", [](TileConfig& c) { c.block_m = 64; }},
      {"block_n", [](TileConfig& c) { c.block_n = 32; }},
      {"warps", [](TileConfig& c) { c.warps = 4; }},
      {"stages", [](TileConfig& c) { c.stages = 3; }},
      {"arch", [](TileConfig& c) { c.arch = Arch::sm_80; }},
      {"blocks_per_sm", [](TileConfig& c) { c.blocks_per_sm = 2; }},
  };
  std::set<std::string> names = {base.name()};
  std::set<std::string> hashes = {base.hash()};
  for (const Change& change : changes) {
    TileConfig changed = base;
    change.apply(changed);
    const std::string field = change.field;
    CAPTURE(field);
    REQUIRE(changed != base);
    CHECK_MESSAGE(changed.name() != base.name(), field, " -> ", changed.name());
    CHECK_MESSAGE(changed.hash() != base.hash(), field, " -> ", changed.hash());
    names.insert(changed.name());
    hashes.insert(changed.hash());
  }
  CHECK(names.size() == changes.size() + 1);
  CHECK(hashes.size() == changes.size() + 1);
}

TEST_CASE("operator== compares every field") {
  const TileConfig a = fa2::default_config(64, DType::fp16, true, Arch::sm_80);
  TileConfig b = a;
  CHECK(a == b);
  b.stages = a.stages + 1;
  CHECK(a != b);
  b = a;
  b.blocks_per_sm = 2;
  CHECK(a != b);
}

TEST_CASE("hash() is 16 hex digits, pinned, and distinct across all defaults") {
  const TileConfig config = pinned_config();
  CHECK(is_hex16(config.hash()));
  CHECK(config.hash() == config.hash());
  // Pinned: a change of this value invalidates every cache key; change it only on purpose.
  CHECK(config.hash() == "d608749f740cceb7");

  std::set<std::string> hashes;
  int count = 0;
  for (int d : kHeadDims)
    for (DType dtype : kDTypes)
      for (bool causal : {false, true})
        for (Arch arch : kArchs) {
          const std::string h = fa2::default_config(d, dtype, causal, arch).hash();
          CHECK_MESSAGE(is_hex16(h), h);
          hashes.insert(h);
          ++count;
        }
  CHECK(hashes.size() == static_cast<std::size_t>(count));
}

TEST_CASE("parse_dtype / parse_arch round-trip and reject garbage") {
  for (DType dtype : kDTypes) {
    const auto parsed = fa2::parse_dtype(fa2::dtype_name(dtype));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == dtype);
  }
  for (Arch arch : kArchs) {
    const auto parsed = fa2::parse_arch(fa2::arch_name(arch));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == arch);
  }
  CHECK(std::string(fa2::dtype_name(DType::fp16)) == "fp16");
  CHECK(std::string(fa2::dtype_name(DType::bf16)) == "bf16");
  CHECK(std::string(fa2::arch_name(Arch::sm_90a)) == "sm_90a");
  for (const char* bad : {"", "fp32", "FP16", "bf16 ", "int8", "garbage"})
    CHECK_MESSAGE(!fa2::parse_dtype(bad).has_value(), "'", std::string(bad), "'");
  for (const char* bad : {"", "sm_70", "sm_90", "sm90a", "SM_80", "sm_100", "garbage"})
    CHECK_MESSAGE(!fa2::parse_arch(bad).has_value(), "'", std::string(bad), "'");
  for (fa2::Scheme scheme : {fa2::Scheme::mma_sync, fa2::Scheme::wgmma, fa2::Scheme::wgmma_overlap})
    CHECK(fa2::parse_scheme(fa2::scheme_name(scheme)) == scheme);
  for (const char* bad : {"", "wmma", "WGMMA", "mma", "wgmma "})
    CHECK_MESSAGE(!fa2::parse_scheme(bad).has_value(), "'", std::string(bad), "'");
}

TEST_CASE("arch_for_compute_capability") {
  CHECK(fa2::arch_for_compute_capability(9, 0) == Arch::sm_90a);
  CHECK(fa2::arch_for_compute_capability(8, 0) == Arch::sm_80);
  CHECK(fa2::arch_for_compute_capability(8, 6) == Arch::sm_86);
  CHECK(fa2::arch_for_compute_capability(8, 9) == Arch::sm_89);
  CHECK(!fa2::arch_for_compute_capability(7, 5).has_value());
  // Out-of-range values are no arch (and no signed overflow under UBSan).
  CHECK(!fa2::arch_for_compute_capability(7, 16).has_value());
  CHECK(!fa2::arch_for_compute_capability(std::numeric_limits<int>::min(), -1).has_value());
  CHECK(!fa2::arch_for_compute_capability(std::numeric_limits<int>::max(), 0).has_value());  // major * 10 overflowed
  CHECK(!fa2::arch_for_compute_capability(10, 0).has_value());
  for (Arch arch : kArchs) {
    const int cc = fa2::compute_capability(arch);
    CHECK(fa2::arch_for_compute_capability(cc / 10, cc % 10) == arch);
  }
}

}  // TEST_SUITE
