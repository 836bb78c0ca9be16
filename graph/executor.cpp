#include "graph/executor.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstring>

#include "core/errors.h"

namespace tightfit::graph {

at::Tensor to_torch(const Tensor& t) {
  auto out = torch::empty(t.shape, torch::kFloat32);
  TIGHTFIT_CHECK(static_cast<int64_t>(t.data.size()) == out.numel(), "tensor data/shape mismatch");
  std::memcpy(out.data_ptr<float>(), t.data.data(), t.data.size() * sizeof(float));
  return out;
}

Tensor from_torch(const at::Tensor& src) {
  auto t = src.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  Tensor out;
  out.shape.assign(t.sizes().begin(), t.sizes().end());
  out.data.resize(static_cast<size_t>(t.numel()));
  std::memcpy(out.data.data(), t.data_ptr<float>(), out.data.size() * sizeof(float));
  return out;
}

at::Tensor activation(OpKind op, const at::Tensor& x) {
  switch (op) {
    case OpKind::kReLU:
      return torch::relu(x);
    case OpKind::kReLU6:
      return torch::clamp(x, 0.0, 6.0);
    case OpKind::kHardswish:
      return torch::hardswish(x);
    case OpKind::kHardsigmoid:
      return torch::hardsigmoid(x);
    case OpKind::kSigmoid:
      return torch::sigmoid(x);
    case OpKind::kSiLU:
      return torch::silu(x);
    case OpKind::kGELU:
      return torch::gelu(x);
    case OpKind::kTanh:
      return torch::tanh(x);
    default:
      TIGHTFIT_CHECK(false, op_name(op) << " is not an activation");
      return x;
  }
}

at::Tensor channel_shuffle(const at::Tensor& x, int64_t groups) {
  return x.reshape({x.size(0), groups, x.size(1) / groups, x.size(2), x.size(3)})
      .transpose(1, 2)
      .reshape(x.sizes());
}

struct Executor::Impl {
  struct Op {
    OpKind op;
    std::vector<int> inputs;
    Attrs attrs;
    at::Tensor weight, bias, running_mean, running_var;
    at::Tensor mask;            ///< 0/1, same shape as weight (undefined: dense)
    int weight_bits = 32;       ///< < 32: fake-quantized in the forward pass
    WeightQuantizer quantizer;  ///< set: the grid instead of weight_bits' symmetric one

    /// The weight the forward pass uses: masked, then fake-quantized (straight-through).
    at::Tensor effective_weight() const {
      at::Tensor w = mask.defined() ? weight * mask : weight;
      if (quantizer) {
        Tensor t = from_torch(w);
        quantizer(t);
        at::Tensor q = to_torch(t);
        if (mask.defined()) q = q * mask;  // a grid without 0 must not revive pruned weights
        return w + (q - w).detach();
      }
      if (weight_bits >= 32) return w;
      const double qmax = static_cast<double>((1 << (weight_bits - 1)) - 1);
      const int64_t out = w.size(0);
      const at::Tensor scale =
          (w.detach().reshape({out, -1}).abs().amax(1) / qmax).clamp_min(1e-12).to(torch::kFloat);
      const at::Tensor zero = torch::zeros({out}, torch::kInt);
      return torch::fake_quantize_per_channel_affine(w, scale, zero, 0, static_cast<int64_t>(-qmax),
                                                     static_cast<int64_t>(qmax));
    }
  };
  std::map<std::string, int> by_name;
  std::vector<Op> ops;
  int output = 0;
  // BN recalibration: number of batches averaged so far (< 0 when not recalibrating).
  int64_t recal_batches = -1;
  // Dropout's masks in train mode; undefined: LibTorch's global generator.
  at::Generator dropout_generator;
};

Executor::Executor(const Network& net) : impl_(std::make_unique<Impl>()) {
  infer_shapes(net);  // reject malformed networks before building anything
  impl_->output = net.output();
  for (const Node& node : net.nodes()) {
    Impl::Op op;
    op.op = node.op;
    op.inputs = node.inputs;
    op.attrs = node.attrs;
    auto get = [&](const char* key) -> at::Tensor {
      auto it = node.params.find(key);
      return it == node.params.end() ? at::Tensor() : to_torch(it->second);
    };
    op.weight = get("weight");
    op.bias = get("bias");
    op.running_mean = get("running_mean");
    op.running_var = get("running_var");
    if (op.weight.defined()) op.weight.set_requires_grad(true);
    if (op.bias.defined()) op.bias.set_requires_grad(true);
    impl_->by_name[node.name] = static_cast<int>(impl_->ops.size());
    impl_->ops.push_back(std::move(op));
  }
}

Executor::~Executor() = default;
Executor::Executor(Executor&&) noexcept = default;
Executor& Executor::operator=(Executor&&) noexcept = default;

at::Tensor Executor::forward(const at::Tensor& x) { return forward_all(x)[impl_->output]; }

std::vector<at::Tensor> Executor::forward_all(const at::Tensor& x) {
  auto& ops = impl_->ops;
  std::vector<at::Tensor> values(ops.size());
  values[0] = x;
  const bool recal = impl_->recal_batches >= 0;
  for (size_t i = 1; i < ops.size(); ++i) {
    Impl::Op& op = ops[i];
    const Attrs& a = op.attrs;
    const at::Tensor& in = values[op.inputs.at(0)];
    at::Tensor y;
    switch (op.op) {
      case OpKind::kInput:
        TIGHTFIT_CHECK(false, "input node after position 0");
        break;
      case OpKind::kConv2d:
        y = torch::conv2d(in, op.effective_weight(), op.bias, {a.stride[0], a.stride[1]},
                          {a.padding[0], a.padding[1]}, {a.dilation[0], a.dilation[1]}, a.groups);
        break;
      case OpKind::kLinear:
        y = torch::linear(in, op.effective_weight(), op.bias);
        break;
      case OpKind::kBatchNorm: {
        // During recalibration momentum 1/(k+1) makes the running statistics the equal-weight
        // mean of the k+1 batch statistics seen so far (PyTorch's momentum=None behaviour).
        const double momentum =
            recal ? 1.0 / static_cast<double>(impl_->recal_batches + 1) : a.momentum;
        y = torch::batch_norm(in, op.weight, op.bias, op.running_mean, op.running_var, training_,
                              momentum, a.eps, /*cudnn_enabled=*/false);
        break;
      }
      case OpKind::kReLU:
      case OpKind::kReLU6:
      case OpKind::kHardswish:
      case OpKind::kHardsigmoid:
      case OpKind::kSigmoid:
      case OpKind::kSiLU:
      case OpKind::kGELU:
      case OpKind::kTanh:
        y = graph::activation(op.op, in);
        break;
      case OpKind::kMul:
        y = in * values[op.inputs.at(1)];
        break;
      case OpKind::kSlice:
        y = in.slice(1, a.begin, a.end);
        break;
      case OpKind::kChannelShuffle:
        y = graph::channel_shuffle(in, a.groups);  // qualified: at::channel_shuffle by ADL
        break;
      case OpKind::kAdd:
        y = in;
        for (size_t k = 1; k < op.inputs.size(); ++k) y = y + values[op.inputs[k]];
        break;
      case OpKind::kConcat: {
        std::vector<at::Tensor> parts;
        for (int j : op.inputs) parts.push_back(values[j]);
        y = torch::cat(parts, 1);
        break;
      }
      case OpKind::kMaxPool:
        y = torch::max_pool2d(in, {a.kernel[0], a.kernel[1]}, {a.stride[0], a.stride[1]},
                              {a.padding[0], a.padding[1]}, {1, 1}, a.ceil_mode);
        break;
      case OpKind::kAvgPool:
        y = torch::avg_pool2d(in, {a.kernel[0], a.kernel[1]}, {a.stride[0], a.stride[1]},
                              {a.padding[0], a.padding[1]}, a.ceil_mode);
        break;
      case OpKind::kAdaptiveAvgPool:
        y = torch::adaptive_avg_pool2d(in, {a.output_size[0], a.output_size[1]});
        break;
      case OpKind::kFlatten:
        y = in.flatten(1);
        break;
      case OpKind::kDropout:
        if (!training_ || recal || a.p == 0) {
          y = in;
        } else if (impl_->dropout_generator.defined()) {
          // torch::dropout's computation, with masks drawn from the executor's own generator.
          const double keep = 1.0 - a.p;
          y = in * at::empty_like(in).bernoulli_(keep, impl_->dropout_generator).div_(keep);
        } else {
          y = torch::dropout(in, a.p, true);
        }
        break;
      case OpKind::kFakeQuant:
        // Rounds to the integer grid in the forward pass; the gradient passes straight through
        // inside [q_min, q_max] (LibTorch's built-in straight-through estimator).
        y = torch::fake_quantize_per_tensor_affine(in, a.q_scale, a.q_zero_point, a.q_min, a.q_max);
        break;
    }
    values[i] = std::move(y);
  }
  if (recal && training_) ++impl_->recal_batches;
  return values;
}

std::vector<at::Tensor> Executor::parameters() {
  std::vector<at::Tensor> out;
  for (auto& op : impl_->ops) {
    if (op.weight.defined()) out.push_back(op.weight);
    if (op.bias.defined()) out.push_back(op.bias);
  }
  return out;
}

void Executor::set_parameter(const std::string& layer, const std::string& which,
                             const at::Tensor& t) {
  auto it = impl_->by_name.find(layer);
  if (it == impl_->by_name.end())
    throw InputError("cannot set a parameter of '" + layer + "': no such layer in this network");
  Impl::Op& op = impl_->ops[it->second];
  at::Tensor* slot = which == "weight"         ? &op.weight
                     : which == "bias"         ? &op.bias
                     : which == "running_mean" ? &op.running_mean
                     : which == "running_var"  ? &op.running_var
                                               : nullptr;
  if (!slot || !slot->defined()) {
    std::vector<std::string> valid;
    for (const auto& [key, p] : {std::pair<const char*, const at::Tensor*>{"weight", &op.weight},
                                 {"bias", &op.bias},
                                 {"running_mean", &op.running_mean},
                                 {"running_var", &op.running_var}})
      if (p->defined()) valid.push_back(key);
    std::string list;
    for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
    throw InputError("layer '" + layer + "' (" + op_name(op.op) + ") has no parameter '" + which +
                     "'; it has: " + (list.empty() ? "none" : list));
  }
  if (!t.defined() || t.sizes() != slot->sizes()) {
    const Shape want(slot->sizes().begin(), slot->sizes().end());
    const Shape got = t.defined() ? Shape(t.sizes().begin(), t.sizes().end()) : Shape{};
    throw InputError("parameter '" + which + "' of '" + layer + "' must have shape " +
                     shape_str(want) + ", not " + shape_str(got) +
                     "; build the tensor for this network's shapes");
  }
  *slot = t;
}

void Executor::begin_bn_recalibration() {
  torch::NoGradGuard no_grad;
  for (auto& op : impl_->ops) {
    if (op.op != OpKind::kBatchNorm) continue;
    op.running_mean.zero_();
    op.running_var.fill_(1.0);
  }
  impl_->recal_batches = 0;
}

void Executor::end_bn_recalibration() { impl_->recal_batches = -1; }

void Executor::seed_dropout(uint64_t seed) {
  impl_->dropout_generator = at::make_generator<at::CPUGeneratorImpl>(seed);
}

void Executor::constrain_weights(const std::map<std::string, Tensor>& masks,
                                 const std::map<std::string, int>& weight_bits,
                                 const std::map<std::string, WeightQuantizer>& quantizers) {
  auto layer = [&](const std::string& name) -> Impl::Op& {
    auto it = impl_->by_name.find(name);
    if (it == impl_->by_name.end() || !has_weights(impl_->ops[it->second].op))
      throw InputError("cannot constrain '" + name + "': not a conv/linear layer of this network");
    return impl_->ops[it->second];
  };
  for (const auto& [name, mask] : masks) {
    Impl::Op& op = layer(name);
    at::Tensor m = to_torch(mask);
    if (m.sizes() != op.weight.sizes())
      throw InputError("mask of '" + name + "' does not match its weight's shape");
    op.mask = m;
  }
  for (const auto& [name, bits] : weight_bits) {
    if (bits >= 32) continue;
    if (bits < 2 || bits > 16)
      throw InputError("fine-tuning '" + name + "' at " + std::to_string(bits) +
                       " bits: straight-through fake quantization needs 2 to 16 bits");
    layer(name).weight_bits = bits;
  }
  for (const auto& [name, quantizer] : quantizers) layer(name).quantizer = quantizer;
}

void Executor::write_back(Network& net) const {
  TIGHTFIT_CHECK(net.size() == static_cast<int>(impl_->ops.size()), "structure changed");
  for (int i = 0; i < net.size(); ++i) {
    Node& node = net.node(i);
    const Impl::Op& op = impl_->ops[i];
    auto put = [&](const char* key, const at::Tensor& t) {
      if (t.defined()) node.params[key] = from_torch(t);
    };
    if (op.weight.defined() && (op.mask.defined() || op.weight_bits < 32 || op.quantizer)) {
      torch::NoGradGuard no_grad;
      put("weight", op.effective_weight());
    } else {
      put("weight", op.weight);
    }
    put("bias", op.bias);
    put("running_mean", op.running_mean);
    put("running_var", op.running_var);
  }
}

}  // namespace tightfit::graph
