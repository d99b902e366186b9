// The host's reading of fp16 and bf16 outputs (autotune/host_16bit.hpp), which every GPU check relies on:
// each of the 65536 fp16 patterns against a reference decoding by arithmetic, and the finiteness test
// against that decoding for both dtypes.
#include <doctest/doctest.h>

#include <cmath>

#include "autotune/host_16bit.hpp"

namespace {

// fp16 by its definition: (-1)^s * 2^(e - 15) * 1.m, or 2^-14 * 0.m when e = 0.
double fp16_by_definition(unsigned bits) {
  const int sign = bits >> 15, exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  double magnitude;
  if (exponent == 31)
    magnitude = mantissa ? NAN : INFINITY;
  else if (exponent == 0)
    magnitude = std::ldexp(mantissa / 1024.0, -14);
  else
    magnitude = std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
  return sign ? -magnitude : magnitude;
}

}  // namespace

TEST_CASE("decode_16bit reads every fp16 pattern as its definition; is_finite_16bit agrees with std::isfinite") {
  int wrong = 0, finite_wrong = 0;
  for (unsigned bits = 0; bits < 65536; ++bits) {
    const auto pattern = static_cast<unsigned short>(bits);
    const double want = fp16_by_definition(bits);
    const float got = fa2::decode_16bit(pattern, fa2::DType::fp16);
    const bool same = std::isnan(want) ? std::isnan(got)
                                        : static_cast<double>(got) == want && std::signbit(got) == std::signbit(want);
    if (!same) ++wrong;
    if (fa2::is_finite_16bit(pattern, fa2::DType::fp16) != std::isfinite(want)) ++finite_wrong;
    if (fa2::is_finite_16bit(pattern, fa2::DType::bf16) !=
        std::isfinite(fa2::decode_16bit(pattern, fa2::DType::bf16)))
      ++finite_wrong;
  }
  CHECK(wrong == 0);
  CHECK(finite_wrong == 0);
  CHECK(fa2::decode_16bit(0x3c00, fa2::DType::fp16) == 1.0f);
  CHECK(fa2::decode_16bit(0x0001, fa2::DType::fp16) == std::ldexp(1.0f, -24));
  CHECK(fa2::decode_16bit(0x3f80, fa2::DType::bf16) == 1.0f);
}
