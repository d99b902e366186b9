// backward() against the fp32 reference backward on fresh random inputs with poisoned gradients, over the
// forward's matrix (every head dim, both dtypes, causal on and off, odd and unequal sequence lengths,
// MHA/GQA/MQA, both layouts); rows that see no key; the deterministic mode's bitwise reproducibility; and
// tuning a backward class end to end.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "api/checks.hpp"
#include "autotune/cache.hpp"
#include "fa2jit/fa2jit.hpp"
#include "tests/support/reference_checks.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace {

using fa2::CheckSpec;
using fa2::DType;
using fa2::Layout;

using fa2::test::check_backward_case;

CheckSpec backward_spec() {
  CheckSpec spec;
  spec.shape.family = fa2::Family::bwd;
  return spec;
}

const int kSeqlens[] = {1, 17, 128, 1000, 4097};

struct HeadLayout {
  int heads_q;
  int heads_kv;
};
const HeadLayout kHeadLayouts[] = {{4, 4}, {8, 2}, {4, 1}};  // MHA, GQA 4:1, MQA

}  // namespace

TEST_CASE("backward matches the fp32 reference over the full matrix") {
  // Every (head dim, dtype, causal) sees every (seqlen_q, seqlen_k) pair; head layout, memory layout and
  // batch rotate with the pair so each of them also meets every kernel.
  int case_index = 0;
  for (int head_dim = 32; head_dim <= 256; head_dim += 32)
    for (DType dtype : {DType::bf16, DType::fp16})
      for (bool causal : {false, true})
        for (int seqlen_q : kSeqlens)
          for (int seqlen_k : kSeqlens) {
            CheckSpec spec = backward_spec();
            spec.shape.head_dim = head_dim;
            spec.shape.dtype = dtype;
            spec.shape.causal = causal;
            const HeadLayout heads = kHeadLayouts[case_index % 3];
            spec.shape.heads_q = heads.heads_q;
            spec.shape.heads_kv = heads.heads_kv;
            spec.shape.layout = (case_index / 3) % 2 == 0 ? Layout::bshd : Layout::bhsd;
            spec.shape.batch = seqlen_q * seqlen_k > 1000000 ? 1 : 2;
            ++case_index;
            SUBCASE(spec.shape.describe().c_str()) { check_backward_case(spec); }
          }
}

TEST_CASE("backward: rows that saw no key get zero gradients, never NaN") {
  // Causal with seqlen_q > seqlen_k: the first seqlen_q - seqlen_k rows see nothing (LSE = +inf).
  for (int head_dim : {64, 128, 256})
    for (bool deterministic : {false, true}) {
      CheckSpec spec = backward_spec();
      spec.shape.head_dim = head_dim;
      spec.shape.causal = true;
      spec.shape.deterministic = deterministic;
      spec.shape.batch = 1;
      spec.shape.heads_q = 4;
      spec.shape.heads_kv = 2;
      spec.shape.seqlen_q = 300;
      spec.shape.seqlen_k = 40;
      check_backward_case(spec);
    }
}

TEST_CASE("backward: a softmax scale other than 1/sqrt(d) is honoured") {
  CheckSpec spec = backward_spec();
  spec.shape.batch = 1;
  spec.shape.heads_q = spec.shape.heads_kv = 2;
  spec.shape.seqlen_q = 200;
  spec.shape.seqlen_k = 333;
  spec.softmax_scale = 0.37f;
  check_backward_case(spec);
}

TEST_CASE("backward: the deterministic mode is right and bitwise identical over 10 runs") {
  struct Case {
    int head_dim;
    bool causal;
    int heads_q, heads_kv, seqlen_q, seqlen_k;
  };
  for (const Case& c : {Case{64, true, 8, 2, 1000, 1000}, Case{128, false, 4, 4, 777, 1500},
                        Case{128, true, 8, 1, 1500, 600}, Case{256, true, 4, 2, 513, 513}})
    for (DType dtype : {DType::bf16, DType::fp16}) {
      fa2::ProblemShape shape;
      shape.family = fa2::Family::bwd;
      shape.deterministic = true;
      shape.head_dim = c.head_dim;
      shape.dtype = dtype;
      shape.causal = c.causal;
      shape.batch = 2;
      shape.heads_q = c.heads_q;
      shape.heads_kv = c.heads_kv;
      shape.seqlen_q = c.seqlen_q;
      shape.seqlen_k = c.seqlen_k;
      CAPTURE(shape.describe());
      CHECK(fa2::test::differing_backward_runs(shape, 10) == 0);
    }
}

TEST_CASE("backward: on-first-use tunes a backward class, and cache-only then serves it") {
  fa2::test::TempDir dir;
  CheckSpec spec = backward_spec();
  spec.shape.head_dim = 128;
  spec.shape.causal = true;
  spec.shape.batch = 1;
  spec.shape.heads_q = 8;
  spec.shape.heads_kv = 2;
  spec.shape.seqlen_q = spec.shape.seqlen_k = 700;
  spec.cache_path = dir.file("kernels.db");
  spec.policy = fa2::TunePolicy::on_first_use;
  const fa2::RuntimeStats before = fa2::runtime_stats();
  const fa2::BackwardCheckResult tuned = check_backward_case(spec);
  CHECK(fa2::runtime_stats().tunings == before.tunings + 1);

  fa2::Cache cache = fa2::Cache::open(spec.cache_path);
  const std::vector<fa2::TuningRecord> tunings = cache.list_tunings();
  REQUIRE(tunings.size() == 1);
  CHECK(tunings[0].problem_key.rfind("bwd ", 0) == 0);
  CHECK(tunings[0].winner.family == fa2::Family::bwd);
  CHECK(tunings[0].winner.name() == tuned.kernel_name);
  const auto record = cache.find_tuning(tunings[0].tuning_key, true);
  REQUIRE(record.has_value());
  int ok = 0, deterministic = 0;
  for (const fa2::Measurement& m : record->measurements) {
    ok += m.status == fa2::MeasurementStatus::ok ? 1 : 0;
    deterministic += m.config.deterministic ? 1 : 0;
  }
  CHECK(ok > 0);
  CHECK(deterministic > 0);  // the tuner weighs the ordered reduction against atomics

  spec.policy = fa2::TunePolicy::cache_only;
  const fa2::BackwardCheckResult cached = check_backward_case(spec);
  CHECK(cached.kernel_name == tuned.kernel_name);
}
