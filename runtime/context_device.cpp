#include "runtime/context_device.hpp"

#include <fmt/format.h>

#include <mutex>
#include <unordered_map>

#include "common/error.hpp"

namespace fa2 {

const ContextDevice& context_device(CUcontext context) {
  static std::mutex mutex;
  static std::unordered_map<CUcontext, ContextDevice> devices;
  std::lock_guard<std::mutex> lock(mutex);
  auto found = devices.find(context);
  if (found != devices.end()) return found->second;
  ContextDevice entry;
  driver::check(driver::api().CtxGetDevice(&entry.device), "cuCtxGetDevice");
  entry.info = driver::device_info(entry.device);
  entry.arch = arch_for_compute_capability(entry.info.cc_major, entry.info.cc_minor);
  return devices.emplace(context, std::move(entry)).first->second;
}

Arch current_arch(const char* api_call) {
  const ContextDevice& device = context_device(driver::current_context());
  if (!device.arch)
    throw Error(Stage::Driver, api_call,
                fmt::format("device '{}' has compute capability {}.{}; fa2jit generates kernels for sm_80, sm_86, "
                            "sm_87, sm_89 and sm_90 devices",
                            device.info.name, device.info.cc_major, device.info.cc_minor));
  return *device.arch;
}

}  // namespace fa2
