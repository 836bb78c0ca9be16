#pragma once
// Content hashes that name configs, networks, tables and cache entries. FNV-1a is not a
// cryptographic hash: it tells versions apart, it does not defend against forgery.

#include <cstddef>
#include <cstdint>
#include <string>

namespace tightfit {

/// 64-bit FNV-1a of `size` bytes at `data`, continuing from `seed` (so a hash can be built from
/// several pieces without copying them together).
uint64_t fnv1a(const void* data, size_t size, uint64_t seed = 1469598103934665603ULL);

/// 64-bit FNV-1a of `text`, as 16 hex digits: stable across builds and machines (config hashes,
/// structure hashes).
std::string fnv1a_hex(const std::string& text);

/// `h` as 16 hex digits.
std::string hex64(uint64_t h);

}  // namespace tightfit
