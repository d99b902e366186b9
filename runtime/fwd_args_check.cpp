#include "runtime/fwd_args_check.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace fa2 {

namespace {

[[noreturn]] void reject(const std::string& message) { throw Error(Stage::Argument, "forward", message); }

// Q, K, V and O move as 16-byte vectors; the LSE is written one float at a time.
void check_pointer(const void* pointer, const char* name, bool required, int alignment) {
  if (pointer == nullptr) {
    if (required) reject(fmt::format("{} is a null pointer", name));
    return;
  }
  if (reinterpret_cast<std::uintptr_t>(pointer) % alignment != 0)
    reject(fmt::format("{} = {} is not {}-byte aligned", name, pointer, alignment));
}

// Tile rows are addressed with 32-bit offsets inside the kernel: up to 256 rows * row stride must fit.
constexpr long long kMaxRowStride = (1ll << 31) / 256;

void check_strides(const Strides& strides, const char* name, int head_dim) {
  const long long values[] = {strides.batch, strides.head, strides.row};
  const char* parts[] = {"batch", "head", "row"};
  for (int i = 0; i < 3; ++i) {
    if (values[i] < 0) reject(fmt::format("{} {} stride {} is negative", name, parts[i], values[i]));
    if (values[i] % 8 != 0)
      reject(fmt::format("{} {} stride {} is not a multiple of 8 elements (rows must start 16-byte aligned)",
                         name, parts[i], values[i]));
  }
  if (strides.row < head_dim)
    reject(fmt::format("{} row stride {} is smaller than head_dim {}: rows would overlap", name, strides.row,
                       head_dim));
  if (strides.row > kMaxRowStride)
    reject(fmt::format("{} row stride {} exceeds {} elements", name, strides.row, kMaxRowStride));
}

}  // namespace

void check_forward_args(const FwdArgs& args) {
  check_pointer(args.q, "q", true, 16);
  check_pointer(args.k, "k", true, 16);
  check_pointer(args.v, "v", true, 16);
  check_pointer(args.o, "o", true, 16);
  check_pointer(args.lse, "lse", false, 4);

  if (!is_supported_head_dim(args.head_dim))
    reject(fmt::format("head_dim {} is not supported: use a multiple of 32 from 32 to 256", args.head_dim));
  if (args.batch < 1 || args.batch > 65535) reject(fmt::format("batch {} must be in [1, 65535]", args.batch));
  if (args.heads_q < 1 || args.heads_q > 65535)
    reject(fmt::format("heads_q {} must be in [1, 65535]", args.heads_q));
  if (args.heads_kv < 1) reject(fmt::format("heads_kv {} must be at least 1", args.heads_kv));
  if (args.heads_q % args.heads_kv != 0)
    reject(fmt::format("heads_q {} is not a multiple of heads_kv {}", args.heads_q, args.heads_kv));
  // Row indices are ints, and the kernel forms m0 + block_m + seqlen_k - seqlen_q (the causal diagonal)
  // and seqlen + block_m - 1 (the block count): 2^30 keeps every such sum inside int.
  constexpr int kMaxSeqlen = 1 << 30;
  if (args.seqlen_q < 1 || args.seqlen_q > kMaxSeqlen)
    reject(fmt::format("seqlen_q {} must be in [1, {}]", args.seqlen_q, kMaxSeqlen));
  if (args.seqlen_k < 1 || args.seqlen_k > kMaxSeqlen)
    reject(fmt::format("seqlen_k {} must be in [1, {}]", args.seqlen_k, kMaxSeqlen));
  if (args.softmax_scale && !(std::isfinite(*args.softmax_scale) && *args.softmax_scale > 0.f))
    reject(fmt::format("softmax_scale {} must be finite and positive", *args.softmax_scale));

  check_strides(args.q_strides, "q", args.head_dim);
  check_strides(args.k_strides, "k", args.head_dim);
  check_strides(args.v_strides, "v", args.head_dim);
  check_strides(args.o_strides, "o", args.head_dim);
}

}  // namespace fa2
