// A config's cubin loaded into the current context, with every kernel of its module looked up and
// prepared for launch. What the launchers take, whoever compiled or cached the cubin.
#pragma once

#include <cuda.h>

#include <vector>

#include "codegen/tile_config.hpp"
#include "runtime/module.hpp"

namespace fa2 {

struct KernelModule {
  TileConfig config;
  Module module;
  std::vector<CUfunction> functions;  // config.entry_points(), in order: the main kernel first
  int resident_blocks = 0;            // main kernel blocks resident on the whole device at once (SMs x per SM)
  int sm_count = 0;                   // SMs of the device the module was loaded on

  // Loads `cubin` (compiled from `config`), looks up its entry points and raises the main kernel's dynamic
  // shared memory limit to what the config needs. Throws fa2::Error(Stage::Driver) on any failure.
  static KernelModule load(const TileConfig& config, const std::vector<char>& cubin);

  CUfunction main() const { return functions.front(); }
};

}  // namespace fa2
