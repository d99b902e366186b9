// forward(): argument checks, config choice, the kernel memo, and the launch.
#include <fmt/format.h>

#include "fa2jit/fa2jit.hpp"
#include "runtime/driver.hpp"
#include "runtime/fwd_args_check.hpp"
#include "runtime/kernel_memo.hpp"
#include "runtime/launch.hpp"

namespace fa2 {

Strides bshd_strides(int seqlen, int heads, int head_dim) {
  return {static_cast<long long>(seqlen) * heads * head_dim, head_dim, static_cast<long long>(heads) * head_dim};
}

Strides bhsd_strides(int seqlen, int heads, int head_dim) {
  return {static_cast<long long>(heads) * seqlen * head_dim, static_cast<long long>(seqlen) * head_dim, head_dim};
}

namespace {

CUcontext current_context() {
  driver::ensure_context();
  CUcontext context = nullptr;
  driver::check(driver::api().CtxGetCurrent(&context), "cuCtxGetCurrent");
  return context;
}

Arch arch_of(const ContextDevice& device) {
  if (!device.arch)
    throw Error(Stage::Driver, "forward",
                fmt::format("device '{}' has compute capability {}.{}; fa2jit generates kernels for sm_80, sm_86, "
                            "sm_87, sm_89 and sm_90 devices",
                            device.info.name, device.info.cc_major, device.info.cc_minor));
  return *device.arch;
}

// The config forward() uses for `args` in `context`.
TileConfig config_for(const FwdArgs& args, CUcontext context) {
  return default_config(args.head_dim, args.dtype, args.causal, arch_of(KernelMemo::instance().device(context)));
}

}  // namespace

TileConfig forward_config(const FwdArgs& args) {
  check_forward_args(args);
  return config_for(args, current_context());
}

void forward(const FwdArgs& args, CUstream_st* stream) {
  check_forward_args(args);
  const CUcontext context = current_context();
  const TileConfig config = config_for(args, context);
  const LoadedKernel& kernel = KernelMemo::instance().kernel(config, context);

  launch_forward(kernel.function, config, args, stream);
}

RuntimeStats runtime_stats() { return KernelMemo::instance().stats(); }

}  // namespace fa2
