// Just enough JSON for `list --json` and `show --json`: objects of strings, numbers and booleans,
// arrays of objects. Hand-written so that the CLI needs no JSON dependency.
#pragma once

#include <string>
#include <vector>

namespace fa2::cli {

// `text` as a JSON string literal, quotes included; control characters are \u-escaped.
std::string json_string(const std::string& text);
// A finite number in its shortest round-trip form; NaN and infinities (not JSON) become null.
std::string json_number(double value);

// One JSON object, its members in the order added.
class JsonObject {
 public:
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const char* value);  // else a literal would pick the bool overload
  JsonObject& add(const std::string& key, double value);
  JsonObject& add(const std::string& key, int value);
  JsonObject& add(const std::string& key, long long value);
  JsonObject& add(const std::string& key, bool value);
  JsonObject& add_raw(const std::string& key, const std::string& json);  // an already-encoded value
  std::string str() const;

 private:
  std::vector<std::string> members_;
};

// Items one per line, indented by `indent` spaces, so large lists stay readable and grep-able.
std::string json_array(const std::vector<std::string>& items, int indent = 2);

}  // namespace fa2::cli
