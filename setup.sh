#!/bin/sh
# kvrun set-up: installs what is missing (Debian packages), configures, builds, then runs
#   ./setup.sh main   the main job, on the embedded defaults (no GPU needed)
#   ./setup.sh test   the whole test suite: release build, ASan+UBSan build, clang-format check
set -eu
cd "$(dirname "$0")"
mode=${1:-main}
case $mode in main | test) ;; *) echo "usage: ./setup.sh main|test" >&2; exit 2 ;; esac

# Debian packages the build and the tests need (DESIGN.md, Machines).
pkgs="meson ninja-build pkg-config gcc libc6-dev libgsl-dev libsqlite3-dev libinih-dev python3 git gnuplot-nox
      python3-venv python3-pytest python3-wheel python3-wheel-whl python3-jsonschema
      openmpi-bin libopenmpi-dev"
[ "$mode" = test ] && pkgs="$pkgs clang-format man-db python3-mypy"
missing=
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing" >&2
    sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
fi

configure() { # configure DIR [meson options...]
    dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then meson setup --reconfigure "$dir" "$@" >/dev/null
    else meson setup "$dir" "$@" >/dev/null; fi
}

configure build --buildtype=release -Dpkgconfig.relocatable=true
meson compile -C build >/dev/null

if [ "$mode" = main ]; then
    # Every figure from scratch: sweeps into a fresh database, then the plots (out/ is ignored).
    rm -rf out && mkdir -p out/figures
    ./build/experiments/kvr sweep experiments/sweeps/*.ini --db out/kvrun.db
    ./build/experiments/kvr paper --db out/kvrun.db | tee out/paper.txt
    echo "paper  the paper's claims against the simulator -> out/paper.txt"
    exec ./build/experiments/kvr plot all --db out/kvrun.db --out out/figures
fi

passed=0 failed=0
count() { # count LOG RC: add meson's Ok/Fail totals; a failed run with no count is a failure
    ok=$(sed -n 's/^Ok: *\([0-9]*\) *$/\1/p' "$1"); bad=$(sed -n 's/^Fail: *\([0-9]*\) *$/\1/p' "$1")
    to=$(sed -n 's/^Timeout: *\([0-9]*\) *$/\1/p' "$1")
    passed=$((passed + ${ok:-0})); failed=$((failed + ${bad:-0} + ${to:-0}))
    if [ "$2" != 0 ] && [ "${bad:-0}" = 0 ] && [ "${to:-0}" = 0 ]; then failed=$((failed + 1)); fi
}

export KVR_REQUIRE_PYTHON=1 # the Python package's test fails, not skips, without its packages
rc=0; meson test -C build --print-errorlogs >build/test.log 2>&1 || rc=$?
cat build/test.log; count build/test.log $rc

# Sanitizers: the same suite under ASan+UBSan, optional GPU/MPI parts off.
configure build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dpkgconfig.relocatable=true \
    -Dcuda=disabled -Dnccl=disabled -Dmpi=disabled
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
rc=0; meson test -C build-asan --print-errorlogs >build-asan/test.log 2>&1 || rc=$?
sed 's/^/asan: /' build-asan/test.log; count build-asan/test.log $rc

# Formatting: every C, header and CUDA file matches .clang-format.
unformatted=$(git ls-files '*.c' '*.h' '*.cu' | xargs clang-format --dry-run -Werror 2>&1 | grep -c 'error:' || true)
if [ "$unformatted" = 0 ]; then passed=$((passed + 1)); echo "clang-format: ok"
else failed=$((failed + 1)); echo "clang-format: $unformatted lines differ (run clang-format -i)"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
