#!/usr/bin/env python3
"""Writes YAMNet as an ONNX model from models/yamnet.safetensors, for running the same network
in OpenCV dnn (the side-by-side benchmark in actors/models/examples/yamnet_opencv_bench.rs and
the check in actors/models/tests/yamnet_onnx.rs).

The graph is the network of actors/models/src/yamnet/network.rs, layer for layer:
  input  "patch"     [N, 1, 96, 64]  log-mel patch (frames × mel bands)
  27 × Conv (TF "SAME" padding written out explicitly) + Relu
  GlobalAveragePool + Flatten      → output "embedding" [N, 1024]
  Gemm (classifier, transB)        → output "logits"    [N, 521]
  Sigmoid                          → output "scores"    [N, 521]

Only the PyPI packages onnx and numpy are needed (the safetensors file is read directly: an
8-byte header length, a JSON header, then the raw little-endian tensors). Pinned versions:

    python3 -m venv ~/.cache/cav-onnx-venv
    ~/.cache/cav-onnx-venv/bin/pip install onnx==1.17.0 numpy==2.1.3
    ~/.cache/cav-onnx-venv/bin/python scripts/export-yamnet-onnx.py [--batch N] OUT.onnx

`--batch N` fixes the batch dimension (OpenCV 4.6's ONNX importer wants static shapes; the
default is 1). Opset 13, IR version 8, so that OpenCV 4.6 and later can read it.
"""

import argparse
import json
import pathlib
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
NUM_CONVS = 27
STRIDE2 = {0, 3, 7, 11, 23}


def read_safetensors(path):
    """All tensors of a safetensors file as numpy arrays (F32 only, as in yamnet.safetensors)."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    body = data[8 + header_len :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} has dtype {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(info["shape"]).copy()
    return tensors


def build(tensors, batch):
    nodes, inits = [], []
    x = "patch"
    for i in range(NUM_CONVS):
        w = tensors[f"conv{i:02d}.weight"]
        b = tensors[f"conv{i:02d}.bias"]
        c_out, _, kh, _ = w.shape
        stride = 2 if i in STRIDE2 else 1
        # ONNX pads are [top, left, bottom, right]. TF "SAME" for 3×3: stride 1 pads 1 all
        # round; stride 2 (on even sizes) pads 0 top/left and 1 bottom/right.
        if kh == 1:
            pads = [0, 0, 0, 0]
        elif stride == 2:
            pads = [0, 0, 1, 1]
        else:
            pads = [1, 1, 1, 1]
        # Odd layers are depthwise: one 3×3 filter per channel.
        group = c_out if i % 2 == 1 else 1
        wn, bn = f"conv{i:02d}.weight", f"conv{i:02d}.bias"
        inits += [numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)]
        conv_out, relu_out = f"conv{i:02d}", f"relu{i:02d}"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, wn, bn],
                [conv_out],
                name=conv_out,
                kernel_shape=[kh, kh],
                strides=[stride, stride],
                pads=pads,
                group=group,
            )
        )
        nodes.append(helper.make_node("Relu", [conv_out], [relu_out], name=relu_out))
        x = relu_out
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["embedding"], name="flatten", axis=1))
    inits += [
        numpy_helper.from_array(tensors["classifier.weight"], "classifier.weight"),
        numpy_helper.from_array(tensors["classifier.bias"], "classifier.bias"),
    ]
    nodes.append(
        helper.make_node(
            "Gemm",
            ["embedding", "classifier.weight", "classifier.bias"],
            ["logits"],
            name="classifier",
            transB=1,
        )
    )
    nodes.append(helper.make_node("Sigmoid", ["logits"], ["scores"], name="sigmoid"))
    graph = helper.make_graph(
        nodes,
        "yamnet",
        [helper.make_tensor_value_info("patch", TensorProto.FLOAT, [batch, 1, 96, 64])],
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 521]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, 1024]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 521]),
        ],
        inits,
    )
    model = helper.make_model(
        graph,
        producer_name="classify-audio-video scripts/export-yamnet-onnx.py",
        opset_imports=[helper.make_opsetid("", 13)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=pathlib.Path, help="ONNX file to write")
    ap.add_argument(
        "--weights", type=pathlib.Path, default=ROOT / "models" / "yamnet.safetensors"
    )
    ap.add_argument("--batch", type=int, default=1, help="static batch size (default 1)")
    args = ap.parse_args()
    if args.batch < 1:
        sys.exit("--batch must be at least 1")
    model = build(read_safetensors(args.weights), args.batch)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.out))
    print(f"wrote {args.out} (batch {args.batch}, {args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
