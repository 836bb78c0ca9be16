#include "search/space.h"

#include <algorithm>

#include "graph/json_util.h"

namespace tightfit::search {

SpaceConfig SpaceConfig::from_json(const nlohmann::json& j, const std::string& where) {
  SpaceConfig c;
  if (j.is_null()) return c;
  check_keys(j, {"keep", "weight_bits", "channel_multiple"}, where);
  c.keep = get_or(j, "keep", c.keep, where);
  c.weight_bits = get_or(j, "weight_bits", c.weight_bits, where);
  if (const auto it = j.find("channel_multiple"); it != j.end()) {
    if (it->is_string() && it->get<std::string>() == "auto") {
      c.channel_multiple = kAutoChannelMultiple;
    } else if (it->is_number_integer() && it->get<int64_t>() >= 1) {
      c.channel_multiple = it->get<int64_t>();
    } else {
      throw ConfigError(where + ".channel_multiple is " + it->dump() +
                        "; give a whole number >= 1 (e.g. 8) or \"auto\"");
    }
  }
  if (c.keep.empty() || c.weight_bits.empty())
    throw ConfigError(where + ": keep and weight_bits need at least one value each");
  for (double k : c.keep)
    if (!(k > 0.0 && k <= 1.0))
      throw ConfigError(where + ".keep has " + std::to_string(k) + "; fractions must be in (0, 1]");
  for (int b : c.weight_bits)
    if (std::find(policies::kWeightBits.begin(), policies::kWeightBits.end(), b) ==
        policies::kWeightBits.end())
      throw ConfigError(where + ".weight_bits has " + std::to_string(b) + "; supported: 32, 8");
  return c;
}

nlohmann::json SpaceConfig::to_json() const {
  return {{"keep", keep},
          {"weight_bits", weight_bits},
          {"channel_multiple", channel_multiple == kAutoChannelMultiple
                                   ? nlohmann::json("auto")
                                   : nlohmann::json(channel_multiple)}};
}

int64_t SpaceConfig::resolved_channel_multiple(const std::string& where) const {
  if (channel_multiple == kAutoChannelMultiple)
    throw ConfigError(where +
                      ".channel_multiple is \"auto\", which only `tightfit profile` "
                      "resolves (from measured latency curves); give a number instead, e.g. the "
                      "multiple profile printed");
  return channel_multiple;
}

SearchSpace::SearchSpace(const policies::DecisionPoints& points, SpaceConfig config)
    : points_(points), config_(std::move(config)) {
  config_.resolved_channel_multiple("space");  // "auto" must be resolved before a search
}

policies::Policy SearchSpace::sample(std::mt19937_64& rng) const {
  policies::Policy p;
  std::uniform_int_distribution<size_t> keep_pick(0, config_.keep.size() - 1);
  std::uniform_int_distribution<size_t> bits_pick(0, config_.weight_bits.size() - 1);
  for (const auto& c : points_.channels) {
    const double k = config_.keep[keep_pick(rng)];
    if (k < 1.0) p.keep[c.id] = k;
  }
  for (const auto& l : points_.layers) {
    const int b = config_.weight_bits[bits_pick(rng)];
    if (b != 32) p.weight_bits[l.name] = b;
  }
  return p;
}

policies::Policy SearchSpace::uniform(double keep, int bits) const {
  policies::Policy p;
  if (keep < 1.0)
    for (const auto& c : points_.channels) p.keep[c.id] = keep;
  if (bits != 32)
    for (const auto& l : points_.layers) p.weight_bits[l.name] = bits;
  return p;
}

}  // namespace tightfit::search
