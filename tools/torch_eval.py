#!/usr/bin/python3
"""torch_eval.py - evaluate a Dojo checkpoint with PyTorch.

Builds the nn.Sequential equivalent of a Dojo model spec, loads the
checkpoint's state_dict with load_state_dict (strict: every name and shape
must match; the optimizer.* entries are skipped) and evaluates the test split.
Its accuracy must equal `dojo eval`'s on the same checkpoint.

usage: /usr/bin/python3 tools/torch_eval.py --model models/fmnist-cnn.json \\
           --checkpoint runs/fmnist-cnn/checkpoint.safetensors [--data DIR] [--json]
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dojo_torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    spec = dojo_torch.load_spec(a.model)
    model, _ = dojo_torch.build_model(spec)
    tensors, meta = dojo_torch.read_safetensors(a.checkpoint)
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    model.load_state_dict(state, strict=True)
    model.eval()

    x, y = dojo_torch.load_split(a.data, train=False)
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    inputs = dojo_torch.normalize(spec, x)
    labels = torch.from_numpy(y.astype("int64"))
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(labels), 500):
            out = model(inputs[i:i + 500])
            loss_sum += torch.nn.functional.cross_entropy(out, labels[i:i + 500], reduction="sum").item()
            correct += (out.argmax(1) == labels[i:i + 500]).sum().item()
    n = len(labels)
    res = {"test_accuracy": correct / n, "test_loss": loss_sum / n, "images": n,
           "epoch": int(meta.get("dojo.epoch", "0"))}
    if a.json:
        print(json.dumps(res))
    else:
        print("test images: %d\naccuracy:    %.2f%%\nloss:        %.4f" % (n, 100 * res["test_accuracy"], res["test_loss"]))


if __name__ == "__main__":
    main()
