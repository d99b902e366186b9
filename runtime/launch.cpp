#include "runtime/launch.hpp"

#include <fmt/format.h>

#include "runtime/driver.hpp"
#include "runtime/fwd_params_builder.hpp"

namespace fa2 {

void launch_forward(CUfunction function, const TileConfig& config, const FwdArgs& args, CUstream stream) {
  FwdParams params = make_fwd_params(args);
  void* kernel_args[] = {&params};
  const unsigned grid_x = static_cast<unsigned>((args.seqlen_q + config.block_m - 1) / config.block_m);
  const CUresult result = driver::api().LaunchKernel(
      function, grid_x, static_cast<unsigned>(args.heads_q), static_cast<unsigned>(args.batch),
      static_cast<unsigned>(config.threads()), 1, 1, static_cast<unsigned>(config.smem_bytes()), stream, kernel_args,
      nullptr);
  if (result != CUDA_SUCCESS)
    throw Error(Stage::Launch, "cuLaunchKernel",
                fmt::format("{} on grid {}x{}x{}: {}", config.name(), grid_x, args.heads_q, args.batch,
                            driver::error_text(result)));
}

void prepare_function(CUfunction function, const TileConfig& config) {
  driver::check(
      driver::api().FuncSetAttribute(function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, config.smem_bytes()),
      "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
}

}  // namespace fa2
