#include "graph/serialize.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "graph/errors.h"

namespace tightfit::graph {

namespace {

constexpr char kMagic[8] = {'T', 'F', 'I', 'T', 'N', 'E', 'T', '1'};
// magic + version + header length + data length ... + crc
constexpr size_t kPrefixBytes = sizeof(kMagic) + sizeof(uint32_t) + sizeof(uint64_t);

template <typename T>
void put(std::string& buf, T v) {
  buf.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
T get(const std::string& buf, size_t& pos) {
  T v;
  std::memcpy(&v, buf.data() + pos, sizeof(T));
  pos += sizeof(T);
  return v;
}

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

Attrs attrs_from_json(OpKind op, const nlohmann::json& j) {
  Attrs a;
  auto opt = [&](const char* key, auto& field) {
    if (j.contains(key)) j.at(key).get_to(field);
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
  return a;
}

}  // namespace

void save_network(const Network& net, const std::string& path) {
  nlohmann::json header;
  header["format"] = "tightfit-network";
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
  const std::string header_text = header.dump();

  std::string buf(kMagic, sizeof(kMagic));
  put<uint32_t>(buf, kFileFormatVersion);
  put<uint64_t>(buf, header_text.size());
  buf += header_text;
  put<uint64_t>(buf, data.size());
  buf += data;
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(buf.data()), buf.size());
  put<uint32_t>(buf, static_cast<uint32_t>(crc));

  // Write to a temporary name and rename, so a crash never leaves a half-written model behind.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw InputError("cannot write '" + path + "': check that the folder exists and is writable");
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (!out) throw InputError("writing '" + path + "' failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw InputError("cannot rename '" + tmp + "' to '" + path + "'");
}

Network load_network(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw InputError("cannot open model file '" + path +
                     "': check the path (train one with `tightfit train`)");
  std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string where = "model file '" + path + "'";
  // A file cut inside the magic bytes is a truncated network file, not a foreign one.
  const size_t magic_bytes = std::min(buf.size(), sizeof(kMagic));
  if (buf.empty() || std::memcmp(buf.data(), kMagic, magic_bytes) != 0)
    throw InputError(where +
                     " is not a tightfit network file (wrong magic bytes); pass a file written by "
                     "`tightfit train` or `tightfit compress`");
  if (buf.size() < kPrefixBytes)
    throw InputError(where + " is truncated (" + std::to_string(buf.size()) +
                     " bytes); re-create it");
  size_t pos = sizeof(kMagic);
  const uint32_t version = get<uint32_t>(buf, pos);
  if (version > kFileFormatVersion)
    throw InputError(where + " has format version " + std::to_string(version) +
                     ", newer than this tightfit reads (" + std::to_string(kFileFormatVersion) +
                     "); upgrade tightfit");
  const uint64_t header_len = get<uint64_t>(buf, pos);
  if (header_len > buf.size() || pos + header_len + sizeof(uint64_t) > buf.size())
    throw InputError(where + " is truncated (header cut off at " + std::to_string(buf.size()) +
                     " bytes); re-create it");
  const std::string header_text = buf.substr(pos, header_len);
  pos += header_len;
  const uint64_t data_len = get<uint64_t>(buf, pos);
  const uint64_t expected = pos + data_len + sizeof(uint32_t);
  if (data_len > buf.size() || expected > buf.size())
    throw InputError(where + " is truncated (" + std::to_string(buf.size()) + " of " +
                     std::to_string(expected) + " bytes); re-create it");
  if (expected < buf.size())
    throw InputError(where + " has " + std::to_string(buf.size() - expected) +
                     " unexpected trailing bytes; re-create it");
  uint32_t stored_crc;
  std::memcpy(&stored_crc, buf.data() + expected - sizeof(uint32_t), sizeof(uint32_t));
  const uLong crc =
      crc32(0L, reinterpret_cast<const Bytef*>(buf.data()), expected - sizeof(uint32_t));
  if (static_cast<uint32_t>(crc) != stored_crc)
    throw InputError(where + " is corrupted (checksum mismatch); re-create it");

  try {
    const auto header = nlohmann::json::parse(header_text);
    Network net(header.at("input_shape").get<Shape>());
    net.meta() = header.at("meta").get<std::map<std::string, std::string>>();
    const char* data = buf.data() + pos;
    uint64_t offset = 0;
    const auto& nodes = header.at("nodes");
    for (size_t i = 0; i < nodes.size(); ++i) {
      const auto& jn = nodes[i];
      Node n;
      n.name = jn.at("name").get<std::string>();
      n.op = op_from_name(jn.at("op").get<std::string>());
      n.inputs = jn.at("inputs").get<std::vector<int>>();
      n.attrs = attrs_from_json(n.op, jn.at("attrs"));
      for (const auto& jp : jn.at("params")) {
        Tensor t;
        t.shape = jp.at("shape").get<Shape>();
        const uint64_t bytes = static_cast<uint64_t>(t.numel()) * sizeof(float);
        if (offset + bytes > data_len)
          throw InputError(where + ": parameter data shorter than its header says; re-create it");
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
    infer_shapes(net);
    return net;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(where + " has a malformed header (" + e.what() + "); re-create it");
  }
}

}  // namespace tightfit::graph
