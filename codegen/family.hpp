// The rules of each kernel family over TileConfig: what it adds to validation, how large its blocks are,
// which kernels its module holds, its built-in configs and its generated source. TileConfig and emit()
// reach family-specific behaviour only through kernel_family(); a new family is one entry in the table of
// family.cpp plus the file that defines its rules (fwd_family.cpp, bwd_family.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "codegen/tile_config.hpp"

namespace fa2 {

struct KernelFamily {
  Family family;
  // Why a config of this family cannot be built (after the checks common to every family), or nullopt.
  std::optional<std::string> (*validate)(const TileConfig& config);
  int (*smem_bytes)(const TileConfig& config);
  int (*accumulator_registers)(const TileConfig& config);
  // Suffixes of the helper kernels in the module, appended to the config's name (the main kernel's).
  std::vector<std::string> helper_suffixes;
  // The generated source of a config that validates.
  std::string (*emit)(const TileConfig& config);
  // packed_rows: the query rows one KV head brings to a block (seqlen_q x query heads per KV head), 0 when
  // unknown; only the kvc family reads it (decode tiles vs chunked-prefill tiles). The variants may change the
  // tiles (the forward's need registers the plain default does not leave); the caller sets config.variant.
  TileConfig (*default_config)(int head_dim, DType dtype, bool causal, Arch arch, bool deterministic,
                               int packed_rows, Variant variant);
};

const KernelFamily& kernel_family(Family family);

// The family tables, defined next to their rules.
const KernelFamily& forward_family();
const KernelFamily& backward_family();
const KernelFamily& kvcache_family();

}  // namespace fa2
