// TileConfig: the single source of a generated kernel's parameters. Everything the generator, the
// compiler, the launcher and the tuner need is either a field here or derived here, in one place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fa2 {

enum class DType { fp16, bf16 };
enum class Arch { sm_80, sm_86, sm_89, sm_90a };
// mma_sync: FA2 forward on mma.sync m16n8k16 + ldmatrix + cp.async (sm_80 and later).
// wgmma: the same algorithm on Hopper's warpgroup MMA (sm_90a only), one warpgroup per 64 query rows.
// wgmma_overlap: wgmma with the softmax of one key tile overlapping the P V product of the previous one.
enum class Scheme { mma_sync, wgmma, wgmma_overlap };
bool is_wgmma(Scheme scheme);  // wgmma or wgmma_overlap

const char* dtype_name(DType dtype);        // "fp16" | "bf16"
const char* arch_name(Arch arch);           // "sm_80" ...
const char* scheme_name(Scheme scheme);     // "mma_sync" | "wgmma" | "wgmma_overlap"
std::optional<DType> parse_dtype(const std::string& text);
std::optional<Arch> parse_arch(const std::string& text);
std::optional<Scheme> parse_scheme(const std::string& text);
// The arch of a device from its compute capability (e.g. 9.0 -> sm_90a), if fa2jit targets it.
std::optional<Arch> arch_for_compute_capability(int major, int minor);
int compute_capability(Arch arch);          // 80, 86, 89, 90
int max_smem_per_block(Arch arch);          // opt-in dynamic shared memory limit, bytes
int smem_per_sm(Arch arch);                 // shared memory of one SM, bytes (1 KB of it reserved per block)
int max_threads_per_sm(Arch arch);

struct TileConfig {
  int head_dim = 128;
  DType dtype = DType::bf16;
  bool causal = false;
  int block_m = 128;  // query rows per thread block (wgmma: 16 per warp, 64 per warpgroup)
  int block_n = 64;   // key/value rows per tile
  int warps = 4;      // query rows are split across warps
  int stages = 2;     // K/V tiles resident in shared memory (1 = no prefetch)
  Arch arch = Arch::sm_90a;
  Scheme scheme = Scheme::mma_sync;
  // Blocks the kernel is compiled to keep resident per SM (__launch_bounds__'s minimum): 2 caps registers
  // at 65536 / (2 * threads), so short sequences get a second block to hide each block's prologue and
  // epilogue behind. Must fit the SM's threads, shared memory and registers together.
  int blocks_per_sm = 1;

  // Derived values.
  int threads() const { return warps * 32; }
  int rows_per_warp() const { return block_m / warps; }
  int m_tiles_per_warp() const { return rows_per_warp() / 16; }  // 16-row mma tiles per warp
  int smem_bytes() const;              // dynamic shared memory of one block
  int accumulator_registers() const;   // fp32 O + S registers per thread, a spill predictor
  int register_cap() const;            // registers per thread ptxas may use with blocks_per_sm resident

  // Why this config cannot be built, or nullopt when it can.
  std::optional<std::string> validate() const;

  // Stable readable name, also the kernel's symbol: fa2_fwd_mma_d128_bf16_causal_m128n64w4s2_sm90a
  // (fa2_fwd_wgmma_... and fa2_fwd_wgmmao_... for the wgmma schemes; ...s2b2_... for 2 blocks per SM).
  std::string name() const;
  // 16 hex digits over every field; stable across runs and machines.
  std::string hash() const;

  bool operator==(const TileConfig& other) const;
  bool operator!=(const TileConfig& other) const { return !(*this == other); }
};

// Every head dim fa2jit supports: the multiples of 32 up to 256.
bool is_supported_head_dim(int head_dim);

// The built-in config per (head_dim, dtype, causal, arch), used until the tuner has chosen one.
TileConfig default_config(int head_dim, DType dtype, bool causal, Arch arch);

}  // namespace fa2
