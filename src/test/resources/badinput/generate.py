#!/usr/bin/env python3
"""Writes the bad-input corpus (data files + cases.json) next to this script.

Run from anywhere: python3 generate.py. Expectations (exception class + message fragments) were
written after checking each case's behaviour by hand with -Dkiln.badinput.record=true; see
EXPECT below. Deterministic: no randomness, no timestamps.
"""
import json, os, pickle, struct, gzip

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []
IAE = "java.lang.IllegalArgumentException"
ISE = "java.lang.IllegalStateException"
KE = "dev.kiln.engine.KilnException"
OOM = "dev.kiln.engine.KilnOutOfMemoryException"
IOE = "java.io.IOException"
MDE = "dev.kiln.io.MalformedDataException"
NSF = "java.nio.file.NoSuchFileException"

EXPECT = {}
exp_path = os.path.join(HERE, "expect.json")
if os.path.exists(exp_path):
    EXPECT = json.load(open(exp_path))


def write(rel, data):
    p = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return rel


def case(cid, category, kind, expect=None, message=None, **kw):
    c = {"id": cid, "category": category, "kind": kind}
    c.update(kw)
    e = EXPECT.get(cid)
    c["expect"] = expect if expect is not None else (e["expect"] if e else "?")
    c["message"] = message if message is not None else (e["message"] if e else [])
    cases.append(c)


# ---------------------------------------------------------------- symbol JSON
def node(op, name, inputs=(), attrs=None):
    n = {"op": op, "name": name, "inputs": [list(i) for i in inputs]}
    if attrs:
        n["attrs"] = attrs
    return n


def graph(nodes, heads, arg_nodes=None):
    if arg_nodes is None:
        arg_nodes = [i for i, n in enumerate(nodes) if n.get("op") == "null"]
    return {"nodes": nodes, "arg_nodes": arg_nodes, "node_row_ptr": list(range(len(nodes) + 1)),
            "heads": heads, "attrs": {"mxnet_version": ["int", 10900]}}


MLP = graph([node("null", "data"), node("null", "fc_weight"), node("null", "fc_bias"),
             node("FullyConnected", "fc", [[0, 0, 0], [1, 0, 0], [2, 0, 0]], {"num_hidden": "3"}),
             node("null", "softmax_label"), node("SoftmaxOutput", "softmax", [[3, 0, 0], [4, 0, 0]])],
            [[5, 0, 0]])
MLP_TEXT = json.dumps(MLP, indent=2)
write("json/valid-mlp.json", MLP_TEXT)

S = "symbol-json"
for i, cut in enumerate([0, 1, 2, 10, 40, 100, 200, len(MLP_TEXT) // 2, len(MLP_TEXT) - 40, len(MLP_TEXT) - 1]):
    case("json-truncated-%d" % cut, S, "symbol-json", file=write("json/truncated-%d.json" % cut, MLP_TEXT[:cut]))

raw = {
    "not-json": "this is not json",
    "empty-object": "{}",
    "array-top": "[1, 2, 3]",
    "null-top": "null",
    "string-top": '"nodes"',
    "trailing-garbage": MLP_TEXT + " }",
    "nodes-not-array": json.dumps({"nodes": 5, "arg_nodes": [], "heads": []}),
    "node-not-object": json.dumps({"nodes": [3], "arg_nodes": [], "heads": [[0, 0, 0]]}),
    "missing-heads": json.dumps({"nodes": MLP["nodes"], "arg_nodes": MLP["arg_nodes"]}),
    "missing-op": json.dumps(graph([{"name": "data", "inputs": []}], [[0, 0, 0]])),
    "missing-name": json.dumps(graph([{"op": "null", "inputs": []}], [[0, 0, 0]])),
    "deep-nesting": "[" * 5000 + "]" * 5000,
    "bad-escape": '{"nodes": [{"op": "null", "name": "\\q", "inputs": []}]}',
    "lone-surrogate": '{"nodes": [{"op": "null", "name": "\\ud800", "inputs": []}], "arg_nodes": [0], "heads": [[0,0,0]]}',
    "huge-number": MLP_TEXT.replace('"heads": [\n    [\n      5', '"heads": [\n    [\n      1e400'),
}
for k, v in raw.items():
    case("json-" + k, S, "symbol-json", file=write("json/%s.json" % k, v))

def gcase(cid, g, cat=S):
    case(cid, cat, "symbol-json", file=write("json/%s.json" % cid, json.dumps(g)))

import copy
def mutate(fn):
    g = copy.deepcopy(MLP)
    fn(g)
    return g

gcase("json-head-out-of-range", mutate(lambda g: g.__setitem__("heads", [[17, 0, 0]])))
gcase("json-head-negative", mutate(lambda g: g.__setitem__("heads", [[-1, 0, 0]])))
gcase("json-head-output-index", mutate(lambda g: g.__setitem__("heads", [[5, 3, 0]])))
gcase("json-input-out-of-range", mutate(lambda g: g["nodes"][3].__setitem__("inputs", [[0, 0, 0], [1, 0, 0], [99, 0, 0]])))
gcase("json-input-not-triple", mutate(lambda g: g["nodes"][3].__setitem__("inputs", [[0], [1, 0, 0], [2, 0, 0]])))
gcase("json-input-string", mutate(lambda g: g["nodes"][3].__setitem__("inputs", [["a", 0, 0], [1, 0, 0], [2, 0, 0]])))
gcase("json-too-many-inputs", mutate(lambda g: g["nodes"][3].__setitem__("inputs", [[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 0, 0]])))
gcase("json-too-few-inputs", mutate(lambda g: g["nodes"][5].__setitem__("inputs", [])))
gcase("json-arg-node-not-variable", mutate(lambda g: g.__setitem__("arg_nodes", [0, 1, 2, 3, 4])))
gcase("json-variable-with-inputs", mutate(lambda g: g["nodes"][0].__setitem__("inputs", [[1, 0, 0]])))
gcase("json-empty-nodes", {"nodes": [], "arg_nodes": [], "heads": []})
gcase("json-no-heads", mutate(lambda g: g.__setitem__("heads", [])))
# cycles: a node consuming itself, two nodes consuming each other (forward references)
gcase("cycle-self", mutate(lambda g: g["nodes"][3].__setitem__("inputs", [[3, 0, 0], [1, 0, 0], [2, 0, 0]])), "cyclic-graph")
gcase("cycle-two-nodes", graph([node("null", "x"), node("elemwise_add", "a", [[0, 0, 0], [2, 0, 0]]),
                                node("elemwise_add", "b", [[0, 0, 0], [1, 0, 0]])], [[2, 0, 0]]), "cyclic-graph")
gcase("cycle-three-nodes", graph([node("null", "x"), node("relu", "a", [[3, 0, 0]]), node("relu", "b", [[1, 0, 0]]),
                                  node("relu", "c", [[2, 0, 0]])], [[3, 0, 0]]), "cyclic-graph")
gcase("cycle-head-forward-ref", graph([node("relu", "a", [[1, 0, 0]]), node("null", "x")], [[0, 0, 0]]), "cyclic-graph")
gcase("cycle-long", graph([node("null", "x")] + [node("relu", "r%d" % i, [[i + 2 if i == 0 else i, 0, 0]]) for i in range(20)],
                          [[20, 0, 0]]), "cyclic-graph")
# unknown ops and invalid attributes
U = "unknown-op-or-attr"
gcase("op-unknown", mutate(lambda g: g["nodes"][3].__setitem__("op", "FullyConnectedX")), U)
gcase("op-unknown-lowercase", mutate(lambda g: g["nodes"][3].__setitem__("op", "fullyconnected")), U)
gcase("op-empty-name", mutate(lambda g: g["nodes"][3].__setitem__("op", "")), U)
gcase("op-number", mutate(lambda g: g["nodes"][3].__setitem__("op", 7)), U)
gcase("attr-unknown", mutate(lambda g: g["nodes"][3]["attrs"].__setitem__("num_hiddenx", "3")), U)
case("attr-missing-required", U, "symbol-bind", file=write("json/attr-missing-required.json", json.dumps(mutate(lambda g: g["nodes"][3].__setitem__("attrs", {})))), shapes={"data": [2, 4]})
gcase("attr-not-int", mutate(lambda g: g["nodes"][3]["attrs"].__setitem__("num_hidden", "three")), U)
gcase("attr-float-for-int", mutate(lambda g: g["nodes"][3]["attrs"].__setitem__("num_hidden", "3.5")), U)
gcase("attr-zero-hidden", mutate(lambda g: g["nodes"][3]["attrs"].__setitem__("num_hidden", "0")), U)
gcase("attr-negative-hidden", mutate(lambda g: g["nodes"][3]["attrs"].__setitem__("num_hidden", "-4")), U)
gcase("attr-overflow-hidden", mutate(lambda g: g["nodes"][3]["attrs"].__setitem__("num_hidden", "99999999999999999999")), U)
gcase("attr-bad-bool", mutate(lambda g: g["nodes"][3]["attrs"].__setitem__("no_bias", "maybe")), U)
gcase("attr-value-not-string", mutate(lambda g: g["nodes"][3]["attrs"].__setitem__("num_hidden", [3])), U)
gcase("attr-bad-enum", mutate(lambda g: g["nodes"][5].__setitem__("attrs", {"normalization": "sometimes"})), U)
gcase("attr-nan-float", mutate(lambda g: g["nodes"][5].__setitem__("attrs", {"grad_scale": "nan"})), U)
gcase("attr-bad-tuple", graph([node("null", "data"), node("null", "c_weight"), node("null", "c_bias"),
                               node("Convolution", "c", [[0, 0, 0], [1, 0, 0], [2, 0, 0]],
                                    {"kernel": "(3, x)", "num_filter": "2"})], [[3, 0, 0]]), U)
gcase("attr-act-type", graph([node("null", "data"), node("Activation", "a", [[0, 0, 0]], {"act_type": "swish"})],
                             [[1, 0, 0]]), U)

# symbol-load of a missing file
case("json-load-missing-file", S, "symbol-load", file="json/does-not-exist.json")
case("json-load-bad-utf8", S, "symbol-load", file=write("json/bad-utf8.json", b'{"nodes": [{"op": "null", "name": "\xff\xfe", "inputs": []}]}'))

# bind / forward with shape and dtype mismatches from JSON
B = "shape-dtype-mismatch"
for cid, shapes in [("bind-rank-mismatch-weight", {"data": [2, 4], "fc_weight": [3, 4, 1]}),
                    ("bind-wrong-weight", {"data": [2, 4], "fc_weight": [5, 4]}),
                    ("bind-wrong-bias", {"data": [2, 4], "fc_bias": [4]}),
                    ("bind-wrong-label", {"data": [2, 4], "softmax_label": [3]}),
                    ("bind-zero-dim", {"data": [0, 4]}),
                    ("bind-unknown-input", {"data": [2, 4], "nonexistent": [1]}),
                    ("bind-missing-data-shape", {"softmax_label": [2]}),
                    ("bind-negative-dim", {"data": [2, -4]})]:
    case(cid, B, "symbol-bind", file="json/valid-mlp.json", shapes=shapes, train=True)

# ---------------------------------------------------------------- operators
O = "op-param-range"
def op(cid, name, attrs, inputs, shapes=None, cat=O, train=False, types=None):
    kw = {"op": name, "attrs": attrs, "inputs": inputs}
    if types:
        kw["types"] = types
    if shapes is not None:
        kw["shapes"] = shapes
        kw["train"] = train
    case(cid, cat, "op", **kw)

D4 = {"data": [1, 2, 6, 6]}
op("conv-negative-kernel", "Convolution", {"kernel": "(-3, 3)", "num_filter": "2"}, ["data"], D4)
op("conv-zero-kernel", "Convolution", {"kernel": "(0, 3)", "num_filter": "2"}, ["data"], D4)
op("conv-zero-stride", "Convolution", {"kernel": "(3, 3)", "num_filter": "2", "stride": "(0, 1)"}, ["data"], D4)
op("conv-negative-stride", "Convolution", {"kernel": "(3, 3)", "num_filter": "2", "stride": "(-1, 1)"}, ["data"], D4)
op("conv-negative-pad", "Convolution", {"kernel": "(3, 3)", "num_filter": "2", "pad": "(-1, 0)"}, ["data"], D4)
op("conv-zero-dilate", "Convolution", {"kernel": "(3, 3)", "num_filter": "2", "dilate": "(0, 1)"}, ["data"], D4)
op("conv-zero-filter", "Convolution", {"kernel": "(3, 3)", "num_filter": "0"}, ["data"], D4)
op("conv-zero-group", "Convolution", {"kernel": "(3, 3)", "num_filter": "2", "num_group": "0"}, ["data"], D4)
op("conv-kernel-too-big", "Convolution", {"kernel": "(7, 7)", "num_filter": "2"}, ["data"], D4)
op("conv-huge-kernel", "Convolution", {"kernel": "(2147483647, 2147483647)", "num_filter": "2"}, ["data"], D4)
op("conv-rank-mismatch", "Convolution", {"kernel": "(3, 3)", "num_filter": "2"}, ["data"], {"data": [1, 2, 6]})
op("conv-group-indivisible", "Convolution", {"kernel": "(3, 3)", "num_filter": "3", "num_group": "2"}, ["data"], {"data": [1, 4, 6, 6]})
op("deconv-zero-stride", "Deconvolution", {"kernel": "(3, 3)", "num_filter": "2", "stride": "(0, 0)"}, ["data"], D4)
op("deconv-negative-adj", "Deconvolution", {"kernel": "(3, 3)", "num_filter": "2", "adj": "(-1, 0)"}, ["data"], D4)
op("deconv-adj-ge-stride", "Deconvolution", {"kernel": "(3, 3)", "num_filter": "2", "stride": "(2, 2)", "adj": "(2, 2)"}, ["data"], D4)
op("pool-zero-stride", "Pooling", {"kernel": "(2, 2)", "stride": "(0, 2)", "pool_type": "max"}, ["data"], D4)
op("pool-negative-kernel", "Pooling", {"kernel": "(-2, 2)", "pool_type": "max"}, ["data"], D4)
op("pool-kernel-too-big", "Pooling", {"kernel": "(9, 9)", "pool_type": "max"}, ["data"], D4)
op("pool-bad-type", "Pooling", {"kernel": "(2, 2)", "pool_type": "median"}, ["data"], D4)
op("pool-rank-1-data", "Pooling", {"kernel": "(2, 2)", "pool_type": "avg"}, ["data"], {"data": [6]})
op("fc-zero-hidden", "FullyConnected", {"num_hidden": "0"}, ["data"], {"data": [2, 4]})
op("fc-negative-hidden", "FullyConnected", {"num_hidden": "-1"}, ["data"], {"data": [2, 4]})
op("fc-weight-mismatch", "FullyConnected", {"num_hidden": "3"}, ["data"], {"data": [2, 4], "op_weight": [3, 5]})
op("bn-axis-out-of-range", "BatchNorm", {"axis": "7"}, ["data"], D4)
op("bn-momentum-string", "BatchNorm", {"momentum": "fast"}, ["data"], D4)
op("layernorm-axis-out-of-range", "LayerNorm", {"axis": "5"}, ["data"], {"data": [2, 3]})
op("lrn-even-nsize", "LRN", {"nsize": "4"}, ["data"], D4)
op("lrn-zero-nsize", "LRN", {"nsize": "0"}, ["data"], D4)
op("dropout-p-above-one", "Dropout", {"p": "1.5"}, ["data"], {"data": [2, 3]})
op("dropout-p-negative", "Dropout", {"p": "-0.1"}, ["data"], {"data": [2, 3]})
op("leaky-bad-type", "LeakyReLU", {"act_type": "sigmoid"}, ["data"], {"data": [2, 3]})
op("softmax-axis-out-of-range", "softmax", {"axis": "4"}, ["data"], {"data": [2, 3]})
op("softmaxoutput-label-mismatch", "SoftmaxOutput", {}, ["data", "label"], {"data": [2, 3], "label": [5]})
op("reshape-bad-size", "Reshape", {"shape": "(4, 4)"}, ["data"], {"data": [2, 3]})
op("reshape-two-minus-one", "Reshape", {"shape": "(-1, -1)"}, ["data"], {"data": [2, 3]})
op("reshape-bad-code", "Reshape", {"shape": "(-7, 3)"}, ["data"], {"data": [2, 3]})
op("transpose-bad-axes", "transpose", {"axes": "(0, 0)"}, ["data"], {"data": [2, 3]})
op("transpose-axes-length", "transpose", {"axes": "(1, 0, 2)"}, ["data"], {"data": [2, 3]})
op("slice-axis-out-of-range", "slice_axis", {"axis": "3", "begin": "0", "end": "1"}, ["data"], {"data": [2, 3]})
op("slice-begin-after-end", "slice_axis", {"axis": "1", "begin": "2", "end": "1"}, ["data"], {"data": [2, 3]})
op("concat-dim-mismatch", "Concat", {"dim": "1"}, ["a", "b"], {"a": [2, 3], "b": [4, 3]})
op("concat-dim-out-of-range", "Concat", {"dim": "5"}, ["a", "b"], {"a": [2, 3], "b": [2, 3]})
op("concat-num-args-wrong", "Concat", {"dim": "1", "num_args": "3"}, ["a", "b"], {"a": [2, 3], "b": [2, 3]})
op("sum-axis-out-of-range", "sum", {"axis": "(4,)"}, ["data"], {"data": [2, 3]})
op("expand-dims-axis", "expand_dims", {"axis": "9"}, ["data"], {"data": [2, 3]})
op("take-bad-mode", "take", {"mode": "bounce"}, ["a", "i"])
op("elemwise-shape-mismatch", "elemwise_add", {}, ["a", "b"], {"a": [2, 3], "b": [3, 2]}, cat=B)
op("broadcast-incompatible", "broadcast_add", {}, ["a", "b"], {"a": [2, 3], "b": [4, 3]}, cat=B)
op("dot-inner-mismatch", "dot", {}, ["a", "b"], {"a": [2, 3], "b": [4, 5]}, cat=B)
op("batch-dot-batch-mismatch", "batch_dot", {}, ["a", "b"], {"a": [2, 3, 4], "b": [3, 4, 5]}, cat=B)
op("upsampling-zero-scale", "UpSampling", {"scale": "0", "sample_type": "nearest", "num_args": "1"}, ["data"], D4)
op("pad-wrong-width-length", "Pad", {"mode": "constant", "pad_width": "(0, 0, 1)"}, ["data"], D4)
op("cast-bad-dtype", "Cast", {"dtype": "float128"}, ["data"], {"data": [2, 3]})
op("topk-k-too-big", "topk", {"k": "10", "axis": "1"}, ["data"], {"data": [2, 3]})

# dtype mismatches at bind
op("dtype-add-f32-f64", "elemwise_add", {}, ["a", "b"], {"a": [2, 3], "b": [2, 3]}, cat=B, types={"a": "float32", "b": "float64"})
op("dtype-fc-weight-int32", "FullyConnected", {"num_hidden": "2"}, ["data"], {"data": [2, 3]}, cat=B, types={"data": "float32", "op_weight": "int32"})
op("dtype-conv-uint8-data", "Convolution", {"kernel": "(1, 1)", "num_filter": "2"}, ["data"], D4, cat=B, types={"data": "uint8"})
op("dtype-dot-f64-f32", "dot", {}, ["a", "b"], {"a": [2, 3], "b": [3, 2]}, cat=B, types={"a": "float64", "b": "float32"})
op("dtype-unknown-name", "elemwise_add", {}, ["a", "b"], {"a": [2, 3], "b": [2, 3]}, cat=B, types={"a": "complex64"})
op("dtype-bn-int-gamma", "BatchNorm", {}, ["data"], D4, cat=B, types={"op_gamma": "int64"}, train=True)
# variables carrying bad __shape__ / __dtype__ hints in JSON
def var_graph(attrs):
    return graph([node("null", "x", attrs=attrs), node("Activation", "a", [[0, 0, 0]], {"act_type": "relu"})], [[1, 0, 0]])
for cid, attrs in [("var-shape-not-tuple", {"__shape__": "banana"}), ("var-shape-negative", {"__shape__": "(2, -3)"}),
                   ("var-dtype-unknown-code", {"__dtype__": "99"}), ("var-dtype-not-int", {"__dtype__": "float32x"}),
                   ("var-shape-terabytes", {"__shape__": "(1048576, 1048576)"})]:
    case(cid, B if "terabytes" not in cid else "absurd-size", "symbol-bind",
         file=write("json/%s.json" % cid, json.dumps(var_graph(attrs))), shapes={})

# absurd sizes: binds needing terabytes
A = "absurd-size"
op("fc-terabyte-weight", "FullyConnected", {"num_hidden": "1048576"}, ["data"], {"data": [2, 1048576]}, cat=A)
op("relu-terabyte-data", "Activation", {"act_type": "relu"}, ["data"], {"data": [1 << 20, 1 << 20]}, cat=A)
op("conv-terabyte-output", "Convolution", {"kernel": "(1, 1)", "num_filter": "1048576"}, ["data"], {"data": [1, 1, 1024, 1024]}, cat=A)
op("relu-overflow-shape", "Activation", {"act_type": "relu"}, ["data"], {"data": [1 << 40, 1 << 40]}, cat=A)
op("relu-int64-max-dim", "Activation", {"act_type": "relu"}, ["data"], {"data": [9223372036854775807]}, cat=A)
op("fc-terabyte-train", "FullyConnected", {"num_hidden": "4096"}, ["data"], {"data": [1 << 28, 4096]}, cat=A, train=True)

# NaN / Inf inputs
N = "nan-inf-input"
def inv(cid, name, attrs, arrays):
    case(cid, N, "invoke", op=name, attrs=attrs, arrays=arrays)
nanv = {"shape": [2, 2], "values": [1, "nan", 3, 4]}
infv = {"shape": [2, 2], "values": [1, "inf", "-inf", 4]}
inv("nan-relu-propagates", "Activation", {"act_type": "relu"}, [nanv])
inv("nan-softmax-propagates", "softmax", {}, [nanv])
inv("inf-softmax", "softmax", {}, [infv])
inv("nan-sum-propagates", "sum", {}, [nanv])
inv("nan-exp", "exp", {}, [nanv])
inv("nan-fc", "FullyConnected", {"num_hidden": "2"}, [nanv, {"shape": [2, 2], "values": [1, 0, 0, 1]}, {"shape": [2], "values": [0, 0]}])
inv("nan-take-index", "take", {"mode": "raise"}, [{"shape": [3], "values": [1, 2, 3]}, {"shape": [1], "values": ["nan"]}])
inv("inf-take-index", "take", {"mode": "raise"}, [{"shape": [3], "values": [1, 2, 3]}, {"shape": [1], "values": ["inf"]}])
inv("nan-take-index-clip", "take", {"mode": "clip"}, [{"shape": [3], "values": [1, 2, 3]}, {"shape": [1], "values": ["nan"]}])
inv("nan-one-hot-index", "one_hot", {"depth": "3"}, [{"shape": [2], "values": [0, "nan"]}])
inv("nan-pick-index", "pick", {"axis": "1"}, [{"shape": [2, 2], "values": [1, 2, 3, 4]}, {"shape": [2], "values": [0, "nan"]}])
inv("nan-max-pool", "Pooling", {"kernel": "(2, 2)", "pool_type": "max"}, [{"shape": [1, 1, 2, 2], "values": ["nan", 1, 2, 3]}])
inv("nan-batchnorm", "BatchNorm", {}, [{"shape": [2, 2], "values": [1, "nan", 3, 4]}, {"shape": [2], "values": [1, 1]},
                                       {"shape": [2], "values": [0, 0]}, {"shape": [2], "values": [0, 0]}, {"shape": [2], "values": [1, 1]}])

# ---------------------------------------------------------------- .params files
P = "params-file"
def le_u64(v): return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)
def rec(shape, data=None, magic=0xF993FAC9, stype=0, dtype=0, dev=1, ndim=None):
    b = struct.pack("<I", magic) + struct.pack("<i", stype)
    b += struct.pack("<i", len(shape) if ndim is None else ndim)
    for d in shape: b += struct.pack("<q", d)
    b += struct.pack("<iii", dev, 0, dtype)
    if data is None:
        n = 1
        for d in shape: n *= d
        data = struct.pack("<%df" % n, *[float(i) for i in range(n)])
    return b + data
def listfile(records, names=None, magic=0x112, count=None, ncount=None):
    b = le_u64(magic) + le_u64(0) + le_u64(len(records) if count is None else count)
    for r in records: b += r
    names = names or []
    b += le_u64(len(names) if ncount is None else ncount)
    for n in names:
        e = n.encode()
        b += le_u64(len(e)) + e
    return b
GOOD = listfile([rec([3, 4]), rec([3])], ["arg:fc_weight", "arg:fc_bias"])
write("params/valid.params", GOOD)
pcases = {
    "empty": b"",
    "short-header": GOOD[:7],
    "wrong-list-magic": listfile([rec([2])], ["arg:a"], magic=0x113),
    "text-file": b"this is not a params file\n",
    "huge-count": listfile([rec([2])], ["arg:a"], count=1 << 62),
    "count-too-big": listfile([rec([2])], ["arg:a"], count=2),
    "names-count-mismatch": listfile([rec([2]), rec([2])], ["arg:a"]),
    "huge-name-count": listfile([rec([2])], ["arg:a"], ncount=1 << 63),
    "huge-name-length": listfile([rec([2])]) [:-8] + le_u64(1) + le_u64(1 << 60) + b"abc",
    "wrong-record-magic": listfile([rec([2], magic=0x12345678)], ["arg:a"]),
    "huge-ndim": listfile([rec([2], ndim=1 << 30)], ["arg:a"]),
    "negative-ndim": listfile([rec([2], ndim=-5)], ["arg:a"]),
    "negative-dim": listfile([rec([-2], data=b"")], ["arg:a"]),
    "huge-dim": listfile([rec([1 << 40], data=b"")], ["arg:a"]),
    "overflow-shape": listfile([rec([1 << 40, 1 << 40], data=b"")], ["arg:a"]),
    "int64-max-dim": listfile([rec([(1 << 63) - 1], data=b"")], ["arg:a"]),
    "bad-dtype": listfile([rec([2], dtype=99)], ["arg:a"]),
    "negative-dtype": listfile([rec([2], dtype=-1)], ["arg:a"]),
    "sparse-row": listfile([rec([2], stype=1)], ["arg:a"]),
    "sparse-csr": listfile([rec([2], stype=2)], ["arg:a"]),
    "bad-stype": listfile([rec([2], stype=9)], ["arg:a"]),
    "short-data": listfile([rec([3, 4], data=b"\0" * 20)], ["arg:a"]),
    "bad-utf8-name": listfile([rec([2])], ["arg:a"])[:-1] + b"\xff",
}
for n in [1, 8, 16, 24, 28, 40, 60, len(GOOD) - 20, len(GOOD) - 1]:
    pcases["truncated-%d" % n] = GOOD[:n]
for k, v in pcases.items():
    case("params-" + k, P, "params", file=write("params/%s.params" % k, v))
# NDArray.load: every entry becomes a native array
NONE_REC = struct.pack("<Iii", 0xF993FAC9, 0, 0)  # V2 record with ndim 0: MXNet's none array
case("ndload-none-array", P, "nd-load", file=write("params/none-array.params", listfile([NONE_REC], ["arg:a"])))
case("ndload-none-between", P, "nd-load", file=write("params/none-between.params", listfile([rec([2]), NONE_REC, rec([3])], ["a", "b", "c"])))
case("ndload-truncated", P, "nd-load", file="params/truncated-60.params")
case("ndload-bad-dtype", P, "nd-load", file="params/bad-dtype.params")
case("ndload-int64-data", P, "nd-load", expect="ok", file=write("params/int64.params", listfile([rec([2], data=struct.pack("<qq", -1, 1 << 62), dtype=6)], ["a"])))
# checkpoint loading: names must be arg:/aux:
case("ckpt-unprefixed-names", P, "checkpoint-params", file=write("params/unprefixed.params", listfile([rec([2])], ["fc_weight"])))
case("ckpt-unnamed", P, "checkpoint-params", file=write("params/unnamed.params", listfile([rec([2])])))
case("ckpt-bad-prefix", P, "checkpoint-params", file=write("params/badprefix.params", listfile([rec([2])], ["grad:fc_weight"])))
case("ckpt-truncated", P, "checkpoint-params", file=write("params/ckpt-truncated.params", GOOD[:50]))
case("ckpt-missing-file", P, "checkpoint-params", file="params/nonexistent.params")

# ---------------------------------------------------------------- .states pickles
T = "states-file"
scases = {
    "empty": b"",
    "not-pickle": b"hello world",
    "truncated-proto": b"\x80\x02",
    "list": pickle.dumps([1, 2, 3], protocol=2),
    "int": pickle.dumps(7, protocol=2),
    "dict-string-value": pickle.dumps({0: "momentum"}, protocol=2),
    "dict-float-value": pickle.dumps({0: 1.5}, protocol=2),
    "dict-list-key": b"\x80\x02}q\x00(]q\x01K\x01aK\x02u.",
    "tuple-bad-optimizer": pickle.dumps(({}, "sgd"), protocol=2),
    "unknown-opcode": b"\x80\x02\xfe.",
    "stop-only": b".",
    "global-unknown": b"\x80\x02cos\nsystem\nq\x00.",
    "reduce-os-system": b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.",
    "huge-binunicode": b"\x80\x02X\xff\xff\xff\x7fabc.",
    "huge-binbytes": b"\x80\x03B\xff\xff\xff\x7fabc.",
    "pop-empty-stack": b"\x80\x020.",
    "get-missing-memo": b"\x80\x02h\x05.",
    "deep-nesting": b"\x80\x02" + b"]" * 200000 + b".",
    "protocol-5": b"\x80\x05}.",
    "setitems-no-mark": b"\x80\x02}K\x01K\x02u.",
}
for k, v in scases.items():
    case("states-" + k, T, "states", file=write("states/%s.states" % k, v))

# ---------------------------------------------------------------- MNIST idx
M = "mnist-idx"
def idx(dims, data=None, tcode=0x08, nd=None):
    b = bytes([0, 0, tcode, len(dims) if nd is None else nd]) + b"".join(struct.pack(">i", d) for d in dims)
    if data is None:
        n = 1
        for d in dims: n *= d
        data = bytes((i * 7) % 256 for i in range(n))
    return b + data
IMG = idx([4, 3, 3])
LAB = idx([4], bytes([1, 2, 3, 4]))
write("mnist/valid-images.idx3", IMG)
write("mnist/valid-labels.idx1", LAB)
icases = {
    "empty": b"",
    "short-magic": b"\0\0",
    "wrong-magic": b"\x01\x02\x08\x03" + IMG[4:],
    "float-type": idx([4, 3, 3], tcode=0x0D),
    "zero-dims": bytes([0, 0, 8, 0]),
    "truncated-header": IMG[:9],
    "truncated-data": IMG[:20],
    "negative-dim": idx([-4, 3, 3], data=b""),
    "huge-count": idx([0x7FFFFFFF, 28, 28], data=b"\0" * 100),
    "huge-product": idx([0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF], data=b""),
    "255-dims": bytes([0, 0, 8, 255]) + b"\0\0\0\x01" * 10,
    "overflowing-item-size": idx([49, 0x383F464D, 0x545B6269], data=b"\x70" * 20),
    "item-size-above-2gb": idx([0, 0x7FFFFFFF, 0x7FFFFFFF], data=b""),
    "gzip-header-only": gzip.compress(IMG, mtime=0)[:5],
    "gzip-truncated": gzip.compress(IMG, mtime=0)[:20],
    "gzip-corrupt": gzip.compress(IMG, mtime=0)[:10] + b"\xff" * 20 + gzip.compress(IMG, mtime=0)[30:],
}
for k, v in icases.items():
    case("idx-" + k, M, "idx", file=write("mnist/%s.idx" % k, v))
case("mnist-count-mismatch", M, "mnist-iter", image="mnist/valid-images.idx3", label=write("mnist/labels-3.idx1", idx([3], bytes([1, 2, 3]))))
case("mnist-label-as-image", M, "mnist-iter", image="mnist/valid-labels.idx1", label="mnist/valid-labels.idx1")
case("mnist-image-truncated", M, "mnist-iter", image="mnist/truncated-data.idx", label="mnist/valid-labels.idx1")
case("mnist-label-2d", M, "mnist-iter", image="mnist/valid-images.idx3", label="mnist/valid-images.idx3")
case("mnist-zero-batch", M, "mnist-iter", image="mnist/valid-images.idx3", label="mnist/valid-labels.idx1", batch=0)
case("mnist-negative-batch", M, "mnist-iter", image="mnist/valid-images.idx3", label="mnist/valid-labels.idx1", batch=-3)
case("mnist-missing-file", M, "mnist-iter", image="mnist/nope.idx3", label="mnist/valid-labels.idx1")

# ---------------------------------------------------------------- CSV
C = "csv"
ccases = {
    "non-numeric": "1,2,3\n4,x,6\n",
    "ragged": "1,2,3\n4,5\n",
    "empty-field": "1,,3\n",
    "nan-text": "1,2,banana\n",
    "binary": b"\x00\x01\x02\xff\xfe\n",
    "only-commas": ",,,\n",
    "huge-number": "1e99999,2\n",
    "quoted": '"1","2"\n',
    "hex": "0x10,2\n",
    "tabs": "1\t2\t3\n",
}
for k, v in ccases.items():
    case("csv-" + k, C, "csv", file=write("csv/%s.csv" % k, v))
write("csv/valid-4x3.csv", "1,2,3\n4,5,6\n7,8,9\n10,11,12\n")
write("csv/labels-4.csv", "0\n1\n0\n1\n")
write("csv/labels-3.csv", "0\n1\n0\n")
def citer(cid, f, shape, label=None, lshape=None, batch=2):
    kw = {"file": f, "dataShape": shape, "batch": batch}
    if label: kw["label"] = label
    if lshape: kw["labelShape"] = lshape
    case(cid, C, "csv-iter", **kw)
citer("csviter-shape-mismatch", "csv/valid-4x3.csv", [4])
citer("csviter-ragged", "csv/ragged.csv", [3])
citer("csviter-non-numeric", "csv/non-numeric.csv", [3])
citer("csviter-zero-batch", "csv/valid-4x3.csv", [3], batch=0)
citer("csviter-negative-shape", "csv/valid-4x3.csv", [-3])
citer("csviter-label-count-mismatch", "csv/valid-4x3.csv", [3], "csv/labels-3.csv", [1])
citer("csviter-label-shape-mismatch", "csv/valid-4x3.csv", [3], "csv/labels-4.csv", [2])
citer("csviter-missing-file", "csv/nope.csv", [3])
citer("csviter-empty-file", write("csv/empty.csv", ""), [3])
citer("csviter-binary", "csv/binary.csv", [3])

# ---------------------------------------------------------------- scenarios (Java, see Scenarios.java)
L = "lifecycle-state"
import re
scen = open(os.path.join(HERE, "../../java/dev/kiln/reliability/Scenarios.java")).read()
for name in re.findall(r'ALL\.put\("([a-z0-9-]+)"', scen):
    cat = "closed-objects" if name.startswith(("nd-", "exec-", "updater-")) and ("close" in name) else L
    if name.startswith("module-") and ("close" in name):
        cat = "closed-objects"
    if "terabytes" in name or "overflow" in name or "huge" in name:
        cat = "absurd-size"
    case("scenario-" + name, cat, "scenario", name=name)

ids = [c["id"] for c in cases]
assert len(ids) == len(set(ids)), "duplicate ids"
with open(os.path.join(HERE, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
print(len(cases), "cases")
