#include "autotune/backward_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "autotune/host_16bit.hpp"
#include "autotune/problem_buffers.hpp"
#include "autotune/reference.hpp"
#include "runtime/driver.hpp"

namespace fa2 {

// The 809 backward cases of the GPU matrix (every head dim, both dtypes, odd and unequal lengths, GQA/MQA)
// peaked at 3.1e-3 (bf16) and 3.8e-4 (fp16): the bounds leave ~2.6x room, as the forward's do.
double gradient_tolerance(DType dtype) { return dtype == DType::bf16 ? 8e-3 : 1e-3; }

BwdReferenceOutputs::BwdReferenceOutputs(BwdProblemBuffers& buffers, int set, std::optional<float> softmax_scale) {
  const ProblemShape& shape = buffers.shape();
  const Reference& reference = Reference::current();
  const long long q_elems = 1ll * shape.batch * shape.heads_q * shape.seqlen_q * shape.head_dim;
  const long long kv_elems = 1ll * shape.batch * shape.heads_kv * shape.seqlen_k * shape.head_dim;
  DeviceBuffer o(q_elems * 4), lse(1ll * shape.batch * shape.heads_q * shape.seqlen_q * 4);
  const FwdArgs forward = buffers.forward_args(set, softmax_scale);
  reference.forward(forward, o, lse);
  reference.store_16bit(o, buffers.o(set), shape.batch, shape.heads_q, shape.seqlen_q, shape.head_dim,
                        forward.o_strides, shape.dtype);
  driver::check(driver::api().MemcpyDtoD(reinterpret_cast<CUdeviceptr>(buffers.lse(set)), lse.address(),
                                         lse.bytes()),
                "cuMemcpyDtoD(reference LSE)");
  DeviceBuffer dq(q_elems * 4), dk(kv_elems * 4), dv(kv_elems * 4);
  reference.backward(buffers.args(set, softmax_scale), o, dq, dk, dv);
  dq_ = dq.download<float>();
  dk_ = dk.download<float>();
  dv_ = dv.download<float>();
}

double GradientComparison::max_error() const { return std::max({dq_rel_error, dk_rel_error, dv_rel_error}); }

bool GradientComparison::passed() const {
  return unwritten_dq == 0 && unwritten_dk == 0 && unwritten_dv == 0 && dq_rel_error <= tolerance &&
         dk_rel_error <= tolerance && dv_rel_error <= tolerance;
}

std::string GradientComparison::summary() const {
  return fmt::format("dQ {:.2e} dK {:.2e} dV {:.2e} (tol {:.0e})  unwritten dQ {} dK {} dV {}", dq_rel_error,
                     dk_rel_error, dv_rel_error, tolerance, unwritten_dq, unwritten_dk, unwritten_dv);
}

namespace {

struct TensorComparison {
  double rel_error = 0;
  double error_norm = 0;      // ||got - want||
  double reference_norm = 0;  // ||want||
  long long unwritten = 0;
};

// `got` (16-bit, laid out by `strides`) against `want` (fp32, [batch, heads, seqlen, head_dim]).
TensorComparison compare_tensor(const DeviceBuffer& got_buffer, const std::vector<float>& want, const Strides& strides,
                                int batch, int heads, int seqlen, int head_dim, DType dtype) {
  const auto got = got_buffer.download<unsigned short>();
  TensorComparison result;
  double diff2 = 0, ref2 = 0;
  for (int b = 0; b < batch; ++b)
    for (int h = 0; h < heads; ++h)
      for (int s = 0; s < seqlen; ++s) {
        const long long got_base = b * strides.batch + h * strides.head + s * strides.row;
        const long long want_base = ((1ll * b * heads + h) * seqlen + s) * head_dim;
        for (int d = 0; d < head_dim; ++d) {
          const unsigned short bits = got[got_base + d];
          if (bits == ProblemBuffers::kPoison16) ++result.unwritten;
          const double value = decode_16bit(bits, dtype);
          const double expected = want[want_base + d];
          diff2 += (value - expected) * (value - expected);
          ref2 += expected * expected;
        }
      }
  result.rel_error = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  result.error_norm = std::sqrt(diff2);
  result.reference_norm = std::sqrt(ref2);
  return result;
}

long long count_not_finite(const DeviceBuffer& buffer, const Strides& strides, int batch, int heads, int seqlen,
                           int head_dim, DType dtype) {
  const auto bits = buffer.download<unsigned short>();
  long long count = 0;
  for (int b = 0; b < batch; ++b)
    for (int h = 0; h < heads; ++h)
      for (int s = 0; s < seqlen; ++s) {
        const long long base = b * strides.batch + h * strides.head + s * strides.row;
        for (int d = 0; d < head_dim; ++d)
          if (!is_finite_16bit(bits[base + d], dtype)) ++count;
      }
  return count;
}

}  // namespace

GradientComparison compare_gradients(const BwdProblemBuffers& buffers, const BwdReferenceOutputs& reference) {
  const ProblemShape& s = buffers.shape();
  const Strides q = q_strides_of(s), kv = kv_strides_of(s);
  GradientComparison result;
  result.tolerance = gradient_tolerance(s.dtype);
  const TensorComparison dq =
      compare_tensor(buffers.dq(), reference.dq(), q, s.batch, s.heads_q, s.seqlen_q, s.head_dim, s.dtype);
  const TensorComparison dk =
      compare_tensor(buffers.dk(), reference.dk(), kv, s.batch, s.heads_kv, s.seqlen_k, s.head_dim, s.dtype);
  const TensorComparison dv =
      compare_tensor(buffers.dv(), reference.dv(), kv, s.batch, s.heads_kv, s.seqlen_k, s.head_dim, s.dtype);
  result.dq_rel_error = dq.rel_error;
  result.dk_rel_error = dk.rel_error;
  result.dv_rel_error = dv.rel_error;
  result.dq_error_norm = dq.error_norm;
  result.dk_error_norm = dk.error_norm;
  result.dv_reference_norm = dv.reference_norm;
  result.unwritten_dq = dq.unwritten;
  result.unwritten_dk = dk.unwritten;
  result.unwritten_dv = dv.unwritten;
  return result;
}

long long count_unwritten_gradients(const BwdProblemBuffers& buffers) {
  const ProblemShape& s = buffers.shape();
  const Strides q = q_strides_of(s), kv = kv_strides_of(s);
  return count_not_finite(buffers.dq(), q, s.batch, s.heads_q, s.seqlen_q, s.head_dim, s.dtype) +
         count_not_finite(buffers.dk(), kv, s.batch, s.heads_kv, s.seqlen_k, s.head_dim, s.dtype) +
         count_not_finite(buffers.dv(), kv, s.batch, s.heads_kv, s.seqlen_k, s.head_dim, s.dtype);
}

}  // namespace fa2
