// CUDA graph capture through the C++ API (api/capture_guard.hpp): a problem class met for the first time on
// a capturing stream is refused before anything is done (no tuning, compile, module load or cache file), the
// capture stays valid; after one eager call (a warm-up) the same call is recorded, and launching the graph
// writes exactly what the eager call wrote. The Python side (torch.cuda.graph) is python/tests/test_torch_ops_gpu.py.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "autotune/problem_buffers.hpp"
#include "fa2jit/fa2jit.hpp"
#include "runtime/driver.hpp"
#include "tests/support/fa2_tune_process.hpp"

namespace {

namespace cu = fa2::driver;

fa2::ProblemShape unusual_shape() {  // GQA 3 at d64: a class no other test resolves
  fa2::ProblemShape shape;
  shape.head_dim = 64;
  shape.causal = true;
  shape.batch = 2;
  shape.heads_q = 6;
  shape.heads_kv = 2;
  shape.seqlen_q = 300;
  shape.seqlen_k = 300;
  return shape;
}

// A stream of its own, capturing in the global mode (the strictest: any unsafe call in the process
// invalidates the capture).
struct Capture {
  CUstream stream = nullptr;
  Capture() { cu::check(cu::api().StreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate"); }
  ~Capture() { cu::api().StreamDestroy(stream); }
  void begin() { cu::check(cu::api().StreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL), "cuStreamBeginCapture"); }
  CUresult end(CUgraph* graph) { return cu::api().StreamEndCapture(stream, graph); }
};

}  // namespace

TEST_CASE("capture: an unresolved class is refused before anything is done, and the capture stays valid") {
  fa2::test::TempDir dir;
  fa2::ProblemBuffers buffers(unusual_shape());
  fa2::FwdArgs args = buffers.args();
  args.tune_policy = fa2::TunePolicy::on_first_use;  // would tune, were it not refused
  args.cache_path = dir.file("never.db");
  Capture capture;
  const fa2::RuntimeStats before = fa2::runtime_stats();
  capture.begin();
  std::string message;
  try {
    fa2::forward(args, capture.stream);
  } catch (const fa2::Error& error) {
    CHECK(error.stage() == fa2::Stage::Launch);
    message = error.what();
  }
  CUgraph graph = nullptr;
  CHECK(capture.end(&graph) == CUDA_SUCCESS);  // not invalidated by anything the call did
  if (graph != nullptr) cu::api().GraphDestroy(graph);
  INFO(message);
  CHECK(message.find("capturing a CUDA graph") != std::string::npos);
  CHECK(message.find("bf16 d64 causal gqa3") != std::string::npos);
  CHECK(message.find("one eager call with the same shapes") != std::string::npos);
  CHECK(message.find("fa2-tune tune --pass fwd --head-dim 64") != std::string::npos);
  const fa2::RuntimeStats after = fa2::runtime_stats();
  CHECK(after.resolutions == before.resolutions);
  CHECK(after.compiles == before.compiles);
  CHECK(after.tunings == before.tunings);
  CHECK_FALSE(std::filesystem::exists(args.cache_path));
}

TEST_CASE("capture: after a warm-up the call is recorded, and the graph writes what the eager call wrote") {
  fa2::ProblemBuffers buffers(unusual_shape());
  fa2::FwdArgs args = buffers.args();
  args.tune_policy = fa2::TunePolicy::heuristic;
  Capture capture;
  fa2::forward(args, capture.stream);  // the warm-up resolves the class
  cu::check(cu::api().StreamSynchronize(capture.stream), "cuStreamSynchronize");
  const std::vector<unsigned short> eager_o = buffers.o().download<unsigned short>();
  const std::vector<float> eager_lse = buffers.lse().download<float>();

  buffers.poison_outputs();
  capture.begin();
  fa2::forward(args, capture.stream);
  CUgraph graph = nullptr;
  REQUIRE(capture.end(&graph) == CUDA_SUCCESS);
  CUgraphExec exec = nullptr;
  cu::check(cu::api().GraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags");
  CHECK(buffers.o().download<unsigned short>() != eager_o);  // captured, not run: O is still poisoned
  cu::check(cu::api().GraphLaunch(exec, capture.stream), "cuGraphLaunch");
  cu::check(cu::api().StreamSynchronize(capture.stream), "cuStreamSynchronize");
  CHECK(buffers.o().download<unsigned short>() == eager_o);
  const std::vector<float> graph_lse = buffers.lse().download<float>();
  CHECK(std::memcmp(graph_lse.data(), eager_lse.data(), eager_lse.size() * sizeof(float)) == 0);
  cu::api().GraphExecDestroy(exec);
  cu::api().GraphDestroy(graph);
}
