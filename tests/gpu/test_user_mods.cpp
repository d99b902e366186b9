// User modifications on the GPU: forward() and backward() with score_mod / mask_mod snippets and extra device
// arrays against the fp32 reference, which is compiled with the same snippets (reference.cuh) and so applies
// them by their definition: a document mask of 8 documents, prefix-LM, a dilated mask, a relative-position bias,
// a tanh cap (derived and given derivative), and a mask beside causal and the built-in variants; over odd and
// unequal sequence lengths, GQA, both dtypes and head dims 64, 128 and 256, with poisoned outputs. Rows that
// see no key give O = 0 and LSE = +inf; the deterministic backward keeps every tile and is bitwise stable.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "api/checks.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/device_buffer.hpp"
#include "runtime/driver.hpp"
#include "tests/support/reference_checks.hpp"

namespace {

using fa2::CheckSpec;
using fa2::DType;
using fa2::ExtraType;
using fa2::Family;
using fa2::VariantArgs;

struct Shape {
  int seqlen_q, seqlen_k, heads_q, heads_kv;
};
// Odd lengths (no tile divides them), seqlen_q above and below seqlen_k, MHA and GQA.
const Shape kShapes[] = {{517, 517, 4, 4}, {257, 1000, 8, 2}, {1000, 257, 4, 2}, {700, 700, 6, 2}};
constexpr int kBatch = 2;

// The extra arrays of every case, on the device, sized for the largest shape: per-position document ids of the
// queries and the keys (8 documents of uneven lengths, the keys' aligned to the queries' at the end like the
// bottom-right causal mask), a bias per relative position, and a prefix length per batch.
struct Extras {
  fa2::DeviceBuffer q_doc, k_doc, bias, prefix;
  explicit Extras(const Shape& s) {
    std::vector<int> q_doc_host(s.seqlen_q), k_doc_host(s.seqlen_k);
    auto doc_of = [](int position, int length) { return (position * 8 + position % 5) / (length + 5); };
    for (int i = 0; i < s.seqlen_q; ++i) q_doc_host[i] = doc_of(i + s.seqlen_k - s.seqlen_q, s.seqlen_k);
    for (int j = 0; j < s.seqlen_k; ++j) k_doc_host[j] = doc_of(j, s.seqlen_k);
    std::vector<float> bias_host(s.seqlen_q + s.seqlen_k);
    for (std::size_t d = 0; d < bias_host.size(); ++d) bias_host[d] = 0.5f * static_cast<float>((d * 7919) % 13) / 13.f;
    std::vector<int> prefix_host = {s.seqlen_k / 3, s.seqlen_k / 7};
    q_doc = upload(q_doc_host);
    k_doc = upload(k_doc_host);
    bias = upload(bias_host);
    prefix = upload(prefix_host);
  }
  template <class T>
  static fa2::DeviceBuffer upload(const std::vector<T>& host) {
    fa2::DeviceBuffer buffer(host.size() * sizeof(T));
    buffer.upload_bytes(host.data());
    return buffer;
  }
};

// One case: the snippets and which extra arrays they read, and the mask around them.
struct ModCase {
  const char* name;
  bool causal;
  const char* score_mod;
  const char* score_mod_grad;
  const char* mask_mod;
  bool q_doc, k_doc, bias, prefix;
  float softcap = 0.f;
  int window_left = -1;
};
const ModCase kCases[] = {
    {"document mask", false, "", "", "q_doc[q_idx] == k_doc[kv_idx]", true, true, false, false},
    {"document causal", true, "", "", "q_doc[q_idx] == k_doc[kv_idx]", true, true, false, false},
    {"prefix-LM", false, "", "", "kv_idx < prefix[batch] || kv_idx <= q_idx + seqlen_k - seqlen_q", false, false,
     false, true},
    {"dilated", true, "", "", "(kv_idx & 1) == ((q_idx + seqlen_k - seqlen_q) & 1)", false, false, false, false},
    {"relative bias", false, "score + bias[q_idx - kv_idx + seqlen_k]", "", "", false, false, true, false},
    {"tanh cap", false, "20.f * tanhf(score / 20.f)", "", "", false, false, false, false},
    {"tanh cap, given gradient", true, "20.f * tanhf(score / 20.f)",
     "1.f - tanhf(score / 20.f) * tanhf(score / 20.f)", "", false, false, false, false},
    {"head-dependent scale and mask", false, "score * (1.f + 0.25f * head) - 0.01f * (q_idx % 7)", "",
     "((q_idx ^ kv_idx) & 3) != 3 || head == 0", false, false, false, false},
    {"all with variants", true, "score + bias[q_idx - kv_idx + seqlen_k]", "", "q_doc[q_idx] == k_doc[kv_idx]", true,
     true, true, false, 10.f, 300},
};

CheckSpec spec_of(Family family, const ModCase& c, const Shape& s, const Extras& extras, int head_dim, DType dtype) {
  CheckSpec spec;
  spec.shape.family = family;
  spec.shape.head_dim = head_dim;
  spec.shape.dtype = dtype;
  spec.shape.batch = kBatch;
  spec.shape.heads_q = s.heads_q;
  spec.shape.heads_kv = s.heads_kv;
  spec.shape.seqlen_q = s.seqlen_q;
  spec.shape.seqlen_k = s.seqlen_k;
  VariantArgs args;
  args.score_mod = c.score_mod;
  args.score_mod_grad = c.score_mod_grad;
  args.mask_mod = c.mask_mod;
  args.softcap = c.softcap;
  args.window_left = c.window_left;
  if (c.q_doc) args.extra.push_back({"q_doc", ExtraType::i32, extras.q_doc.get()});
  if (c.k_doc) args.extra.push_back({"k_doc", ExtraType::i32, extras.k_doc.get()});
  if (c.bias) args.extra.push_back({"bias", ExtraType::f32, extras.bias.get()});
  if (c.prefix) args.extra.push_back({"prefix", ExtraType::i32, extras.prefix.get()});
  spec.shape.set_variant(c.causal, args, false);
  // Logits of std ~3 (scale 1), where a cap of 20 and the bias bend the softmax visibly.
  spec.softmax_scale = 1.f;
  return spec;
}

using fa2::test::check_backward_case;
using fa2::test::check_forward_case;

}  // namespace

TEST_SUITE("user mods") {

TEST_CASE("user mods: forward and backward match the fp32 reference compiled with the same snippets") {
  fa2::driver::ensure_context();
  int index = 0;
  for (const Shape& shape : kShapes) {
    const Extras extras(shape);
    for (int head_dim : {64, 128, 256})
      for (const ModCase& c : kCases) {
        const DType dtype = index++ % 2 == 0 ? DType::bf16 : DType::fp16;
        const CheckSpec forward = spec_of(Family::fwd, c, shape, extras, head_dim, dtype);
        SUBCASE(fmt::format("fwd {} {}", c.name, forward.shape.describe()).c_str()) { check_forward_case(forward); }
        const CheckSpec backward = spec_of(Family::bwd, c, shape, extras, head_dim, dtype);
        SUBCASE(fmt::format("bwd {} {}", c.name, backward.shape.describe()).c_str()) {
          check_backward_case(backward);
        }
      }
  }
}

TEST_CASE("user mods: rows mask_mod leaves no key give O = 0, LSE = +inf and zero gradients") {
  fa2::driver::ensure_context();
  // Queries of odd position see nothing; the rest see their own document.
  const ModCase empty{"empty rows", false, "", "", "(q_idx & 1) == 0 && q_doc[q_idx] == k_doc[kv_idx]", true, true,
                      false, false};
  const Shape shape{300, 300, 4, 2};
  const Extras extras(shape);
  for (int head_dim : {64, 128}) {
    check_forward_case(spec_of(Family::fwd, empty, shape, extras, head_dim, DType::bf16));
    check_backward_case(spec_of(Family::bwd, empty, shape, extras, head_dim, DType::bf16));
  }
}

TEST_CASE("user mods: the deterministic backward with mask_mod is right and bitwise identical over runs") {
  fa2::driver::ensure_context();
  const Shape shape{1100, 1300, 8, 2};
  const Extras extras(shape);
  for (const ModCase& c : {kCases[1], kCases[4], kCases[8]})
    for (int head_dim : {64, 128}) {
      CheckSpec spec = spec_of(Family::bwd, c, shape, extras, head_dim, DType::bf16);
      spec.shape.deterministic = true;
      check_backward_case(spec);
      CHECK(fa2::test::differing_backward_runs(spec.shape, 5) == 0);
    }
}

TEST_CASE("user mods: the kernel name carries the snippets' digest") {
  fa2::driver::ensure_context();
  const Extras extras(kShapes[0]);
  const CheckSpec spec = spec_of(Family::fwd, kCases[0], kShapes[0], extras, 128, DType::bf16);
  const fa2::ForwardCheckResult result = fa2::run_forward_check(spec);
  CHECK(result.passed);
  CHECK(result.kernel_name.find("_umod" + spec.shape.user.digest()) != std::string::npos);
}

}  // TEST_SUITE
