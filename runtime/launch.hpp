// The launch of a loaded forward kernel: grid, block, dynamic shared memory and the by-value params.
#pragma once

#include <cuda.h>

#include "codegen/tile_config.hpp"
#include "fa2jit/fa2jit.hpp"

namespace fa2 {

// Enqueues `function` (compiled from `config`, its dynamic shared memory limit already raised) on
// `stream`. `args` must have passed check_forward_args. Throws fa2::Error(Stage::Launch) on failure.
void launch_forward(CUfunction function, const TileConfig& config, const FwdArgs& args, CUstream stream);

// Raises the function's dynamic shared memory limit to what `config` needs (above the 48 KB default).
void prepare_function(CUfunction function, const TileConfig& config);

}  // namespace fa2
