// The TMA tensor maps of the warp-specialized forward (scheme tma_ws): one per Q, K and V, passed to the
// kernel as `const __grid_constant__` parameters (templates/fa2/tma.cuh). Each map is 4-D, innermost first
// (head dim, sequence, heads, batch) with the tensor's real strides, so a box that runs past the end of a
// sequence is zero-filled by the hardware instead of reading the next head's or batch's rows; the box is one
// 128-byte swizzle page (64 columns) by a tile's rows, the layout of templates/fa2/smem_tile.cuh.
#pragma once

#include <cuda.h>

#include <array>
#include <cstdint>

#include "codegen/tile_config.hpp"
#include "common/attention_args.hpp"

namespace fa2 {

// What cuTensorMapEncodeTiled is given for one tensor, besides its base address and element type.
struct TmaTensorShape {
  std::array<std::uint64_t, 4> dims{};     // elements: head_dim, seqlen, heads, batch
  std::array<std::uint64_t, 3> strides{};  // bytes between consecutive indices of dims 1, 2 and 3
  std::array<std::uint32_t, 4> box{};      // elements per load: 64 columns, `box_rows` rows, one head, one batch
};

// The map shape of the 16-bit [batch, seqlen, heads, head_dim] tensor `name` at `base` with element strides
// `strides`, loaded `box_rows` rows at a time. A dimension of size 1 is never stepped over, so its stride
// (which callers may leave 0) is replaced by a packed one. Throws fa2::Error(Stage::Argument, "forward") naming
// the tensor and the rule when TMA cannot describe it: a base or stride not a multiple of 16 bytes, a stride
// of 0 (a broadcast) or of 2^40 bytes or more, a head dim that is not whole 64-column pages, a box over 256
// rows.
TmaTensorShape tma_tensor_shape(const char* name, const void* base, int batch, int seqlen, int heads, int head_dim,
                                const Strides& strides, int box_rows);

struct FwdTensorMaps {
  CUtensorMap q, k, v;
};

// Encodes the maps of `args` (checked by check_forward_args) for `config`'s tiles through the driver: Q boxes
// of block_m rows, K and V boxes of block_n rows, 128-byte swizzle, zero fill. Throws fa2::Error(Stage::Argument)
// as tma_tensor_shape does, or fa2::Error(Stage::Launch, "cuTensorMapEncodeTiled") naming the tensor and its
// shape when the driver refuses a map.
FwdTensorMaps make_fwd_tensor_maps(const FwdArgs& args, const TileConfig& config);

}  // namespace fa2
