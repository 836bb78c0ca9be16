#include "graph/serialize.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/files.h"
#include "core/json.h"
#include "graph/container.h"

namespace tightfit::graph {

namespace {

const FileKind kNetworkFile = {{'T', 'F', 'I', 'T', 'N', 'E', 'T', '1'},
                               kFileFormatVersion,
                               "tightfit-network",
                               "model file",
                               "tightfit network file",
                               "`tightfit train` or `tightfit compress`",
                               "re-create it"};

nlohmann::json attrs_to_json(const Node& n) {
  const Attrs& a = n.attrs;
  nlohmann::json j;
  switch (n.op) {
    case OpKind::kConv2d:
      j = {{"in_channels", a.in_channels}, {"out_channels", a.out_channels},
           {"kernel", a.kernel},           {"stride", a.stride},
           {"padding", a.padding},         {"dilation", a.dilation},
           {"groups", a.groups},           {"bias", a.bias}};
      break;
    case OpKind::kLinear:
      j = {{"in_features", a.in_channels}, {"out_features", a.out_channels}, {"bias", a.bias}};
      break;
    case OpKind::kBatchNorm:
      j = {{"eps", a.eps}, {"momentum", a.momentum}};
      break;
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
      j = {{"kernel", a.kernel},
           {"stride", a.stride},
           {"padding", a.padding},
           {"ceil_mode", a.ceil_mode}};
      break;
    case OpKind::kAdaptiveAvgPool:
      j = {{"output_size", a.output_size}};
      break;
    case OpKind::kDropout:
      j = {{"p", a.p}};
      break;
    case OpKind::kSlice:
      j = {{"begin", a.begin}, {"end", a.end}};
      break;
    case OpKind::kChannelShuffle:
      j = {{"groups", a.groups}};
      break;
    case OpKind::kFakeQuant:
      j = {{"scale", a.q_scale},
           {"zero_point", a.q_zero_point},
           {"q_min", a.q_min},
           {"q_max", a.q_max}};
      break;
    default:
      j = nlohmann::json::object();
  }
  return j;
}

/// Reads one attribute strictly (core/json.h): 2.5 is not a stride, 1e30 not a channel count.
template <typename T>
void read_attr(const nlohmann::json& v, const std::string& name, T& field) {
  field = json_value<T>(v, name);
}
void read_attr(const nlohmann::json& v, const std::string& name, std::array<int64_t, 2>& field) {
  if (!v.is_array() || v.size() != 2) throw ConfigError(name + " must be a pair of integers");
  for (size_t i = 0; i < 2; ++i) field[i] = json_value<int64_t>(v[i], name);
}

Attrs attrs_from_json(OpKind op, const nlohmann::json& j, const std::string& where) {
  Attrs a;
  auto opt = [&](const char* key, auto& field) {
    if (j.contains(key)) read_attr(j.at(key), where + " attribute " + key, field);
  };
  opt("in_channels", a.in_channels);
  opt("out_channels", a.out_channels);
  if (op == OpKind::kLinear) {
    opt("in_features", a.in_channels);
    opt("out_features", a.out_channels);
  }
  opt("kernel", a.kernel);
  opt("stride", a.stride);
  opt("padding", a.padding);
  opt("dilation", a.dilation);
  opt("groups", a.groups);
  opt("bias", a.bias);
  opt("ceil_mode", a.ceil_mode);
  opt("eps", a.eps);
  opt("momentum", a.momentum);
  opt("output_size", a.output_size);
  opt("p", a.p);
  opt("scale", a.q_scale);
  opt("zero_point", a.q_zero_point);
  opt("q_min", a.q_min);
  opt("q_max", a.q_max);
  opt("begin", a.begin);
  opt("end", a.end);
  return a;
}

}  // namespace

void save_network(const Network& net, const std::string& path) {
  nlohmann::json header;
  header["input_shape"] = net.input_shape();
  header["output"] = net.output();
  header["meta"] = net.meta();
  std::string data;
  auto& nodes = header["nodes"] = nlohmann::json::array();
  for (const Node& n : net.nodes()) {
    nlohmann::json jn = {
        {"name", n.name}, {"op", op_name(n.op)}, {"inputs", n.inputs}, {"attrs", attrs_to_json(n)}};
    auto& params = jn["params"] = nlohmann::json::array();
    for (const auto& [key, t] : n.params) {
      params.push_back({{"name", key}, {"shape", t.shape}});
      data.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
    }
    nodes.push_back(std::move(jn));
  }
  write_container(path, kNetworkFile, std::move(header), data);
}

Network load_network(const std::string& path) {
  const auto file = read_container(path, kNetworkFile);
  const std::string where = describe_file(kNetworkFile, path);
  const auto data_len = static_cast<uint64_t>(file.data_size);
  try {
    const auto& header = file.header;
    Network net(header.at("input_shape").get<Shape>());
    net.meta() = header.at("meta").get<std::map<std::string, std::string>>();
    const char* data = file.data().data();
    uint64_t offset = 0;
    const auto& nodes = header.at("nodes");
    for (size_t i = 0; i < nodes.size(); ++i) {
      const auto& jn = nodes[i];
      Node n;
      n.name = jn.at("name").get<std::string>();
      n.op = op_from_name(jn.at("op").get<std::string>());
      n.inputs = jn.at("inputs").get<std::vector<int>>();
      try {
        n.attrs = attrs_from_json(n.op, jn.at("attrs"), "node '" + n.name + "'");
      } catch (const ConfigError& e) {
        throw InputError(where + ": " + e.what() + "; re-create it");
      }
      for (const auto& jp : jn.at("params")) {
        Tensor t;
        t.shape = jp.at("shape").get<Shape>();
        // The product is checked against the data left after every factor, so a hostile shape
        // neither overflows nor wraps around.
        const uint64_t left = (data_len - offset) / sizeof(float);
        uint64_t elements = 1;
        for (int64_t d : t.shape) {
          if (d < 0 || (d > 0 && elements > left / static_cast<uint64_t>(d)))
            throw InputError(where + ": node '" + n.name + "' parameter '" +
                             jp.at("name").get<std::string>() + "' has shape " +
                             shape_str(t.shape) + ", which the file's data cannot hold; " +
                             "re-create it");
          elements *= static_cast<uint64_t>(d);
        }
        const uint64_t bytes = elements * sizeof(float);
        t.data.resize(static_cast<size_t>(t.numel()));
        std::memcpy(t.data.data(), data + offset, bytes);
        offset += bytes;
        n.params[jp.at("name").get<std::string>()] = std::move(t);
      }
      if (i == 0) {
        if (n.op != OpKind::kInput) throw InputError(where + ": first node is not the input");
        continue;  // Network's constructor made the input node
      }
      net.add(std::move(n));
    }
    if (offset != data_len)
      throw InputError(where + ": parameter data longer than its header says; re-create it");
    const int output = header.at("output").get<int>();
    if (output < 0 || output >= net.size())
      throw InputError(where + ": output node " + std::to_string(output) + " does not exist");
    net.set_output(output);
    try {  // every attribute of every node, and the shapes they give (graph/network.h)
      infer_shapes(net);
    } catch (const InputError& e) {
      throw InputError(where + ": " + e.what());
    }
    return net;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(where + " has a malformed header (" + e.what() + "); re-create it");
  }
}

bool has_network_magic(const std::string& path) {
  return file_starts_with(path, std::string(kNetworkFile.magic.data(), kNetworkFile.magic.size()));
}

}  // namespace tightfit::graph
