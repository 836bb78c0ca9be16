#include "search/space.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <utility>

#include "core/json.h"
#include "policies/compress.h"
#include "policies/importance.h"

namespace tightfit::search {

namespace {

constexpr int kFloatBits = 32;
constexpr size_t kMaxListedNames = 8;

std::string bits_list(const std::vector<int>& bits) {
  std::string s;
  for (int b : bits) s += (s.empty() ? "" : ", ") + std::to_string(b);
  return s;
}

std::string some_names(const std::vector<std::string>& names) {
  std::vector<std::string> head(names.begin(),
                                names.begin() + std::min(names.size(), kMaxListedNames));
  std::string s = join(head);
  if (names.size() > kMaxListedNames) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

template <typename T>
void require_non_empty(const std::vector<T>& v, const std::string& where) {
  if (v.empty()) throw ConfigError(where + " needs at least one value");
}

void check_fractions(const std::vector<double>& v, const std::string& where) {
  require_non_empty(v, where);
  for (double k : v)
    if (!(k > 0.0 && k <= 1.0))
      throw ConfigError(where + " has " + std::to_string(k) + "; fractions must be in (0, 1]");
}

void check_sparsity(const std::vector<double>& v, const std::string& where) {
  require_non_empty(v, where);
  for (double s : v)
    if (!(s >= 0.0 && s < 1.0))
      throw ConfigError(where + " has " + std::to_string(s) + "; sparsities must be in [0, 1)");
}

void check_bits(const std::vector<int>& v, const std::vector<int>& allowed,
                const std::string& where) {
  require_non_empty(v, where);
  for (int b : v)
    if (std::find(allowed.begin(), allowed.end(), b) == allowed.end())
      throw ConfigError(where + " has " + std::to_string(b) + "; supported: " + bits_list(allowed));
}

std::vector<double> to_doubles(const std::vector<int>& v) { return {v.begin(), v.end()}; }

/// Sorted least compression first (descending for keep, bits and rank; ascending for
/// sparsity), without duplicates.
std::vector<double> ordered(std::vector<double> v, SearchSpace::Dim dim) {
  if (dim == SearchSpace::Dim::kSparsity)
    std::sort(v.begin(), v.end());
  else
    std::sort(v.begin(), v.end(), std::greater<>());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

double identity_value(SearchSpace::Dim dim) {
  switch (dim) {
    case SearchSpace::Dim::kWeightBits:
    case SearchSpace::Dim::kActBits:
      return kFloatBits;
    case SearchSpace::Dim::kSparsity:
      return 0.0;
    default:
      return 1.0;
  }
}

bool has_non_float(const std::vector<int>& bits) {
  return std::any_of(bits.begin(), bits.end(), [](int b) { return b != kFloatBits; });
}

void check_override_layers(const policies::DecisionPoints& points, const SpaceConfig& config) {
  std::vector<std::string> layer_names;
  for (const auto& l : points.layers) layer_names.push_back(l.name);
  for (const auto& [name, lo] : config.overrides)
    if (std::find(layer_names.begin(), layer_names.end(), name) == layer_names.end())
      throw ConfigError("space.overrides names layer '" + name +
                        "', which is not a conv/linear layer of this model; valid ones: " +
                        some_names(layer_names) + " (see `tightfit info --model ...`)");
}

/// A method list: not empty, no repeats, every name one of `valid`.
void check_names(const std::vector<std::string>& names, const std::vector<std::string>& valid,
                 const std::string& where) {
  require_non_empty(names, where);
  for (size_t i = 0; i < names.size(); ++i) {
    if (std::find(valid.begin(), valid.end(), names[i]) == valid.end())
      throw ConfigError(where + " has '" + names[i] + "'; valid values: " + join(valid));
    if (std::find(names.begin(), names.begin() + i, names[i]) != names.begin() + i)
      throw ConfigError(where + " lists '" + names[i] + "' twice");
  }
}

/// ThiNet refits the consumers of every pruned group at once: it can be the criterion of every
/// policy, not one choice among others.
void check_thinet(const std::vector<std::string>& names, const std::string& where) {
  if (names.size() > 1 && std::find(names.begin(), names.end(), "thinet") != names.end())
    throw ConfigError(where + " lists thinet among other criteria; thinet refits every pruned " +
                      "group together, so it can only be the space's one criterion " +
                      "(\"criterion\": [\"thinet\"])");
}

/// Whether quantization scheme `scheme` takes `bits`-bit weights.
bool scheme_takes(const std::string& scheme, int bits) {
  if (bits >= 16) return true;  // float formats, whatever the scheme
  policies::QuantConfig q;
  q.scheme = scheme;
  try {
    policies::check_weight_bits(bits, q, "");
    return true;
  } catch (const ConfigError&) {
    return false;
  }
}

/// The method a policy uses where no gene chooses: the space's one listed method, or the
/// policy's default when it lists several.
std::string global_method(const std::vector<std::string>& names, const std::string& fallback) {
  return names.size() == 1 ? names.front() : fallback;
}

/// Which dimensions a space of this kind lets vary.
struct VariedDims {
  bool keep, bits, rank, sparsity;
};

VariedDims varied_dims(const std::string& kind) {
  return {kind == "joint" || kind == "pruning", kind == "joint" || kind == "quantization",
          kind == "joint" || kind == "lowrank", kind == "joint"};
}

const LayerOverride* find_override(const SpaceConfig& config, const std::string& layer) {
  const auto it = config.overrides.find(layer);
  return it == config.overrides.end() ? nullptr : &it->second;
}

/// The keep values of one channel group: fractions that round to the same channel count are one
/// choice (the first, i.e. largest, stands for them); one that keeps every channel is "keep all"
/// (1.0).
std::vector<double> keep_values(const policies::ChannelDecision& c, const SpaceConfig& config,
                                bool vary_keep, int64_t multiple) {
  std::vector<double> keep = vary_keep ? config.keep : std::vector<double>{1.0};
  bool excluded = false;
  for (const auto& layer : c.layers)
    if (const auto* lo = find_override(config, layer)) {
      excluded = excluded || lo->exclude;
      if (lo->keep && vary_keep) keep = *lo->keep;
    }
  if (excluded) keep = {1.0};  // pruning the group would change the excluded layer
  std::vector<double> values;
  std::vector<int64_t> counts;
  for (double f : ordered(keep, SearchSpace::Dim::kKeep)) {
    const int64_t n = policies::channels_to_keep(c.channels, f, multiple);
    if (std::find(counts.begin(), counts.end(), n) != counts.end()) continue;
    counts.push_back(n);
    values.push_back(n >= c.channels ? 1.0 : f);
  }
  return ordered(values, SearchSpace::Dim::kKeep);
}

/// The criteria a channel group may be ranked by: an override of a layer producing it, else the
/// space's list; one name when the group is never pruned (the choice would change nothing).
std::vector<std::string> group_criteria(const policies::ChannelDecision& c,
                                        const SpaceConfig& config,
                                        const std::vector<double>& keep) {
  std::vector<std::string> names = config.criterion;
  for (const auto& layer : c.layers)
    if (const auto* lo = find_override(config, layer); lo && lo->criterion) names = *lo->criterion;
  const bool pruned = std::any_of(keep.begin(), keep.end(), [](double k) { return k < 1.0; });
  if (!pruned) names.resize(1);
  return names;
}

/// The value lists a layer asks for, before what the layer cannot take is dropped.
struct RequestedValues {
  std::vector<int> weight_bits, act_bits;
  std::vector<double> rank, sparsity;
};

/// The space's lists (or "uncompressed" where the kind does not vary a dimension), then the
/// pinned bits, then the layer's override; an excluded layer asks for "uncompressed" only.
RequestedValues requested_values(const std::string& layer, const SpaceConfig& config,
                                 const VariedDims& vary, bool pinned, bool pin_acts) {
  const auto* lo = find_override(config, layer);
  const bool excluded = lo && lo->exclude;
  std::vector<int> wbits = vary.bits ? config.weight_bits : std::vector<int>{kFloatBits};
  std::vector<int> abits = vary.bits ? config.act_bits : std::vector<int>{kFloatBits};
  std::vector<double> rank = vary.rank ? config.rank : std::vector<double>{1.0};
  std::vector<double> sparsity = vary.sparsity ? config.sparsity : std::vector<double>{0.0};
  if (pinned) {
    wbits = {config.pin_first_last_bits};
    if (pin_acts) abits = {config.pin_first_last_bits};
  }
  if (lo && !excluded) {
    if (lo->weight_bits && vary.bits) wbits = *lo->weight_bits;
    if (lo->act_bits && vary.bits) abits = *lo->act_bits;
    if (lo->rank && vary.rank) rank = *lo->rank;
    if (lo->sparsity && vary.sparsity) sparsity = *lo->sparsity;
  }
  if (excluded) {
    wbits = abits = {kFloatBits};
    rank = {1.0};
    sparsity = {0.0};
  }
  return {wbits, abits, rank, sparsity};
}

/// A sorted list, or the dimension's identity value when nothing is left.
std::vector<double> fixed_or(std::vector<double> v, SearchSpace::Dim dim) {
  if (v.empty()) v.push_back(identity_value(dim));
  return ordered(std::move(v), dim);
}

/// The values of a layer's four slots, each least compression first.
struct LayerValues {
  std::vector<double> weight_bits, act_bits, rank, sparsity;
};

/// The requested values less what this layer does not allow; an emptied list falls back to
/// "uncompressed".
LayerValues layer_values(const policies::LayerDecision& l, const SpaceConfig& config,
                         const VariedDims& vary, bool pinned, bool pin_acts) {
  const RequestedValues want = requested_values(l.name, config, vary, pinned, pin_acts);
  const auto* lo = find_override(config, l.name);
  const auto& schemes = lo && lo->scheme ? *lo->scheme : config.scheme;
  std::vector<double> w;
  for (int b : want.weight_bits)  // bit-widths no listed scheme takes are dropped
    if (std::any_of(schemes.begin(), schemes.end(),
                    [&](const std::string& scheme) { return scheme_takes(scheme, b); }))
      w.push_back(b);
  std::vector<double> r;
  for (double v : want.rank) {
    const bool factorizable = l.full_rank > 0;
    const int64_t kept = std::clamp<int64_t>(std::llround(v * static_cast<double>(l.full_rank)), 1,
                                             std::max<int64_t>(l.full_rank, 1));
    if (v >= 1.0 || (factorizable && kept < l.full_rank)) r.push_back(v);
  }
  return {fixed_or(std::move(w), SearchSpace::Dim::kWeightBits),
          fixed_or(to_doubles(want.act_bits), SearchSpace::Dim::kActBits),
          fixed_or(std::move(r), SearchSpace::Dim::kRank),
          fixed_or(want.sparsity, SearchSpace::Dim::kSparsity)};
}

}  // namespace

std::string dim_name(SearchSpace::Dim dim) {
  switch (dim) {
    case SearchSpace::Dim::kKeep:
      return "keep";
    case SearchSpace::Dim::kWeightBits:
      return "weight_bits";
    case SearchSpace::Dim::kActBits:
      return "act_bits";
    case SearchSpace::Dim::kRank:
      return "rank";
    case SearchSpace::Dim::kSparsity:
      return "sparsity";
    case SearchSpace::Dim::kCriterion:
      return "criterion";
    case SearchSpace::Dim::kScheme:
      return "scheme";
    case SearchSpace::Dim::kFactorization:
      return "factorization";
  }
  return "?";
}

nlohmann::json LayerOverride::to_json() const {
  if (exclude) return "exclude";
  return write_section(*this);
}

SpaceConfig SpaceConfig::from_json(const nlohmann::json& j, const std::string& where) {
  SpaceConfig c;
  if (j.is_null()) return c;
  auto keys = section_keys<SpaceConfig>();
  keys.insert(keys.end(), {"channel_multiple", "overrides"});
  check_keys(j, keys, where);
  SectionReader reader{j, where};
  c.fields(reader);
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
  if (std::find(kSpaceKinds.begin(), kSpaceKinds.end(), c.kind) == kSpaceKinds.end())
    throw ConfigError(where + ".kind is '" + c.kind + "'; valid kinds: " + join(kSpaceKinds));
  check_fractions(c.keep, where + ".keep");
  check_bits(c.weight_bits, policies::kWeightBits, where + ".weight_bits");
  check_bits(c.act_bits, policies::kActivationBits, where + ".act_bits");
  check_fractions(c.rank, where + ".rank");
  check_sparsity(c.sparsity, where + ".sparsity");
  if (c.pin_first_last_bits != 0)
    check_bits({c.pin_first_last_bits}, policies::kWeightBits, where + ".pin_first_last_bits");
  check_names(c.criterion, policies::criterion_names(), where + ".criterion");
  check_thinet(c.criterion, where + ".criterion");
  check_names(c.scheme, policies::quant_scheme_names(), where + ".scheme");
  check_names(c.factorization, policies::kConvFactorizations, where + ".factorization");
  if (c.float16 != "fp16" && c.float16 != "bf16")
    throw ConfigError(where + ".float16 is '" + c.float16 + "'; valid values: fp16, bf16");

  if (const auto it = j.find("overrides"); it != j.end()) {
    if (!it->is_object())
      throw ConfigError(where + ".overrides must be an object {layer name: {...} or \"exclude\"}");
    for (auto o = it->begin(); o != it->end(); ++o) {
      const std::string w = where + ".overrides." + o.key();
      LayerOverride lo;
      if (o->is_string()) {
        if (o->get<std::string>() != "exclude")
          throw ConfigError(w + " is \"" + o->get<std::string>() +
                            "\"; give \"exclude\" or an object with some of: " +
                            join(section_keys<LayerOverride>()));
        lo.exclude = true;
      } else {
        check_keys(*o, section_keys<LayerOverride>(), w);
        lo = read_section<LayerOverride>(*o, w);
        if (lo.keep) check_fractions(*lo.keep, w + ".keep");
        if (lo.weight_bits) check_bits(*lo.weight_bits, policies::kWeightBits, w + ".weight_bits");
        if (lo.act_bits) check_bits(*lo.act_bits, policies::kActivationBits, w + ".act_bits");
        if (lo.rank) check_fractions(*lo.rank, w + ".rank");
        if (lo.sparsity) check_sparsity(*lo.sparsity, w + ".sparsity");
        if (lo.criterion) {
          check_names(*lo.criterion, policies::criterion_names(), w + ".criterion");
          if (std::find(lo.criterion->begin(), lo.criterion->end(), "thinet") !=
              lo.criterion->end())
            throw ConfigError(w + ".criterion lists thinet; thinet refits every pruned group " +
                              "together, so it can only be the space's one criterion");
        }
        if (lo.criterion && c.criterion == std::vector<std::string>{"thinet"})
          throw ConfigError(w + ".criterion is set but the space's criterion is thinet, which " +
                            "refits every pruned group together; drop one of the two");
        if (lo.scheme) check_names(*lo.scheme, policies::quant_scheme_names(), w + ".scheme");
        if (lo.factorization)
          check_names(*lo.factorization, policies::kConvFactorizations, w + ".factorization");
      }
      c.overrides[o.key()] = std::move(lo);
    }
  }
  return c;
}

nlohmann::json SpaceConfig::to_json() const {
  nlohmann::json j = write_section(*this);
  nlohmann::json o = nlohmann::json::object();
  for (const auto& [name, lo] : overrides) o[name] = lo.to_json();
  j["overrides"] = o;
  j["channel_multiple"] = channel_multiple == kAutoChannelMultiple
                              ? nlohmann::json("auto")
                              : nlohmann::json(channel_multiple);
  return j;
}

int64_t SpaceConfig::resolved_channel_multiple(const std::string& where) const {
  if (channel_multiple == kAutoChannelMultiple)
    throw ConfigError(where +
                      ".channel_multiple is \"auto\" and has not been resolved from measured "
                      "latency curves here; give a number instead, e.g. the multiple "
                      "`tightfit profile` printed");
  return channel_multiple;
}

SearchSpace::SearchSpace(const policies::DecisionPoints& points, SpaceConfig config)
    : points_(points), config_(std::move(config)) {
  const int64_t multiple = config_.resolved_channel_multiple("space");
  check_override_layers(points_, config_);
  const VariedDims vary = varied_dims(config_.kind);

  for (const auto& c : points_.channels) {
    auto keep = keep_values(c, config_, vary.keep, multiple);
    slots_.push_back({Dim::kCriterion, c.id, {}, group_criteria(c, config_, keep)});
    slots_.push_back({Dim::kKeep, c.id, std::move(keep), {}});
  }

  const bool pin_acts = vary.bits && has_non_float(config_.act_bits);
  for (size_t i = 0; i < points_.layers.size(); ++i) {
    const auto& l = points_.layers[i];
    const bool pinned =
        config_.pin_first_last_bits > 0 && vary.bits && (i == 0 || i + 1 == points_.layers.size());
    const LayerValues v = layer_values(l, config_, vary, pinned, pin_acts);
    // A method gene only where the method is used: schemes for layers that may be quantized
    // to integers, factorizations for convolutions that may be factorized.
    const auto* lo = find_override(config_, l.name);
    std::vector<std::string> schemes = lo && lo->scheme ? *lo->scheme : config_.scheme;
    if (!std::any_of(v.weight_bits.begin(), v.weight_bits.end(), [](double b) { return b < 16; }))
      schemes.resize(1);
    std::vector<std::string> methods =
        lo && lo->factorization ? *lo->factorization : config_.factorization;
    if (l.op != "conv2d" ||
        !std::any_of(v.rank.begin(), v.rank.end(), [](double r) { return r < 1.0; }))
      methods.resize(1);
    slots_.push_back({Dim::kWeightBits, l.name, v.weight_bits, {}});
    slots_.push_back({Dim::kActBits, l.name, v.act_bits, {}});
    slots_.push_back({Dim::kRank, l.name, v.rank, {}});
    slots_.push_back({Dim::kSparsity, l.name, v.sparsity, {}});
    slots_.push_back({Dim::kScheme, l.name, {}, std::move(schemes)});
    slots_.push_back({Dim::kFactorization, l.name, {}, std::move(methods)});
  }
  for (auto& slot : slots_)  // a method's values are the indices of its names
    for (size_t k = 0; k < slot.names.size(); ++k) slot.values.push_back(static_cast<double>(k));

  gene_of_slot_.assign(slots_.size(), -1);
  for (size_t s = 0; s < slots_.size(); ++s)
    if (slots_[s].values.size() >= 2) {
      gene_of_slot_[s] = static_cast<int>(genes_.size());
      genes_.push_back(s);
    }
  if (genes_.empty())
    throw ConfigError("empty search space: with kind '" + config_.kind +
                      "', the listed values and the overrides, no decision point of this model "
                      "has two or more values to choose from; list more values (e.g. keep, "
                      "weight_bits, rank) or choose another kind (" +
                      join(kSpaceKinds) + ")");
}

int SearchSpace::choices(size_t gene) const {
  return static_cast<int>(slots_.at(genes_.at(gene)).values.size());
}

std::string SearchSpace::gene_name(size_t gene) const {
  const auto& s = slots_.at(genes_.at(gene));
  return s.point + "/" + dim_name(s.dim);
}

SearchSpace::Dim SearchSpace::gene_dim(size_t gene) const { return slots_.at(genes_.at(gene)).dim; }

double SearchSpace::gene_value(size_t gene, int choice) const {
  return slots_.at(genes_.at(gene)).values.at(static_cast<size_t>(choice));
}

std::string SearchSpace::gene_name_value(size_t gene, int choice) const {
  const auto& slot = slots_.at(genes_.at(gene));
  return slot.names.empty() ? "" : slot.names.at(static_cast<size_t>(choice));
}

std::vector<std::string> SearchSpace::method_names(Dim dim) const {
  std::set<std::string> names;
  for (size_t g : genes_)
    if (slots_[g].dim == dim) names.insert(slots_[g].names.begin(), slots_[g].names.end());
  return {names.begin(), names.end()};
}

void SearchSpace::set_global_methods(policies::Policy& p) const {
  p.criterion = global_method(config_.criterion, p.criterion);
  p.quantization.scheme = global_method(config_.scheme, p.quantization.scheme);
  p.factorization.conv = global_method(config_.factorization, p.factorization.conv);
  p.quantization.float16 = config_.float16;
}

policies::Policy SearchSpace::decode(const Genome& genome) const {
  TIGHTFIT_CHECK(genome.size() == genes_.size(),
                 "genome has " << genome.size() << " genes, the space " << genes_.size());
  policies::Policy p;
  set_global_methods(p);
  std::vector<std::pair<std::string, double>> sparsities;
  std::vector<std::pair<const Slot*, std::string>> methods;  // applied once the values are known
  for (size_t s = 0; s < slots_.size(); ++s) {
    const auto& slot = slots_[s];
    const int g = gene_of_slot_[s];
    const int choice = g < 0 ? 0 : genome[static_cast<size_t>(g)];
    TIGHTFIT_CHECK(choice >= 0 && choice < static_cast<int>(slot.values.size()),
                   "gene " << g << " has choice " << choice);
    const double v = slot.values[static_cast<size_t>(choice)];
    switch (slot.dim) {
      case Dim::kKeep:
        if (v < 1.0) p.keep[slot.point] = v;
        break;
      case Dim::kWeightBits:
        if (v != kFloatBits) p.weight_bits[slot.point] = static_cast<int>(v);
        break;
      case Dim::kActBits:
        if (v != kFloatBits) p.act_bits[slot.point] = static_cast<int>(v);
        break;
      case Dim::kRank:
        if (v < 1.0) p.rank[slot.point] = v;
        break;
      case Dim::kSparsity:
        if (v > 0.0) sparsities.emplace_back(slot.point, v);
        break;
      case Dim::kCriterion:
      case Dim::kScheme:
      case Dim::kFactorization:
        methods.emplace_back(&slot, slot.names[static_cast<size_t>(choice)]);
        break;
    }
  }
  for (const auto& [layer, s] : sparsities)
    if (!p.rank.count(layer)) p.sparsity[layer] = s;
  // A method is named only where the policy uses it and it differs from the global one, so
  // policies that build the same network have the same key.
  for (const auto& [slot, name] : methods) {
    const std::string& id = slot->point;
    if (slot->dim == Dim::kCriterion) {
      const bool pruned = p.keep.count(id) && p.keep.at(id) < 1.0;
      if (pruned && name != p.criterion) p.criteria[id] = name;
    } else if (slot->dim == Dim::kScheme) {
      const auto bits = p.weight_bits.find(id);
      if (bits == p.weight_bits.end() || bits->second >= 16) continue;
      std::string scheme = name;  // a scheme that cannot take these bits: the first listed that can
      if (!scheme_takes(scheme, bits->second))
        for (const auto& other : slot->names)
          if (scheme_takes(other, bits->second)) {
            scheme = other;
            break;
          }
      if (scheme != p.quantization.scheme) p.schemes[id] = scheme;
    } else if (p.rank.count(id) && name != p.factorization.conv) {
      p.factorizations[id] = name;
    }
  }
  return p;
}

Genome SearchSpace::sample_genome(std::mt19937_64& rng) const {
  Genome g(genes_.size());
  for (size_t i = 0; i < genes_.size(); ++i)
    g[i] = std::uniform_int_distribution<int>(0, choices(i) - 1)(rng);
  return g;
}

Genome SearchSpace::sample_genome_near(double level, double spread, std::mt19937_64& rng) const {
  std::normal_distribution<double> noise(0.0, spread);
  Genome g(genes_.size());
  for (size_t i = 0; i < genes_.size(); ++i) {
    const double last = choices(i) - 1;
    const double at = std::clamp((level + noise(rng)) * last, 0.0, last);
    g[i] = static_cast<int>(std::lround(at));
  }
  return g;
}

Genome SearchSpace::uniform_genome(double keep, int weight_bits, int act_bits, double rank,
                                   double sparsity) const {
  Genome g(genes_.size());
  for (size_t i = 0; i < genes_.size(); ++i) {
    const auto& slot = slots_[genes_[i]];
    double want = 0;
    switch (slot.dim) {
      case Dim::kKeep:
        want = keep;
        break;
      case Dim::kWeightBits:
        want = weight_bits;
        break;
      case Dim::kActBits:
        want = act_bits;
        break;
      case Dim::kRank:
        want = rank;
        break;
      case Dim::kSparsity:
        want = sparsity;
        break;
      case Dim::kCriterion:
      case Dim::kScheme:
      case Dim::kFactorization:
        want = 0;  // the first listed method
        break;
    }
    size_t best = 0;  // ties go to the less compressing value
    for (size_t c = 1; c < slot.values.size(); ++c)
      if (std::abs(slot.values[c] - want) < std::abs(slot.values[best] - want)) best = c;
    g[i] = static_cast<int>(best);
  }
  return g;
}

policies::Policy SearchSpace::sample(std::mt19937_64& rng) const {
  return decode(sample_genome(rng));
}

policies::Policy SearchSpace::uniform(double keep, int bits, int act_bits) const {
  policies::Policy p;
  set_global_methods(p);
  if (keep < 1.0)
    for (const auto& c : points_.channels) p.keep[c.id] = keep;
  if (bits != kFloatBits)
    for (const auto& l : points_.layers) p.weight_bits[l.name] = bits;
  if (act_bits != kFloatBits)
    for (const auto& l : points_.layers) p.act_bits[l.name] = act_bits;
  return p;
}

latency_models::SpaceReach SearchSpace::reach() const {
  latency_models::SpaceReach r;
  r.channel_multiple = config_.resolved_channel_multiple("space");
  std::set<double> keep;
  for (const auto& slot : slots_) {
    if (slot.dim == Dim::kKeep) keep.insert(slot.values.begin(), slot.values.end());
    if (slot.dim == Dim::kRank && *std::min_element(slot.values.begin(), slot.values.end()) < 1.0)
      r.rank[slot.point] = slot.values;
    if (slot.dim == Dim::kFactorization) r.factorization[slot.point] = slot.names;
    const double least = *std::min_element(slot.values.begin(), slot.values.end());
    if (slot.dim == Dim::kActBits && least < kFloatBits) r.act_quant = true;
    if (slot.dim == Dim::kWeightBits && least <= 8) r.int8 = true;
    if (slot.dim == Dim::kWeightBits &&
        std::find(slot.values.begin(), slot.values.end(), 16.0) != slot.values.end())
      r.bf16 = true;
  }
  // int8 needs 8-bit inputs as well as weights (per layer, but a union is what a table covers).
  r.int8 = r.int8 && r.act_quant;
  r.keep.assign(keep.begin(), keep.end());
  return r;
}

std::vector<policies::Policy> SearchSpace::latency_calibration(std::mt19937_64& rng,
                                                               int random) const {
  Genome most(genes_.size());
  for (size_t g = 0; g < genes_.size(); ++g) most[g] = choices(g) - 1;
  std::vector<policies::Policy> out = {
      policies::Policy{}, decode(most),
      uniform(*std::min_element(config_.keep.begin(), config_.keep.end()), kFloatBits)};
  for (int k = 0; k < random; ++k) out.push_back(sample(rng));
  return out;
}

policies::Policy SearchSpace::sample_one_precision(std::mt19937_64& rng) const {
  policies::Policy p = sample(rng);
  p.weight_bits.clear();
  p.act_bits.clear();
  p.schemes.clear();
  return p;
}

}  // namespace tightfit::search
