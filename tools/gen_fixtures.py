#!/usr/bin/python3
"""gen_fixtures.py - PyTorch's numbers for Dojo's end-to-end tests.

Why this exists: tests/nn/test_fixtures.c checks Dojo's layers, loss and
optimizer against PyTorch, but CI has no PyTorch. This script runs PyTorch
once and writes what it computed to tests/fixtures/*.safetensors; the C test
reads those files. Anyone can regenerate them:

    /usr/bin/python3 tools/gen_fixtures.py        (torch + numpy; ~10 s)

The output is deterministic (single thread, float64 reference, fixed
formulas), so regenerating without changing this script gives the same bytes.

Inputs, parameters and upstream gradients are not stored: they come from a
formula that the C test reproduces bit-exactly,

    mix(i, s)  = fmix32(i * 0x9E3779B1 + s * 0x85EBCA77 + 0x7F4A7C15)   (uint32)
    fmix32(h)  = murmur3's finaliser: h ^= h >> 16; h *= 0x85EBCA6B;
                 h ^= h >> 13; h *= 0xC2B2AE35; h ^= h >> 16
    value(i, s, e, o) = float32(int32(mix(i, s) >> 8) - 2^23) * 2^(e - 24) + o

(the product is exact, so the single float32 rounding of the sum is the same
in C and numpy), and labels(i) = mix(i, LABELS) % classes. Parameter tensor
k of the state_dict (in state_dict order) uses stream k; the input, the
upstream gradient and the labels use streams INPUT, DY and LABELS below.
The exponent e (scale 2^e) and offset o of every tensor are written in the
fixture's metadata, so the C side needs no table of its own. (The step's
input stream is the first from INPUT on for which no ReLU input or max-pool
tie lies within float32 rounding of flipping; see Margins. It is 0x1001.)

The reference is PyTorch in float64 fed with those float32 values, then
rounded to float32 for storage: the fixture is PyTorch's semantics computed
more exactly than any float32 implementation, and the C tolerances bound
Dojo's own rounding error only.

Fixture layout (safetensors; metadata values are strings):
  metadata  "dojo.fixture" = "1", "case", "kind" ("layer" or "step"),
            "spec" (the model spec's JSON text), "batch", "train" ("1": train
            mode forward), "input" / "dy" = "stream e o", "labels" =
            "stream classes", "params" (float tensor names, space separated,
            state_dict order), "param.<name>" = "stream e o", "sgd" (step:
            "lr momentum weight_decay nesterov").
  tensors   "output" (layer) or "logits" + "loss" (step), "grad.input"
            (layer), "grad.<param>" for every trainable parameter,
            "after.<buffer>" (running stats and num_batches_tracked after a
            train-mode forward), and for the step "after.<param>" (parameters
            after one SGD step) and "momentum.<param>" (its momentum buffer).
            A tensor over 100k elements X is stored as "X.rows" (its first 2
            rows), "X.sample" (the values at "sample_index.<param>", every
            97th element) and "X.norm" (its L2 norm).
"""

import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dojo_torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")

INPUT, DY, LABELS = 0x1000, 0x2000, 0x3000
BIG = 100000      # tensors with more elements are stored as a subset
SAMPLE_STRIDE = 97
SGD = dict(lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)

M32 = 0xFFFFFFFF


def mix(i, stream):
    """The fixture hash on a uint64 array of element indices (< 2^32)."""
    h = (i.astype(np.uint64) * np.uint64(0x9E3779B1) + np.uint64((stream * 0x85EBCA77 + 0x7F4A7C15) & M32)) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(M32)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    return h


def values(n, stream, e, o):
    """float32 array of value(i, stream, e, o) for i in [0, n)."""
    h = mix(np.arange(n, dtype=np.uint64), stream)
    k = ((h >> np.uint64(8)).astype(np.int64) - (1 << 23)).astype(np.float32)
    return k * np.float32(2.0 ** (e - 24)) + np.float32(o)


def labels(n, stream, classes):
    return (mix(np.arange(n, dtype=np.uint64), stream) % np.uint64(classes)).astype(np.int64)


def tensor_from(n_shape, stream, e, o):
    n = int(np.prod(n_shape))
    return torch.from_numpy(values(n, stream, e, o).reshape(n_shape))


def scale_exp(fan_in):
    """Exponent of the power of two nearest PyTorch's init range 2/sqrt(fan_in)."""
    return int(round(math.log2(2.0 / math.sqrt(fan_in))))


def param_formula(model, name, t):
    """(e, o) of a state_dict tensor, from the module that owns it."""
    prefix, _, leaf = name.rpartition(".")
    mod = model.get_submodule(prefix)
    if isinstance(mod, (nn.Conv2d, nn.Linear)):
        return scale_exp(mod.weight[0].numel()), 0
    if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
        return -1, 1 if leaf in ("weight", "running_var") else 0
    raise ValueError("no formula for %s" % name)


class Fixture:
    def __init__(self, case, kind, spec_text, batch, train):
        self.tensors = {}
        self.meta = {"dojo.fixture": "1", "case": case, "kind": kind, "spec": spec_text,
                     "batch": str(batch), "train": "1" if train else "0"}

    def put(self, key, t, param=None):
        """Stores t (float64 -> float32) whole or, if big, as rows + sample + norm."""
        t = t.detach()
        if t.dtype == torch.float64:
            t = t.float()
        if t.numel() <= BIG:
            self.tensors[key] = t.contiguous()
            return
        flat = t.reshape(-1)
        idx = torch.arange(0, flat.numel(), SAMPLE_STRIDE, dtype=torch.int64)
        ikey = "sample_index." + param
        if ikey not in self.tensors:
            self.tensors[ikey] = idx
        self.tensors[key + ".rows"] = t[:2].contiguous()
        self.tensors[key + ".sample"] = flat[idx].contiguous()
        self.tensors[key + ".norm"] = torch.tensor([t.double().norm().item()], dtype=torch.float32)

    def write(self, path):
        dojo_torch.write_safetensors(path, self.tensors, self.meta)


def init_params(model, fx):
    """Sets every float tensor of the state_dict by formula; records it."""
    names = []
    with torch.no_grad():
        for k, (name, t) in enumerate(model.state_dict().items()):
            if not t.is_floating_point():
                t.zero_()
                continue
            e, o = param_formula(model, name, t)
            t.copy_(tensor_from(tuple(t.shape), k, e, o).to(t.dtype))
            fx.meta["param." + name] = "%d %d %d" % (k, e, o)
            names.append(name)
    fx.meta["params"] = " ".join(names)


class Margins:
    """Forward hooks that measure how close a float32 computation could come
    to flipping a discrete choice: a ReLU input near 0, a max-pool window
    whose two largest values nearly tie. Each value carries an error scale:
    after Conv2d/Linear it is 2^-24 * sqrt(K) * sqrt(b^2 + sum (w x)^2), the
    typical rounding error of a K-term float32 dot product summed in a row
    (blocked sums do better), elsewhere the absolute floor FLOOR. A choice is
    safe when its margin is at least SAFETY error scales; check() returns the
    smallest margin / (SAFETY * scale), which must be >= 1. (The step model
    has ~470k ReLU inputs, so a few lie within float32 noise of 0 for most
    inputs; the step takes the first input stream whose margins are safe.)"""

    SAFETY = 4.0
    FLOOR = 1e-6

    def __init__(self, model):
        self.ratio = math.inf
        self.where = ""
        self.err = {}
        self.handles = []
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d)):
                self.handles.append(m.register_forward_hook(self._hook(name)))

    def _scale(self, t):
        e = self.err.get(id(t))
        return e[1] if e is not None and e[0] is t else torch.full_like(t, self.FLOOR)

    def _note(self, ratio, what):
        r = ratio.min().item() if ratio.numel() else math.inf
        if r < self.ratio:
            self.ratio, self.where = r, what

    def _hook(self, name):
        def hook(mod, inp, out):
            x = inp[0].detach()
            o = out.detach()
            if isinstance(mod, nn.Conv2d):
                b = mod.bias.detach() ** 2 if mod.bias is not None else None
                sq = nn.functional.conv2d(x ** 2, mod.weight.detach() ** 2, b, mod.stride, mod.padding)
                k = mod.weight[0].numel() + 1
                self.err[id(out)] = (out, 2.0 ** -24 * math.sqrt(k) * sq.sqrt() + self.FLOOR * 1e-3)
            elif isinstance(mod, nn.Linear):
                b = mod.bias.detach() ** 2 if mod.bias is not None else None
                sq = nn.functional.linear(x ** 2, mod.weight.detach() ** 2, b)
                k = mod.weight.shape[1] + 1
                self.err[id(out)] = (out, 2.0 ** -24 * math.sqrt(k) * sq.sqrt() + self.FLOOR * 1e-3)
            elif isinstance(mod, nn.ReLU):
                e = self._scale(inp[0])
                self._note(x.abs() / (self.SAFETY * e), "ReLU %s input" % name)
                self.err[id(out)] = (out, e)
            elif isinstance(mod, nn.MaxPool2d):
                e = self._scale(inp[0])
                k, s, p = (v if isinstance(v, tuple) else (v, v) for v in (mod.kernel_size, mod.stride, mod.padding))
                pad = (p[1], p[1], p[0], p[0])
                xw = nn.functional.pad(x, pad, value=-math.inf).unfold(2, k[0], s[0]).unfold(3, k[1], s[1])
                ew = nn.functional.pad(e, pad, value=0.0).unfold(2, k[0], s[0]).unfold(3, k[1], s[1])
                xw = xw.reshape(*xw.shape[:4], -1)
                ew = ew.reshape(*ew.shape[:4], -1)
                top = xw.topk(2, dim=-1).values
                gap = top[..., 0] - top[..., 1]
                # exact ties at 0 (ReLU zeros) route a gradient that ReLU kills anyway
                keep = ~((top[..., 0] == 0) & (top[..., 1] == 0))
                ratio = gap / (2 * self.SAFETY * ew.max(dim=-1).values)
                self._note(ratio[keep], "MaxPool2d %s window" % name)
        return hook

    def check(self):
        for h in self.handles:
            h.remove()
        self.err.clear()
        return self.ratio


def refuse(case, margins):
    raise SystemExit("%s: %s is within float32 rounding of a discrete choice (margin ratio %.3g < 1); "
                     "change the case" % (case, margins.where, margins.ratio))


def layer_case(case, layers, input_shape, batch, train=True):
    spec = {"name": case, "input": input_shape, "layers": layers}
    spec_text = json.dumps(spec)
    model, _ = dojo_torch.build_model(spec)
    model = model.double()
    fx = Fixture(case, "layer", spec_text, batch, train)
    init_params(model, fx)
    model.train(train)
    margins = Margins(model)

    x = tensor_from((batch, *input_shape), INPUT, 1, 0).double().requires_grad_(True)
    fx.meta["input"] = "%d 1 0" % INPUT
    y = model(x)
    dy = tensor_from(tuple(y.shape), DY, 1, 0).double()
    fx.meta["dy"] = "%d 1 0" % DY
    y.backward(dy)
    if margins.check() < 1:
        refuse(case, margins)

    fx.put("output", y)
    fx.put("grad.input", x.grad)
    for name, p in model.named_parameters():
        fx.put("grad." + name, p.grad, name)
    if train:
        for name, b in model.named_buffers():
            fx.put("after." + name, b, name)
    return fx, margins.ratio


def step_case(case, spec_path, batch, classes=10):
    with open(os.path.join(ROOT, spec_path)) as f:
        spec_text = f.read()
    spec = json.loads(spec_text)
    model, _ = dojo_torch.build_model(spec)
    model = model.double()
    # Dropout's masks come from Dojo's counter generator, not PyTorch's, so the
    # step runs with dropout as the identity (Dojo: a train=0 forward, which for
    # this BatchNorm-free model differs from train mode only in dropout).
    train = False
    fx = Fixture(case, "step", spec_text, batch, train)
    fx.meta["spec_path"] = spec_path
    init_params(model, fx)
    model.train(train)

    # With ~470k ReLU inputs some land within float32 noise of 0 for most
    # inputs: take the first input stream from INPUT on whose margins are safe.
    for stream in range(INPUT, INPUT + 64):
        margins = Margins(model)
        x = tensor_from((batch, *spec["input"]), stream, 1, 0).double()
        with torch.no_grad():
            model(x)
        if margins.check() >= 1:
            break
    else:
        refuse(case, margins)
    fx.meta["input"] = "%d 1 0" % stream
    y = torch.from_numpy(labels(batch, LABELS, classes))
    fx.meta["labels"] = "%d %d" % (LABELS, classes)
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()

    fx.put("loss", loss.detach().reshape(1))
    fx.put("logits", logits)
    for name, p in model.named_parameters():
        fx.put("grad." + name, p.grad, name)
    opt = torch.optim.SGD(model.parameters(), **SGD)
    opt.step()
    fx.meta["sgd"] = "%r %r %r %d" % (SGD["lr"], SGD["momentum"], SGD["weight_decay"], SGD["nesterov"])
    for name, p in model.named_parameters():
        fx.put("after." + name, p, name)
        fx.put("momentum." + name, opt.state[p]["momentum_buffer"], name)
    return fx, margins.ratio


def conv(oc, k, **kw):
    d = {"type": "Conv2d", "out_channels": oc, "kernel_size": k}
    d.update(kw)
    return d


def L(t, **kw):
    d = {"type": t}
    d.update(kw)
    return d


LAYER_CASES = [
    # name, layers, input shape, batch, train mode
    ("conv2d_3x3", [conv(3, 3)], [2, 6, 6], 3, True),
    ("conv2d_s2_p1_nobias", [conv(4, 3, stride=2, padding=1, bias=False)], [3, 7, 7], 3, True),
    ("conv2d_rect", [conv(3, [3, 2], stride=[2, 1], padding=[1, 0])], [2, 7, 6], 3, True),
    ("conv2d_1x1", [conv(5, 1)], [3, 4, 5], 2, True),
    ("linear", [L("Linear", out_features=5)], [12], 4, True),
    ("flatten_linear_nobias", [L("Flatten"), L("Linear", out_features=4, bias=False)], [2, 3, 3], 3, True),
    ("batchnorm2d_train", [L("BatchNorm2d", momentum=0.3)], [3, 4, 5], 4, True),
    ("batchnorm2d_eval", [L("BatchNorm2d", eps=1e-3)], [3, 4, 5], 3, False),
    ("layernorm_image", [L("LayerNorm")], [2, 3, 4], 3, True),
    ("layernorm_flat", [L("LayerNorm", eps=1e-4)], [10], 4, True),
    ("relu", [L("ReLU")], [2, 3, 4], 3, True),
    ("gelu", [L("GELU")], [24], 4, True),
    ("silu", [L("SiLU")], [24], 4, True),
    ("maxpool2d_2", [L("MaxPool2d", kernel_size=2)], [2, 6, 6], 3, True),
    ("maxpool2d_3s2p1", [L("MaxPool2d", kernel_size=3, stride=2, padding=1)], [2, 7, 7], 3, True),
    ("avgpool2d_2", [L("AvgPool2d", kernel_size=2)], [2, 6, 5], 3, True),
    ("avgpool2d_3s2p1", [L("AvgPool2d", kernel_size=3, stride=2, padding=1)], [2, 7, 7], 3, True),
    ("adaptiveavgpool2d", [L("AdaptiveAvgPool2d", output_size=1), L("Flatten")], [3, 5, 4], 3, True),
    ("flatten", [L("Flatten")], [2, 3, 4], 3, True),
    ("dropout_eval", [L("Dropout", p=0.5), L("Flatten"), L("Linear", out_features=4)], [2, 3, 4], 3, False),
    ("residual_identity",
     [L("Residual", body=[conv(3, 3, padding=1), L("BatchNorm2d"), L("ReLU"),
                          conv(3, 3, padding=1, bias=False)])], [3, 5, 5], 3, True),
    ("residual_shortcut",
     [L("Residual", body=[conv(4, 3, stride=2, padding=1, bias=False), L("BatchNorm2d"), L("SiLU"),
                          conv(4, 3, padding=1)],
        shortcut=[conv(4, 1, stride=2, bias=False), L("BatchNorm2d")]), L("ReLU")], [3, 6, 6], 3, True),
    ("residual_nested_flat",
     [L("Residual", body=[L("Linear", out_features=6), L("Residual", body=[L("GELU")]), L("LayerNorm")],
        shortcut=[L("Linear", out_features=6, bias=False)])], [6], 3, True),
]


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)  # nothing here draws from it; set for safety
    os.makedirs(OUT_DIR, exist_ok=True)
    wrote = []
    for case, layers, shape, batch, train in LAYER_CASES:
        fx, margin = layer_case(case, layers, shape, batch, train)
        wrote.append((case, fx, margin))
    fx, margin = step_case("step_fmnist_cnn", "models/fmnist-cnn.json", 8)
    wrote.append(("step_fmnist_cnn", fx, margin))
    total = 0
    for case, fx, margin in wrote:
        path = os.path.join(OUT_DIR, case + ".safetensors")
        fx.write(path)
        size = os.path.getsize(path)
        total += size
        print("%-26s %8d bytes  %2d tensors  margin %s" %
              (case, size, len(fx.tensors), "%.2g" % margin if margin < math.inf else "-"))
    print("%-26s %8d bytes" % ("total", total))


if __name__ == "__main__":
    main()
