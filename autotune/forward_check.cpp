#include "autotune/forward_check.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <algorithm>

#include "autotune/host_16bit.hpp"
#include "autotune/reference.hpp"
#include "runtime/driver.hpp"

namespace fa2 {

double o_tolerance(DType dtype) { return dtype == DType::bf16 ? 6e-3 : 1e-3; }

ReferenceOutputs::ReferenceOutputs(const ProblemBuffers& buffers, int set, std::optional<float> softmax_scale) {
  DeviceBuffer o(buffers.o().bytes() * 2), lse(buffers.lse().bytes());  // fp32 O: twice the 16-bit bytes
  Reference::current().forward(buffers.args(set, softmax_scale), o, lse);
  o_ = o.download<float>();
  lse_ = lse.download<float>();
}

std::string OutputComparison::summary() const {
  return fmt::format("O {:.2e} (tol {:.0e})  LSE {:.2e} (tol {:.0e})  unwritten O {} LSE {}  LSE inf mismatch {}",
                     o_rel_error, o_tolerance, lse_rel_error, lse_tolerance, unwritten_o, unwritten_lse,
                     lse_inf_mismatch);
}

OutputComparison compare_outputs(const ProblemBuffers& buffers, const ReferenceOutputs& reference) {
  const ProblemShape& shape = buffers.shape();
  const Strides o_strides = q_strides_of(shape);
  OutputComparison result;
  result.o_tolerance = o_tolerance(shape.dtype);

  // O and O_ref are compared element by element in the same logical order.
  const auto o_bits = buffers.o().download<unsigned short>();
  double diff2 = 0, ref2 = 0;
  for (int b = 0; b < shape.batch; ++b)
    for (int h = 0; h < shape.heads_q; ++h)
      for (int s = 0; s < shape.seqlen_q; ++s) {
        const long long out_base = b * o_strides.batch + h * o_strides.head + s * o_strides.row;
        const long long ref_base = ((1ll * b * shape.heads_q + h) * shape.seqlen_q + s) * shape.head_dim;
        for (int d = 0; d < shape.head_dim; ++d) {
          const unsigned short bits = o_bits[out_base + d];
          if (bits == ProblemBuffers::kPoison16) ++result.unwritten_o;
          const double got = decode_16bit(bits, shape.dtype);
          const double want = reference.o()[ref_base + d];
          diff2 += (got - want) * (got - want);
          ref2 += want * want;
        }
      }
  result.o_rel_error = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);

  const auto lse_got = buffers.lse().download<float>();
  const std::vector<float>& lse_want = reference.lse();
  double lse_diff2 = 0, lse_ref2 = 0;
  for (std::size_t i = 0; i < lse_got.size(); ++i) {
    std::uint32_t word;
    std::memcpy(&word, &lse_got[i], sizeof word);
    if (word == ProblemBuffers::kPoison32) ++result.unwritten_lse;
    const bool got_inf = std::isinf(lse_got[i]) && lse_got[i] > 0;
    const bool want_inf = std::isinf(lse_want[i]) && lse_want[i] > 0;
    if (got_inf != want_inf) {
      ++result.lse_inf_mismatch;
      continue;
    }
    if (want_inf) continue;
    const double diff = static_cast<double>(lse_got[i]) - lse_want[i];
    lse_diff2 += diff * diff;
    lse_ref2 += static_cast<double>(lse_want[i]) * lse_want[i];
  }
  result.lse_rel_error = lse_ref2 > 0 ? std::sqrt(lse_diff2 / lse_ref2) : std::sqrt(lse_diff2);
  return result;
}

long long count_unwritten_outputs(const ProblemBuffers& buffers) {
  const ProblemShape& shape = buffers.shape();
  const Strides o_strides = q_strides_of(shape);
  const auto o_bits = buffers.o().download<unsigned short>();
  long long unwritten = 0;
  for (int b = 0; b < shape.batch; ++b)
    for (int h = 0; h < shape.heads_q; ++h)
      for (int s = 0; s < shape.seqlen_q; ++s) {
        const long long base = b * o_strides.batch + h * o_strides.head + s * o_strides.row;
        for (int d = 0; d < shape.head_dim; ++d)
          if (!is_finite_16bit(o_bits[base + d], shape.dtype)) ++unwritten;
      }
  for (float lse : buffers.lse().download<float>())
    if (std::isnan(lse)) ++unwritten;  // +inf is a valid LSE (a row that sees no key)
  return unwritten;
}

ProblemShape reference_check_shape(const ProblemShape& shape) {
  constexpr int kBase = 509;   // prime: no tile size divides it
  constexpr int kExtra = 131;  // keeps seqlen_q != seqlen_k when the shape has it
  ProblemShape check = shape;
  check.batch = 1;
  check.heads_kv = 2;
  check.heads_q = 2 * (shape.heads_q / shape.heads_kv);
  if (shape.seqlen_q == shape.seqlen_k) {
    check.seqlen_q = check.seqlen_k = std::min(shape.seqlen_q, kBase);
  } else if (shape.seqlen_q < shape.seqlen_k) {
    check.seqlen_q = std::min(shape.seqlen_q, kBase);
    check.seqlen_k = std::min(shape.seqlen_k, check.seqlen_q + kExtra);
  } else {
    check.seqlen_k = std::min(shape.seqlen_k, kBase);
    check.seqlen_q = std::min(shape.seqlen_q, check.seqlen_k + kExtra);
  }
  return check;
}

}  // namespace fa2
