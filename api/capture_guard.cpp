#include "api/capture_guard.hpp"

#include <fmt/format.h>

#include "api/tune_resolution.hpp"
#include "common/error.hpp"
#include "runtime/driver.hpp"

namespace fa2 {

CaptureState capture_state(CUstream stream) {
  try {
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
    if (driver::api().StreamIsCapturing(stream, &status) != CUDA_SUCCESS) return CaptureState::unknown;
    switch (status) {
      case CU_STREAM_CAPTURE_STATUS_NONE: return CaptureState::none;
      case CU_STREAM_CAPTURE_STATUS_ACTIVE: return CaptureState::active;
      case CU_STREAM_CAPTURE_STATUS_INVALIDATED: return CaptureState::invalidated;
      default: return CaptureState::unknown;
    }
  } catch (...) {
    return CaptureState::unknown;
  }
}

void refuse_resolution_during_capture(CaptureState state, const ProblemShape& shape, TunePolicy policy,
                                      const std::string& cache_path) {
  if (state == CaptureState::none) return;
  const char* what = state == CaptureState::active        ? "is capturing a CUDA graph"
                     : state == CaptureState::invalidated ? "is capturing a CUDA graph (already invalidated)"
                                                          : "may be capturing a CUDA graph (the driver could not say)";
  // Under on-first-use the warm-up itself tunes; pre-tuning makes it a cache read. Under heuristic there
  // is nothing to tune, only a kernel to compile and load. fa2-tune tune fills bshd classes only, so for
  // other layouts the warm-up call is the advice.
  const std::string ahead =
      policy == TunePolicy::heuristic || shape.layout != Layout::bshd
          ? std::string()
          : fmt::format(" To keep that call from tuning, fill the cache first: {}.", tune_command(shape, cache_path));
  throw Error(Stage::Launch, "dispatch (CUDA graph capture)",
              fmt::format("the kernel of '{}' (tune policy {}) is not resolved in this process, and the call's "
                          "stream {}: resolving it may tune, compile or load a module, which a capture cannot "
                          "record, so nothing was done and the capture is left as it was (end it and discard the "
                          "graph). Warm up first: make one eager call with the same shapes and options before "
                          "capturing.{}",
                          ProblemClass::of(shape).key(), tune_policy_name(policy), what, ahead));
}

}  // namespace fa2
