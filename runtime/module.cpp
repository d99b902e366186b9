#include "runtime/module.hpp"

#include <utility>

#include "runtime/driver.hpp"
#include "common/error.hpp"

namespace fa2 {

Module Module::load(const std::vector<char>& cubin) {
  if (cubin.empty()) {
    throw Error(Stage::Driver, "cuModuleLoadData", "cannot load an empty cubin (0 bytes)");
  }
  driver::ensure_context();
  CUmodule module = nullptr;
  driver::check(driver::api().ModuleLoadData(&module, cubin.data()), "cuModuleLoadData");
  return Module(module);
}

Module::~Module() { reset(); }

Module::Module(Module&& other) noexcept : module_(std::exchange(other.module_, nullptr)) {}

Module& Module::operator=(Module&& other) noexcept {
  if (this != &other) {
    reset();
    module_ = std::exchange(other.module_, nullptr);
  }
  return *this;
}

void Module::reset() noexcept {
  if (module_ == nullptr) return;
  // The driver is loaded whenever a module exists, so api() cannot throw here. The result is
  // ignored: at process exit the driver may already be shut down (CUDA_ERROR_DEINITIALIZED).
  driver::api().ModuleUnload(module_);
  module_ = nullptr;
}

CUfunction Module::function(const std::string& name) const {
  if (module_ == nullptr) {
    throw Error(Stage::Driver, "cuModuleGetFunction", "no module loaded to look up kernel '" + name + "' in");
  }
  CUfunction function = nullptr;
  const CUresult result = driver::api().ModuleGetFunction(&function, module_, name.c_str());
  if (result != CUDA_SUCCESS) {
    throw Error(Stage::Driver, "cuModuleGetFunction",
                driver::error_text(result) + " looking up kernel '" + name + "'");
  }
  return function;
}

void complete_resources(ResourceUsage& resources, CUfunction function) {
  if (resources.known()) return;
  auto attribute = [&](CUfunction_attribute which, const char* what) {
    int value = 0;
    driver::check(driver::api().FuncGetAttribute(&value, which, function), what);
    return value;
  };
  resources.registers = attribute(CU_FUNC_ATTRIBUTE_NUM_REGS, "cuFuncGetAttribute(NUM_REGS)");
  resources.stack_frame_bytes = attribute(CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, "cuFuncGetAttribute(LOCAL_SIZE_BYTES)");
  resources.static_smem_bytes = attribute(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, "cuFuncGetAttribute(SHARED_SIZE_BYTES)");
}

}  // namespace fa2
