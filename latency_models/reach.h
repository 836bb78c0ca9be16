#pragma once
// What a search space lets a network's layers become, as far as latency tables care: the
// channel counts pruning reaches and the factors low-rank factorization splits layers into.
// A table made for a space holds an entry for every layer configuration its reach allows.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tightfit::latency_models {

struct SpaceReach {
  std::vector<double> keep = {1.0};  ///< keep fractions of every prunable channel group
  int64_t channel_multiple = 1;      ///< kept channels rounded to this multiple
  /// layer -> the rank fractions it can take (< 1 factorizes it); layers not named stay whole.
  std::map<std::string, std::vector<double>> rank;
  /// layer -> the conv factorizations ("tucker2", "spatial") its ranks may use; absent: tucker2.
  std::map<std::string, std::vector<std::string>> factorization;
  /// Some layer may take activation bits below 32 (fake_quant steps before it).
  bool act_quant = false;
  /// Some layer may run in int8 (8-bit inputs and weights of at most 8 bits): int8 entries and
  /// quantize steps, for tables of the int8 precision.
  bool int8 = false;
  /// Some layer may take 16-bit weights (bf16 entries, for tables of the bf16 precision).
  bool bf16 = false;
};

}  // namespace tightfit::latency_models
