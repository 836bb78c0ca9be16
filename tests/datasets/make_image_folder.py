#!/usr/bin/python3
"""An ImageFolder tree made from Fashion-MNIST, as a user's data would look, and torchvision's
own reading of it as the reference.

    make_image_folder.py FASHION_MNIST_DIR OUTDIR [PER_CLASS_TRAIN PER_CLASS_VAL SIZE]

OUTDIR/images/{train,val}/CLASS/NNNNN.png (every fifth one a .jpg) with 3-channel SIZE x SIZE
images (default 28, the originals), class folders named by Fashion-MNIST's labels;
OUTDIR/reference_RESIZE_CROP.bin: for resize 36 / crop 32, the uint8 C x H x W images of train
then val, in ImageFolder's order, from torchvision's Resize and CenterCrop on the PIL images.
"""
import gzip
import os
import sys

import numpy
import torch
import torchvision
from PIL import Image

CLASSES = ["0_tshirt", "1_trouser", "2_pullover", "3_dress", "4_coat", "5_sandal", "6_shirt",
           "7_sneaker", "8_bag", "9_boot"]


def idx(path, header):
    with gzip.open(path, "rb") as f:
        return numpy.frombuffer(f.read(), dtype=numpy.uint8, offset=header)


def main():
    src, out = sys.argv[1], sys.argv[2]
    per_train = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    per_val = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 28
    x = idx(os.path.join(src, "train-images-idx3-ubyte.gz"), 16).reshape(-1, 28, 28)
    y = idx(os.path.join(src, "train-labels-idx1-ubyte.gz"), 8)
    counts = {}
    for i in range(len(y)):
        c = int(y[i])
        k = counts.get(c, 0)
        if k >= per_train + per_val:
            continue
        counts[c] = k + 1
        part = "train" if k < per_train else "val"
        folder = os.path.join(out, "images", part, CLASSES[c])
        os.makedirs(folder, exist_ok=True)
        img = Image.fromarray(x[i]).convert("RGB")
        if size != 28:
            img = img.resize((size, size), Image.BILINEAR)
        if i % 5 == 0:
            img.save(os.path.join(folder, "%05d.jpg" % i), quality=95)
        else:
            img.save(os.path.join(folder, "%05d.png" % i))
        if len(counts) == 10 and all(v >= per_train + per_val for v in counts.values()):
            break
    transform = torchvision.transforms.Compose([
        torchvision.transforms.Resize(36), torchvision.transforms.CenterCrop(32),
        torchvision.transforms.PILToTensor()])
    ref = []
    for part in ["train", "val"]:
        data = torchvision.datasets.ImageFolder(os.path.join(out, "images", part),
                                                transform=transform)
        for image, _ in data:
            ref.append(image.numpy())
    numpy.stack(ref).tofile(os.path.join(out, "reference_36_32.bin"))


if __name__ == "__main__":
    main()
