#pragma once
// Comparing secrets (bearer tokens) in time that does not depend on where they differ.
#include <cstddef>
#include <string_view>

namespace memha {

inline bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace memha
