// Parallel NVRTC compilation of many configs on a pool of threads (NVRTC programs are independent,
// so compiles scale with cores). A config that fails to compile is recorded with its reason, never
// fatal to the others.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "codegen/tile_config.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fa2 {

struct CompileOutcome {
  TileConfig config;
  std::optional<CompiledKernel> kernel;  // empty when compilation failed
  std::string failure;                   // the error's first line, when it failed
};

struct CompileProgress {
  int done = 0;
  int total = 0;
  const CompileOutcome* last = nullptr;
};

// Compiles every config (0 threads: one per core). `progress` is called under a lock after each one.
std::vector<CompileOutcome> compile_all(const std::vector<TileConfig>& configs, int threads = 0,
                                        const std::function<void(const CompileProgress&)>& progress = {});

}  // namespace fa2
