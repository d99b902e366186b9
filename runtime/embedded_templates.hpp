// The device template headers (templates/fa2/*) that generated kernels #include. They are embedded in
// the library at build time so a compile reads nothing from disk and a cached cubin can be tied to
// the exact template text that produced it.
#pragma once

#include <string>
#include <vector>

namespace fa2 {

struct TemplateFile {
  std::string include_name;  // the name a kernel #includes, e.g. "fa2/fwd/fwd_kernel.cuh"
  std::string text;
};

// The templates embedded at build time, sorted by include name. Defined in the file that
// cmake/embed_templates.cmake generates.
const std::vector<TemplateFile>& embedded_templates();

// The template set a compile uses: the embedded one, or, when the environment variable
// FA2JIT_TEMPLATE_DIR is set, every regular file under $FA2JIT_TEMPLATE_DIR/fa2/ read from disk
// (sorted by name), so templates can be edited without rebuilding. A missing or unreadable
// override directory throws fa2::Error(Stage::Codegen, ...) naming the path.
std::vector<TemplateFile> active_templates();

// 16 hex digits (FNV-1a 64) over the include names and texts of a template set, in order. Part of
// cache keys: a cubin built from other template text must never be reused.
std::string template_set_hash(const std::vector<TemplateFile>& files);

}  // namespace fa2
