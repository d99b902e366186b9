// fa2::Module: a cubin loaded into the current CUDA context, unloaded when the object dies.
#pragma once

#include <cuda.h>

#include <string>
#include <vector>

#include "runtime/nvrtc_compiler.hpp"

namespace fa2 {

class Module {
 public:
  // Loads `cubin` into the calling thread's current context (made current with
  // driver::ensure_context() when there is none). Throws fa2::Error(Stage::Driver, ...) on failure.
  static Module load(const std::vector<char>& cubin);

  Module() = default;  // empty: holds no module
  ~Module();           // cuModuleUnload; errors are ignored, a destructor must not throw
  Module(Module&& other) noexcept;
  Module& operator=(Module&& other) noexcept;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The kernel `name` (its symbol, e.g. an extern "C" name). Throws fa2::Error naming the kernel
  // when the module has no such function.
  CUfunction function(const std::string& name) const;

  CUmodule get() const { return module_; }
  explicit operator bool() const { return module_ != nullptr; }

 private:
  explicit Module(CUmodule module) : module_(module) {}
  void reset() noexcept;

  CUmodule module_ = nullptr;
};

// When `resources` is unknown (see ResourceUsage), fills it from the loaded function's attributes:
// registers, local memory per thread (as the stack frame) and static shared memory.
void complete_resources(ResourceUsage& resources, CUfunction function);

}  // namespace fa2
