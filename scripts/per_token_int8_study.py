"""Per-token int8 activations instead of ONNX Runtime's per-tensor ones: error and speed.

    python scripts/per_token_int8_study.py MODEL_DIR [--clauses 300] [--rounds 2]

A study, not part of the product (docs/speed.md, "Tried and not kept"). MODEL_DIR is a model
directory with its fast runtime (``onnx/model.int8.onnx``). Its int8 graph quantizes each
activation with one scale and zero point per tensor (``DynamicQuantizeLinear``); this script
rewrites every such quantizer into one scale and zero point *per token* (row):

    q = QuantizeLinear(x, s_row, zp_row)                    s_row = (max - min) / 255 of the row
    y = (MatMulInteger(q, Wq) - zp_row * colsum(Wq)) * s_row * w_scale

(the zero-point term is subtracted by hand because ONNX Runtime's ``MatMulInteger`` takes only
a scalar zero point for A). The rewritten graph is written to a temporary directory; it
reads the model directory's own weights. Printed, on the first
``--clauses`` gold clauses: the largest |log-odds difference| per clause against the fp32
graph (median, 99th percentile, max) and clauses/s of both int8 graphs, interleaved, best of
``--rounds``, with the load average. ONNX Runtime's ``MatMulIntegerToFloat`` fusion assumes a
scalar activation scale, so it is disabled for the rewritten graph (with it, results are wrong).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def per_token_graph(src: Path, dst: Path, weights: Path) -> int:
    """Write ``src`` (a ``quantize_dynamic`` int8 graph) with per-row activation quantizers to ``dst``
    (with ``src``'s recipe for the int8 weights it recomputes from ``weights``, so ``dst`` loads
    like ``src``). Returns the number of MatMuls rewritten."""
    import shutil

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from policytag.modeling.onnx_runtime import derived_file, derived_initializers

    m = onnx.load(str(src), load_external_data=False)
    g = m.graph
    names, arrays = derived_initializers(src, weights)
    W = dict(zip(names, arrays))
    for t in g.initializer:
        if t.name.endswith("_quantized") and t.name not in W and t.data_type == TensorProto.INT8:
            W[t.name] = numpy_helper.to_array(t)
    c = {"inv255": np.float32(1 / 255), "eps": np.float32(1e-8), "zero": np.float32(0),
         "flat": np.array([-1], np.int64), "zp0": np.uint8(0), "s0": np.array([0], np.int64),
         "sm1": np.array([-1], np.int64)}
    inits = [numpy_helper.from_array(np.asarray(v), "pt_" + k) for k, v in c.items()]
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out = []
    mm_outputs = {}
    for n in g.node:
        if n.op_type == "DynamicQuantizeLinear":
            x, q = n.input[0], n.output[0]
            p = x + "__pt"
            mms = [k for k in consumers[q] if k.op_type == "MatMulInteger"]
            K = W[mms[0].input[1]].shape[0]
            inits.append(numpy_helper.from_array(np.array([-1, K], np.int64), p + "_k"))
            mk = helper.make_node
            out += [
                mk("Shape", [x], [p + "_shape"]),
                mk("Slice", [p + "_shape", "pt_s0", "pt_sm1"], [p + "_lead"]),
                mk("Reshape", [x, p + "_k"], [p + "_x2"]),
                mk("ReduceMax", [p + "_x2"], [p + "_mx"], axes=[1], keepdims=1),
                mk("ReduceMin", [p + "_x2"], [p + "_mn"], axes=[1], keepdims=1),
                mk("Max", [p + "_mx", "pt_zero"], [p + "_mx0"]),
                mk("Min", [p + "_mn", "pt_zero"], [p + "_mn0"]),
                mk("Sub", [p + "_mx0", p + "_mn0"], [p + "_rg"]),
                mk("Max", [p + "_rg", "pt_eps"], [p + "_rg2"]),
                mk("Mul", [p + "_rg2", "pt_inv255"], [p + "_s"]),
                mk("Div", [p + "_mn0", p + "_s"], [p + "_zf0"]),
                mk("Neg", [p + "_zf0"], [p + "_zf1"]),
                mk("Round", [p + "_zf1"], [p + "_zf"]),
                mk("Reshape", [p + "_s", "pt_flat"], [p + "_s1"]),
                mk("Cast", [p + "_zf"], [p + "_zu"], to=TensorProto.UINT8),
                mk("Reshape", [p + "_zu", "pt_flat"], [p + "_zu1"]),
                mk("QuantizeLinear", [p + "_x2", p + "_s1", p + "_zu1"], [p + "_q2"], axis=0),
            ]
            for mm in mms:
                mm_outputs[mm.output[0]] = p
            continue
        if n.op_type == "MatMulInteger" and n.output[0] in mm_outputs:
            p, o, wq = mm_outputs[n.output[0]], n.output[0], n.input[1]
            inits.append(numpy_helper.from_array(W[wq].astype(np.int64).sum(axis=0).astype(np.float32), o + "__colsum"))
            inits.append(numpy_helper.from_array(np.array([W[wq].shape[1]], np.int64), o + "__n"))
            mk = helper.make_node
            out += [
                mk("MatMulInteger", [p + "_q2", wq, "pt_zp0", n.input[3]], [o + "__i2"]),
                mk("Cast", [o + "__i2"], [o + "__f2"], to=TensorProto.FLOAT),
                mk("Mul", [p + "_zf", o + "__colsum"], [o + "__corr"]),
                mk("Sub", [o + "__f2", o + "__corr"], [o + "__f3"]),
                mk("Mul", [o + "__f3", p + "_s"], [o + "__f4"]),
                mk("Concat", [p + "_lead", o + "__n"], [o + "__shape"], axis=0),
                mk("Reshape", [o + "__f4", o + "__shape"], [o + "__float"]),
            ]
            continue
        if n.op_type == "Cast" and n.input[0] in mm_outputs:  # int32 -> float: now done above, per row
            out.append(helper.make_node("Identity", [n.input[0] + "__float"], [n.output[0]]))
            continue
        if n.op_type == "Mul" and "quant_scales_mul" in n.output[0]:  # a_scale x w_scale: a_scale is now per row
            out.append(helper.make_node("Identity", [n.input[1]], [n.output[0]]))
            continue
        out.append(n)
    del g.node[:]
    g.node.extend(out)
    g.initializer.extend(inits)
    onnx.save(m, str(dst))
    if derived_file(src).exists():
        shutil.copy(derived_file(src), derived_file(dst))
    return len(mm_outputs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--clauses", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    from policytag import paths
    from policytag.clause import load_clauses
    from policytag.modeling.classifier import as_pairs, context_fields
    from policytag.modeling.onnx_runtime import WEIGHTS_FILE, OnnxClassifier, _session

    load0 = os.getloadavg()
    clf = OnnxClassifier.from_pretrained(args.model_dir, recheck_margin=0.0)
    src = args.model_dir / "onnx" / "model.int8.onnx"
    weights = args.model_dir / WEIGHTS_FILE
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "model.int8.pertoken.onnx"
        n = per_token_graph(src, dst, weights)
        pt = _session(dst, None, weights, disabled_optimizers=["MatMulIntegerToFloatFusion"])
        clauses = load_clauses(paths.GOLD_FILE)[: args.clauses]
        pairs = as_pairs(clauses, context_fields(clf.metadata.get("input") or {}))
        sessions = {"fp32": clf.fp32_session(), "int8 per tensor (today)": clf.session, "int8 per token": pt}
        best: dict[str, float] = {}
        probs = {}
        for _ in range(args.rounds):
            for name, s in sessions.items():
                t = time.perf_counter()
                probs[name] = clf._run(s, pairs, 16, False)
                best[name] = min(best.get(name, 1e9), time.perf_counter() - t)
    lo = lambda p: np.log(np.clip(p, 1e-7, 1 - 1e-7) / (1 - np.clip(p, 1e-7, 1 - 1e-7)))  # noqa: E731
    print(f"{len(pairs)} gold clauses; {n} int8 MatMuls rewritten; load {load0[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    print("| graph | clauses/s | max |log-odds diff| per clause vs fp32: median / 99th pct / max |")
    print("|---|---|---|")
    for name in sessions:
        e = np.abs(lo(probs[name]) - lo(probs["fp32"])).max(axis=1)
        print(f"| {name} | {len(pairs) / best[name]:.1f} | {np.median(e):.3f} / {np.quantile(e, 0.99):.3f} / {e.max():.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
