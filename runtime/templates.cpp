// Which template set a compile uses, and the hash that ties cached cubins to that set.
#include "runtime/embedded_templates.hpp"

#include "common/fnv1a.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "common/error.hpp"

namespace fa2 {

namespace {

constexpr const char* kOverrideEnv = "FA2JIT_TEMPLATE_DIR";

// Reads a whole file as bytes; templates are passed to NVRTC verbatim.
std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(Stage::Codegen, kOverrideEnv, "cannot open template file '" + path.string() + "'");
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    throw Error(Stage::Codegen, kOverrideEnv, "cannot read template file '" + path.string() + "'");
  }
  return text;
}

std::vector<TemplateFile> read_override_dir(const std::string& root) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(root) / "fa2";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error(Stage::Codegen, kOverrideEnv,
                "template override directory '" + dir.string() + "' does not exist or is not a directory (" +
                    kOverrideEnv + "=" + root + ")");
  }
  std::vector<TemplateFile> files;
  // Family folders (fa2/fwd/, fa2/bwd/) are read too, as the build-time embedding does.
  fs::recursive_directory_iterator it(dir, ec);
  if (ec) {
    throw Error(Stage::Codegen, kOverrideEnv,
                "cannot list template override directory '" + dir.string() + "': " + ec.message());
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::error_code type_ec;
    // Same rule as the build-time embedding: regular files only (symlinks to files count).
    if (!it->is_regular_file(type_ec)) continue;
    files.push_back({"fa2/" + fs::relative(it->path(), dir).generic_string(), read_file(it->path())});
  }
  if (ec) {
    throw Error(Stage::Codegen, kOverrideEnv,
                "cannot list template override directory '" + dir.string() + "': " + ec.message());
  }
  if (files.empty()) {
    throw Error(Stage::Codegen, kOverrideEnv,
                "template override directory '" + dir.string() + "' contains no template files");
  }
  // Sorted like the embedded set so both give the same hash for the same files.
  std::sort(files.begin(), files.end(),
            [](const TemplateFile& a, const TemplateFile& b) { return a.include_name < b.include_name; });
  return files;
}

}  // namespace

std::vector<TemplateFile> active_templates() {
  // An empty value counts as unset, so `FA2JIT_TEMPLATE_DIR= cmd` turns the override off.
  const char* root = std::getenv(kOverrideEnv);
  if (root == nullptr || *root == '\0') return embedded_templates();
  return read_override_dir(root);
}

std::string template_set_hash(const std::vector<TemplateFile>& files) {
  Fnv1a hash;
  for (const TemplateFile& file : files) hash.add_field(file.include_name).add_field(file.text);
  return hash.hex();
}

}  // namespace fa2
