#include "runtime/kernel_module.hpp"

#include "runtime/context_device.hpp"
#include "runtime/driver.hpp"

namespace fa2 {

KernelModule KernelModule::load(const TileConfig& config, const std::vector<char>& cubin) {
  KernelModule loaded;
  loaded.config = config;
  loaded.module = Module::load(cubin);
  for (const std::string& name : config.entry_points()) loaded.functions.push_back(loaded.module.function(name));
  driver::check(driver::api().FuncSetAttribute(loaded.main(), CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                               config.smem_bytes()),
                "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
  int per_sm = 0;
  driver::check(driver::api().OccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, loaded.main(), config.threads(),
                                                                         config.smem_bytes()),
                "cuOccupancyMaxActiveBlocksPerMultiprocessor");
  loaded.sm_count = context_device(driver::current_context()).info.sm_count;
  loaded.resident_blocks = per_sm * loaded.sm_count;
  return loaded;
}

}  // namespace fa2
