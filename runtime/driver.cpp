#include "runtime/driver.hpp"

#include <dlfcn.h>

#include <initializer_list>
#include <mutex>
#include <optional>

#include "common/error.hpp"

namespace fa2::driver {

namespace {

constexpr const char* kLibrary = "libcuda.so.1";

// The outcome of the one-time load: either a complete Api or the error every api() call rethrows.
struct Loaded {
  Api api{};
  std::optional<Error> error;
};

// Resolves the first of `symbols` that the library exports. Most entry points have one name; the
// alternatives cover symbols that newer drivers version while older ones only have the base name.
template <class Fn>
void resolve(void* handle, Fn& out, std::initializer_list<const char*> symbols) {
  for (const char* symbol : symbols) {
    if (void* address = dlsym(handle, symbol)) {
      out = reinterpret_cast<Fn>(address);
      return;
    }
  }
  throw Error(Stage::Driver, "dlsym",
              std::string(kLibrary) + " does not export " + *symbols.begin() +
                  ": the installed NVIDIA driver is too old for fa2jit; update the driver");
}

Api resolve_all(void* handle) {
  Api a{};
  resolve(handle, a.Init, {"cuInit"});
  resolve(handle, a.DriverGetVersion, {"cuDriverGetVersion"});
  resolve(handle, a.DeviceGet, {"cuDeviceGet"});
  resolve(handle, a.DeviceGetCount, {"cuDeviceGetCount"});
  resolve(handle, a.DeviceGetName, {"cuDeviceGetName"});
  resolve(handle, a.DeviceGetAttribute, {"cuDeviceGetAttribute"});
  resolve(handle, a.DevicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"});
  resolve(handle, a.DevicePrimaryCtxRelease, {"cuDevicePrimaryCtxRelease_v2"});
  resolve(handle, a.CtxGetCurrent, {"cuCtxGetCurrent"});
  resolve(handle, a.CtxSetCurrent, {"cuCtxSetCurrent"});
  resolve(handle, a.CtxGetDevice, {"cuCtxGetDevice"});
  resolve(handle, a.CtxSynchronize, {"cuCtxSynchronize"});
  resolve(handle, a.ModuleLoadData, {"cuModuleLoadData"});
  resolve(handle, a.ModuleUnload, {"cuModuleUnload"});
  resolve(handle, a.ModuleGetFunction, {"cuModuleGetFunction"});
  resolve(handle, a.FuncSetAttribute, {"cuFuncSetAttribute"});
  resolve(handle, a.FuncGetAttribute, {"cuFuncGetAttribute"});
  // The plain (not _ptsz/_ptds) variants: stream 0 means the legacy default stream, as it does for
  // a program built without per-thread default streams.
  resolve(handle, a.LaunchKernel, {"cuLaunchKernel"});
  // Launch attributes (CUDA 12.0+): programmatic dependent launch of a split-KV combine.
  resolve(handle, a.LaunchKernelEx, {"cuLaunchKernelEx"});
  resolve(handle, a.OccupancyMaxActiveBlocksPerMultiprocessor, {"cuOccupancyMaxActiveBlocksPerMultiprocessor"});
  resolve(handle, a.MemAlloc, {"cuMemAlloc_v2"});
  resolve(handle, a.MemFree, {"cuMemFree_v2"});
  // The stream-ordered allocator (CUDA 11.2+): the backward's scratch when the caller passes none.
  resolve(handle, a.MemAllocAsync, {"cuMemAllocAsync"});
  resolve(handle, a.MemFreeAsync, {"cuMemFreeAsync"});
  resolve(handle, a.MemcpyHtoD, {"cuMemcpyHtoD_v2"});
  resolve(handle, a.MemcpyDtoH, {"cuMemcpyDtoH_v2"});
  resolve(handle, a.MemcpyDtoD, {"cuMemcpyDtoD_v2"});
  resolve(handle, a.MemsetD8, {"cuMemsetD8_v2"});
  resolve(handle, a.MemsetD16, {"cuMemsetD16_v2"});
  resolve(handle, a.MemsetD32, {"cuMemsetD32_v2"});
  resolve(handle, a.StreamCreate, {"cuStreamCreate"});
  resolve(handle, a.StreamDestroy, {"cuStreamDestroy_v2"});
  resolve(handle, a.StreamSynchronize, {"cuStreamSynchronize"});
  // Whether a call's stream is recording a CUDA graph (api/capture_guard.cpp): plain variant, as for launches.
  resolve(handle, a.StreamIsCapturing, {"cuStreamIsCapturing"});
  resolve(handle, a.StreamBeginCapture, {"cuStreamBeginCapture_v2"});  // <cuda.h> maps the name to _v2
  resolve(handle, a.StreamEndCapture, {"cuStreamEndCapture"});
  resolve(handle, a.GraphInstantiateWithFlags, {"cuGraphInstantiateWithFlags"});
  resolve(handle, a.GraphLaunch, {"cuGraphLaunch"});
  resolve(handle, a.GraphExecDestroy, {"cuGraphExecDestroy"});
  resolve(handle, a.GraphDestroy, {"cuGraphDestroy"});
  resolve(handle, a.EventCreate, {"cuEventCreate"});
  resolve(handle, a.EventDestroy, {"cuEventDestroy_v2"});
  resolve(handle, a.EventRecord, {"cuEventRecord"});
  resolve(handle, a.EventSynchronize, {"cuEventSynchronize"});
  // _v2 appeared with the 12.8 driver; older drivers export only the unversioned symbol, which has
  // the same signature.
  resolve(handle, a.EventElapsedTime, {"cuEventElapsedTime_v2", "cuEventElapsedTime"});
  resolve(handle, a.TensorMapEncodeTiled, {"cuTensorMapEncodeTiled"});
  resolve(handle, a.GetErrorName, {"cuGetErrorName"});
  resolve(handle, a.GetErrorString, {"cuGetErrorString"});
  return a;
}

std::string describe(const Api* a, CUresult result) {
  const char* name = nullptr;
  const char* text = nullptr;
  // cuGetErrorName/String need no cuInit, so they work even when initialisation itself failed.
  if (a != nullptr && a->GetErrorName != nullptr) a->GetErrorName(result, &name);
  if (a != nullptr && a->GetErrorString != nullptr) a->GetErrorString(result, &text);
  std::string out = name != nullptr ? name : "CUresult " + std::to_string(static_cast<int>(result));
  if (text != nullptr) out += std::string(": ") + text;
  return out;
}

Loaded load() {
  Loaded loaded;
  // The handle is never closed: the function pointers must stay valid until the process exits.
  void* handle = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    loaded.error.emplace(Stage::Driver, "dlopen",
                         std::string(kLibrary) + " could not be loaded (" +
                             (reason != nullptr ? reason : "unknown reason") +
                             "): GPU calls need an NVIDIA driver; code generation and NVRTC "
                             "compilation work without one");
    return loaded;
  }
  try {
    loaded.api = resolve_all(handle);
  } catch (const Error& error) {
    loaded.error.emplace(error);
    return loaded;
  }
  const CUresult init = loaded.api.Init(0);
  if (init != CUDA_SUCCESS) {
    loaded.error.emplace(Stage::Driver, "cuInit", describe(&loaded.api, init));
  }
  return loaded;
}

const Loaded& loaded() {
  static const Loaded instance = load();  // C++11 guarantees one thread-safe initialisation
  return instance;
}

int attribute(CUdevice device, CUdevice_attribute which, const char* what) {
  int value = 0;
  const CUresult result = api().DeviceGetAttribute(&value, which, device);
  if (result != CUDA_SUCCESS) {
    throw Error(
        Stage::Driver, "cuDeviceGetAttribute",
        describe(&api(), result) + " (reading " + what + " of device " + std::to_string(device) + ")");
  }
  return value;
}

}  // namespace

const Api& api() {
  const Loaded& state = loaded();
  if (state.error) throw *state.error;
  return state.api;
}

bool available(std::string* why) {
  try {
    const Api& a = api();
    int count = 0;
    const CUresult result = a.DeviceGetCount(&count);
    if (result != CUDA_SUCCESS) {
      if (why != nullptr) *why = "cuDeviceGetCount failed: " + describe(&a, result);
      return false;
    }
    if (count < 1) {
      if (why != nullptr) *why = "the CUDA driver reports no devices";
      return false;
    }
    return true;
  } catch (const std::exception& error) {
    if (why != nullptr) *why = error.what();
  }
  return false;
}

std::string error_text(CUresult result) {
  const Loaded& state = loaded();
  return describe(state.error ? nullptr : &state.api, result);
}

void check(CUresult result, const char* call) {
  if (result != CUDA_SUCCESS) throw Error(Stage::Driver, call, error_text(result));
}

namespace {

// Device 0's primary context, retained once for the life of the process. Releasing it when the last
// fa2jit object dies would destroy modules and memory that callers may still hold.
CUcontext primary_context() {
  static std::mutex mutex;
  static CUcontext context = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (context != nullptr) return context;
  const Api& a = api();
  int count = 0;
  check(a.DeviceGetCount(&count), "cuDeviceGetCount");
  if (count < 1) {
    throw Error(Stage::Driver, "cuDeviceGetCount", "the CUDA driver reports no devices");
  }
  CUdevice device = 0;
  check(a.DeviceGet(&device, 0), "cuDeviceGet");
  check(a.DevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
  return context;
}

}  // namespace

CUdevice ensure_context() {
  const Api& a = api();
  CUcontext current = nullptr;
  check(a.CtxGetCurrent(&current), "cuCtxGetCurrent");
  if (current == nullptr) check(a.CtxSetCurrent(primary_context()), "cuCtxSetCurrent");
  CUdevice device = 0;
  check(a.CtxGetDevice(&device), "cuCtxGetDevice");
  return device;
}

DeviceInfo device_info(CUdevice device) {
  const Api& a = api();
  DeviceInfo info;
  char name[256] = {};
  check(a.DeviceGetName(name, static_cast<int>(sizeof(name)), device), "cuDeviceGetName");
  info.name = name;
  info.cc_major = attribute(device, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "the compute capability");
  info.cc_minor = attribute(device, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "the compute capability");
  info.sm_count = attribute(device, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "the SM count");
  info.l2_cache_bytes = attribute(device, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, "the L2 cache size");
  info.max_smem_optin = attribute(device, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                                  "the opt-in shared memory limit");
  check(a.DriverGetVersion(&info.driver_version), "cuDriverGetVersion");
  return info;
}

CUcontext current_context() {
  ensure_context();
  CUcontext context = nullptr;
  check(api().CtxGetCurrent(&context), "cuCtxGetCurrent");
  return context;
}

}  // namespace fa2::driver
