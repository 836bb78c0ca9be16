// Helpers shared by the criteria: weights as filter matrices, passes over the calibration
// batches (plain, or with the gradients of the loss), and views of one group's channels inside a
// node's output.
//
// Every data-driven criterion makes exactly one pass: the Executor is built once per call and
// each batch's feature maps are reduced to per-channel statistics before the next batch runs, so
// memory stays at one batch's feature maps whatever the number of batches.

#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <string>

#include "core/errors.h"
#include "graph/executor.h"
#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

namespace {

/// The batch as float32, after checking that it fits the network's input.
at::Tensor checked_batch(const graph::Network& net, const Calibration& calibration, size_t b) {
  const at::Tensor& x = calibration.images[b];
  const graph::Shape& in = net.input_shape();
  bool fits = x.defined() && x.dim() == static_cast<int64_t>(in.size()) + 1 && x.size(0) > 0;
  for (size_t d = 0; fits && d < in.size(); ++d)
    fits = x.size(static_cast<int64_t>(d) + 1) == in[d];
  if (!fits) {
    std::string got = "undefined";
    if (x.defined()) {
      got.clear();
      for (int64_t d = 0; d < x.dim(); ++d) got += (d ? "x" : "") + std::to_string(x.size(d));
    }
    throw InputError("calibration batch " + std::to_string(b) + " has shape " + got +
                     " but the network takes Nx" + graph::shape_str(in) +
                     "; draw the calibration images from the network's data set");
  }
  return x.to(torch::kCPU, torch::kFloat32).contiguous();  // the Executor runs on the CPU
}

}  // namespace

std::vector<double> l1_group(const graph::Network& net, const graph::ChannelGroup& group) {
  at::Tensor score = torch::zeros({group.channels}, torch::kFloat64);
  for (int p : group.producers) {
    // Divided by the filter size so that a 3x3 conv and a 1x1 shortcut of one residual group
    // weigh alike.
    // A reduction kernel: no |w| the size of the layer is materialized.
    const at::Tensor w = filter_matrix(net.node(p).params.at("weight"));
    score += w.norm(1, {1}).to(torch::kFloat64) / static_cast<double>(w.size(1));
  }
  return to_vector(score);
}

at::Tensor filter_matrix(const graph::Tensor& weight) {
  TIGHTFIT_CHECK(weight.numel() == static_cast<int64_t>(weight.data.size()) && !weight.shape.empty(),
                 "weight data does not match its shape");
  // A read-only view of the network's own buffer: scoring copies nothing.
  const int64_t rows = weight.shape[0];
  return torch::from_blob(const_cast<float*>(weight.data.data()), {rows, weight.numel() / rows},
                          torch::kFloat32);
}

Scores for_decision_points(const graph::ChannelAnalysis& ca,
                           const std::function<std::vector<double>(int)>& score) {
  Scores out(ca.groups.size());
  for (int g : ca.decision_points) out[g] = score(g);
  return out;
}

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor d = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  const double* p = d.data_ptr<double>();
  return std::vector<double>(p, p + d.numel());
}

void for_each_batch(
    const graph::Network& net, const Calibration& calibration,
    const std::function<void(size_t batch, const std::vector<at::Tensor>&)>& visit) {
  torch::NoGradGuard no_grad;
  graph::Executor executor(net);
  executor.train(false);
  for (size_t b = 0; b < calibration.images.size(); ++b) {
    const std::vector<at::Tensor> values = executor.forward_all(checked_batch(net, calibration, b));
    visit(b, values);
  }
}

void for_each_batch_with_grads(
    const graph::Network& net, const Calibration& calibration, const std::vector<int>& nodes,
    const std::function<void(size_t batch, const std::vector<at::Tensor>& values,
                             const std::vector<at::Tensor>& grads)>& visit) {
  if (calibration.labels.size() != calibration.images.size())
    throw InputError("calibration has " + std::to_string(calibration.images.size()) +
                     " image batches but " + std::to_string(calibration.labels.size()) +
                     " label batches; gradient criteria need one label tensor per batch");
  // Eval mode (running BN statistics, no dropout) with autograd on, as the criteria score the
  // trained network as it will be deployed.
  torch::AutoGradMode grad_on(true);
  graph::Executor executor(net);
  executor.train(false);
  for (size_t b = 0; b < calibration.images.size(); ++b) {
    const at::Tensor x = checked_batch(net, calibration, b);
    const at::Tensor labels = calibration.labels[b].to(torch::kInt64).reshape({-1});
    const std::vector<at::Tensor> values = executor.forward_all(x);
    const at::Tensor& logits = values[net.output()];
    if (logits.dim() != 2 || labels.numel() != x.size(0))
      throw InputError("calibration batch " + std::to_string(b) + ": " +
                       std::to_string(labels.numel()) + " labels for " + std::to_string(x.size(0)) +
                       " images, or a network whose output is not {N, classes}; gradient "
                       "criteria need one class label per image");
    if (labels.numel() > 0 &&
        (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= logits.size(1)))
      throw InputError("calibration batch " + std::to_string(b) + " has labels outside [0, " +
                       std::to_string(logits.size(1)) + "); use the network's data set");
    // Summed, not averaged: every image's gradient is then its own loss's gradient, whatever
    // the batch size.
    const at::Tensor loss = torch::nn::functional::cross_entropy(
        logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));

    std::vector<at::Tensor> wanted;
    std::vector<size_t> slot;
    for (size_t k = 0; k < nodes.size(); ++k) {
      if (values[nodes[k]].requires_grad()) {
        wanted.push_back(values[nodes[k]]);
        slot.push_back(k);
      }
    }
    std::vector<at::Tensor> grads(nodes.size());
    if (!wanted.empty() && loss.requires_grad()) {
      // autograd::grad rather than retain_grad() + backward(): nothing accumulates in the
      // parameters' .grad, and nodes the loss does not reach come back undefined.
      const auto got = torch::autograd::grad({loss}, wanted, {}, /*retain_graph=*/false,
                                             /*create_graph=*/false, /*allow_unused=*/true);
      for (size_t k = 0; k < got.size(); ++k) grads[slot[k]] = got[k];
    }
    torch::NoGradGuard no_grad;
    visit(b, values, grads);
  }
}

int64_t group_offset(const graph::ChannelLayout& layout, int group) {
  int64_t offset = 0;
  for (const graph::Segment& seg : layout.segments) {
    if (seg.group == group) return offset;
    offset += seg.channels;
  }
  return -1;
}

at::Tensor group_channels(const at::Tensor& value, const graph::ChannelLayout& layout, int group) {
  int64_t total = 0, channels = 0;
  for (const graph::Segment& seg : layout.segments) {
    total += seg.channels;
    if (seg.group == group && channels == 0) channels = seg.channels;
  }
  const int64_t offset = group_offset(layout, group);
  TIGHTFIT_CHECK(offset >= 0, "group " << group << " is not in the layout");
  // {N, C, H, W} -> {N, C, H*W}; a flattened {N, C*spatial} -> {N, C, spatial} (flatten keeps
  // each channel's features consecutive); {N, F} -> {N, F, 1}.
  return value.reshape({value.size(0), total, -1}).narrow(1, offset, channels);
}

std::vector<int> activation_members(const graph::Network& net, const graph::ChannelGroup& group,
                                    bool any_activation) {
  std::vector<int> out;
  for (int m : group.members) {
    const graph::OpKind op = net.node(m).op;
    if (op == graph::OpKind::kReLU || op == graph::OpKind::kReLU6 ||
        (any_activation && op == graph::OpKind::kHardswish))
      out.push_back(m);
  }
  if (out.empty()) out.push_back(group.members.back());
  return out;
}

Scores activation_scores(const CriterionInput& in, bool any_activation,
                         const std::function<std::unique_ptr<ActivationStat>()>& make) {
  struct Site {
    int group, node;
    std::unique_ptr<ActivationStat> stat;
  };
  std::vector<Site> sites;
  for (int g : in.ca.decision_points)
    for (int node : activation_members(in.net, in.ca.groups[g], any_activation))
      sites.push_back({g, node, make()});
  for_each_batch(in.net, in.calibration, [&](size_t, const std::vector<at::Tensor>& values) {
    for (Site& s : sites)
      s.stat->add(group_channels(values[s.node], in.ca.layouts[s.node], s.group));
  });
  return for_decision_points(in.ca, [&](int g) {
    at::Tensor total = torch::zeros({in.ca.groups[g].channels}, torch::kFloat64);
    int n = 0;
    for (const Site& s : sites)
      if (s.group == g) {
        total += s.stat->result().to(torch::kFloat64);
        ++n;
      }
    return to_vector(total / std::max(n, 1));
  });
}

std::vector<int> decision_producers(const graph::ChannelAnalysis& ca) {
  std::set<int> producers;
  for (int g : ca.decision_points)
    producers.insert(ca.groups[g].producers.begin(), ca.groups[g].producers.end());
  return {producers.begin(), producers.end()};
}

}  // namespace tightfit::policies::criteria
