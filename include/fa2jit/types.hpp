// The element types and GPU architectures of the public API (argument structs, TileConfig), with their
// names. What fa2jit knows of each arch (shared memory, threads) is internal: common/types.hpp.
#pragma once

#include <optional>
#include <string>

namespace fa2 {

enum class DType { fp16, bf16 };
enum class Arch { sm_80, sm_86, sm_89, sm_90a };

const char* dtype_name(DType dtype);  // "fp16" | "bf16"
const char* arch_name(Arch arch);     // "sm_80" ...
std::optional<DType> parse_dtype(const std::string& text);
std::optional<Arch> parse_arch(const std::string& text);

}  // namespace fa2
