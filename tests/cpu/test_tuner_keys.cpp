// The tuner's pure parts: the search space and its pruning, problem classes and their keys, cubin keys,
// the FLOP count, and the tune policy setting. No GPU involved.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "autotune/forward_check.hpp"
#include "autotune/kernel_store.hpp"
#include "autotune/problem_shape.hpp"
#include "autotune/search_space.hpp"
#include "autotune/tuner.hpp"
#include "fa2jit/fa2jit.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace {

using fa2::Arch;
using fa2::DType;
using fa2::ProblemClass;
using fa2::ProblemShape;

// Sets an environment variable for one scope and restores what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_.empty())
      unsetenv(name_);
    else
      setenv(name_, old_.c_str(), 1);
  }

 private:
  const char* name_;
  std::string old_;
};

ProblemShape shape(int head_dim, bool causal, int seqlen_q, int seqlen_k, int heads_q = 8, int heads_kv = 2) {
  ProblemShape s;
  s.head_dim = head_dim;
  s.causal = causal;
  s.batch = 2;
  s.heads_q = heads_q;
  s.heads_kv = heads_kv;
  s.seqlen_q = seqlen_q;
  s.seqlen_k = seqlen_k;
  return s;
}

fa2::FwdArgs args_with(fa2::Strides q, fa2::Strides kv, int seqlen_q = 100, int seqlen_k = 100) {
  fa2::FwdArgs a;
  a.head_dim = 64;
  a.batch = 2;
  a.heads_q = 8;
  a.heads_kv = 2;
  a.seqlen_q = seqlen_q;
  a.seqlen_k = seqlen_k;
  a.q_strides = a.o_strides = q;
  a.k_strides = a.v_strides = kv;
  return a;
}

}  // namespace

TEST_SUITE("tuner_keys") {

TEST_CASE("the search space covers every combination, each buildable or rejected with a reason") {
  for (fa2::Scheme scheme : {fa2::Scheme::mma_sync, fa2::Scheme::wgmma, fa2::Scheme::wgmma_overlap})
    for (int head_dim : {64, 128, 256}) {
      const std::string scheme_name = fa2::scheme_name(scheme);
      CAPTURE(scheme_name);
      CAPTURE(head_dim);
      const fa2::SearchSpace& space = fa2::search_space(fa2::Family::fwd, scheme);
      const std::size_t points = space.block_m.size() * space.block_n.size() * space.warps.size() *
                                 space.stages.size() * space.blocks_per_sm.size();
      const auto candidates =
          fa2::enumerate_candidates(ProblemClass::of(shape(head_dim, true, 512, 512)), Arch::sm_90a, 0, scheme);
      CHECK(candidates.size() == points);
      std::set<std::string> names;
      int buildable = 0;
      for (const fa2::Candidate& c : candidates) {
        names.insert(c.config.name());
        CHECK(c.config.head_dim == head_dim);
        if (c.rejection.empty()) {
          ++buildable;
          CHECK_FALSE(c.config.validate().has_value());
        } else {
          CHECK(c.config.validate().has_value());  // without a device limit, only validate() rejects
        }
      }
      CHECK(names.size() == points);  // no duplicates
      CHECK(buildable > 0);
      CHECK(buildable == static_cast<int>(fa2::buildable_configs(ProblemClass::of(shape(head_dim, true, 512, 512)),
                                                                  Arch::sm_90a, 0, scheme)
                                               .size()));
      for (const fa2::Candidate& c : candidates) CHECK(c.config.scheme == scheme);
    }
}

TEST_CASE("the tuner sweeps the wgmma and tma_ws schemes where they apply, mma_sync elsewhere") {
  using fa2::Scheme;
  CHECK(fa2::tuned_schemes(fa2::Family::fwd, Arch::sm_90a, 128) ==
        std::vector<Scheme>{Scheme::wgmma, Scheme::wgmma_overlap, Scheme::tma_ws, Scheme::tma_ws_pingpong});
  CHECK(fa2::tuned_schemes(fa2::Family::fwd, Arch::sm_90a, 96) == std::vector<Scheme>{Scheme::mma_sync});
  CHECK(fa2::tuned_schemes(fa2::Family::fwd, Arch::sm_80, 128) == std::vector<Scheme>{Scheme::mma_sync});
  for (int head_dim : {64, 96, 128, 256}) {
    const ProblemClass problem = ProblemClass::of(shape(head_dim, false, 512, 512));
    std::size_t expected = 0;
    for (Scheme scheme : fa2::tuned_schemes(fa2::Family::fwd, Arch::sm_90a, head_dim))
      expected += fa2::enumerate_candidates(problem, Arch::sm_90a, 0, scheme).size();
    const auto all = fa2::enumerate_candidates(problem, Arch::sm_90a);
    CHECK(all.size() == expected);
    CHECK_FALSE(fa2::buildable_configs(problem, Arch::sm_90a).empty());
    const std::vector<Scheme> schemes = fa2::tuned_schemes(fa2::Family::fwd, Arch::sm_90a, head_dim);
    for (const fa2::Candidate& c : all) CHECK(std::count(schemes.begin(), schemes.end(), c.config.scheme) == 1);
  }
}

TEST_CASE("two blocks per SM: swept for wgmma where O + S fit in 128 registers and two blocks fit the SM") {
  auto two_block = [](int head_dim) {
    std::set<std::string> names;
    for (const fa2::Candidate& c : fa2::enumerate_candidates(ProblemClass::of(shape(head_dim, false, 512, 512)),
                                                             Arch::sm_90a, 0, fa2::Scheme::wgmma))
      if (c.config.blocks_per_sm == 2 && c.rejection.empty()) names.insert(c.config.name());
    return names;
  };
  // d128: O is 64 registers; key tiles of 32 or 64 keys leave room, 96 and 128 do not.
  CHECK(two_block(128) == std::set<std::string>{"fa2_fwd_wgmma_d128_bf16_full_m128n32w8s1b2_sm90a",
                                                "fa2_fwd_wgmma_d128_bf16_full_m128n32w8s2b2_sm90a",
                                                "fa2_fwd_wgmma_d128_bf16_full_m128n64w8s1b2_sm90a",
                                                "fa2_fwd_wgmma_d128_bf16_full_m128n64w8s2b2_sm90a"});
  CHECK(two_block(64).size() == 8);   // O is 32 registers: every key tile
  CHECK(two_block(256).empty());      // O alone is 128 registers
  for (const fa2::Candidate& c : fa2::enumerate_candidates(ProblemClass::of(shape(128, false, 512, 512)),
                                                           Arch::sm_90a, 0, fa2::Scheme::wgmma_overlap))
    CHECK(c.config.blocks_per_sm == 1);
  for (const fa2::Candidate& c : fa2::enumerate_candidates(ProblemClass::of(shape(256, false, 512, 512)),
                                                           Arch::sm_90a, 0, fa2::Scheme::wgmma))
    if (c.config.blocks_per_sm == 2) CHECK(c.rejection.find("registers per thread") != std::string::npos);
}

TEST_CASE("the tuner's spill limit: a few bytes are timed, more are not; unknown figures fall back on local memory") {
  fa2::ResourceUsage none;
  none.registers = 128;
  CHECK(fa2::within_tuned_spill_limit(none));
  fa2::ResourceUsage small = none;  // the 2-blocks-per-SM d128 kernel: 40 B stored and loaded, 40 B local
  small.spill_store_bytes = small.spill_load_bytes = small.stack_frame_bytes = 40;
  CHECK(fa2::within_tuned_spill_limit(small));
  for (int fa2::ResourceUsage::*field : {&fa2::ResourceUsage::spill_store_bytes, &fa2::ResourceUsage::spill_load_bytes,
                                         &fa2::ResourceUsage::stack_frame_bytes}) {
    fa2::ResourceUsage at = small;
    at.*field = fa2::kMaxTunedLocalBytes;
    CHECK(fa2::within_tuned_spill_limit(at));
    at.*field = fa2::kMaxTunedLocalBytes + 1;
    CHECK_FALSE(fa2::within_tuned_spill_limit(at));
  }
  // A cubin from the driver's compute cache has no ptxas report (spills read 0): its local memory decides.
  fa2::ResourceUsage unknown;
  unknown.stack_frame_bytes = 880;
  CHECK_FALSE(fa2::within_tuned_spill_limit(unknown));
}

TEST_CASE("the search-space hash: stable, and different for another class's space or arch") {
  const ProblemClass d128 = ProblemClass::of(shape(128, false, 512, 512));
  const std::string hash = fa2::search_space_hash(d128, Arch::sm_90a);
  CHECK(hash.size() == 16);
  CHECK(hash == fa2::search_space_hash(d128, Arch::sm_90a));
  // Another head dim or mask names other candidates; sizes alone do not change the space.
  CHECK(hash != fa2::search_space_hash(ProblemClass::of(shape(64, false, 512, 512)), Arch::sm_90a));
  CHECK(hash != fa2::search_space_hash(ProblemClass::of(shape(128, true, 512, 512)), Arch::sm_90a));
  CHECK(hash != fa2::search_space_hash(d128, Arch::sm_80));
  CHECK(hash == fa2::search_space_hash(ProblemClass::of(shape(128, false, 4096, 4096)), Arch::sm_90a));
}

TEST_CASE("pruning: register bound at large head dims, and the device's shared memory limit") {
  const auto problem = ProblemClass::of(shape(256, false, 512, 512));
  int two_tiles_per_warp = 0;
  for (const fa2::Candidate& c : fa2::enumerate_candidates(problem, Arch::sm_90a, 0, fa2::Scheme::mma_sync))
    if (c.config.m_tiles_per_warp() >= 2) {
      ++two_tiles_per_warp;  // 32 rows per warp at d256: 256 O registers alone
      CHECK_FALSE(c.rejection.empty());
      // validate() names the first rule broken: shared memory (checked first) or registers.
      const bool named = c.rejection.find("register") != std::string::npos ||
                         c.rejection.find("shared memory") != std::string::npos;
      CHECK_MESSAGE(named, c.config.name(), ": ", c.rejection);
      if (c.config.smem_bytes() <= fa2::max_smem_per_block(Arch::sm_90a))
        CHECK(c.rejection.find("register") != std::string::npos);
    }
  CHECK(two_tiles_per_warp > 0);
  // A device that allows only 48 KB rejects every config needing more, naming both numbers.
  int limited = 0;
  for (const fa2::Candidate& c : fa2::enumerate_candidates(problem, Arch::sm_90a, 48 * 1024)) {
    if (c.config.validate()) continue;
    if (c.config.smem_bytes() > 48 * 1024) {
      ++limited;
      CHECK(c.rejection.find("device allows 49152") != std::string::npos);
    } else {
      CHECK(c.rejection.empty());
    }
  }
  CHECK(limited > 0);
}

TEST_CASE("problem classes: exact on what changes the kernel, bucketed on sizes") {
  const ProblemClass a = ProblemClass::of(shape(128, true, 1000, 1000));
  CHECK(a == ProblemClass::of(shape(128, true, 1024, 600 + 400)));      // same buckets
  CHECK_FALSE(a == ProblemClass::of(shape(128, true, 1025, 1000)));     // seqlen_q bucket 2048
  CHECK_FALSE(a == ProblemClass::of(shape(128, false, 1000, 1000)));    // causal
  CHECK_FALSE(a == ProblemClass::of(shape(64, true, 1000, 1000)));      // head dim
  CHECK_FALSE(a == ProblemClass::of(shape(128, true, 1000, 1000, 8, 8)));  // GQA ratio 4 vs 1
  ProblemShape fp16 = shape(128, true, 1000, 1000);
  fp16.dtype = DType::fp16;
  CHECK_FALSE(a == ProblemClass::of(fp16));
  CHECK(a.key() == "bf16 d128 causal gqa4 bshd q1024 k1024 bh16");
  CHECK(ProblemClass::of(shape(128, false, 1, 3)).key() == "bf16 d128 full gqa4 bshd q64 k64 bh16");
  CHECK(fa2::size_bucket(64) == 64);
  CHECK(fa2::size_bucket(65) == 128);
  CHECK(fa2::size_bucket(1, 1) == 1);

  fa2::DeviceFingerprint device{"NVIDIA H100 80GB HBM3", 90, 132, 13000};
  CHECK(fa2::tuning_key(device, a) == "NVIDIA H100 80GB HBM3|sm90|132sm|drv13000#bf16 d128 causal gqa4 bshd q1024 k1024 bh16");
}

TEST_CASE("the layout class comes from the strides") {
  CHECK(ProblemShape::of(args_with(fa2::bshd_strides(100, 8, 64), fa2::bshd_strides(100, 2, 64))).layout ==
        fa2::Layout::bshd);
  CHECK(ProblemShape::of(args_with(fa2::bhsd_strides(100, 8, 64), fa2::bhsd_strides(100, 2, 64))).layout ==
        fa2::Layout::bhsd);
  // Q from a packed QKV tensor: row stride 3x the contiguous one.
  fa2::Strides packed = fa2::bshd_strides(100, 8, 64);
  packed.row *= 3;
  packed.batch *= 3;
  CHECK(ProblemShape::of(args_with(packed, fa2::bshd_strides(100, 2, 64))).layout == fa2::Layout::strided);
  // Mixed: Q bshd, K/V bhsd.
  CHECK(ProblemShape::of(args_with(fa2::bshd_strides(100, 8, 64), fa2::bhsd_strides(100, 2, 64))).layout ==
        fa2::Layout::strided);
}

TEST_CASE("causal FLOPs count the visible (query, key) pairs exactly, bottom-right aligned") {
  for (auto [sq, sk] : {std::pair{7, 7}, {5, 9}, {9, 5}, {1, 1}, {300, 40}}) {
    long long pairs = 0;
    for (int r = 0; r < sq; ++r)
      for (int c = 0; c < sk; ++c) pairs += c <= r + sk - sq;
    ProblemShape s = shape(64, true, sq, sk);
    CHECK(s.flops() == doctest::Approx(4.0 * s.batch * s.heads_q * pairs * s.head_dim));
    s.causal = false;
    CHECK(s.flops() == doctest::Approx(4.0 * s.batch * s.heads_q * sq * sk * s.head_dim));
  }
}

TEST_CASE("the reference-check shape keeps the class and the sign of seqlen_q - seqlen_k") {
  for (auto [sq, sk] : {std::pair{16384, 16384}, {4096, 8192}, {8192, 4096}, {100, 30}, {17, 17}}) {
    const ProblemShape big = shape(128, true, sq, sk, 32, 8);
    const ProblemShape check = fa2::reference_check_shape(big);
    CHECK(check.head_dim == big.head_dim);
    CHECK(check.causal == big.causal);
    CHECK(check.dtype == big.dtype);
    CHECK(check.heads_q / check.heads_kv == big.heads_q / big.heads_kv);
    CHECK((check.seqlen_q > check.seqlen_k) == (sq > sk));
    CHECK((check.seqlen_q < check.seqlen_k) == (sq < sk));
    CHECK(check.seqlen_q <= 640);
    CHECK(check.seqlen_k <= 640);
  }
}

TEST_CASE("a cubin key changes with the arch and with any template byte, and only then") {
  fa2::TileConfig config = fa2::default_config(128, DType::bf16, true, Arch::sm_90a);
  config.scheme = fa2::Scheme::mma_sync;  // the one scheme that builds for both archs below
  config.block_n = 32;
  config.warps = 4;
  const std::string key = fa2::cubin_key(config);
  CHECK(key == fa2::cubin_key(config));
  CHECK(key.find(config.name()) == 0);
  CHECK(key.find("@nvrtc" + fa2::nvrtc_version() + "@") != std::string::npos);
  fa2::TileConfig other_arch = config;
  other_arch.arch = Arch::sm_80;
  CHECK(fa2::cubin_key(other_arch) != key);

  // The same templates read from an override directory give the same key; one changed byte does not.
  fa2::test::TempDir dir;
  const std::filesystem::path root = dir.file("templates");
  std::filesystem::create_directories(root);
  std::filesystem::copy(std::string(FA2JIT_SOURCE_DIR) + "/templates/fa2", root / "fa2",
                        std::filesystem::copy_options::recursive);
  {
    ScopedEnv override_dir("FA2JIT_TEMPLATE_DIR", root.string());
    CHECK(fa2::cubin_key(config) == key);
    std::ofstream(root / "fa2" / "mask.cuh", std::ios::app) << "\n// one more line\n";
    CHECK(fa2::cubin_key(config) != key);
  }
  CHECK(fa2::cubin_key(config) == key);
}

TEST_CASE("FA2JIT_TUNE selects the policy and rejects anything else by name") {
  {
    ScopedEnv policy("FA2JIT_TUNE", "heuristic");
    CHECK(fa2::default_tune_policy() == fa2::TunePolicy::heuristic);
  }
  {
    ScopedEnv policy("FA2JIT_TUNE", "cache-only");
    CHECK(fa2::default_tune_policy() == fa2::TunePolicy::cache_only);
  }
  {
    ScopedEnv policy("FA2JIT_TUNE", "");
    CHECK(fa2::default_tune_policy() == fa2::TunePolicy::on_first_use);
  }
  ScopedEnv policy("FA2JIT_TUNE", "sometimes");
  try {
    fa2::default_tune_policy();
    FAIL("an unknown FA2JIT_TUNE value was accepted");
  } catch (const fa2::Error& error) {
    CHECK(std::string(error.what()).find("'sometimes'") != std::string::npos);
    CHECK(std::string(error.what()).find("on-first-use") != std::string::npos);
  }
}

}  // TEST_SUITE
