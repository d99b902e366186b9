#include "autotune/presets.hpp"

namespace fa2 {

const std::vector<ModelPreset>& model_presets() {
  // Attention shapes from each model's published config (num_attention_heads, num_key_value_heads,
  // hidden_size / num_attention_heads).
  static const std::vector<ModelPreset> presets{
      {"llama3-8b", 32, 8, 128},
      {"llama3-70b", 64, 8, 128},
      {"mistral-7b", 32, 8, 128},
      {"qwen2-7b", 28, 4, 128},
      {"gemma2-9b", 16, 8, 256},
  };
  return presets;
}

std::optional<ModelPreset> find_model_preset(const std::string& name) {
  for (const ModelPreset& preset : model_presets())
    if (name == preset.name) return preset;
  return std::nullopt;
}

std::string model_preset_names() {
  std::string names;
  for (const ModelPreset& preset : model_presets()) names += (names.empty() ? "" : "|") + std::string(preset.name);
  return names;
}

}  // namespace fa2
