// emit(): the CUDA source of one generated module. It stays tiny on purpose (one include of the family's
// device templates, one type alias holding the config, one extern "C" entry point per kernel) so that a
// kernel's whole identity is readable at a glance and its hash changes only when the config does.
#pragma once

#include <string>

#include "codegen/tile_config.hpp"

namespace fa2 {

// Throws fa2::Error(Stage::Config) with validate()'s reason for a config that cannot be built.
std::string emit(const TileConfig& config);

}  // namespace fa2
