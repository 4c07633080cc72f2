#!/usr/bin/env bash
# Builds Kiln and the JMH benchmarks, runs MlpTrainBench (Kiln vs MXNet 1.9.1 via DJL vs libtorch 2.10
# via JavaCPP, MLP 784-512-512-10 training at batch 128) and prints samples/s and Kiln/peer ratios.
#
# Usage: benchmarks/run.sh [extra JMH args...]
#   env: THREADS=1      intra-op threads for every engine (-p threads=N + OMP/OpenBLAS env)
#        FORKS=1 WI=3 W=1s I=5 R=1s     JMH forks, warm-up/measurement iterations and their length
#        BENCH=MlpTrainBench            JMH include regex (e.g. 'MlpTrainBench.(kiln|mxnet|libtorch)$')
#        PIN=1          pin the whole run to core 0 (taskset -c 0): per-core efficiency
#        SKIP_BUILD=1   reuse benchmarks/target/benchmarks.jar
#        MVN_FLAGS=-o   extra Maven flags (offline once ~/.m2 is filled)
#        KEEP_OPENBLAS_CORETYPE=1  keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE from the environment (see below)
#        JAVA=java  OUT=benchmarks/target/jmh-mlp.json (the JMH log goes to OUT with .log)
# Short sanity run: WI=2 I=3 R=1s W=1s benchmarks/run.sh
set -euo pipefail
cores=$(nproc)  # before OMP_NUM_THREADS is exported: GNU nproc honours it
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
THREADS=${THREADS:-1}
FORKS=${FORKS:-1}
WI=${WI:-3}
W=${W:-1s}
I=${I:-5}
R=${R:-1s}
BENCH=${BENCH:-MlpTrainBench}
JAVA=${JAVA:-java}
OUT=${OUT:-$here/target/jmh-mlp.json}
MVN_FLAGS=${MVN_FLAGS:-}

if [ -z "${SKIP_BUILD:-}" ]; then
  # installs dev.kiln:kiln:0.1.0-SNAPSHOT into ~/.m2 (the native build takes minutes the first time)
  (cd "$root" && mvn -q -B $MVN_FLAGS -DskipTests install)
  mvn -q -B $MVN_FLAGS -f "$here/pom.xml" package
fi

# One intra-op thread everywhere. Kiln and libtorch also get -p threads=N; MXNet only reads the
# environment (OpenMP for oneDNN/OpenBLAS, one engine worker thread, as shared/peers/djl does).
# OMP_WAIT_POLICY=PASSIVE: libtorch mixes OpenMP with OpenBLAS's pthread pool, and spinning OpenMP
# workers starve OpenBLAS's threads at 2 threads on this 2-core machine (shared/spec/peers.md).
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MXNET_CPU_WORKER_NTHREADS=1
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# natives are extracted into private caches (the shared ~/.javacpp/cache was once emptied under a run)
export DJL_CACHE_DIR=${DJL_CACHE_DIR:-$here/target/djl-cache}
jvm_args="-Xmx2g -Xss8m -Dai.djl.offline=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn"
jvm_args="$jvm_args -Dorg.bytedeco.javacpp.cachedir=$here/target/javacpp-cache"
pin=()
if [ -n "${PIN:-}" ]; then pin=(taskset -c 0); fi
# This workplace may export OPENBLAS_CORETYPE=Haswell (+ OPENBLAS_L2_SIZE) for old OpenBLAS builds.
# It forces the AVX2 kernels on OpenBLAS 0.3.31, which Kiln and libtorch both use (MXNet's FC goes
# through oneDNN and is not affected); shared/spec/peers.md measured with DYNAMIC_ARCH's own choice
# (Cooperlake, AVX-512, on Zen 4). Unset both for the benchmark command only; "# kiln ... blas=" in
# the log names the core actually used. Tests and CI keep the environment as it is.
unset_env=()
if [ -z "${KEEP_OPENBLAS_CORETYPE:-}" ]; then unset_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE); fi

mkdir -p "$(dirname "$OUT")"
"${unset_env[@]}" "${pin[@]}" "$JAVA" -jar "$here/target/benchmarks.jar" "$BENCH" \
  -f "$FORKS" -wi "$WI" -w "$W" -i "$I" -r "$R" -p threads="$THREADS" -foe true \
  -jvmArgsAppend "$jvm_args" -rf json -rff "$OUT" "$@" 2>&1 | tee "$OUT.log"
echo
echo "MLP 784-512-512-10 training, batch 128, threads=$THREADS${PIN:+, pinned to core 0} ($cores cores here)"
# the engines' own lines (versions, threads, OpenBLAS core, end-of-trial loss), once each
grep -oE '# (kiln|mxnet|libtorch) .*' "$OUT.log" | sort | uniq || true
python3 "$here/summarize.py" "$OUT"
