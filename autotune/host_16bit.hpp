// fp16 and bf16 bit patterns read back on the host, for comparing kernel outputs with a reference.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/types.hpp"

namespace fa2 {

// Bit operations only: the tuner's checks decode every output of the timed problem (tens of millions of
// values per candidate), where std::ldexp per fp16 value made fp16 classes tune twice as long as bf16 ones.
inline float decode_16bit(unsigned short bits, DType dtype) {
  const auto as_float = [](std::uint32_t word) {
    float value;
    std::memcpy(&value, &word, sizeof value);
    return value;
  };
  if (dtype == DType::bf16) return as_float(static_cast<std::uint32_t>(bits) << 16);
  const std::uint32_t sign = static_cast<std::uint32_t>(bits >> 15) << 31;
  const std::uint32_t exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  if (exponent == 31) return as_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return as_float(sign | ((exponent + 112) << 23) | (mantissa << 13));  // rebias 15 -> 127
  const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // subnormal: mantissa * 2^-24
  return sign ? -magnitude : magnitude;
}

// Whether a 16-bit value is finite: its exponent field is not all ones.
inline bool is_finite_16bit(unsigned short bits, DType dtype) {
  const unsigned short exponent_mask = dtype == DType::bf16 ? 0x7f80 : 0x7c00;
  return (bits & exponent_mask) != exponent_mask;
}

}  // namespace fa2
