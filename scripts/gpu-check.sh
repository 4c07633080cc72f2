#!/usr/bin/env bash
# Builds Kiln with CUDA (-Pcuda) and assembles a self-contained folder that runs it on a GPU machine
# that has no Java, no Maven and no network:
#   BUNDLE/jre.tar.gz   jlink'ed Java runtime (unpacked by run.sh on first use, outside the bundle)
#   BUNDLE/lib/*.jar    Kiln's jar (JNI library inside) and its runtime dependencies
#                       [TESTS=1: also target/test-classes as kiln-tests.jar and the test dependencies]
#   BUNDLE/native/      host libraries the JNI library needs that a bare machine may lack (libgomp)
#   BUNDLE/run.sh       finds the CUDA libraries, sets LD_LIBRARY_PATH / KILN_CUDA_LIBDIRS, runs a main class
#
# Usage: scripts/gpu-check.sh [BUNDLE_DIR]      (default .gpu-bundle, ignored by git)
#        then on the GPU machine: bash .gpu-bundle/run.sh MAIN_CLASS [ARGS...]
#        The whole device check (GPU test suite + benchmark against PyTorch, < 8 minutes), from the
#        repository root on the GPU machine, after TESTS=1 scripts/gpu-check.sh here:
#            bash .gpu-bundle/gpu-device-run.sh
# Env:   BUNDLE_JDK   JDK whose jlink builds the runtime (default: Temurin under /usr/lib/jvm, else
#                     the JDK of `javac`); Temurin's libjvm needs only glibc 2.17.
#        MVN_ARGS     Maven arguments (default: -Pcuda)
#        SKIP_BUILD=1 reuse target/ as it is
#        TESTS=1      also bundle the compiled tests and the test-scope dependencies
#        PACK=DIR     also write DIR/bundle.tar.xz, the bundle with its jars stored and the whole
#                     xz-compressed (about 30% smaller than the bundle: with data/ it stays under
#                     the device tool's 64 MiB). On the GPU machine:
#                       mkdir -p /tmp/kb && tar -xJf DIR/bundle.tar.xz -C /tmp/kb && bash /tmp/kb/gpu-device-run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.gpu-bundle}
MVN_ARGS=${MVN_ARGS:--Pcuda}

if [ -z "${BUNDLE_JDK:-}" ]; then
  BUNDLE_JDK=""
  for j in /usr/lib/jvm/temurin-*; do [ -x "$j/bin/jlink" ] && BUNDLE_JDK=$j; done
  if [ -z "$BUNDLE_JDK" ]; then BUNDLE_JDK=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")"); fi
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  mvn -B -q $MVN_ARGS package -DskipTests
fi
ls target/*.jar >/dev/null 2>&1 || { echo "gpu-check: no jar in target/ (build failed?)" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/lib" "$OUT/native"

# 1. jars: ours plus every runtime dependency (javacpp and openblas, with their linux-x86_64 natives)
cp target/*.jar "$OUT/lib/"
if [ "${TESTS:-0}" = 1 ]; then
  mvn -B -q $MVN_ARGS dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$OUT/lib"
  # JUnit only: the MXNet oracle (hundreds of MB) stays behind; the GPU tests (dev.kiln.gpu) do not use it
  mvn -B -q $MVN_ARGS dependency:copy-dependencies -DincludeScope=test -DoutputDirectory="$OUT/lib" \
    -DincludeGroupIds=org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian
  [ -d target/test-classes ] && jar cf "$OUT/lib/kiln-tests.jar" -C target/test-classes .
  cp scripts/gpu-device-run.sh scripts/gpu-bench-torch.py "$OUT/"
else
  mvn -B -q $MVN_ARGS dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$OUT/lib"
fi
# KilnNative inherits the openblas_nolapack preset: Loader loads libopenblas_nolapack and the small
# jniopenblas_nolapack, never jniopenblas / jniopenblas_full (24 MB each); drop those and the headers.
for j in "$OUT"/lib/openblas-*-linux-x86_64.jar; do
  [ -e "$j" ] || continue
  zip -q -d "$j" 'org/bytedeco/openblas/linux-x86_64/libjniopenblas.so' \
                 'org/bytedeco/openblas/linux-x86_64/libjniopenblas_full.so' \
                 'org/bytedeco/openblas/linux-x86_64/include/*' >/dev/null || true
done

# 2. host libraries that the JNI library links dynamically (-fopenmp) and a bare machine might lack
gomp=$(gcc -print-file-name=libgomp.so.1)
[ -f "$gomp" ] && cp -L "$gomp" "$OUT/native/"

# 3. a small Java runtime (jdk.unsupported for sun.misc.Unsafe; java.management and java.logging
#    for the rest of JavaCPP; jdk.zipfs for JUnit, which finds the test classes inside kiln-tests.jar)
compress=zip-9
"$BUNDLE_JDK/bin/jlink" --version | grep -q '^1[0-9]\.' && compress=2   # JDK 17-20 syntax
rm -rf "$OUT/jre"
"$BUNDLE_JDK/bin/jlink" --add-modules java.base,jdk.unsupported,java.management,java.logging,jdk.zipfs \
  --strip-debug --no-header-files --no-man-pages --compress=$compress --output "$OUT/jre"
tar -C "$OUT" -czf "$OUT/jre.tar.gz" jre
rm -rf "$OUT/jre"

# 4. the launcher
cat > "$OUT/run.sh" <<'RUN'
#!/usr/bin/env bash
# Usage: run.sh MAIN_CLASS [ARGS...]
# Env:   KILN_PYTHON (default python3) whose site-packages/nvidia/*/lib hold cuBLAS;
#        KILN_CACHE (default ~/.cache/kiln) where the JRE and JavaCPP's cache are unpacked;
#        JAVA_OPTS   extra JVM options.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KILN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}
JRE=${KILN_JRE:-$CACHE/jre-$(cksum < "$HERE/jre.tar.gz" | cut -d' ' -f1)}
if [ ! -x "$JRE/bin/java" ]; then
  mkdir -p "$JRE" && tar -xzf "$HERE/jre.tar.gz" -C "$JRE" --strip-components=1
fi
# CUDA libraries: PyTorch's pip packages first (site-packages/nvidia/**/lib), then the toolkit's.
dirs=""
add() { case ":$dirs:" in *":$1:"*) ;; *) dirs=${dirs:+$dirs:}$1 ;; esac; }
sp=""
for py in ${KILN_PYTHON:-python3}; do
  command -v "$py" >/dev/null 2>&1 || continue
  sp="$sp $("$py" -c 'import sys; d = [p for p in sys.path if p.endswith("-packages")]; print(" ".join(d))' 2>/dev/null || true)"
done
for d in $sp; do
  [ -d "$d/nvidia" ] || continue
  while IFS= read -r f; do add "$(dirname "$f")"; done < <(find "$d/nvidia" \( -name 'libcublas.so.*' -o -name 'libcublasLt.so.*' -o -name 'libcudnn.so.*' -o -name 'libcudart.so.*' -o -name 'libnvrtc.so.*' -o -name 'libnvJitLink.so.*' \) 2>/dev/null)
done
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && add "$d"; done
export LD_LIBRARY_PATH="$HERE/native${dirs:+:$dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KILN_CUDA_LIBDIRS="$dirs"
opts=(-Xss8m -Dorg.bytedeco.javacpp.cachedir="$CACHE/javacpp" "-Dkiln.cuda.libdirs=$dirs")
# JDK 24+: allow JavaCPP's System.load and sun.misc.Unsafe without warnings
if "$JRE/bin/java" --sun-misc-unsafe-memory-access=allow -version >/dev/null 2>&1; then
  opts+=(--enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow)
fi
echo "run.sh: java $("$JRE/bin/java" -version 2>&1 | head -1), CUDA lib dirs: ${dirs:-none}" >&2
exec "$JRE/bin/java" "${opts[@]}" ${JAVA_OPTS:-} -cp "$HERE/lib/*" "$@"
RUN
chmod +x "$OUT/run.sh"
du -sh "$OUT"/* | sed "s/^/bundle: /"; du -sh "$OUT" | sed "s/^/bundle: /"

# 5. optional xz pack: jars re-stored uncompressed so that xz sees (and compresses) the libraries inside
if [ -n "${PACK:-}" ]; then
  tmp=$(mktemp -d)
  cp -r "$OUT"/. "$tmp"/
  for j in "$tmp"/lib/*.jar; do
    d=$(mktemp -d) && (cd "$d" && unzip -q "$j" && rm "$j" && zip -q -0 -r -X "$j" .) && rm -rf "$d"
  done
  mkdir -p "$PACK"
  tar -C "$tmp" -cf - . | xz -T2 -9 > "$PACK/bundle.tar.xz"
  rm -rf "$tmp"
  du -sh "$PACK/bundle.tar.xz" | sed "s/^/pack: /"
fi
