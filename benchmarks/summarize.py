#!/usr/bin/env python3
"""Prints samples/s and Kiln/peer ratios from a JMH JSON result (-rf json) of MlpTrainBench.

Usage: python3 benchmarks/summarize.py benchmarks/target/jmh-mlp.json
Errors are JMH's 99.9% confidence half-widths; a ratio's error combines the two relative errors
in quadrature (a first-order estimate).
"""
import json
import math
import sys

PAIRS = [("kiln", "mxnet"), ("kiln", "libtorch"), ("kilnStep", "mxnetStep"), ("kilnStep", "libtorchStep")]


def main(path):
    with open(path) as f:
        runs = json.load(f)
    rows = {}  # (params, name) -> (score, error, unit)
    for r in runs:
        name = r["benchmark"].rsplit(".", 1)[-1]
        params = ",".join(f"{k}={v}" for k, v in sorted((r.get("params") or {}).items()))
        m = r["primaryMetric"]
        err = m.get("scoreError")
        err = float(err) if err not in (None, "NaN") else float("nan")
        rows[(params, name)] = (float(m["score"]), err, m["scoreUnit"])
    if not rows:
        print("no results in", path)
        return 1
    for params in sorted({p for p, _ in rows}):
        print(f"\n[{params or 'no params'}]  samples/s (ops/s with 128 samples per op), +- 99.9% CI")
        print(f"  {'benchmark':<14}{'samples/s':>12}{'+-':>10}{'rel':>8}")
        for (p, name), (s, e, _) in sorted(rows.items(), key=lambda kv: kv[0][1]):
            if p != params:
                continue
            rel = e / s * 100 if s and not math.isnan(e) else float("nan")
            print(f"  {name:<14}{s:>12,.0f}{e:>10,.0f}{rel:>7.1f}%")
        printed = False
        for a, b in PAIRS:
            if (params, a) in rows and (params, b) in rows:
                if not printed:
                    print(f"  {'ratio':<26}{'value':>8}{'+-':>8}")
                    printed = True
                sa, ea, _ = rows[(params, a)]
                sb, eb, _ = rows[(params, b)]
                ratio = sa / sb
                err = ratio * math.sqrt((ea / sa) ** 2 + (eb / sb) ** 2)
                print(f"  {a + ' / ' + b:<26}{ratio:>8.2f}{err:>8.2f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
