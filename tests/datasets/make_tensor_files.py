#!/usr/bin/python3
"""Tensor-file data sets for the tests, written as a user writes them: torch.save of a dict.

    make_tensor_files.py FASHION_MNIST_DIR OUTDIR

From the first 3000 training and 500 test images of Fashion-MNIST (Debian's
dataset-fashion-mnist): train_u8.pt / test_u8.pt (uint8 images), train_float.pt (the same
images as float in [0, 1]), and files an import must refuse: bad_labels.pt (a label of 300),
bad_range.pt (floats above 1), no_labels.pt ("targets" instead of "labels"), list.pt (not a dict).
"""
import gzip
import os
import sys

import numpy
import torch


def idx(path, header):
    with gzip.open(path, "rb") as f:
        return numpy.frombuffer(f.read(), dtype=numpy.uint8, offset=header)


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    train_x = idx(os.path.join(src, "train-images-idx3-ubyte.gz"), 16).reshape(-1, 1, 28, 28)
    train_y = idx(os.path.join(src, "train-labels-idx1-ubyte.gz"), 8)
    test_x = idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"), 16).reshape(-1, 1, 28, 28)
    test_y = idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"), 8)
    images = torch.from_numpy(train_x[:3000].copy())
    labels = torch.from_numpy(train_y[:3000].astype(numpy.int64))
    torch.save({"images": images, "labels": labels}, os.path.join(out, "train_u8.pt"))
    torch.save({"images": torch.from_numpy(test_x[:500].copy()),
                "labels": torch.from_numpy(test_y[:500].astype(numpy.int64))},
               os.path.join(out, "test_u8.pt"))
    torch.save({"images": images.float() / 255, "labels": labels},
               os.path.join(out, "train_float.pt"))
    bad = labels.clone()
    bad[7] = 300
    torch.save({"images": images, "labels": bad}, os.path.join(out, "bad_labels.pt"))
    torch.save({"images": images.float() / 255 * 2, "labels": labels},
               os.path.join(out, "bad_range.pt"))
    torch.save({"images": images, "targets": labels}, os.path.join(out, "no_labels.pt"))
    torch.save([images, labels], os.path.join(out, "list.pt"))


if __name__ == "__main__":
    main()
