#include "graph/hash.h"

#include <sstream>

#include "core/hash.h"
#include "graph/network.h"

namespace tightfit::graph {

std::string structure_hash(const Network& net) {
  std::ostringstream os;
  const auto shapes = infer_shapes(net);
  for (int i = 0; i < net.size(); ++i) {
    const auto& n = net.node(i);
    os << n.name << '|' << op_name(n.op) << '|' << shape_str(shapes[i]) << '|';
    for (int in : n.inputs) os << in << ',';
    os << ';';
  }
  return fnv1a_hex(os.str());
}

std::string content_hash(const Network& net) {
  std::ostringstream os;
  for (const auto& n : net.nodes()) {
    const auto& a = n.attrs;
    os << n.name << '|' << op_name(n.op) << '|';
    for (int in : n.inputs) os << in << ',';
    os << '|' << a.in_channels << ',' << a.out_channels << ',' << a.kernel[0] << ',' << a.kernel[1]
       << ',' << a.stride[0] << ',' << a.stride[1] << ',' << a.padding[0] << ',' << a.padding[1]
       << ',' << a.dilation[0] << ',' << a.dilation[1] << ',' << a.groups << ',' << a.bias;
    for (const auto& [key, t] : n.params) {
      os << '|' << key << ':' << shape_str(t.shape) << ':';
      os.write(reinterpret_cast<const char*>(t.data.data()),
               static_cast<std::streamsize>(t.data.size() * sizeof(float)));
    }
    os << ';';
  }
  os << "output=" << net.output() << ";input=" << shape_str(net.input_shape());
  return fnv1a_hex(os.str());
}

}  // namespace tightfit::graph
