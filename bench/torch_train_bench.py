#!/usr/bin/python3
"""torch_train_bench.py - PyTorch's training throughput on a Dojo model spec:
the same network (tools/dojo_torch.py builds it), batch size, thread count,
optimizer step (SGD with momentum, Nesterov) and Fashion-MNIST images,
preloaded as normalised tensors (so data loading costs PyTorch nothing).

Prints images/s; with --json one JSON object. Used by bench/train_vs_torch.sh.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import dojo_torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=10240, help="images to train on (after warm-up)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    spec = dojo_torch.load_spec(a.model)
    model, _ = dojo_torch.build_model(spec)
    model.train()
    x, y = dojo_torch.load_split(a.data, train=True)
    n = min(a.images + 5 * a.batch_size, len(y))
    inputs = dojo_torch.normalize(spec, x[:n])
    labels = torch.from_numpy(y[:n].astype("int64"))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i):
        xb, yb = inputs[i:i + a.batch_size], labels[i:i + a.batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return len(yb)

    for w in range(3):  # warm-up
        step(w * a.batch_size)
    done, t0 = 0, time.perf_counter()
    i = 0
    while done < a.images:
        if i + a.batch_size > n:
            i = 0
        done += step(i)
        i += a.batch_size
    dt = time.perf_counter() - t0
    res = {"images_per_second": done / dt, "images": done, "seconds": dt, "threads": a.threads,
           "batch_size": a.batch_size, "torch": torch.__version__}
    print(json.dumps(res) if a.json else "pytorch %s: %.0f images/s (%d images, %d threads, batch %d)" % (
        torch.__version__, res["images_per_second"], done, a.threads, a.batch_size))


if __name__ == "__main__":
    main()
