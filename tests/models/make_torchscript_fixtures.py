#!/usr/bin/python3
"""TorchScript fixtures for the import tests, made at test time with Debian's python3-torch
(1.13.1, the LibTorch version tightfit builds against) and python3-torchvision.

    make_torchscript_fixtures.py OUTDIR [MODEL ...]

For each torchvision model (random weights, 10 classes, BatchNorm statistics randomized so that
BN is not the identity) writes, for an input of 3x64x64:
    NAME_traced.pt     torch.jit.trace(model, x).save(...)
    NAME_scripted.pt   torch.jit.script(model).save(...)
    NAME_input.bin     x, float32, 2x3x64x64, C order
    NAME_output.bin    model(x) in eval mode, float32, 2x10
and fixtures.json listing them; besides, two files an import must refuse: unsupported.pt (a
traced module with ELU and leaky ReLU, ops the IR does not have) and state_dict.pt (what
torch.save(model.state_dict()) writes). Deterministic (seeded).
"""
import json
import os
import sys

import torch
import torchvision

# mobilenet_v3_small: hardswish, hardsigmoid and squeeze-and-excitation gates (mul);
# shufflenet_v2_x0_5: chunk, concatenation and channel shuffle; efficientnet_b0: SiLU and
# sigmoid gates.
MODELS = ["resnet18", "resnet50", "mobilenet_v2", "vgg11_bn", "mobilenet_v3_small",
          "shufflenet_v2_x0_5", "efficientnet_b0"]
SHAPE = [3, 64, 64]
BATCH = 2


def make(name, out_dir):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=10)
    for m in model.modules():  # BN as a trained network has it: not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.randn([BATCH] + SHAPE)
    with torch.no_grad():
        y = model(x)
        torch.jit.trace(model, x).save(os.path.join(out_dir, name + "_traced.pt"))
    torch.jit.script(model).save(os.path.join(out_dir, name + "_scripted.pt"))
    x.numpy().tofile(os.path.join(out_dir, name + "_input.bin"))
    y.numpy().tofile(os.path.join(out_dir, name + "_output.bin"))
    return {"name": name, "input_shape": SHAPE, "batch": BATCH, "classes": 10}


def main():
    out_dir = sys.argv[1]
    names = sys.argv[2:] or MODELS
    os.makedirs(out_dir, exist_ok=True)
    fixtures = [make(n, out_dir) for n in names]
    torch.manual_seed(0)
    odd = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ELU(), torch.nn.Conv2d(8, 8, 3),
                              torch.nn.LeakyReLU(), torch.nn.ELU()).eval()
    torch.jit.trace(odd, torch.randn([1] + SHAPE)).save(os.path.join(out_dir, "unsupported.pt"))
    torch.save(odd.state_dict(), os.path.join(out_dir, "state_dict.pt"))
    with open(os.path.join(out_dir, "fixtures.json"), "w") as f:
        json.dump({"torch": torch.__version__, "torchvision": torchvision.__version__,
                   "models": fixtures}, f, indent=1)


if __name__ == "__main__":
    main()
