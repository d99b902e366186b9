// fa2::Error: the one exception type of fa2jit. It names the stage that failed, the API call, a
// message, and for NVRTC failures the full program log and the options used, so a caller can show
// exactly what went wrong without re-running anything.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace fa2 {

enum class Stage { Config, Codegen, Compile, Driver, Launch, Argument, Cache, Tune };

const char* stage_name(Stage stage);

class Error : public std::runtime_error {
 public:
  Error(Stage stage, std::string api_call, std::string message, std::string log = {},
        std::vector<std::string> options = {});

  Stage stage() const { return stage_; }
  const std::string& api_call() const { return api_call_; }
  const std::string& message() const { return message_; }
  const std::string& log() const { return log_; }
  const std::vector<std::string>& options() const { return options_; }

 private:
  Stage stage_;
  std::string api_call_;
  std::string message_;
  std::string log_;
  std::vector<std::string> options_;
};

}  // namespace fa2
