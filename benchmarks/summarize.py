#!/usr/bin/env python3
"""Prints one table of Kiln / peer ratios from JMH JSON results (-rf json).

Usage: python3 benchmarks/summarize.py RESULT.json [RESULT.json ...]

Pairs come from the method names: in each benchmark class, a method `kilnX` is compared with
`mxnetX` and `libtorchX` (same suffix X, same parameters), e.g. NetBench.kiln / NetBench.mxnet,
MlpTrainBench.kilnStep / MlpTrainBench.libtorchStep. Methods without a peer are listed after the
table.

Several files (e.g. the rounds run.sh runs one after the other, so that a noisy spell on the
machine lands in one round and shows up as spread) are pooled: every measurement iteration of
every fork of every file is one sample. Scores are the mean of the samples and errors the 99.9%
confidence half-width t(0.9995, n-1) * sd / sqrt(n): exactly JMH's score and error when one file
is given. A ratio is always "how much faster Kiln is": kiln/peer for throughput scores, peer/kiln
for times; its error combines the two relative errors in quadrature (first order). The last
column says whether the 99.9% intervals put Kiln ahead (+), behind (-) or neither (=).
"""
import json
import math
import re
import sys
from collections import defaultdict

ENGINES = ("kiln", "mxnet", "libtorch")
PEERS = ("mxnet", "libtorch")

# Student t quantiles for a two-sided 99.9% interval, by degrees of freedom
T999 = {1: 636.62, 2: 31.599, 3: 12.924, 4: 8.610, 5: 6.869, 6: 5.959, 7: 5.408, 8: 5.041, 9: 4.781,
        10: 4.587, 11: 4.437, 12: 4.318, 13: 4.221, 14: 4.140, 15: 4.073, 16: 4.015, 17: 3.965,
        18: 3.922, 19: 3.883, 20: 3.850, 21: 3.819, 22: 3.792, 23: 3.768, 24: 3.745, 25: 3.725,
        26: 3.707, 27: 3.690, 28: 3.674, 29: 3.659, 30: 3.646, 40: 3.551, 60: 3.460, 80: 3.416,
        100: 3.390, 120: 3.373}
T999_INF = 3.291


def t999(df):
    """The 0.9995 quantile of Student's t with df degrees of freedom (interpolated in 1/df)."""
    if df in T999:
        return T999[df]
    keys = sorted(T999)
    if df > keys[-1]:
        lo, hi, tlo, thi = keys[-1], math.inf, T999[keys[-1]], T999_INF
    else:
        lo = max(k for k in keys if k < df)
        hi = min(k for k in keys if k > df)
        tlo, thi = T999[lo], T999[hi]
    x, xlo, xhi = 1 / df, 1 / lo, (0 if hi == math.inf else 1 / hi)
    return thi + (tlo - thi) * (x - xhi) / (xlo - xhi)


def split(method):
    """'kilnStep' -> ('kiln', 'Step'); None for a method not named after an engine."""
    for e in ENGINES:
        if method.startswith(e) and (len(method) == len(e) or method[len(e)].isupper()):
            return e, method[len(e):]
    return None


def load(paths):
    """(class, method, params) -> {'samples': [...], 'unit': str, 'mode': str}"""
    rows = defaultdict(lambda: {"samples": [], "unit": None, "mode": None})
    for path in paths:
        with open(path) as f:
            text = f.read().strip()
        if not text:
            print(f"# {path}: empty (the run failed before writing results)")
            continue
        for r in json.loads(text):
            cls, method = r["benchmark"].rsplit(".", 2)[-2:]
            p = dict(r.get("params") or {})
            if p.get("precision") == "float32":
                del p["precision"]  # Kiln-only parameter; the peers run float32, so this pairs with them
            params = ",".join(f"{k}={v}" for k, v in sorted(p.items()))
            m = r["primaryMetric"]
            row = rows[(cls, method, params)]
            for fork in m.get("rawData") or [[m["score"]]]:
                row["samples"].extend(float(v) for v in fork)
            row["unit"] = m["scoreUnit"]
            row["mode"] = r["mode"]
    return rows


def stats(samples):
    n = len(samples)
    mean = sum(samples) / n
    if n < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in samples) / (n - 1))
    return mean, t999(n - 1) * sd / math.sqrt(n)


def fmt(score, err):
    def num(v):
        if math.isnan(v):
            return "nan"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return f"{num(score)} +- {num(err)}"


def ratio(kiln, peer, throughput):
    (sk, ek), (sp, ep) = kiln, peer
    r = sk / sp if throughput else sp / sk
    err = r * math.sqrt((ek / sk) ** 2 + (ep / sp) ** 2) if sk and sp else float("nan")
    if math.isnan(err):
        verdict = "?"
    else:
        verdict = "+" if r - err > 1 else "-" if r + err < 1 else "="
    return r, err, verdict


def natural(key):
    """Sort key that orders batch=32 before batch=128."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", " ".join(key))]


def main(paths):
    rows = load(paths)
    if not rows:
        print("no results in", " ".join(paths))
        return 1
    pairs = defaultdict(dict)  # (class, suffix, params) -> engine -> row key
    lonely = []
    for key in rows:
        cls, method, params = key
        s = split(method)
        if s is None:
            lonely.append(key)
        else:
            pairs[(cls, s[1], params)][s[0]] = key
    table = []
    for (cls, suffix, params), by_engine in sorted(pairs.items(), key=lambda kv: natural(kv[0])):
        if "kiln" not in by_engine or not any(p in by_engine for p in PEERS):
            lonely.extend(by_engine.values())
            continue
        k = rows[by_engine["kiln"]]
        throughput = k["mode"] == "thrpt"
        kiln = stats(k["samples"])
        line = [cls + ("." + suffix if suffix else ""), params.replace(",", " "), k["unit"], fmt(*kiln)]
        ratios = []
        for p in PEERS:
            if p in by_engine:
                peer = stats(rows[by_engine[p]]["samples"])
                line.append(fmt(*peer))
                r, e, v = ratio(kiln, peer, throughput)
                ratios.append(f"{r:.2f} +- {e:.2f} {v}")
            else:
                line.append("-")
                ratios.append("-")
        table.append(line + ratios)
    if table:
        head = ["benchmark", "params", "unit", "kiln", "mxnet", "libtorch", "kiln/mxnet", "kiln/libtorch"]
        widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
        print("Kiln / peer (above 1: Kiln faster; +- 99.9% CI; + Kiln ahead, - behind, = within error)")
        for r in [head] + table:
            print("  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    if lonely:
        print("\nWithout a pair (no kiln/mxnet/libtorch method of the same suffix, or not named after an engine):")
        for key in sorted(set(lonely), key=natural):
            cls, method, params = key
            print(f"  {cls}.{method:<22} {params.replace(',', ' '):<40} {fmt(*stats(rows[key]['samples']))} {rows[key]['unit']}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
