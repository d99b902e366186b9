#include "runtime/launch.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "codegen/snippet_source.hpp"
#include "common/error.hpp"
#include "runtime/driver.hpp"
#include "runtime/params_builder.hpp"
#include "runtime/tma_maps.hpp"
#include "runtime/user_mods_launch.hpp"

namespace fa2 {

namespace {

struct Grid {
  unsigned x, y, z;
};

// kAfterPrevious: the kernel may start while the stream's previous kernel finishes (programmatic dependent
// launch, sm_90): its launch and block scheduling overlap that kernel's tail, and the kernel itself waits for
// the previous grid's memory before it reads it (wait_for_prerequisite_grids in the templates). Before sm_90
// it is an ordinary launch.
enum class Order { kAfterCompletion, kAfterPrevious };

// `kernel_args` points at each kernel parameter in order, as cuLaunchKernel takes them.
void launch_with_args(CUfunction function, const char* what, const TileConfig& config, Grid grid, unsigned threads,
                      unsigned smem, void** kernel_args, CUstream stream, Order order) {
  CUresult result;
  // FA2JIT_PDL=0 launches every kernel after its predecessor completes: the A/B switch of the benchmarks.
  static const bool programmatic_allowed = [] {
    const char* value = std::getenv("FA2JIT_PDL");
    return value == nullptr || std::string(value) != "0";
  }();
  if (order == Order::kAfterPrevious && config.arch == Arch::sm_90a && programmatic_allowed) {
    CUlaunchAttribute attribute{};
    attribute.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attribute.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig launch_config{};
    launch_config.gridDimX = grid.x;
    launch_config.gridDimY = grid.y;
    launch_config.gridDimZ = grid.z;
    launch_config.blockDimX = threads;
    launch_config.blockDimY = launch_config.blockDimZ = 1;
    launch_config.sharedMemBytes = smem;
    launch_config.hStream = stream;
    launch_config.attrs = &attribute;
    launch_config.numAttrs = 1;
    result = driver::api().LaunchKernelEx(&launch_config, function, kernel_args, nullptr);
  } else {
    result = driver::api().LaunchKernel(function, grid.x, grid.y, grid.z, threads, 1, 1, smem, stream, kernel_args,
                                        nullptr);
  }
  if (result != CUDA_SUCCESS)
    throw Error(Stage::Launch, "cuLaunchKernel",
                fmt::format("{}{} on grid {}x{}x{}: {}", config.name(), what, grid.x, grid.y, grid.z,
                            driver::error_text(result)));
}

// The family's kernels whose one parameter is the params struct.
template <class Params>
void launch(CUfunction function, const char* what, const TileConfig& config, Grid grid, unsigned threads,
            unsigned smem, Params& params, CUstream stream, Order order = Order::kAfterCompletion) {
  void* kernel_args[] = {&params};
  launch_with_args(function, what, config, grid, threads, smem, kernel_args, stream, order);
}

unsigned blocks(long long count, int per_block) { return static_cast<unsigned>((count + per_block - 1) / per_block); }

}  // namespace

void launch_forward(const KernelModule& kernel, const FwdArgs& args, CUstream stream) {
  const TileConfig& config = kernel.config;
  FwdParams params = make_fwd_params(args);
  const Grid grid{blocks(args.seqlen_q, config.block_m), static_cast<unsigned>(args.heads_q),
                  static_cast<unsigned>(args.batch)};
  if (is_tma_ws(config.scheme)) {
    // The same grid and params, then the tensor maps of Q, K and V (the entry point's signature, emitted by
    // codegen/fwd_family.cpp). cuLaunchKernel copies every parameter at the call, so the maps may live here.
    FwdTensorMaps maps = make_fwd_tensor_maps(args, config);
    void* kernel_args[] = {&params, &maps.q, &maps.k, &maps.v};
    launch_with_args(kernel.main(), "", config, grid, config.threads(), config.smem_bytes(), kernel_args, stream,
                     Order::kAfterCompletion);
    return;
  }
  if (config.variant.any()) {
    // The variants' values follow the params (codegen/variant_source.hpp); softcap rewrites the scale in params.
    VariantParams variant = make_variant_params(args.variant, args.causal, args.seqlen_q, args.seqlen_k,
                                                params.softmax_scale, params.softmax_scale_log2);
    void* kernel_args[] = {&params, &variant};
    StreamScratch tile_lists;
    if (uses_tile_lists(config)) {
      // mask_mod's tile lists, over the same grid, read by the main kernel in stream order.
      const TileListShape shape = fwd_tile_list_shape(config, args);
      tile_lists.allocate(shape.bytes(), stream, "forward tile lists");
      variant.user.tile_lists = reinterpret_cast<const int*>(tile_lists.address());
      variant.user.list_stride = shape.stride;
      launch_with_args(kernel.functions.back(), "_bmask", config, grid, config.threads(), 0, kernel_args, stream,
                       Order::kAfterCompletion);
    }
    launch_with_args(kernel.main(), "", config, grid, config.threads(), config.smem_bytes(), kernel_args, stream,
                     Order::kAfterCompletion);
    return;
  }
  launch(kernel.main(), "", config, grid, config.threads(), config.smem_bytes(), params, stream);
}

void launch_backward(const KernelModule& kernel, const BwdArgs& args, CUstream stream) {
  const TileConfig& config = kernel.config;
  const driver::Api& cu = driver::api();
  void* workspace = args.workspace;
  CUdeviceptr allocated = 0;
  if (workspace == nullptr) {
    driver::check(cu.MemAllocAsync(&allocated, bwd_workspace_layout(args).bytes, stream),
                  "cuMemAllocAsync(backward workspace)");
    workspace = reinterpret_cast<void*>(allocated);
  }
  BwdParams params = make_bwd_params(args, workspace, config.block_n, kernel.resident_blocks);
  // Only the main kernel takes the variants' values; the dQ conversion scales by params.softmax_scale, which
  // stays the call's scale with softcap (make_bwd_variant_params says why).
  VariantParams variant{};
  if (config.variant.any()) variant = make_bwd_variant_params(args, params);
  const Grid rows{blocks(args.seqlen_q, kBwdRowsPerBlock), static_cast<unsigned>(args.heads_q),
                  static_cast<unsigned>(args.batch)};
  // One dimension, in groups of pairs with the key block slowest inside (templates/fa2/bwd/key_block.cuh).
  const long long key_blocks =
      static_cast<long long>(blocks(args.seqlen_k, config.block_n)) * args.batch * args.heads_kv;
  if (key_blocks > 0x7fffffffll)
    throw Error(Stage::Launch, "backward",
                fmt::format("{} key blocks of {} keys x batch {} x heads_kv {} exceed the 2^31 - 1 blocks of a grid",
                            blocks(args.seqlen_k, config.block_n), config.block_n, args.batch, args.heads_kv));
  const Grid keys{static_cast<unsigned>(key_blocks), 1, 1};
  StreamScratch tile_lists;
  try {
    launch(kernel.functions.at(1), "_pre", config, rows, kBwdRowThreads, 0, params, stream);
    if (config.variant.any()) {
      void* kernel_args[] = {&params, &variant};
      if (uses_tile_lists(config)) {
        // mask_mod's tile lists, over the main kernel's grid (the same params, so the same block order).
        const TileListShape shape = bwd_tile_list_shape(config, args, key_blocks);
        tile_lists.allocate(shape.bytes(), stream, "backward tile lists");
        variant.user.tile_lists = reinterpret_cast<const int*>(tile_lists.address());
        variant.user.list_stride = shape.stride;
        launch_with_args(kernel.functions.back(), "_bmask", config, keys, config.threads(), 0, kernel_args, stream,
                         Order::kAfterCompletion);
      }
      launch_with_args(kernel.main(), "", config, keys, config.threads(), config.smem_bytes(), kernel_args, stream,
                       Order::kAfterCompletion);
    } else {
      launch(kernel.main(), "", config, keys, config.threads(), config.smem_bytes(), params, stream);
    }
    launch(kernel.functions.at(2), "_post", config, rows, kBwdRowThreads, 0, params, stream);
  } catch (const Error&) {
    if (allocated != 0) cu.MemFreeAsync(allocated, stream);  // the launch error is what the caller needs
    throw;
  }
  if (allocated != 0) driver::check(cu.MemFreeAsync(allocated, stream), "cuMemFreeAsync(backward workspace)");
}

void launch_kvcache(const KernelModule& kernel, const KvcacheArgs& args, CUstream stream) {
  const TileConfig& config = kernel.config;
  const driver::Api& cu = driver::api();
  const int splits = kvc_splits(args, config.block_m, config.block_n, config.splits, kernel.resident_blocks);
  const KvcWorkspaceLayout layout = kvc_workspace_layout(args, splits);
  void* workspace = args.workspace;
  CUdeviceptr allocated = 0;
  if (layout.bytes > 0) {
    if (workspace != nullptr && args.workspace_bytes < layout.bytes)
      throw Error(Stage::Argument, "forward_with_kvcache",
                  fmt::format("workspace_bytes {} is smaller than the {} bytes {} key splits need "
                              "(kvcache_workspace_bytes); pass a larger workspace, none, or num_splits 1",
                              args.workspace_bytes, layout.bytes, splits));
    if (workspace == nullptr) {
      driver::check(cu.MemAllocAsync(&allocated, layout.bytes, stream), "cuMemAllocAsync(kvcache workspace)");
      workspace = reinterpret_cast<void*>(allocated);
    }
  }
  KvcParams params = make_kvc_params(args, workspace, splits);
  const long long packed_rows = static_cast<long long>(args.seqlen_q) * (args.heads_q / args.heads_kv);
  const long long row_blocks = blocks(packed_rows, config.block_m) * static_cast<long long>(splits);
  if (row_blocks > 0x7fffffffll)
    throw Error(Stage::Launch, "forward_with_kvcache",
                fmt::format("{} row blocks x {} splits exceed the 2^31 - 1 blocks of a grid's x", row_blocks / splits,
                            splits));
  const Grid grid{static_cast<unsigned>(row_blocks), static_cast<unsigned>(args.heads_kv),
                  static_cast<unsigned>(args.batch)};
  const long long rows = static_cast<long long>(args.batch) * args.heads_q * args.seqlen_q;
  if (splits > 1 && blocks(rows, kKvcCombineWarps) > 0x7fffffffll)
    throw Error(Stage::Launch, "forward_with_kvcache",
                fmt::format("{} query rows exceed the combine kernel's grid: pass num_splits 1", rows));
  const long long append_chunks =
      static_cast<long long>(args.batch) * params.seqlen_new * args.heads_kv * (args.head_dim / 8);
  if (blocks(append_chunks, kKvcAppendThreads) > 0x7fffffffll)
    throw Error(Stage::Launch, "forward_with_kvcache",
                fmt::format("{} new rows of {} KV heads exceed the append kernel's grid",
                            static_cast<long long>(args.batch) * params.seqlen_new, args.heads_kv));
  try {
    // The new keys land in the cache before the attention reads it (stream order).
    if (append_chunks > 0)
      launch(kernel.functions.at(2), "_append", config, Grid{blocks(append_chunks, kKvcAppendThreads), 1, 1},
             kKvcAppendThreads, 0, params, stream);
    launch(kernel.main(), "", config, grid, config.threads(), config.smem_bytes(), params, stream,
           append_chunks > 0 ? Order::kAfterPrevious : Order::kAfterCompletion);
    if (splits > 1)
      launch(kernel.functions.at(1), "_combine", config, Grid{blocks(rows, kKvcCombineWarps), 1, 1},
             kKvcCombineWarps * 32, 0, params, stream, Order::kAfterPrevious);
  } catch (const Error&) {
    if (allocated != 0) cu.MemFreeAsync(allocated, stream);
    throw;
  }
  if (allocated != 0) driver::check(cu.MemFreeAsync(allocated, stream), "cuMemFreeAsync(kvcache workspace)");
}

}  // namespace fa2
