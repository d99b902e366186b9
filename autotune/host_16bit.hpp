// fp16 and bf16 bit patterns read back on the host, for comparing kernel outputs with a reference.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/types.hpp"

namespace fa2 {

inline float decode_16bit(unsigned short bits, DType dtype) {
  if (dtype == DType::bf16) {
    const std::uint32_t word = static_cast<std::uint32_t>(bits) << 16;
    float value;
    std::memcpy(&value, &word, sizeof value);
    return value;
  }
  const int sign = bits >> 15, exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  float magnitude;
  if (exponent == 0)
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  else if (exponent == 31)
    magnitude = mantissa ? NAN : INFINITY;
  else
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
  return sign ? -magnitude : magnitude;
}

}  // namespace fa2
