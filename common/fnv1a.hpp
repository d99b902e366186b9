// FNV-1a 64: the one hash behind config hashes, template-set hashes and cubin keys. Not
// cryptographic; it only has to be stable across runs, machines and compilers.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace fa2 {

class Fnv1a {
 public:
  // Raw bytes.
  Fnv1a& add_bytes(std::string_view bytes) {
    for (unsigned char c : bytes) {
      state_ ^= c;
      state_ *= 0x100000001b3ull;
    }
    return *this;
  }

  // A length-prefixed field, so that moving bytes from one field to the next changes the hash.
  Fnv1a& add_field(std::string_view field) {
    char length[8];
    const std::uint64_t size = field.size();
    for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(size >> (8 * i));
    return add_bytes(std::string_view(length, 8)).add_bytes(field);
  }

  std::uint64_t value() const { return state_; }

  std::string hex() const {  // 16 lowercase hex digits
    char text[17];
    std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(state_));
    return text;
  }

 private:
  std::uint64_t state_ = 0xcbf29ce484222325ull;
};

}  // namespace fa2
