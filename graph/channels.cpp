#include "graph/channels.h"

#include <algorithm>
#include <numeric>

#include "core/errors.h"

namespace tightfit::graph {

namespace {

/// Union-find over channel spaces, remembering why a space may not be pruned.
struct Spaces {
  std::vector<int> parent;
  std::vector<int64_t> size;
  std::vector<std::string> fixed_reason;

  int make(int64_t channels) {
    parent.push_back(static_cast<int>(parent.size()));
    size.push_back(channels);
    fixed_reason.emplace_back();
    return parent.back();
  }
  int root(int s) {
    while (parent[s] != s) s = parent[s] = parent[parent[s]];
    return s;
  }
  void unite(int a, int b) {
    a = root(a);
    b = root(b);
    if (a == b) return;
    if (b < a) std::swap(a, b);  // the older space names the group
    parent[b] = a;
    if (fixed_reason[a].empty()) fixed_reason[a] = fixed_reason[b];
  }
  void fix(int s, const std::string& why) {
    s = root(s);
    if (fixed_reason[s].empty()) fixed_reason[s] = why;
  }
};

}  // namespace

int ChannelAnalysis::find_group(const std::string& id) const {
  for (size_t i = 0; i < groups.size(); ++i)
    if (groups[i].id == id) return static_cast<int>(i);
  return -1;
}

ChannelAnalysis analyze_channels(const Network& net) {
  const std::vector<Shape> shapes = infer_shapes(net);
  Spaces spaces;
  // Layouts in terms of space ids first; mapped to group ids at the end.
  std::vector<ChannelLayout> layouts(net.size());
  std::vector<int> producer_of_space;  // node that created each space

  auto new_space = [&](int node, int64_t channels) {
    const int s = spaces.make(channels);
    producer_of_space.push_back(node);
    return ChannelLayout{{Segment{s, channels}}, 1};
  };
  auto fix_all = [&](const ChannelLayout& l, const std::string& why) {
    for (const auto& seg : l.segments) spaces.fix(seg.group, why);
  };

  for (int i = 0; i < net.size(); ++i) {
    const Node& node = net.node(i);
    const Attrs& a = node.attrs;
    switch (node.op) {
      case OpKind::kInput:
        layouts[i] = new_space(i, shapes[i][0]);
        spaces.fix(layouts[i].segments[0].group, "network input");
        break;
      case OpKind::kConv2d: {
        const ChannelLayout& in = layouts[node.inputs[0]];
        const bool depthwise =
            a.groups > 1 && a.groups == a.in_channels && a.groups == a.out_channels;
        if (depthwise) {
          layouts[i] = in;  // channel c in, channel c out: one decision for both
        } else {
          layouts[i] = new_space(i, a.out_channels);
          if (a.groups > 1) {
            fix_all(in, "read by grouped convolution '" + node.name + "'");
            fix_all(layouts[i], "grouped convolution '" + node.name + "'");
          }
        }
        break;
      }
      case OpKind::kLinear:
        layouts[i] = new_space(i, a.out_channels);
        break;
      case OpKind::kFlatten: {
        layouts[i] = layouts[node.inputs[0]];
        const Shape& s = shapes[node.inputs[0]];
        int64_t spatial = 1;
        for (size_t d = 1; d < s.size(); ++d) spatial *= s[d];
        layouts[i].spatial *= spatial;
        break;
      }
      case OpKind::kAdd:
      case OpKind::kMul: {  // elementwise: channel c of every input meets channel c of the others
        layouts[i] = layouts[node.inputs[0]];
        for (size_t k = 1; k < node.inputs.size(); ++k) {
          const ChannelLayout& other = layouts[node.inputs[k]];
          bool same_structure = other.segments.size() == layouts[i].segments.size() &&
                                other.spatial == layouts[i].spatial;
          for (size_t s = 0; same_structure && s < other.segments.size(); ++s)
            same_structure = other.segments[s].channels == layouts[i].segments[s].channels;
          if (same_structure) {
            for (size_t s = 0; s < other.segments.size(); ++s)
              spaces.unite(layouts[i].segments[s].group, other.segments[s].group);
          } else {
            // Inputs made of differently split concatenations: keep every channel.
            const std::string why = std::string(op_name(node.op)) + " '" + node.name +
                                    "' of differently concatenated inputs";
            fix_all(layouts[i], why);
            fix_all(other, why);
          }
        }
        break;
      }
      case OpKind::kConcat: {
        ChannelLayout out;
        for (int j : node.inputs) {
          const ChannelLayout& l = layouts[j];
          TIGHTFIT_CHECK(l.spatial == 1, "concat of flattened tensors");
          out.segments.insert(out.segments.end(), l.segments.begin(), l.segments.end());
        }
        layouts[i] = std::move(out);
        break;
      }
      case OpKind::kSlice:
      case OpKind::kChannelShuffle: {
        // Channel ranges and interleavings are fixed by the model's code (chunk(2), groups):
        // the channels they read and produce are all kept.
        const std::string why = std::string(op_name(node.op)) + " '" + node.name + "'";
        fix_all(layouts[node.inputs.at(0)], "read by " + why);
        layouts[i] = new_space(i, shapes[i][0]);
        fix_all(layouts[i], why);
        break;
      }
      default:  // batch_norm, activations, pooling, dropout: channels pass through
        layouts[i] = layouts[node.inputs.at(0)];
        break;
    }
  }
  fix_all(layouts[net.output()], "network output");

  // Groups = union-find roots, in order of first appearance.
  ChannelAnalysis result;
  std::vector<int> group_of_root(spaces.parent.size(), -1);
  auto group_of = [&](int space) {
    const int r = spaces.root(space);
    if (group_of_root[r] < 0) {
      group_of_root[r] = static_cast<int>(result.groups.size());
      ChannelGroup g;
      g.channels = spaces.size[r];
      g.reason = spaces.fixed_reason[r];
      result.groups.push_back(std::move(g));
    }
    return group_of_root[r];
  };
  for (size_t s = 0; s < spaces.parent.size(); ++s) {
    const int g = group_of(static_cast<int>(s));
    TIGHTFIT_CHECK(result.groups[g].channels == spaces.size[s], "coupled spaces differ in size");
    result.groups[g].producers.push_back(producer_of_space[s]);
  }
  result.layouts.resize(net.size());
  for (int i = 0; i < net.size(); ++i) {
    ChannelLayout l = layouts[i];
    for (auto& seg : l.segments) {
      seg.group = group_of(seg.group);
      auto& members = result.groups[seg.group].members;
      if (members.empty() || members.back() != i) members.push_back(i);
    }
    result.layouts[i] = std::move(l);
    const Node& node = net.node(i);
    if (has_weights(node.op))
      for (const auto& seg : result.layouts[node.inputs[0]].segments) {
        auto& consumers = result.groups[seg.group].consumers;
        if (consumers.empty() || consumers.back() != i) consumers.push_back(i);
      }
  }
  for (size_t g = 0; g < result.groups.size(); ++g) {
    ChannelGroup& group = result.groups[g];
    std::sort(group.producers.begin(), group.producers.end());
    group.id = net.node(group.producers.front()).name;
    for (int p : group.producers)
      if (!has_weights(net.node(p).op) && group.reason.empty())
        group.reason = "produced by '" + net.node(p).name + "'";
    if (group.reason.empty() && group.channels < 2) group.reason = "single channel";
    group.prunable = group.reason.empty();
    if (group.prunable) result.decision_points.push_back(static_cast<int>(g));
  }
  return result;
}

std::vector<int64_t> kept_indices(const ChannelLayout& layout,
                                  const std::vector<std::vector<int64_t>>& kept) {
  std::vector<int64_t> out;
  int64_t offset = 0;
  for (const Segment& seg : layout.segments) {
    const auto& k = kept.at(seg.group);
    if (k.empty()) {
      for (int64_t c = 0; c < seg.channels; ++c)
        for (int64_t s = 0; s < layout.spatial; ++s)
          out.push_back((offset + c) * layout.spatial + s);
    } else {
      for (int64_t c : k)
        for (int64_t s = 0; s < layout.spatial; ++s)
          out.push_back((offset + c) * layout.spatial + s);
    }
    offset += seg.channels;
  }
  return out;
}

}  // namespace tightfit::graph
