#pragma once
// Channel-dependency analysis. Every tensor's channel axis is described as a list of segments,
// each a slice of a "channel space". Convolutions and linear layers create new spaces; BN,
// activations, pooling, dropout and depthwise convolutions pass their input's spaces through;
// concat joins segment lists; add forces its inputs' spaces to be one (union-find); flatten keeps
// the spaces but multiplies each channel by the spatial size; mul couples like add (an SE gate's
// channels are the channels it scales); slices and channel shuffles keep every channel they read
// and write (their ranges come from the model's code). The equivalence classes of spaces
// are the channel groups: channels that must be removed together. A group is a decision point
// when a policy may prune it: it is produced only by conv/linear layers and touches neither the
// network input, the output, nor a grouped (non-depthwise) convolution.

#include <cstdint>
#include <string>
#include <vector>

#include "graph/network.h"

namespace tightfit::graph {

struct Segment {
  int group = -1;        ///< index into ChannelAnalysis::groups
  int64_t channels = 0;  ///< channels of that group in this segment (== the group's size)
};

/// How a node's output channel axis is made of groups.
struct ChannelLayout {
  std::vector<Segment> segments;
  int64_t spatial = 1;  ///< > 1 after flatten: each channel covers `spatial` consecutive features
};

struct ChannelGroup {
  std::string id;              ///< name of its first producing layer (or "input")
  int64_t channels = 0;        ///< size of the group
  std::vector<int> producers;  ///< nodes that create these channels (conv/linear/input)
  std::vector<int> members;    ///< every node whose output contains these channels
  std::vector<int> consumers;  ///< conv/linear nodes that read these channels
  bool prunable = false;
  std::string reason;  ///< why not prunable (empty when prunable)
};

struct ChannelAnalysis {
  std::vector<ChannelLayout> layouts;  ///< per node
  std::vector<ChannelGroup> groups;
  /// Indices into `groups` of the prunable groups, in node order: the channel decision points.
  std::vector<int> decision_points;

  /// Group index by id, or -1.
  int find_group(const std::string& id) const;
};

ChannelAnalysis analyze_channels(const Network& net);

/// Indices (into a node's output channel axis, expanded by `spatial`) that survive when each
/// group g keeps `kept[g]` (sorted indices; an empty vector in `kept` means "keep all").
std::vector<int64_t> kept_indices(const ChannelLayout& layout,
                                  const std::vector<std::vector<int64_t>>& kept);

}  // namespace tightfit::graph
