#!/usr/bin/env bash
# Builds Kiln and the JMH benchmarks, runs them against the peers measured in the same run (Apache
# MXNet 1.9.1 via DJL, libtorch 2.10 via JavaCPP) and prints one table of Kiln / peer ratios.
#
# Usage:
#   benchmarks/run.sh all   [extra JMH args...]   the whole suite (issue 6), then one ratio table
#                                                 and the memory table
#   benchmarks/run.sh quick [extra JMH args...]   the same benchmarks, each trial for one short
#                                                 iteration and no warm-up: a smoke test that every
#                                                 method runs (its numbers mean nothing)
#   benchmarks/run.sh [extra JMH args...]         BENCH only (default MlpTrainBench), as before
#
# Suites (all, quick): every benchmark class in dev.kiln.bench (narrow with BENCH): NetBench (the
# executor matrix: mlp/lenet/resnet18 x batch 1/32/128 x forward/backward/step), OpBench (per-op),
# ResNet18Bench, MlpTrainBench, MlpInferBench, LenetTrainBench, LstmTrainBench, ModuleFitBench,
# ConvAlgoBench; for each round and each thread count one JMH run (every trial in a fresh JVM, JMH
# forks), rounds one after the other so that a noisy spell on the machine lands in one round and
# widens the error instead of faking a win; then summarize.py pools all rounds; then MemoryReport.
#
#   env: THREADS=1      intra-op threads for every engine; suites take a list: THREADS="1 2"
#                       (default "1 2" for all, "1" for quick); -p threads=N + OMP/OpenBLAS env
#        ROUNDS=2       suites: how many times the whole suite runs (1 for quick)
#        FORKS=1 WI=3 W=1s I=5 R=1s     JMH forks per trial, warm-up/measurement iterations and their
#                       length (quick: FORKS=1 WI=0 I=1 R=200ms). Unset, the suites keep each
#                       class's own @Warmup/@Measurement (ResNet-18 and LeNet use longer iterations)
#        BENCH=MlpTrainBench            JMH include regex (suites: dev.kiln.bench)
#        MEMORY=1       suites: run MemoryReport (0 skips it); MEMORY_NETS=mlp,lenet,resnet18
#        TORCH_MKLDNN=0 switch libtorch's oneDNN off (-Dbench.torch.mkldnn=false): its convolution
#                       gave wrong values for 20 input channels on the project's machine (OpBench
#                       check lines; README.md)
#        OMP_WAIT_POLICY=PASSIVE|ACTIVE  one OpenMP wait policy for every engine's forks (unset:
#                       libtorch PASSIVE, Kiln and MXNet libgomp's default; fork-jvm.sh says why)
#        PIN=1          pin the whole run to core 0 (taskset -c 0): per-core efficiency
#        SKIP_BUILD=1   reuse benchmarks/target/benchmarks.jar
#        MVN_FLAGS=-o   extra Maven flags (offline once ~/.m2 is filled)
#        KEEP_OPENBLAS_CORETYPE=1  keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE from the environment (see below)
#        JAVA=java  OUT=benchmarks/target/jmh-mlp.json (single runs; the JMH log goes to OUT with .log)
#        OUTDIR=benchmarks/target/suite-<suite>   suites: JSON, logs, memory.txt and summary.txt
# Short sanity run of one class: WI=2 I=3 R=1s W=1s benchmarks/run.sh
# Full suite on a quiet machine: benchmarks/run.sh all   (about 2.5 h with the defaults, see README.md)
set -euo pipefail
cores=$(nproc)  # before OMP_NUM_THREADS is exported: GNU nproc honours it
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
SUITE=
case "${1:-}" in
  all|quick) SUITE=$1; shift ;;
esac
JAVA=${JAVA:-java}
MVN_FLAGS=${MVN_FLAGS:-}

if [ -z "${SKIP_BUILD:-}" ]; then
  # installs dev.kiln:kiln:0.1.0-SNAPSHOT into ~/.m2 (the native build takes minutes the first time)
  (cd "$root" && mvn -q -B $MVN_FLAGS -DskipTests install)
  mvn -q -B $MVN_FLAGS -f "$here/pom.xml" package
fi

# MXNet only reads its thread count from the environment (OpenMP for oneDNN/OpenBLAS, one engine
# worker thread, as shared/peers/djl does); Kiln and libtorch also get -p threads=N.
# OpenMP wait policy per engine: forks start through fork-jvm.sh, which gives libtorch's forks
# OMP_WAIT_POLICY=PASSIVE (it mixes OpenMP with OpenBLAS's pthread pool, and spinning OpenMP workers
# starve OpenBLAS's threads at 2 threads on this 2-core machine; shared/spec/peers.md) and leaves
# Kiln and MXNet at libgomp's default. OMP_WAIT_POLICY given to run.sh applies to every engine.
export BENCH_FORK_JAVA=$(command -v "$JAVA")
if [ -n "${OMP_WAIT_POLICY:-}" ]; then export BENCH_OMP_WAIT_ALL=$OMP_WAIT_POLICY; fi
unset OMP_WAIT_POLICY
# natives are extracted into private caches (the shared ~/.javacpp/cache was once emptied under a run)
export DJL_CACHE_DIR=${DJL_CACHE_DIR:-$here/target/djl-cache}
jvm_args="-Xmx2g -Xss8m -Dai.djl.offline=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn"
jvm_args="$jvm_args -Dorg.bytedeco.javacpp.cachedir=$here/target/javacpp-cache"
if [ "${TORCH_MKLDNN:-1}" = 0 ]; then jvm_args="$jvm_args -Dbench.torch.mkldnn=false"; fi
pin=()
if [ -n "${PIN:-}" ]; then pin=(taskset -c 0); fi
# This workplace may export OPENBLAS_CORETYPE=Haswell (+ OPENBLAS_L2_SIZE) for old OpenBLAS builds.
# It forces the AVX2 kernels on OpenBLAS 0.3.31, which Kiln and libtorch both use (MXNet's FC goes
# through oneDNN and is not affected); shared/spec/peers.md measured with DYNAMIC_ARCH's own choice
# (Cooperlake, AVX-512, on Zen 4). Unset both for the benchmark command only; "# kiln ... blas=" in
# the log names the core actually used. Tests and CI keep the environment as it is.
unset_env=()
if [ -z "${KEEP_OPENBLAS_CORETYPE:-}" ]; then unset_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE); fi

# run_jmh THREADS OUT [JMH args...]: one JMH run at THREADS intra-op threads, JSON to OUT, log to OUT.log
run_jmh() {
  local t=$1 out=$2
  shift 2
  mkdir -p "$(dirname "$out")"
  OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "${unset_env[@]}" "${pin[@]}" "$JAVA" -jar "$here/target/benchmarks.jar" \
    -p threads="$t" -jvm "$here/fork-jvm.sh" -jvmArgsAppend "$jvm_args" -rf json -rff "$out" "$@" 2>&1 | tee "$out.log"
}

if [ -z "$SUITE" ]; then
  THREADS=${THREADS:-1}
  BENCH=${BENCH:-MlpTrainBench}
  OUT=${OUT:-$here/target/jmh-mlp.json}
  run_jmh "$THREADS" "$OUT" "$BENCH" -f "${FORKS:-1}" -wi "${WI:-3}" -w "${W:-1s}" -i "${I:-5}" -r "${R:-1s}" \
    -foe true "$@"
  echo
  echo "$BENCH, threads=$THREADS${PIN:+, pinned to core 0} ($cores cores here)"
  # the engines' own lines (versions, threads, OpenBLAS core, end-of-trial loss), once each
  grep -oE '# (kiln|mxnet|libtorch) .*' "$OUT.log" | sort | uniq || true
  python3 "$here/summarize.py" "$OUT"
  exit 0
fi

BENCH=${BENCH:-dev.kiln.bench}
OUTDIR=${OUTDIR:-$here/target/suite-$SUITE}
timing=()
if [ "$SUITE" = quick ]; then
  THREADS=${THREADS:-1}
  ROUNDS=${ROUNDS:-1}
  timing=(-f "${FORKS:-1}" -wi "${WI:-0}" -i "${I:-1}" -r "${R:-200ms}")
  [ -n "${W:-}" ] && timing+=(-w "$W")
else
  THREADS=${THREADS:-1 2}
  ROUNDS=${ROUNDS:-2}
  timing=(-f "${FORKS:-1}")
  [ -n "${WI:-}" ] && timing+=(-wi "$WI")
  [ -n "${W:-}" ] && timing+=(-w "$W")
  [ -n "${I:-}" ] && timing+=(-i "$I")
  [ -n "${R:-}" ] && timing+=(-r "$R")
fi
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
# ModuleFitBench reads data/mnist relative to the working directory
cd "$root"
for round in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    echo "=== $SUITE suite, round $round of $ROUNDS, threads=$t ($cores cores here) ==="
    # -foe false: a failing benchmark is reported (and missing from the table), the rest still run
    run_jmh "$t" "$OUTDIR/round$round-t$t.json" "$BENCH" "${timing[@]}" -foe false "$@" || true
  done
done

{
  echo "$SUITE suite: $ROUNDS round(s), threads ${THREADS}${PIN:+, pinned to core 0}, $cores cores here, $(date -u +%FT%TZ)"
  # the engines' own lines (versions, threads, OpenBLAS core), once each; failures
  cat "$OUTDIR"/*.log | grep -oE '# (kiln|mxnet|libtorch) (threads|[0-9]).*' | sort | uniq || true
  fails=$(cat "$OUTDIR"/*.log | grep -c '<failure>' || true)
  [ "$fails" != 0 ] && echo "WARNING: $fails benchmark failure(s); see $OUTDIR/*.log"
  # an engine that ends a trial with a non-finite loss computed garbage: its times mean nothing
  bad=$(cat "$OUTDIR"/*.log | grep -ohE '# (kiln|mxnet|libtorch) .*loss=(NaN|-?Infinity)' | sort | uniq || true)
  [ -n "$bad" ] && printf 'WARNING: non-finite losses (see README.md, Known problems):\n%s\n' "$bad"
  echo
  python3 "$here/summarize.py" "$OUTDIR"/round*.json
} | tee "$OUTDIR/summary.txt"

if [ "${MEMORY:-1}" != 0 ]; then
  t=${THREADS%% *}
  echo
  OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "${unset_env[@]}" "$JAVA" $jvm_args -cp "$here/target/benchmarks.jar" \
    dev.kiln.bench.MemoryReport "${MEMORY_NETS:-mlp,lenet,resnet18}" 2>&1 | grep -vE '^# (kiln|mxnet|libtorch) ' \
    | tee "$OUTDIR/memory.txt" || true
  cat "$OUTDIR/memory.txt" >> "$OUTDIR/summary.txt"
fi
echo
echo "results: $OUTDIR (summary.txt, round*.json, *.log)"
