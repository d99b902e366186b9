// The device side of the user modifications: what the generated UserMods struct (codegen/snippet_source.cpp)
// is built from. NoUserMods is the struct of kernels without snippets. Dual is the number the backward
// evaluates score_mod on when the user gives no derivative: forward-mode differentiation, so the derivative of
// any snippet built from the operators and functions below comes out exactly as the chain rule gives it.
#pragma once

#include "fa2/variant/user_mod_params.h"

namespace fa2 {

struct NoUserMods {
  static constexpr bool kScoreMod = false;
  static constexpr bool kScoreGrad = false;  // score_mod_grad given (otherwise derived with Dual)
  static constexpr bool kMaskMod = false;
  __device__ __forceinline__ explicit NoUserMods(const UserModParams&) {}
  __device__ __forceinline__ NoUserMods() {}
};

// Dual and its functions live in their own namespace: a tanhf(Dual) declared in fa2 would hide ::tanhf from the
// unqualified float calls of every other template there. Argument-dependent lookup finds them for Dual.
namespace ad {

// A value and its derivative with respect to the score.
struct Dual {
  float v;
  float d;
  __device__ __forceinline__ Dual(float value = 0.f) : v(value), d(0.f) {}  // a constant
  __device__ __forceinline__ Dual(float value, float derivative) : v(value), d(derivative) {}
  __device__ __forceinline__ Dual& operator+=(const Dual& o) { return *this = Dual(v + o.v, d + o.d); }
  __device__ __forceinline__ Dual& operator-=(const Dual& o) { return *this = Dual(v - o.v, d - o.d); }
  __device__ __forceinline__ Dual& operator*=(const Dual& o) { return *this = Dual(v * o.v, d * o.v + v * o.d); }
  __device__ __forceinline__ Dual& operator/=(const Dual& o) {
    return *this = Dual(v / o.v, (d * o.v - v * o.d) / (o.v * o.v));
  }
};

__device__ __forceinline__ Dual operator-(Dual a) { return Dual(-a.v, -a.d); }
__device__ __forceinline__ Dual operator+(Dual a) { return a; }
// Dual with Dual, and with float on either side (an int or double literal converts to float).
#define FA2_DUAL_BINARY(op)                                                                           \
  __device__ __forceinline__ Dual operator op(Dual a, const Dual& b) { return a op## = b; }          \
  __device__ __forceinline__ Dual operator op(Dual a, float b) { return a op## = Dual(b); }          \
  __device__ __forceinline__ Dual operator op(float a, const Dual& b) { return Dual(a) op## = b; }
FA2_DUAL_BINARY(+)
FA2_DUAL_BINARY(-)
FA2_DUAL_BINARY(*)
FA2_DUAL_BINARY(/)
#undef FA2_DUAL_BINARY
// Comparisons look at the value only (a piecewise snippet takes the derivative of the branch it picks).
#define FA2_DUAL_COMPARE(op)                                                                         \
  __device__ __forceinline__ bool operator op(const Dual& a, const Dual& b) { return a.v op b.v; } \
  __device__ __forceinline__ bool operator op(const Dual& a, float b) { return a.v op b; }         \
  __device__ __forceinline__ bool operator op(float a, const Dual& b) { return a op b.v; }
FA2_DUAL_COMPARE(<)
FA2_DUAL_COMPARE(<=)
FA2_DUAL_COMPARE(>)
FA2_DUAL_COMPARE(>=)
FA2_DUAL_COMPARE(==)
FA2_DUAL_COMPARE(!=)
#undef FA2_DUAL_COMPARE

// The math functions on Dual, found by argument-dependent lookup beside the float ones, under both the C
// (tanhf) and the C++ (tanh) names. Each is the float function and its derivative at the value.
#define FA2_DUAL_UNARY(cname, cxxname, value, derivative)                      \
  __device__ __forceinline__ Dual cname(const Dual& a) {                      \
    const float x = a.v;                                                      \
    const float y = value;                                                    \
    return Dual(y, a.d * (derivative));                                       \
  }                                                                           \
  __device__ __forceinline__ Dual cxxname(const Dual& a) { return cname(a); }
FA2_DUAL_UNARY(tanhf, tanh, ::tanhf(x), 1.f - y * y)
FA2_DUAL_UNARY(expf, exp, ::expf(x), y)
FA2_DUAL_UNARY(logf, log, ::logf(x), 1.f / x)
FA2_DUAL_UNARY(sqrtf, sqrt, ::sqrtf(x), 0.5f / y)
FA2_DUAL_UNARY(fabsf, fabs, ::fabsf(x), x < 0.f ? -1.f : 1.f)
FA2_DUAL_UNARY(sinf, sin, ::sinf(x), ::cosf(x))
FA2_DUAL_UNARY(cosf, cos, ::cosf(x), -::sinf(x))
#undef FA2_DUAL_UNARY
__device__ __forceinline__ Dual abs(const Dual& a) { return fabsf(a); }
__device__ __forceinline__ Dual fminf(const Dual& a, const Dual& b) { return a.v <= b.v ? a : b; }
__device__ __forceinline__ Dual fmaxf(const Dual& a, const Dual& b) { return a.v >= b.v ? a : b; }
__device__ __forceinline__ Dual fminf(const Dual& a, float b) { return fminf(a, Dual(b)); }
__device__ __forceinline__ Dual fmaxf(const Dual& a, float b) { return fmaxf(a, Dual(b)); }
__device__ __forceinline__ Dual fminf(float a, const Dual& b) { return fminf(Dual(a), b); }
__device__ __forceinline__ Dual fmaxf(float a, const Dual& b) { return fmaxf(Dual(a), b); }
__device__ __forceinline__ Dual fmin(const Dual& a, const Dual& b) { return fminf(a, b); }
__device__ __forceinline__ Dual fmax(const Dual& a, const Dual& b) { return fmaxf(a, b); }

}  // namespace ad

using ad::Dual;

// The new logit of `logit` and, in `derivative`, d(new)/d(logit): the given score_mod_grad, or the dual
// evaluation of score_mod.
template <class User>
__device__ __forceinline__ float user_score(const User& user, float logit, int batch, int head, int q_idx, int kv_idx,
                                            int seqlen_q, int seqlen_k, float& derivative) {
  if constexpr (User::kScoreGrad) {
    derivative = user.score_mod_grad(logit, batch, head, q_idx, kv_idx, seqlen_q, seqlen_k);
    return user.template score_mod<float>(logit, batch, head, q_idx, kv_idx, seqlen_q, seqlen_k);
  } else {
    const Dual result = user.template score_mod<Dual>(Dual(logit, 1.f), batch, head, q_idx, kv_idx, seqlen_q,
                                                      seqlen_k);
    derivative = result.d;
    return result.v;
  }
}

}  // namespace fa2
