#!/usr/bin/env bash
# JMH's fork launcher (run.sh passes -jvm): starts each forked benchmark JVM with the OpenMP wait
# policy its engine runs best with. libtorch's forks carry -Dbench.omp.wait=PASSIVE (a @Fork
# annotation on its methods): it mixes OpenMP with OpenBLAS's pthread pool, and a spinning OpenMP
# worker starves OpenBLAS's second thread on a 2-core machine (shared/spec/peers.md, trap 5: 1,468
# samples/s instead of 40,000 for the MLP step at 2 threads). Kiln (one OpenMP pool, OpenBLAS
# single-threaded inside it) and MXNet (oneDNN/MKL; PASSIVE did not help it) keep libgomp's default
# (spin a while, then sleep): under PASSIVE every parallel region wakes a sleeping worker, 50 us a
# time in this VM, which cost Kiln's 2-thread MLP step about 15%.
# BENCH_OMP_WAIT_ALL=X (run.sh sets it when OMP_WAIT_POLICY is given) applies X to every engine.
policy=${BENCH_OMP_WAIT_ALL:-}
if [ -z "$policy" ]; then
  for a in "$@"; do
    case "$a" in -Dbench.omp.wait=*) policy=${a#-Dbench.omp.wait=} ;; esac
  done
fi
if [ -n "$policy" ]; then export OMP_WAIT_POLICY=$policy; else unset OMP_WAIT_POLICY; fi
# FORK_DEBUG=1: say which policy each fork got (stderr, in the JMH log)
[ -n "${FORK_DEBUG:-}" ] && echo "fork-jvm: OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}" >&2
exec "${BENCH_FORK_JAVA:-java}" "$@"
