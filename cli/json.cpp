#include "cli/json.hpp"

#include <fmt/format.h>

#include <cmath>

namespace fa2::cli {

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        else
          out += c;  // UTF-8 passes through: JSON text is UTF-8
    }
  }
  return out + "\"";
}

std::string json_number(double value) { return std::isfinite(value) ? fmt::format("{}", value) : "null"; }

JsonObject& JsonObject::add(const std::string& key, const std::string& value) {
  return add_raw(key, json_string(value));
}
JsonObject& JsonObject::add(const std::string& key, const char* value) { return add(key, std::string(value)); }
JsonObject& JsonObject::add(const std::string& key, double value) { return add_raw(key, json_number(value)); }
JsonObject& JsonObject::add(const std::string& key, int value) { return add_raw(key, std::to_string(value)); }
JsonObject& JsonObject::add(const std::string& key, long long value) { return add_raw(key, std::to_string(value)); }
JsonObject& JsonObject::add(const std::string& key, bool value) { return add_raw(key, value ? "true" : "false"); }

JsonObject& JsonObject::add_raw(const std::string& key, const std::string& json) {
  members_.push_back(json_string(key) + ": " + json);
  return *this;
}

std::string JsonObject::str() const {
  std::string out = "{";
  for (std::size_t i = 0; i < members_.size(); ++i) out += (i == 0 ? "" : ", ") + members_[i];
  return out + "}";
}

std::string json_array(const std::vector<std::string>& items, int indent) {
  if (items.empty()) return "[]";
  const std::string pad(indent, ' ');
  std::string out = "[\n";
  for (std::size_t i = 0; i < items.size(); ++i) out += pad + items[i] + (i + 1 < items.size() ? ",\n" : "\n");
  return out + std::string(indent > 2 ? indent - 2 : 0, ' ') + "]";
}

}  // namespace fa2::cli
