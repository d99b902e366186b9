#include "runtime/tma_maps.hpp"

#include <fmt/format.h>

#include <cstdint>

#include "common/error.hpp"
#include "fa2/tma_descriptor.h"
#include "runtime/driver.hpp"

namespace fa2 {

// The kernel declares its map parameters with the opaque type: the driver copies sizeof(CUtensorMap) bytes into
// each, so the sizes must agree. The alignment may differ (CUDA 13's header says 128, the driver asks for 64,
// which the kernel's parameters keep).
static_assert(sizeof(CUtensorMap) == sizeof(TmaDescriptor), "fa2/tma_descriptor.h must match CUtensorMap's size");
static_assert(alignof(CUtensorMap) % alignof(TmaDescriptor) == 0 && alignof(TmaDescriptor) % 64 == 0,
              "tensor maps are 64-byte aligned");

namespace {

constexpr int kElementBytes = 2;
constexpr int kPageColumns = 64;  // 128 bytes of 16-bit elements: the 128-byte swizzle span
constexpr std::uint64_t kMaxStrideBytes = 1ull << 40;

[[noreturn]] void reject(const char* name, const std::string& rule) {
  throw Error(Stage::Argument, "forward",
              fmt::format("{}: {}; scheme tma_ws loads through TMA tensor maps, which cannot describe this layout "
                          "(use another scheme)",
                          name, rule));
}

std::string describe(const TmaTensorShape& shape) {
  return fmt::format("dims {{{}, {}, {}, {}}}, strides {{{}, {}, {}}} bytes, box {{{}, {}, {}, {}}}", shape.dims[0],
                     shape.dims[1], shape.dims[2], shape.dims[3], shape.strides[0], shape.strides[1],
                     shape.strides[2], shape.box[0], shape.box[1], shape.box[2], shape.box[3]);
}

}  // namespace

TmaTensorShape tma_tensor_shape(const char* name, const void* base, int batch, int seqlen, int heads, int head_dim,
                                const Strides& strides, int box_rows) {
  if (reinterpret_cast<std::uintptr_t>(base) % 16 != 0)
    reject(name, fmt::format("its base address {} is not 16-byte aligned", base));
  if (head_dim % kPageColumns != 0)
    reject(name, fmt::format("head_dim {} is not a multiple of {} columns (whole 128-byte swizzle pages)", head_dim,
                             kPageColumns));
  if (box_rows < 1 || box_rows > 256) reject(name, fmt::format("a box of {} rows is outside [1, 256]", box_rows));

  TmaTensorShape shape;
  shape.dims = {static_cast<std::uint64_t>(head_dim), static_cast<std::uint64_t>(seqlen),
                static_cast<std::uint64_t>(heads), static_cast<std::uint64_t>(batch)};
  shape.box = {static_cast<std::uint32_t>(kPageColumns), static_cast<std::uint32_t>(box_rows), 1, 1};
  const long long element_strides[3] = {strides.row, strides.head, strides.batch};
  const char* stride_names[3] = {"row", "head", "batch"};
  // The packed stride a dimension of size 1 gets: the extent of everything inside it.
  std::uint64_t packed = static_cast<std::uint64_t>(head_dim) * kElementBytes;
  for (int i = 0; i < 3; ++i) {
    const std::uint64_t extent = shape.dims[i + 1];
    if (extent == 1) {
      shape.strides[i] = packed;
    } else {
      const long long element_stride = element_strides[i];
      if (element_stride <= 0)
        reject(name, fmt::format("its {} stride is {} over {} indices (TMA strides are positive)", stride_names[i],
                                 element_stride, extent));
      const std::uint64_t bytes = static_cast<std::uint64_t>(element_stride) * kElementBytes;
      if (bytes % 16 != 0)
        reject(name, fmt::format("its {} stride of {} bytes is not a multiple of 16", stride_names[i], bytes));
      if (bytes >= kMaxStrideBytes)
        reject(name, fmt::format("its {} stride of {} bytes is not below 2^40", stride_names[i], bytes));
      shape.strides[i] = bytes;
    }
    packed = shape.strides[i] * extent;
  }
  return shape;
}

FwdTensorMaps make_fwd_tensor_maps(const FwdArgs& args, const TileConfig& config) {
  const CUtensorMapDataType type =
      args.dtype == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  auto encode = [&](CUtensorMap& map, const char* name, const void* base, int seqlen, int heads,
                    const Strides& strides, int box_rows) {
    const TmaTensorShape shape =
        tma_tensor_shape(name, base, args.batch, seqlen, heads, args.head_dim, strides, box_rows);
    const std::array<std::uint32_t, 4> element_strides{1, 1, 1, 1};
    // L2 promotion to 256 B: each box row is 128 bytes of a row whose neighbours in the head dim the next
    // page's box reads right after.
    const CUresult result = driver::api().TensorMapEncodeTiled(
        &map, type, 4, const_cast<void*>(base), shape.dims.data(), shape.strides.data(), shape.box.data(),
        element_strides.data(), CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (result != CUDA_SUCCESS)
      throw Error(Stage::Launch, "cuTensorMapEncodeTiled",
                  fmt::format("{} for {}: the map of {} ({}) at {}: {}", config.name(), "forward", name,
                              describe(shape), base, driver::error_text(result)));
  };
  FwdTensorMaps maps{};
  encode(maps.q, "q", args.q, args.seqlen_q, args.heads_q, args.q_strides, config.block_m);
  encode(maps.k, "k", args.k, args.seqlen_k, args.heads_kv, args.k_strides, config.block_n);
  encode(maps.v, "v", args.v, args.seqlen_k, args.heads_kv, args.v_strides, config.block_n);
  return maps;
}

}  // namespace fa2
