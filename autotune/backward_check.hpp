// Correctness checks of backward kernels against the fp32 reference backward: fresh random Q, K, V and dO,
// O and LSE from the reference forward, NaN-poisoned gradients, relative errors, and a count of elements
// never written. Used by the tuner's correctness gate, and through api/checks.hpp by the GPU tests and
// `fa2-tune check --pass bwd`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autotune/bwd_buffers.hpp"

namespace fa2 {

// Relative-error bounds for dQ, dK and dV: P and dS are rounded to 16 bits before the products that use
// them, and D comes from the 16-bit O; the bounds sit ~2.6x over the largest errors of the GPU matrix.
double gradient_tolerance(DType dtype);

// The reference of input set `set`: runs the reference forward, writes its O (rounded to 16 bits) and LSE
// into the set's inputs, then keeps the reference dQ, dK and dV on the host.
class BwdReferenceOutputs {
 public:
  BwdReferenceOutputs(BwdProblemBuffers& buffers, int set = 0, std::optional<float> softmax_scale = std::nullopt);
  const std::vector<float>& dq() const { return dq_; }  // [batch, heads_q, seqlen_q, head_dim]
  const std::vector<float>& dk() const { return dk_; }  // [batch, heads_kv, seqlen_k, head_dim]
  const std::vector<float>& dv() const { return dv_; }

 private:
  std::vector<float> dq_, dk_, dv_;
};

struct GradientComparison {
  double dq_rel_error = 0;  // ||dQ - dQ_ref|| / ||dQ_ref||, likewise dK and dV
  double dk_rel_error = 0;
  double dv_rel_error = 0;
  // Absolute norms, for problems whose exact dQ and dK vanish (a row that sees one key has P = 1 and dS = 0),
  // where the relative error compares rounding noise with rounding noise: ||dQ - dQ_ref||, ||dK - dK_ref||
  // are then measured against ||dV_ref||, the gradients' scale.
  double dq_error_norm = 0;
  double dk_error_norm = 0;
  double dv_reference_norm = 0;
  double tolerance = 0;
  long long unwritten_dq = 0;  // elements still holding the NaN poison
  long long unwritten_dk = 0;
  long long unwritten_dv = 0;

  double max_error() const;
  // `x <= tol` is false for NaN, so any NaN in the gradients fails.
  bool passed() const;
  std::string summary() const;  // "dQ 3.1e-03 dK 2.9e-03 dV 2.2e-03 (tol 2e-02)  unwritten 0/0/0"
};

// Compares the gradients now in `buffers` (synchronized) with `reference`.
GradientComparison compare_gradients(const BwdProblemBuffers& buffers, const BwdReferenceOutputs& reference);

// Elements of dQ, dK and dV that are not finite (the poison included): the check for problems too large for
// the reference.
long long count_unwritten_gradients(const BwdProblemBuffers& buffers);

}  // namespace fa2
