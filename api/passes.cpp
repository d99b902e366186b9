// forward(), backward() and forward_with_kvcache(): check the arguments, find the kernel through the dispatch table
// (never resolving a new class while the call's stream captures a CUDA graph), launch.
#include "api/dispatcher.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/args_check.hpp"
#include "runtime/launch.hpp"
#include "runtime/params_builder.hpp"

namespace fa2 {

TileConfig forward_config(const FwdArgs& args) {
  check_forward_args(args);
  return dispatch(ProblemShape::of(args), args.tune_policy, args.cache_path).config();
}

void forward(const FwdArgs& args, CUstream_st* stream) {
  check_forward_args(args);
  const LoadedKernel& kernel = dispatch(ProblemShape::of(args), args.tune_policy, args.cache_path, stream);
  launch_forward(kernel.module, args, stream);
}

TileConfig backward_config(const BwdArgs& args) {
  check_backward_args(args);
  return dispatch(ProblemShape::of(args), args.tune_policy, args.cache_path).config();
}

void backward(const BwdArgs& args, CUstream_st* stream) {
  check_backward_args(args);
  const LoadedKernel& kernel = dispatch(ProblemShape::of(args), args.tune_policy, args.cache_path, stream);
  launch_backward(kernel.module, args, stream);
}

std::size_t backward_workspace_bytes(const BwdArgs& args) {
  check_backward_sizes(args);
  return bwd_workspace_layout(args).bytes;
}

TileConfig kvcache_config(const KvcacheArgs& args) {
  check_kvcache_args(args);
  return dispatch(ProblemShape::of(args), args.tune_policy, args.cache_path).config();
}

void forward_with_kvcache(const KvcacheArgs& args, CUstream_st* stream) {
  check_kvcache_args(args);
  const LoadedKernel& kernel = dispatch(ProblemShape::of(args), args.tune_policy, args.cache_path, stream);
  launch_kvcache(kernel.module, args, stream);
}

std::size_t kvcache_workspace_bytes(const KvcacheArgs& args) {
  check_kvcache_args(args);
  const LoadedKernel& kernel = dispatch(ProblemShape::of(args), args.tune_policy, args.cache_path);
  const TileConfig& config = kernel.config();
  const int splits = kvc_splits(args, config.block_m, config.block_n, config.splits, kernel.module.resident_blocks);
  return kvc_workspace_layout(args, splits).bytes;
}

}  // namespace fa2
