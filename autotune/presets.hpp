// Model presets for `fa2-tune tune --model`: the attention shapes of well-known models.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace fa2 {

struct ModelPreset {
  const char* name;
  int heads_q;
  int heads_kv;
  int head_dim;
};

const std::vector<ModelPreset>& model_presets();  // llama3-8b, llama3-70b, mistral-7b, ...
std::optional<ModelPreset> find_model_preset(const std::string& name);
std::string model_preset_names();  // "llama3-8b|llama3-70b|..."

}  // namespace fa2
