// The CUDA Driver API, loaded with dlopen("libcuda.so.1") on first use. Linking libcuda directly
// would stop the library from even loading on machines without an NVIDIA driver; loading it lazily
// keeps code generation, NVRTC compilation and the CLI usable there, and only GPU calls fail.
#pragma once

#include <cuda.h>

#include <string>

namespace fa2::driver {

// Entry points of libcuda.so.1, resolved by their exported (versioned) symbol names. The types come
// from <cuda.h>, whose macros map e.g. cuMemAlloc to cuMemAlloc_v2, so each pointer has the
// signature of the symbol it is resolved from.
struct Api {
  decltype(&::cuInit) Init;
  decltype(&::cuDriverGetVersion) DriverGetVersion;
  decltype(&::cuDeviceGet) DeviceGet;
  decltype(&::cuDeviceGetCount) DeviceGetCount;
  decltype(&::cuDeviceGetName) DeviceGetName;
  decltype(&::cuDeviceGetAttribute) DeviceGetAttribute;
  decltype(&::cuDevicePrimaryCtxRetain) DevicePrimaryCtxRetain;
  decltype(&::cuDevicePrimaryCtxRelease) DevicePrimaryCtxRelease;
  decltype(&::cuCtxGetCurrent) CtxGetCurrent;
  decltype(&::cuCtxSetCurrent) CtxSetCurrent;
  decltype(&::cuCtxGetDevice) CtxGetDevice;
  decltype(&::cuCtxSynchronize) CtxSynchronize;
  decltype(&::cuModuleLoadData) ModuleLoadData;
  decltype(&::cuModuleUnload) ModuleUnload;
  decltype(&::cuModuleGetFunction) ModuleGetFunction;
  decltype(&::cuFuncSetAttribute) FuncSetAttribute;
  decltype(&::cuFuncGetAttribute) FuncGetAttribute;
  decltype(&::cuLaunchKernel) LaunchKernel;
  decltype(&::cuLaunchKernelEx) LaunchKernelEx;
  decltype(&::cuOccupancyMaxActiveBlocksPerMultiprocessor) OccupancyMaxActiveBlocksPerMultiprocessor;
  decltype(&::cuMemAlloc) MemAlloc;
  decltype(&::cuMemFree) MemFree;
  decltype(&::cuMemAllocAsync) MemAllocAsync;
  decltype(&::cuMemFreeAsync) MemFreeAsync;
  decltype(&::cuMemcpyHtoD) MemcpyHtoD;
  decltype(&::cuMemcpyDtoH) MemcpyDtoH;
  decltype(&::cuMemcpyDtoD) MemcpyDtoD;
  decltype(&::cuMemsetD8) MemsetD8;
  decltype(&::cuMemsetD16) MemsetD16;
  decltype(&::cuMemsetD32) MemsetD32;
  decltype(&::cuStreamCreate) StreamCreate;
  decltype(&::cuStreamDestroy) StreamDestroy;
  decltype(&::cuStreamSynchronize) StreamSynchronize;
  decltype(&::cuStreamIsCapturing) StreamIsCapturing;
  // CUDA graphs, for callers and tests that capture fa2jit's launches themselves.
  decltype(&::cuStreamBeginCapture) StreamBeginCapture;
  decltype(&::cuStreamEndCapture) StreamEndCapture;
  decltype(&::cuGraphInstantiateWithFlags) GraphInstantiateWithFlags;
  decltype(&::cuGraphLaunch) GraphLaunch;
  decltype(&::cuGraphExecDestroy) GraphExecDestroy;
  decltype(&::cuGraphDestroy) GraphDestroy;
  decltype(&::cuEventCreate) EventCreate;
  decltype(&::cuEventDestroy) EventDestroy;
  decltype(&::cuEventRecord) EventRecord;
  decltype(&::cuEventSynchronize) EventSynchronize;
  decltype(&::cuEventElapsedTime) EventElapsedTime;
  // TMA descriptors (CUDA 12.0+): the tensor maps of the warp-specialized forward (runtime/tma_maps.cpp).
  decltype(&::cuTensorMapEncodeTiled) TensorMapEncodeTiled;
  decltype(&::cuGetErrorName) GetErrorName;
  decltype(&::cuGetErrorString) GetErrorString;
};

// The loaded API. The first call (thread-safe, once per process) dlopens libcuda.so.1, resolves
// every entry point and calls cuInit(0). Throws fa2::Error(Stage::Driver, ...) when the driver
// cannot be loaded, lacks an entry point, or cuInit fails; every later call throws the same error.
const Api& api();

// Whether the driver can be loaded, cuInit(0) succeeds and there is at least one device. Never
// throws; when it returns false and `why` is given, *why says what is missing.
bool available(std::string* why = nullptr);

// Throws fa2::Error(Stage::Driver, call, "<CUDA_ERROR_NAME>: <error string>") unless result is
// CUDA_SUCCESS.
void check(CUresult result, const char* call);

// "<CUDA_ERROR_NAME>: <error string>" for `result`, for callers that add their own context to an
// error. Never throws; falls back to "CUresult <n>" when the driver cannot name the code.
std::string error_text(CUresult result);

// Makes sure the calling thread has a current context: keeps the caller's current one if any (e.g.
// PyTorch's), otherwise retains device 0's primary context (once per process, never released, so
// modules and allocations made in it stay valid) and makes it current. Returns the current
// context's device.
CUdevice ensure_context();

// ensure_context(), then the calling thread's current context.
CUcontext current_context();

struct DeviceInfo {
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  int sm_count = 0;
  int max_smem_optin = 0;  // bytes of shared memory a block may opt in to
  int l2_cache_bytes = 0;
  int driver_version = 0;  // e.g. 13000 for CUDA 13.0
};

DeviceInfo device_info(CUdevice device);

}  // namespace fa2::driver
