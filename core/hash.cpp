#include "core/hash.h"

#include <cstdio>

namespace tightfit {

uint64_t fnv1a(const void* data, size_t size, uint64_t seed) {
  constexpr uint64_t kPrime = 1099511628211ULL;
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < size; ++i) {
    h ^= bytes[i];
    h *= kPrime;
  }
  return h;
}

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string fnv1a_hex(const std::string& text) { return hex64(fnv1a(text.data(), text.size())); }

}  // namespace tightfit
