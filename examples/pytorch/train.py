#!/usr/bin/python3
"""Trains a torchvision model briefly on an ImageFolder tree and saves it as TorchScript, the file
`tightfit` reads as --model (or "model": {"path": ...} in a search config).

    train.py IMAGES OUT.pt [--model resnet18] [--epochs 3] [--size 32] [--seed 0]

IMAGES holds train/CLASS/*.png|jpg (and val/CLASS/...). The inputs are normalized per channel
with MEAN and STD below: give tightfit the same values in the config's data section.
"""
import argparse
import json

import torch
import torchvision
from torchvision import transforms

# Fashion-MNIST's statistics, for each of the three (gray) channels.
MEAN = [0.286, 0.286, 0.286]
STD = [0.353, 0.353, 0.353]


def loader(root, size, shuffle, batch_size=50):
    tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    data = torchvision.datasets.ImageFolder(root, tf)
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle), data.classes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images")
    ap.add_argument("out")
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    train, classes = loader(a.images + "/train", a.size, True)
    model = getattr(torchvision.models, a.model)(num_classes=len(classes))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    model.train()
    for epoch in range(a.epochs):
        total = 0.0
        for x, y in train:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
        print(json.dumps({"epoch": epoch + 1, "loss": total / len(train.dataset)}))

    # The lines that matter: eval mode, trace with an example input, save.
    model.eval()
    example = torch.randn(1, 3, a.size, a.size)
    torch.jit.trace(model, example).save(a.out)


if __name__ == "__main__":
    main()
