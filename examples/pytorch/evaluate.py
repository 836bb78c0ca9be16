#!/usr/bin/python3
"""Loads a network tightfit exported (`tightfit export`, or a search's models/<#>.pt with
"outputs": {"export": "torchscript"}) and measures its top-1 accuracy on an ImageFolder tree.

    evaluate.py MODEL.pt FOLDER [--size 32]

Prints {"accuracy": ..., "images": ..., "params": ...} as JSON. The preprocessing is train.py's.
"""
import argparse
import json

import torch

from train import loader


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("folder")
    ap.add_argument("--size", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(2)
    # The lines that matter: load, eval mode, run.
    model = torch.jit.load(a.model).eval()
    data, _ = loader(a.folder, a.size, False)
    correct = images = 0
    with torch.no_grad():
        for x, y in data:
            correct += (model(x).argmax(1) == y).sum().item()
            images += len(y)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"accuracy": correct / images, "images": images, "params": params}))


if __name__ == "__main__":
    main()
