// The .tfn network file: an exact round trip of structure, parameters and provenance, and one
// clear InputError for each way a file can be wrong (missing, foreign, truncated, corrupted,
// written by a newer tightfit).

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>

#include "core/errors.h"
#include "graph/builder.h"
#include "graph/network.h"
#include "graph/serialize.h"
#include "models/zoo.h"

namespace fs = std::filesystem;
using tightfit::InputError;
using tightfit::graph::Attrs;
using tightfit::graph::Builder;
using tightfit::graph::load_network;
using tightfit::graph::Network;
using tightfit::graph::Node;
using tightfit::graph::OpKind;
using tightfit::graph::save_network;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("tightfit_test_serialize_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Every op kind and every attribute that the file stores, with non-default values.
Network make_net() {
  Builder b({3, 16, 16}, 3);
  int x = b.conv("conv", b.input(), 8, 3, 2, 1, 1, /*bias=*/true, /*dilation=*/1);
  x = b.batch_norm("bn", x, 1e-3, 0.05);
  x = b.relu("relu", x);
  int dw = b.conv("dw", x, 8, 3, 1, -1, 8, false, 2);
  dw = b.hardswish("hs", dw);
  x = b.add("add", x, b.relu6("relu6", dw));
  x = b.concat("cat", {x, b.conv("pw", x, 4, 1)});
  x = b.max_pool("mp", x, 3, 2, 1);
  x = b.avg_pool("ap", x, 2, 1, 1);
  x = b.adaptive_avg_pool("gap", x, 2, 3);
  x = b.flatten("flat", x);
  x = b.dropout("drop", x, 0.25);
  Network net = b.finish(b.linear("fc", x, 7));
  // A ceil-mode pool is not reachable through the builder; set it on the node.
  net.node(net.find("mp")).attrs.ceil_mode = true;
  net.meta()["zoo"] = "hand-built";
  net.meta()["note"] = "with \"quotes\", unicode \xc3\xa9 and\nnewlines";
  return net;
}

void require_same(const Network& a, const Network& b) {
  REQUIRE(a.size() == b.size());
  CHECK(a.input_shape() == b.input_shape());
  CHECK(a.output() == b.output());
  CHECK(a.meta() == b.meta());
  for (int i = 0; i < a.size(); ++i) {
    const Node& x = a.node(i);
    const Node& y = b.node(i);
    INFO("node " << x.name);
    CHECK(x.name == y.name);
    CHECK(x.op == y.op);
    CHECK(x.inputs == y.inputs);
    CHECK(x.attrs.in_channels == y.attrs.in_channels);
    CHECK(x.attrs.out_channels == y.attrs.out_channels);
    CHECK(x.attrs.kernel == y.attrs.kernel);
    CHECK(x.attrs.stride == y.attrs.stride);
    CHECK(x.attrs.padding == y.attrs.padding);
    CHECK(x.attrs.dilation == y.attrs.dilation);
    CHECK(x.attrs.groups == y.attrs.groups);
    CHECK(x.attrs.bias == y.attrs.bias);
    CHECK(x.attrs.ceil_mode == y.attrs.ceil_mode);
    CHECK(x.attrs.eps == y.attrs.eps);
    CHECK(x.attrs.momentum == y.attrs.momentum);
    CHECK(x.attrs.output_size == y.attrs.output_size);
    CHECK(x.attrs.p == y.attrs.p);
    REQUIRE(x.params.size() == y.params.size());
    for (const auto& [key, t] : x.params) {
      INFO("parameter " << key);
      REQUIRE(y.params.count(key) == 1);
      CHECK(y.params.at(key).shape == t.shape);
      CHECK(std::memcmp(y.params.at(key).data.data(), t.data.data(),
                        t.data.size() * sizeof(float)) == 0);
    }
  }
}

void require_load_fails(const std::string& path, const std::string& what) {
  INFO("file " << path);
  REQUIRE_THROWS_AS(load_network(path), InputError);
  REQUIRE_THROWS_WITH(load_network(path), Catch::Contains(what) && Catch::Contains(path));
}

}  // namespace

TEST_CASE("save/load round trip is exact", "[graph][serialize]") {
  TempDir dir;
  SECTION("hand-built network with every op") {
    const Network net = make_net();
    const std::string path = dir.file("net.tfn");
    save_network(net, path);
    CHECK_FALSE(fs::exists(path + ".tmp"));
    const Network loaded = load_network(path);
    require_same(net, loaded);
    CHECK(loaded.node(loaded.find("mp")).attrs.ceil_mode);
    CHECK(loaded.node(loaded.find("bn")).attrs.eps == 1e-3);
    // Saving what was loaded gives the same bytes.
    save_network(loaded, dir.file("again.tfn"));
    CHECK(read_bytes(path) == read_bytes(dir.file("again.tfn")));
  }
  SECTION("zoo model with an output that is not the last node") {
    Network net =
        tightfit::models::make_model("resnet8", tightfit::models::default_options("resnet8"));
    net.set_output(net.find("flatten"));
    const std::string path = dir.file("resnet8.tfn");
    save_network(net, path);
    const Network loaded = load_network(path);
    require_same(net, loaded);
    CHECK(loaded.output() == net.find("flatten"));
  }
}

TEST_CASE("loading rejects missing, foreign, truncated, corrupted and newer files",
          "[graph][serialize]") {
  TempDir dir;
  const std::string good = dir.file("good.tfn");
  save_network(make_net(), good);
  const std::string bytes = read_bytes(good);
  REQUIRE(bytes.size() > 100);

  SECTION("missing file") { require_load_fails(dir.file("nope.tfn"), "cannot open"); }
  SECTION("foreign files") {
    std::mt19937 rng(1);
    std::string random(4096, '\0');
    for (char& c : random) c = static_cast<char>(rng());
    write_bytes(dir.file("random.bin"), random);
    require_load_fails(dir.file("random.bin"), "not a tightfit");
    write_bytes(dir.file("text.txt"), "{\"format\": \"tightfit-network\"}\nhello\n");
    require_load_fails(dir.file("text.txt"), "not a tightfit");
    write_bytes(dir.file("empty.tfn"), "");
    require_load_fails(dir.file("empty.tfn"), "not a tightfit");
  }
  SECTION("truncated files") {
    const std::string cut = dir.file("cut.tfn");
    // Inside the magic, the version, the header length, the header, the data length, the
    // parameter data and the checksum.
    const size_t header_len = [&] {
      uint64_t n;
      std::memcpy(&n, bytes.data() + 12, sizeof(n));
      return static_cast<size_t>(n);
    }();
    const size_t header_end = 20 + header_len;
    for (size_t len :
         {size_t{5}, size_t{8}, size_t{10}, size_t{16}, size_t{21}, 20 + header_len / 2, header_end,
          header_end + 4, header_end + 8, header_end + 100, bytes.size() - 4, bytes.size() - 1}) {
      INFO("cut at " << len << " of " << bytes.size() << " bytes");
      REQUIRE(len < bytes.size());
      write_bytes(cut, bytes.substr(0, len));
      require_load_fails(cut, "truncated");
    }
  }
  SECTION("trailing bytes") {
    write_bytes(dir.file("long.tfn"), bytes + "xyz");
    require_load_fails(dir.file("long.tfn"), "trailing bytes");
  }
  SECTION("corrupted byte") {
    const std::string bad = dir.file("bad.tfn");
    // In the JSON header, in the parameter data, in the checksum itself.
    for (size_t pos : {size_t{30}, bytes.size() / 2, bytes.size() - 20, bytes.size() - 2}) {
      INFO("byte " << pos);
      std::string flipped = bytes;
      flipped[pos] = static_cast<char>(flipped[pos] ^ 0x10);
      write_bytes(bad, flipped);
      require_load_fails(bad, "corrupted");
    }
  }
  SECTION("newer format version") {
    std::string newer = bytes;
    const uint32_t version = tightfit::graph::kFileFormatVersion + 1;
    std::memcpy(newer.data() + 8, &version, sizeof(version));
    write_bytes(dir.file("newer.tfn"), newer);
    require_load_fails(dir.file("newer.tfn"), "newer");
    REQUIRE_THROWS_WITH(load_network(dir.file("newer.tfn")), Catch::Contains("upgrade tightfit"));
  }
}

TEST_CASE("saving to a folder that does not exist is an InputError", "[graph][serialize]") {
  TempDir dir;
  const std::string path = dir.file("missing/sub/net.tfn");
  REQUIRE_THROWS_AS(save_network(make_net(), path), InputError);
  REQUIRE_THROWS_WITH(save_network(make_net(), path), Catch::Contains(path));
}

TEST_CASE("a model file with a bad attribute is refused, naming the node, attribute and value",
          "[graph][serialize]") {
  TempDir dir;
  const Network good =
      tightfit::models::make_model("resnet8", tightfit::models::default_options("resnet8"));
  const int conv = good.find("conv1");
  REQUIRE(conv > 0);
  int pool = -1, bn = -1;
  for (int i = 0; i < good.size(); ++i) {
    if (good.node(i).op == OpKind::kAdaptiveAvgPool) pool = i;
    if (bn < 0 && good.node(i).op == OpKind::kBatchNorm) bn = i;
  }
  REQUIRE(pool > 0);
  REQUIRE(bn > 0);
  struct Case {
    const char* what;
    int node;
    std::function<void(Attrs&)> change;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"stride 0", conv,
       [](Attrs& a) {
         a.stride = {0, 1};
       },
       "stride is 0x1"},
      {"dilation 0", conv,
       [](Attrs& a) {
         a.dilation = {1, 0};
       },
       "dilation is 1x0"},
      {"kernel 0", conv,
       [](Attrs& a) {
         a.kernel = {0, 0};
       },
       "kernel is 0x0"},
      {"negative padding", conv,
       [](Attrs& a) {
         a.padding = {-1, 1};
       },
       "padding is -1x1"},
      {"padding beyond the kernel", conv,
       [](Attrs& a) {
         a.padding = {5, 5};
       },
       "padding is 5x5"},
      {"groups 0", conv, [](Attrs& a) { a.groups = 0; }, "groups is 0"},
      {"huge channel count", conv, [](Attrs& a) { a.out_channels = int64_t{1} << 40; },
       "out_channels is 1099511627776"},
      {"huge output size", pool,
       [](Attrs& a) {
         a.output_size = {100000, 100000};
       },
       "output_size is 100000x100000"},
      {"eps 0", bn, [](Attrs& a) { a.eps = 0; }, "eps is 0"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    Network bad = good;
    c.change(bad.node(c.node).attrs);
    const std::string path = dir.file("bad.tfn");
    save_network(bad, path);
    require_load_fails(path, std::string("node '") + good.node(c.node).name + "'");
    REQUIRE_THROWS_WITH(load_network(path), Catch::Contains(c.message));
  }
  // A pooling layer with stride 0, a hand-built network.
  tightfit::graph::Builder b({1, 8, 8}, 1);
  const int x = b.max_pool("pool", b.input(), 2, 2);
  Network pooled = b.finish(b.flatten("flat", x));
  pooled.node(x).attrs.stride = {0, 0};
  const std::string path = dir.file("pool.tfn");
  save_network(pooled, path);
  require_load_fails(path, "stride is 0x0");
}
