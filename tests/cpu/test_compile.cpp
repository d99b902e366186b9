// NVRTC: every default config compiles without spills for sm_80 and sm_90a; compile errors carry the
// log and options; the template override directory works and fails clearly; ptxas log parsing; the
// template set hash.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "autotune/tuner.hpp"
#include "codegen/emit.hpp"
#include "codegen/tile_config.hpp"
#include "runtime/embedded_templates.hpp"
#include "common/error.hpp"
#include "runtime/nvrtc_compiler.hpp"

namespace fs = std::filesystem;

namespace {

constexpr const char* kOverrideEnv = "FA2JIT_TEMPLATE_DIR";

// Sets FA2JIT_TEMPLATE_DIR for its lifetime and restores the previous value (or unset) afterwards,
// also when a REQUIRE or an exception leaves the test early.
class ScopedTemplateDir {
 public:
  explicit ScopedTemplateDir(const std::string& value) {
    if (const char* old = std::getenv(kOverrideEnv)) previous_ = old;
    ::setenv(kOverrideEnv, value.c_str(), 1);
  }
  ~ScopedTemplateDir() {
    if (previous_)
      ::setenv(kOverrideEnv, previous_->c_str(), 1);
    else
      ::unsetenv(kOverrideEnv);
  }
  ScopedTemplateDir(const ScopedTemplateDir&) = delete;
  ScopedTemplateDir& operator=(const ScopedTemplateDir&) = delete;

 private:
  std::optional<std::string> previous_;
};

// A fresh mkdtemp directory holding a copy of the repo's templates/fa2/, removed on destruction.
class TempTemplateCopy {
 public:
  TempTemplateCopy() {
    std::string pattern = (fs::temp_directory_path() / "fa2jit_templates_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    root_ = pattern;
    fs::copy(fs::path(FA2JIT_SOURCE_DIR) / "templates" / "fa2", root_ / "fa2", fs::copy_options::recursive);
  }
  ~TempTemplateCopy() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  TempTemplateCopy(const TempTemplateCopy&) = delete;
  TempTemplateCopy& operator=(const TempTemplateCopy&) = delete;

  const fs::path& root() const { return root_; }
  fs::path file(const std::string& name) const { return root_ / "fa2" / name; }

  std::string read(const std::string& name) const {
    std::ifstream in(file(name), std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream out(file(name), std::ios::binary | std::ios::trunc);
    out << text;
  }

 private:
  fs::path root_;
};

struct CompileOutcome {
  fa2::TileConfig config;
  bool ok = false;
  std::string error;  // what() and log of a failure
  fa2::ResourceUsage resources;
  std::size_t cubin_bytes = 0;
  double compile_ms = 0;
};

CompileOutcome compile_one(const fa2::TileConfig& config) {
  CompileOutcome outcome;
  outcome.config = config;
  try {
    const fa2::CompiledKernel kernel = fa2::compile_source(fa2::emit(config), config.name(), config.arch);
    outcome.ok = true;
    outcome.resources = kernel.resources;
    outcome.cubin_bytes = kernel.cubin.size();
    outcome.compile_ms = kernel.compile_ms;
  } catch (const fa2::Error& error) {
    outcome.error = std::string(error.what()) + "\n" + error.log();
  } catch (const std::exception& error) {
    outcome.error = error.what();
  }
  return outcome;
}

}  // namespace

TEST_SUITE("compile") {

TEST_CASE("every default config compiles for sm_80 and sm_90a: no spills at one block per SM, few at two") {
  std::vector<fa2::TileConfig> configs;
  for (fa2::Arch arch : {fa2::Arch::sm_80, fa2::Arch::sm_90a})
    for (int d = 32; d <= 256; d += 32)
      for (fa2::DType dtype : {fa2::DType::bf16, fa2::DType::fp16})
        for (bool causal : {false, true}) configs.push_back(fa2::default_config(d, dtype, causal, arch));
  REQUIRE(configs.size() == 64);

  // NVRTC is thread-safe per program: a fixed pool of workers pulls configs by index. No doctest
  // assertions run off the main thread.
  std::vector<CompileOutcome> outcomes(configs.size());
  std::atomic<std::size_t> next{0};
  const unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::future<void>> pool;
  for (unsigned w = 0; w < workers; ++w)
    pool.push_back(std::async(std::launch::async, [&] {
      for (std::size_t i = next++; i < configs.size(); i = next++) outcomes[i] = compile_one(configs[i]);
    }));
  for (auto& f : pool) f.get();

  MESSAGE("nvrtc ", fa2::nvrtc_version(), ", ", workers, " workers");
  for (const CompileOutcome& o : outcomes) {
    const std::string name = o.config.name();
    CAPTURE(name);
    CHECK_MESSAGE(o.ok, name, " failed to compile: ", o.error);
    if (!o.ok) continue;
    const fa2::ResourceUsage& r = o.resources;
    MESSAGE(name, ": registers ", r.registers, ", spill stores ", r.spill_store_bytes, " B, spill loads ",
            r.spill_load_bytes, " B, stack ", r.stack_frame_bytes, " B, static smem ", r.static_smem_bytes,
            " B, dynamic smem ", o.config.smem_bytes(), " B, cubin ", o.cubin_bytes, " B, ",
            static_cast<int>(o.compile_ms), " ms");
    CHECK_MESSAGE(r.registers > 0, name);
    CHECK_MESSAGE(r.registers <= 255, name);
    if (o.config.blocks_per_sm == 1) {
      CHECK_MESSAGE(r.spill_store_bytes == 0, name);
      CHECK_MESSAGE(r.spill_load_bytes == 0, name);
    } else {
      // Capped registers: the few spilled bytes the tuner accepts (measured faster than one block).
      CHECK_MESSAGE(r.registers <= o.config.register_cap(), name);
      CHECK_MESSAGE(fa2::within_tuned_spill_limit(r), name);
    }
    CHECK_MESSAGE(o.cubin_bytes > 0, name);
  }
}

TEST_CASE("a broken template gives a Compile error carrying the NVRTC log") {
  TempTemplateCopy copy;
  const std::string original = copy.read("fwd/fwd_kernel.cuh");
  REQUIRE(!original.empty());
  // An undeclared identifier used as a statement-level declaration: a plain syntax/semantic error.
  copy.write("fwd/fwd_kernel.cuh", original + "\nfa2jit_injected_syntax_error ;;; )\n");

  const fa2::TileConfig config = fa2::default_config(64, fa2::DType::fp16, false, fa2::Arch::sm_80);
  {
    ScopedTemplateDir env(copy.root().string());
    bool threw = false;
    try {
      (void)fa2::compile_source(fa2::emit(config), config.name(), config.arch);
    } catch (const fa2::Error& error) {
      threw = true;
      CHECK(error.stage() == fa2::Stage::Compile);
      CHECK_MESSAGE(error.log().find("fa2jit_injected_syntax_error") != std::string::npos, error.log());
      CHECK_MESSAGE(error.log().find("error") != std::string::npos, error.log());
      CHECK_MESSAGE(error.log().find("fwd_kernel.cuh") != std::string::npos, error.log());
      const std::string what = error.what();
      CHECK_MESSAGE(what.find(config.name()) != std::string::npos, what);
    }
    CHECK_MESSAGE(threw, "a template with a syntax error compiled");
  }
  CHECK(std::getenv(kOverrideEnv) == nullptr);
  // With the override gone the embedded templates are used again and the same config compiles.
  CHECK_NOTHROW((void)fa2::compile_source(fa2::emit(config), config.name(), config.arch));
}

TEST_CASE("an unmodified override copy compiles and hashes like the embedded set") {
  TempTemplateCopy copy;
  ScopedTemplateDir env(copy.root().string());
  const std::vector<fa2::TemplateFile> from_disk = fa2::active_templates();
  const std::vector<fa2::TemplateFile>& embedded = fa2::embedded_templates();
  REQUIRE(from_disk.size() == embedded.size());
  for (std::size_t i = 0; i < embedded.size(); ++i) {
    CHECK(from_disk[i].include_name == embedded[i].include_name);
    CHECK_MESSAGE(from_disk[i].text == embedded[i].text, embedded[i].include_name);
  }
  CHECK(fa2::template_set_hash(from_disk) == fa2::template_set_hash(embedded));
}

TEST_CASE("a source error throws with the log and the options") {
  const std::string source = "extern \"C\" __global__ void k() { undefined_name; }\n";
  bool threw = false;
  try {
    (void)fa2::compile_source(source, "k", fa2::Arch::sm_90a);
  } catch (const fa2::Error& error) {
    threw = true;
    CHECK(error.stage() == fa2::Stage::Compile);
    CHECK_MESSAGE(error.log().find("undefined_name") != std::string::npos, error.log());
    const auto& options = error.options();
    CHECK_MESSAGE(std::find(options.begin(), options.end(), "--gpu-architecture=sm_90a") != options.end(),
                  "options lack --gpu-architecture=sm_90a");
  }
  CHECK_MESSAGE(threw, "a source with an undefined name compiled");
}

TEST_CASE("a valid tiny source compiles and its resources are parsed") {
  const std::string source = "extern \"C\" __global__ void tiny(float* p) { p[threadIdx.x] += 1.0f; }\n";
  const fa2::CompiledKernel kernel = fa2::compile_source(source, "tiny", fa2::Arch::sm_80);
  CHECK(kernel.kernel_name == "tiny");
  CHECK(!kernel.cubin.empty());
  CHECK(kernel.resources.registers > 0);
  CHECK(kernel.resources.spill_store_bytes == 0);
  CHECK(std::find(kernel.options.begin(), kernel.options.end(), "--gpu-architecture=sm_80") != kernel.options.end());
}

TEST_CASE("a missing override directory gives a clear error naming the path") {
  const std::string missing = "/nonexistent/fa2jit_template_override_dir_for_test";
  ScopedTemplateDir env(missing);
  bool threw = false;
  try {
    (void)fa2::active_templates();
  } catch (const fa2::Error& error) {
    threw = true;
    CHECK(error.stage() == fa2::Stage::Codegen);
    const std::string what = error.what();
    CHECK_MESSAGE(what.find(missing) != std::string::npos, what);
  }
  CHECK_MESSAGE(threw, "active_templates() accepted a missing override directory");

  // compile_source reports the same thing rather than silently using the embedded set.
  const fa2::TileConfig config = fa2::default_config(32, fa2::DType::bf16, false, fa2::Arch::sm_80);
  try {
    (void)fa2::compile_source(fa2::emit(config), config.name(), config.arch);
    FAIL("compile_source ignored the missing override directory");
  } catch (const fa2::Error& error) {
    CHECK(std::string(error.what()).find(missing) != std::string::npos);
  }
}

TEST_CASE("parse_ptxas_log reads NVRTC 13 output") {
  const std::string log =
      "ptxas info    : Compiling entry function 'k' for 'sm_90a'\n"
      "ptxas info    : Function properties for k\n"
      "ptxas         .     224 bytes stack frame, 76 bytes spill stores, 92 bytes spill loads\n"
      "ptxas info    : Used 24 registers, used 1 barriers, 224 bytes cumulative stack size, 1200 bytes smem\n";
  const fa2::ResourceUsage usage = fa2::parse_ptxas_log(log, "k");
  CHECK(usage.registers == 24);
  CHECK(usage.spill_store_bytes == 76);
  CHECK(usage.spill_load_bytes == 92);
  CHECK(usage.stack_frame_bytes == 224);
  CHECK(usage.static_smem_bytes == 1200);

  // Another kernel's name does not match: the defaults stay.
  const fa2::ResourceUsage other = fa2::parse_ptxas_log(log, "kk");
  CHECK(other.registers == -1);
  CHECK(other.spill_store_bytes == 0);
  CHECK(other.spill_load_bytes == 0);
}

TEST_CASE("template_set_hash is stable and sensitive to one byte") {
  const std::vector<fa2::TemplateFile>& embedded = fa2::embedded_templates();
  REQUIRE(!embedded.empty());
  const std::string h = fa2::template_set_hash(embedded);
  CHECK(h.size() == 16);
  CHECK(h == fa2::template_set_hash(embedded));
  CHECK(h == fa2::template_set_hash(std::vector<fa2::TemplateFile>(embedded)));
  CHECK(std::is_sorted(embedded.begin(), embedded.end(), [](const auto& a, const auto& b) {
    return a.include_name < b.include_name;
  }));
  bool has_kernel = false;
  for (const auto& f : embedded) has_kernel |= f.include_name == "fa2/fwd/fwd_kernel.cuh";
  CHECK(has_kernel);

  // Flip one byte in the middle of one file.
  std::vector<fa2::TemplateFile> changed = embedded;
  REQUIRE(!changed.back().text.empty());
  std::string& text = changed.back().text;
  text[text.size() / 2] ^= 0x01;
  CHECK(fa2::template_set_hash(changed) != h);

  // Moving one byte from one file's end to the next file's start changes it too.
  if (embedded.size() >= 2) {
    std::vector<fa2::TemplateFile> moved = embedded;
    const char c = moved[0].text.back();
    moved[0].text.pop_back();
    moved[1].text.insert(moved[1].text.begin(), c);
    CHECK(fa2::template_set_hash(moved) != h);
  }
}

}  // TEST_SUITE
