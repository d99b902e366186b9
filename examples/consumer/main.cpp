// A C++ application of fa2jit that runs without a GPU: it sizes the backward's scratch for a model's
// attention, names the built-in kernel config, and shows how a bad argument is reported. On a GPU
// machine the same program would fill FwdArgs with device pointers and call fa2::forward.
#include <fa2jit/fa2jit.h>  // fa2_version(): the C ABI, usable from C++ too
#include <fa2jit/fa2jit.hpp>

#include <cstdio>

namespace {

// One llama3-8b layer's attention over a 4096-token sequence, BSHD and contiguous.
fa2::BwdArgs llama_layer() {
  fa2::BwdArgs args;
  args.dtype = fa2::DType::bf16;
  args.batch = 1;
  args.heads_q = 32;
  args.heads_kv = 8;
  args.seqlen_q = args.seqlen_k = 4096;
  args.head_dim = 128;
  args.q_strides = args.o_strides = args.dout_strides = args.dq_strides =
      fa2::bshd_strides(args.seqlen_q, args.heads_q, args.head_dim);
  args.k_strides = args.v_strides = args.dk_strides = args.dv_strides =
      fa2::bshd_strides(args.seqlen_k, args.heads_kv, args.head_dim);
  args.causal = true;
  return args;
}

}  // namespace

int main() {
  std::printf("fa2jit %s (C ABI %d)\n", fa2_version(), fa2_abi_version());

  const fa2::TileConfig config;  // the forward's fields as TileConfig defaults them
  const auto why_not = config.validate();
  std::printf("config %s: %s\n", config.name().c_str(), why_not ? why_not->c_str() : "valid");

  fa2::BwdArgs args = llama_layer();
  std::printf("backward scratch for llama3-8b at 4096 tokens: %zu bytes\n", fa2::backward_workspace_bytes(args));

  // A head dim the kernels do not support: the library says so before it needs a GPU.
  args.head_dim = 100;
  try {
    fa2::backward_workspace_bytes(args);
  } catch (const fa2::Error& error) {
    std::printf("head_dim 100 refused (%s stage): %s\n", fa2::stage_name(error.stage()), error.message().c_str());
    return error.stage() == fa2::Stage::Argument ? 0 : 1;
  }
  std::printf("head_dim 100 was accepted, but no kernel supports it\n");
  return 1;
}
