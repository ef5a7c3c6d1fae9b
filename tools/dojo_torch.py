"""dojo_torch.py - the PyTorch side of Dojo: build the nn.Sequential that a
Dojo model spec describes, read Dojo's safetensors checkpoints, read IDX
datasets. Used by tools/torch_eval.py, tools/gen_fixtures.py and
bench/torch_train_bench.py. Needs only torch and numpy (Debian's
python3-torch provides both)."""

import gzip
import json
import os
import struct

import numpy as np
import torch
from torch import nn


class Residual(nn.Module):
    """output = body(x) + shortcut(x), or body(x) + x without a shortcut."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = body
        if shortcut is not None:
            self.shortcut = shortcut
        else:
            self.shortcut = None

    def forward(self, x):
        return self.body(x) + (self.shortcut(x) if self.shortcut is not None else x)


def _pair(v):
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _build(layers, shape):
    mods = []
    for spec in layers:
        t = spec["type"]
        if t == "Conv2d":
            k, s, p = _pair(spec["kernel_size"]), _pair(spec.get("stride", 1)), _pair(spec.get("padding", 0))
            m = nn.Conv2d(shape[0], spec["out_channels"], k, s, p, bias=spec.get("bias", True))
            shape = [spec["out_channels"], _out(shape[1], k[0], s[0], p[0]), _out(shape[2], k[1], s[1], p[1])]
        elif t == "Linear":
            m = nn.Linear(shape[0], spec["out_features"], bias=spec.get("bias", True))
            shape = [spec["out_features"]]
        elif t == "BatchNorm2d":
            m = nn.BatchNorm2d(shape[0], eps=spec.get("eps", 1e-5), momentum=spec.get("momentum", 0.1))
        elif t == "LayerNorm":
            m = nn.LayerNorm(list(shape), eps=spec.get("eps", 1e-5))
        elif t == "ReLU":
            m = nn.ReLU()
        elif t == "GELU":
            m = nn.GELU()
        elif t == "SiLU":
            m = nn.SiLU()
        elif t in ("MaxPool2d", "AvgPool2d"):
            k = _pair(spec["kernel_size"])
            s = _pair(spec.get("stride", spec["kernel_size"]))
            p = _pair(spec.get("padding", 0))
            m = (nn.MaxPool2d if t == "MaxPool2d" else nn.AvgPool2d)(k, s, p)
            shape = [shape[0], _out(shape[1], k[0], s[0], p[0]), _out(shape[2], k[1], s[1], p[1])]
        elif t == "AdaptiveAvgPool2d":
            m = nn.AdaptiveAvgPool2d((1, 1))
            shape = [shape[0], 1, 1]
        elif t == "Flatten":
            m = nn.Flatten()
            n = 1
            for d in shape:
                n *= d
            shape = [n]
        elif t == "Dropout":
            m = nn.Dropout(spec.get("p", 0.5))
        elif t == "Residual":
            body, bshape = _build(spec["body"], shape)
            short = None
            if spec.get("shortcut"):
                short, _ = _build(spec["shortcut"], shape)
            m = Residual(body, short)
            shape = bshape
        else:
            raise ValueError("unknown layer type %r" % t)
        mods.append(m)
    return nn.Sequential(*mods), shape


def load_spec(path):
    with open(path) as f:
        return json.load(f)


def build_model(spec):
    """The nn.Sequential for a spec dict; returns (model, output shape)."""
    return _build(spec["layers"], list(spec["input"]))


_DTYPES = {"F32": torch.float32, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8,
           "BF16": torch.bfloat16}


def read_safetensors(path):
    """Returns (tensors: dict name -> torch.Tensor, metadata: dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=_DTYPES[e["dtype"]]) if end > b else \
            torch.empty(0, dtype=_DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes a dict of float32/int64 tensors (in insertion order)."""
    header, chunks, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    inv = {v: k for k, v in _DTYPES.items()}
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        b = t.numpy().tobytes()
        header[name] = {"dtype": inv[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))
    os.replace(path + ".tmp", path)


def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_idx(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(os.path.join(data_dir, stem + "[.gz]"))


def load_split(data_dir, train):
    pre = "train" if train else "t10k"
    x = read_idx(find_idx(data_dir, pre + "-images-idx3-ubyte"))
    y = read_idx(find_idx(data_dir, pre + "-labels-idx1-ubyte"))
    return x, y


def normalize(spec, pixels):
    """uint8 [N, H, W] -> float32 [N, 1, H, W] scaled and normalised as Dojo does."""
    x = torch.from_numpy(pixels.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    norm = spec.get("normalize")
    if norm:
        mean = torch.tensor(norm["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(norm["std"], dtype=torch.float32).view(1, -1, 1, 1)
        x = (x - mean) / std
    if len(spec["input"]) == 1:
        x = x.reshape(x.shape[0], -1)
    return x
