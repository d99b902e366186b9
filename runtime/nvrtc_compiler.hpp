// The NVRTC stage: generated CUDA source in, cubin plus what ptxas reported out. Each step's NVRTC
// return code is checked, and a failure carries the full program log and the options used.
#pragma once

#include <string>
#include <vector>

#include "codegen/tile_config.hpp"

namespace fa2 {

// What ptxas reported for one kernel. registers == -1 means the log did not mention the kernel: where a
// driver is present NVRTC may serve a cubin from the driver's compute cache without running ptxas, and
// then the log is empty (seen on the GPU machine); complete_resources() fills the figures from the loaded
// function instead.
struct ResourceUsage {
  int registers = -1;
  int spill_store_bytes = 0;
  int spill_load_bytes = 0;
  int stack_frame_bytes = 0;  // local memory per thread
  int static_smem_bytes = 0;

  bool known() const { return registers >= 0; }
  // Spills, or any local memory (these kernels need none unless registers overflow).
  bool spills() const { return spill_store_bytes > 0 || spill_load_bytes > 0 || stack_frame_bytes > 0; }
};

struct CompiledKernel {
  std::string kernel_name;
  Arch arch = Arch::sm_90a;
  std::vector<char> cubin;
  std::string log;                   // the NVRTC program log, ptxas -v lines included
  std::vector<std::string> options;  // every option passed to nvrtcCompileProgram
  ResourceUsage resources;
  double compile_ms = 0;  // wall time of the whole NVRTC pipeline
};

// The options compile_source() passes: --gpu-architecture=<arch>, -std=c++17, --ptxas-options=-v,
// -default-device, then `extra_options`. Part of every cubin key.
std::vector<std::string> compile_options(Arch arch, const std::vector<std::string>& extra_options = {});

// Compiles `source` for `arch` to a cubin. The source may #include "fa2/..." template headers from
// active_templates(); they are passed to nvrtcCreateProgram as in-memory headers, so there are no -I
// paths and nothing is read from disk unless the template override directory is set. Options:
// --gpu-architecture=<arch, e.g. sm_90a>, -std=c++17, --ptxas-options=-v, -default-device, then
// `extra_options`. On any NVRTC failure throws fa2::Error(Stage::Compile, "<nvrtc call>",
// "<nvrtcGetErrorString> compiling <kernel_name> for <arch>", <full program log>, <options>).
CompiledKernel compile_source(const std::string& source, const std::string& kernel_name, Arch arch,
                              const std::vector<std::string>& extra_options = {});

// Reads the resource usage of `kernel_name` from a ptxas -v log. The lines it uses (CUDA 13.0):
//   ptxas info    : Compiling entry function '<kernel_name>' for 'sm_90a'
//   ptxas info    : Function properties for <kernel_name>
//   ptxas         .     176 bytes stack frame, 48 bytes spill stores, 64 bytes spill loads
//   ptxas info    : Used 24 registers, used 1 barriers, 1024 bytes smem
// Older ptxas prints the stack line with leading spaces only and adds ", 384 bytes cmem[0]". Missing
// lines leave the defaults.
ResourceUsage parse_ptxas_log(const std::string& log, const std::string& kernel_name);

// The NVRTC library's version, e.g. "13.0".
std::string nvrtc_version();

}  // namespace fa2
