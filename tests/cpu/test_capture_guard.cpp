// The dispatch table's decision for a class it has not resolved while the call's stream captures a CUDA
// graph (api/capture_guard.hpp): nothing when not capturing, else an error naming the class and the way
// out, thrown before anything else is done. The capture itself is exercised on the GPU
// (python/tests/test_torch_ops_gpu.py).
#include <doctest/doctest.h>

#include <string>

#include "api/capture_guard.hpp"
#include "common/error.hpp"
#include "runtime/driver.hpp"

namespace {

fa2::ProblemShape decode_shape() {
  fa2::ProblemShape shape;
  shape.family = fa2::Family::kvc;
  shape.head_dim = 128;
  shape.causal = true;
  shape.batch = 4;
  shape.heads_q = 32;
  shape.heads_kv = 8;
  shape.seqlen_q = 1;
  shape.seqlen_k = 4096;
  return shape;
}

std::string refusal(fa2::CaptureState state, fa2::TunePolicy policy, const std::string& cache_path) {
  try {
    fa2::refuse_resolution_during_capture(state, decode_shape(), policy, cache_path);
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Launch);
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("capture guard: a stream that is not capturing resolves as before") {
  for (fa2::TunePolicy policy :
       {fa2::TunePolicy::on_first_use, fa2::TunePolicy::heuristic, fa2::TunePolicy::cache_only})
    CHECK(refusal(fa2::CaptureState::none, policy, "") == "");
}

TEST_CASE("capture guard: an unresolved class during a capture is refused, naming the class and the way out") {
  for (fa2::CaptureState state :
       {fa2::CaptureState::active, fa2::CaptureState::invalidated, fa2::CaptureState::unknown}) {
    const std::string message = refusal(state, fa2::TunePolicy::on_first_use, "/tmp/k.db");
    INFO(message);
    CHECK(message.find(fa2::ProblemClass::of(decode_shape()).key()) != std::string::npos);
    CHECK(message.find("capturing a CUDA graph") != std::string::npos);
    CHECK(message.find("one eager call with the same shapes") != std::string::npos);
    CHECK(message.find("fa2-tune tune --pass kvc --head-dim 128 --dtype bf16 --causal on --batch 4 --heads 32 "
                       "--heads-kv 8 --seqlen 1 --seqlen-k 4096 --db '/tmp/k.db'") != std::string::npos);
    CHECK(message.find("tune policy on-first-use") != std::string::npos);
  }
  const std::string default_cache = refusal(fa2::CaptureState::active, fa2::TunePolicy::cache_only, "");
  CHECK(default_cache.find("--seqlen-k 4096.") != std::string::npos);  // no --db: the default cache
  // heuristic tunes nothing: the warm-up alone is the way out.
  const std::string heuristic = refusal(fa2::CaptureState::active, fa2::TunePolicy::heuristic, "");
  CHECK(heuristic.find("one eager call") != std::string::npos);
  CHECK(heuristic.find("fa2-tune") == std::string::npos);
}

TEST_CASE("capture guard: without a driver the state is unknown, never an exception") {
  if (fa2::driver::available()) return;  // with a GPU, the legacy stream of no context may be either
  CHECK(fa2::capture_state(nullptr) == fa2::CaptureState::unknown);
}
