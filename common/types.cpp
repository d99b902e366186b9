#include "common/types.hpp"

namespace fa2 {

const char* dtype_name(DType dtype) { return dtype == DType::fp16 ? "fp16" : "bf16"; }

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::sm_80: return "sm_80";
    case Arch::sm_86: return "sm_86";
    case Arch::sm_89: return "sm_89";
    case Arch::sm_90a: return "sm_90a";
  }
  return "unknown";
}

std::optional<DType> parse_dtype(const std::string& text) {
  if (text == "fp16" || text == "f16" || text == "half") return DType::fp16;
  if (text == "bf16" || text == "bfloat16") return DType::bf16;
  return std::nullopt;
}

std::optional<Arch> parse_arch(const std::string& text) {
  for (Arch arch : {Arch::sm_80, Arch::sm_86, Arch::sm_89, Arch::sm_90a})
    if (text == arch_name(arch)) return arch;
  return std::nullopt;
}

std::optional<Arch> arch_for_compute_capability(int major, int minor) {
  // Minor versions are single digits; without this check (7, 16) would read as 8.6. Bounding the major
  // keeps major * 10 from overflowing on nonsense input (found by fuzz/fuzz_config).
  if (minor < 0 || minor > 9 || major < 0 || major > 99) return std::nullopt;
  const int cc = major * 10 + minor;
  if (cc == 80 || cc == 87) return Arch::sm_80;
  if (cc == 86) return Arch::sm_86;
  if (cc == 89) return Arch::sm_89;
  if (cc == 90) return Arch::sm_90a;
  return std::nullopt;
}

int compute_capability(Arch arch) {
  switch (arch) {
    case Arch::sm_80: return 80;
    case Arch::sm_86: return 86;
    case Arch::sm_89: return 89;
    case Arch::sm_90a: return 90;
  }
  return 0;
}

int max_smem_per_block(Arch arch) {
  // Opt-in dynamic shared memory per block (CUDA programming guide, compute capability tables).
  switch (arch) {
    case Arch::sm_80: return 163 * 1024;
    case Arch::sm_86:
    case Arch::sm_89: return 99 * 1024;
    case Arch::sm_90a: return 227 * 1024;
  }
  return 48 * 1024;
}

int smem_per_sm(Arch arch) {
  switch (arch) {
    case Arch::sm_80: return 164 * 1024;
    case Arch::sm_86:
    case Arch::sm_89: return 100 * 1024;
    case Arch::sm_90a: return 228 * 1024;
  }
  return 64 * 1024;
}

int max_threads_per_sm(Arch arch) { return arch == Arch::sm_86 || arch == Arch::sm_89 ? 1536 : 2048; }

bool is_supported_head_dim(int head_dim) { return head_dim >= 32 && head_dim <= 256 && head_dim % 32 == 0; }

}  // namespace fa2
