#include "common/error.hpp"

namespace fa2 {

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::Config: return "config";
    case Stage::Codegen: return "codegen";
    case Stage::Compile: return "compile";
    case Stage::Driver: return "driver";
    case Stage::Launch: return "launch";
    case Stage::Argument: return "argument";
    case Stage::Cache: return "cache";
    case Stage::Tune: return "tune";
  }
  return "unknown";
}

namespace {
std::string compose(Stage stage, const std::string& api_call, const std::string& message) {
  std::string what = std::string("fa2jit ") + stage_name(stage) + " error";
  if (!api_call.empty()) what += " in " + api_call;
  return what + ": " + message;
}
}  // namespace

Error::Error(Stage stage, std::string api_call, std::string message, std::string log,
             std::vector<std::string> options)
    : std::runtime_error(compose(stage, api_call, message)),
      stage_(stage),
      api_call_(std::move(api_call)),
      message_(std::move(message)),
      log_(std::move(log)),
      options_(std::move(options)) {}

}  // namespace fa2
