#include "codegen/emit.hpp"

#include <fmt/format.h>

#include "codegen/family.hpp"
#include "common/error.hpp"

namespace fa2 {

std::string emit(const TileConfig& config) {
  if (auto reason = config.validate())
    throw Error(Stage::Config, "emit", fmt::format("config {} is invalid: {}", config.name(), *reason));
  return kernel_family(config.family).emit(config);
}

}  // namespace fa2
