// NVRTC compilation of many configs on every core, each checked against the tuner's spill limit: shared by
// the CPU suites of the kernel families.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "autotune/tuner.hpp"
#include "codegen/emit.hpp"
#include "codegen/tile_config.hpp"
#include "common/error.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2::testing {

// Compiles `configs` with NVRTC on every core and checks each against the tuner's spill limit, or with
// `zero_spills` for no spilled byte at all.
inline void check_compiles(const std::vector<fa2::TileConfig>& configs, bool zero_spills) {
  struct Outcome {
    bool ok = false;
    std::string error;
    fa2::ResourceUsage resources;
  };
  // NVRTC is thread-safe per program; no doctest assertions run off the main thread.
  std::vector<Outcome> outcomes(configs.size());
  std::atomic<std::size_t> next{0};
  std::vector<std::future<void>> pool;
  for (unsigned w = 0; w < std::max(1u, std::thread::hardware_concurrency()); ++w)
    pool.push_back(std::async(std::launch::async, [&] {
      for (std::size_t i = next++; i < configs.size(); i = next++) {
        try {
          const fa2::CompiledKernel kernel =
              fa2::compile_source(fa2::emit(configs[i]), configs[i].name(), configs[i].arch);
          outcomes[i] = Outcome{true, "", kernel.resources};
        } catch (const fa2::Error& error) {
          outcomes[i].error = std::string(error.what()) + "\n" + error.log();
        }
      }
    }));
  for (auto& f : pool) f.get();
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string name = configs[i].name();
    CAPTURE(name);
    REQUIRE_MESSAGE(outcomes[i].ok, outcomes[i].error);
    const fa2::ResourceUsage& r = outcomes[i].resources;
    MESSAGE(name, ": registers ", r.registers, ", spill stores ", r.spill_store_bytes, " B, loads ",
            r.spill_load_bytes, " B, stack ", r.stack_frame_bytes, " B, dynamic smem ", configs[i].smem_bytes(), " B");
    CHECK(r.registers > 0);
    CHECK(r.registers <= 255);
    CHECK(fa2::within_tuned_spill_limit(r));
    if (zero_spills) {
      CHECK(r.spill_store_bytes == 0);
      CHECK(r.spill_load_bytes == 0);
    }
  }
}

inline void check_compiles_within_spill_limit(const std::vector<fa2::TileConfig>& configs) {
  check_compiles(configs, false);
}

inline void check_compiles_without_spills(const std::vector<fa2::TileConfig>& configs) {
  check_compiles(configs, true);
}

}  // namespace fa2::testing
