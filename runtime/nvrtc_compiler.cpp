#include "runtime/nvrtc_compiler.hpp"

#include <nvrtc.h>

#include <cctype>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <optional>
#include <sstream>

#include "runtime/embedded_templates.hpp"
#include "common/error.hpp"

namespace fa2 {

namespace {

// Owns an nvrtcProgram so every exit path, exceptions included, destroys it.
class Program {
 public:
  explicit Program(nvrtcProgram program) : program_(program) {}
  ~Program() { nvrtcDestroyProgram(&program_); }  // nothing useful to do with a failure here
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  nvrtcProgram get() const { return program_; }

 private:
  nvrtcProgram program_;
};

// Everything an error report needs about the compile in progress.
struct CompileContext {
  const std::string& kernel_name;
  Arch arch;
  const std::vector<std::string>& options;
};

[[noreturn]] void fail(const CompileContext& context, const char* call, nvrtcResult result,
                       std::string log = {}) {
  throw Error(Stage::Compile, call,
              std::string(nvrtcGetErrorString(result)) + " compiling " + context.kernel_name + " for " +
                  arch_name(context.arch),
              std::move(log), context.options);
}

void check(const CompileContext& context, nvrtcResult result, const char* call, const std::string& log = {}) {
  if (result != NVRTC_SUCCESS) fail(context, call, result, log);
}

// The program log; on failure to read it, a note saying why, so the original error still surfaces.
std::optional<std::string> try_program_log(nvrtcProgram program, nvrtcResult* error) {
  std::size_t size = 0;
  nvrtcResult result = nvrtcGetProgramLogSize(program, &size);
  if (result == NVRTC_SUCCESS) {
    std::string log(size, '\0');
    result = size > 0 ? nvrtcGetProgramLog(program, log.data()) : NVRTC_SUCCESS;
    if (result == NVRTC_SUCCESS) {
      while (!log.empty() && log.back() == '\0') log.pop_back();  // the size counts the terminator
      return log;
    }
  }
  *error = result;
  return std::nullopt;
}

// ---- ptxas log parsing ----

std::string trim(const std::string& text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return text.substr(begin, end - begin);
}

std::optional<int> to_int(const std::string& line, std::size_t begin, std::size_t end) {
  if (begin >= end) return std::nullopt;
  long value = std::strtol(line.substr(begin, end - begin).c_str(), nullptr, 10);
  if (value > INT_MAX) return std::nullopt;
  return static_cast<int>(value);
}

// The integer right before `suffix` ("176 bytes stack frame" -> 176).
std::optional<int> number_before(const std::string& line, const char* suffix) {
  const std::size_t at = line.find(suffix);
  if (at == std::string::npos) return std::nullopt;
  std::size_t end = at;
  while (end > 0 && line[end - 1] == ' ') --end;
  std::size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(line[begin - 1]))) --begin;
  return to_int(line, begin, end);
}

// The integer right after `prefix` ("Used 24 registers" -> 24).
std::optional<int> number_after(const std::string& line, const char* prefix) {
  std::size_t at = line.find(prefix);
  if (at == std::string::npos) return std::nullopt;
  std::size_t begin = at + std::char_traits<char>::length(prefix);
  while (begin < line.size() && line[begin] == ' ') ++begin;
  std::size_t end = begin;
  while (end < line.size() && std::isdigit(static_cast<unsigned char>(line[end]))) ++end;
  return to_int(line, begin, end);
}

void assign(int& field, std::optional<int> value) {
  if (value) field = *value;
}

}  // namespace

ResourceUsage parse_ptxas_log(const std::string& log, const std::string& kernel_name) {
  constexpr const char* kEntry = "Compiling entry function '";
  constexpr const char* kProperties = "Function properties for ";
  ResourceUsage usage;
  // The "Used ... registers" line belongs to the entry function compiled last; the stack/spill line
  // to the function named by the last "Function properties for" header (device functions get
  // their own headers, which must not overwrite the kernel's numbers).
  bool in_entry = false;
  bool in_properties = false;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    if (std::size_t at = line.find(kEntry); at != std::string::npos) {
      const std::size_t begin = at + std::char_traits<char>::length(kEntry);
      const std::size_t end = line.find('\'', begin);
      in_entry = end != std::string::npos && line.compare(begin, end - begin, kernel_name) == 0;
      in_properties = false;
      continue;
    }
    if (std::size_t at = line.find(kProperties); at != std::string::npos) {
      in_properties = trim(line.substr(at + std::char_traits<char>::length(kProperties))) == kernel_name;
      continue;
    }
    if (in_properties && line.find("bytes stack frame") != std::string::npos) {
      assign(usage.stack_frame_bytes, number_before(line, "bytes stack frame"));
      assign(usage.spill_store_bytes, number_before(line, "bytes spill stores"));
      assign(usage.spill_load_bytes, number_before(line, "bytes spill loads"));
      continue;
    }
    if (in_entry && line.find("Used ") != std::string::npos && line.find(" registers") != std::string::npos) {
      assign(usage.registers, number_after(line, "Used "));
      assign(usage.static_smem_bytes, number_before(line, "bytes smem"));
    }
  }
  return usage;
}

std::vector<std::string> compile_options(Arch arch, const std::vector<std::string>& extra_options) {
  std::vector<std::string> options = {std::string("--gpu-architecture=") + arch_name(arch), "-std=c++17",
                                      "--ptxas-options=-v", "-default-device"};
  options.insert(options.end(), extra_options.begin(), extra_options.end());
  return options;
}

CompiledKernel compile_source(const std::string& source, const std::string& kernel_name, Arch arch,
                              const std::vector<std::string>& extra_options) {
  const auto start = std::chrono::steady_clock::now();

  CompiledKernel out;
  out.kernel_name = kernel_name;
  out.arch = arch;
  out.options = compile_options(arch, extra_options);
  const CompileContext context{out.kernel_name, arch, out.options};

  // Headers are handed to NVRTC in memory: the compile sees exactly the template set whose hash
  // goes into cache keys, never whatever happens to be on disk.
  const std::vector<TemplateFile> templates = active_templates();
  std::vector<const char*> header_texts;
  std::vector<const char*> include_names;
  header_texts.reserve(templates.size());
  include_names.reserve(templates.size());
  for (const TemplateFile& file : templates) {
    header_texts.push_back(file.text.c_str());
    include_names.push_back(file.include_name.c_str());
  }

  nvrtcProgram raw = nullptr;
  const std::string program_name = kernel_name + ".cu";  // the file name NVRTC diagnostics show
  check(context,
        nvrtcCreateProgram(&raw, source.c_str(), program_name.c_str(), static_cast<int>(templates.size()),
                           header_texts.data(), include_names.data()),
        "nvrtcCreateProgram");
  Program program(raw);

  std::vector<const char*> option_ptrs;
  option_ptrs.reserve(out.options.size());
  for (const std::string& option : out.options) option_ptrs.push_back(option.c_str());

  const nvrtcResult compiled =
      nvrtcCompileProgram(program.get(), static_cast<int>(option_ptrs.size()), option_ptrs.data());
  nvrtcResult log_error = NVRTC_SUCCESS;
  std::optional<std::string> log = try_program_log(program.get(), &log_error);
  if (compiled != NVRTC_SUCCESS) {
    fail(context, "nvrtcCompileProgram", compiled,
         log ? *log
             : std::string("(the program log could not be read: ") + nvrtcGetErrorString(log_error) + ")");
  }
  if (!log) fail(context, "nvrtcGetProgramLog", log_error);
  out.log = std::move(*log);

  std::size_t cubin_size = 0;
  check(context, nvrtcGetCUBINSize(program.get(), &cubin_size), "nvrtcGetCUBINSize", out.log);
  if (cubin_size == 0) {
    // NVRTC makes no cubin for a virtual architecture (e.g. a compute_XX option in extra_options).
    throw Error(Stage::Compile, "nvrtcGetCUBINSize",
                std::string("NVRTC produced no cubin compiling ") + kernel_name + " for " + arch_name(arch) +
                    " (was a virtual --gpu-architecture=compute_XX given?)",
                out.log, out.options);
  }
  out.cubin.resize(cubin_size);
  check(context, nvrtcGetCUBIN(program.get(), out.cubin.data()), "nvrtcGetCUBIN", out.log);

  out.resources = parse_ptxas_log(out.log, kernel_name);
  out.compile_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return out;
}

std::string nvrtc_version() {
  int major = 0;
  int minor = 0;
  const nvrtcResult result = nvrtcVersion(&major, &minor);
  if (result != NVRTC_SUCCESS) {
    throw Error(Stage::Compile, "nvrtcVersion",
                std::string(nvrtcGetErrorString(result)) + " querying the NVRTC version");
  }
  return std::to_string(major) + "." + std::to_string(minor);
}

}  // namespace fa2
