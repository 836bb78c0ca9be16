#include "evaluators/cost.h"

namespace tightfit::evaluators {

int64_t count_macs(const graph::Network& net) {
  const auto shapes = graph::infer_shapes(net);
  int64_t macs = 0;
  for (int i = 0; i < net.size(); ++i) {
    const auto& node = net.node(i);
    if (!graph::has_weights(node.op)) continue;
    const int64_t weights = node.params.at("weight").numel();
    // conv: every weight is used once per output position; linear: once per image.
    int64_t positions = 1;
    if (node.op == graph::OpKind::kConv2d) positions = shapes[i][1] * shapes[i][2];
    macs += weights * positions;
  }
  return macs;
}

Cost count_cost(const policies::CompressedNetwork& c) {
  Cost cost;
  cost.params = c.net.num_params();
  cost.flops = 2 * count_macs(c.net);
  cost.size_bytes = policies::size_bytes(c);
  return cost;
}

}  // namespace tightfit::evaluators
