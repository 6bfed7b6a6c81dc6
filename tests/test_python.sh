#!/bin/sh
# The kvrun Python package: `pip install ./python` into a fresh virtual environment (standard
# PEP 517 build with setuptools, offline: --no-build-isolation uses the Debian setuptools and
# wheel), then its pytest suite against the kvr program and libkvr_lookup through ctypes.
# Usage: test_python.sh PATH/TO/kvr PATH/TO/libkvr_lookup.so   (exit status; pytest's output)
# Without python3-venv or python3-pytest: exit 77 (skipped), unless KVR_REQUIRE_PYTHON=1
# (./setup.sh test, which installs them), where it fails.
kvr=$(realpath "$1") lib=$(realpath "$2")
src=${KVR_SOURCE_ROOT:-$(dirname "$0")/..}
py=
for c in ${KVR_PYTHON:-} /usr/bin/python3 python3; do
    if command -v "$c" >/dev/null && "$c" -c "import venv, ensurepip, pytest, wheel" 2>/dev/null; then py=$c; break; fi
done
if [ -z "$py" ]; then
    echo "no python3 with venv, ensurepip, pytest and wheel (Debian: python3-venv python3-pytest python3-wheel)"
    [ "${KVR_REQUIRE_PYTHON:-0}" = 1 ] && exit 1
    exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
set -e
# python/README.md's offline install in a plain fresh venv (no system packages, no network):
# pip's isolated build takes Debian's setuptools and wheel from /usr/share/python-wheels
# (python3-setuptools-whl, python3-wheel-whl); then the console script answers from a table
wheels=/usr/share/python-wheels
if ls "$wheels"/setuptools-*.whl "$wheels"/wheel-*.whl >/dev/null 2>&1; then
    "$py" -m venv "$tmp/plain"
    cp -R "$src/python" "$tmp/pkg0" && rm -rf "$tmp/pkg0/build" "$tmp/pkg0"/src/*.egg-info
    PIP_FIND_LINKS= PIP_INDEX_URL= "$tmp/plain/bin/pip" install --quiet --no-index --find-links "$wheels" "$tmp/pkg0"
    printf 'format_version,model,model_hash,machine,machine_hash,p,tp_degree,scheme,method,objective,objective_trials,granularity_tokens,ctx_tokens,predicted_ttft_s,partition_tokens,mapping\r\n2,m,0123456789abcdef,h,fedcba9876543210,2,1,kvr,hier,mean,1,64,1024,0.1,576;448,0;1\r\n2,m,0123456789abcdef,h,fedcba9876543210,2,1,kvr,hier,mean,1,64,2048,0.2,1088;960,1;0\r\n' >"$tmp/t.csv"
    "$tmp/plain/bin/kvrun-lookup" "$tmp/t.csv" m h 2 1536 >"$tmp/ans.json"
    "$tmp/plain/bin/python" -c "import json,sys; a=json.load(open(sys.argv[1])); sys.exit(0 if a['partition_tokens'] == [832, 704] and a['method'] == 'interpolated' else 1)" "$tmp/ans.json"
    echo "# plain venv, offline: pip install --no-index --find-links $wheels ./python: ok"
elif [ "${KVR_REQUIRE_PYTHON:-0}" = 1 ]; then
    echo "no setuptools and wheel wheels in $wheels (Debian: python3-setuptools-whl python3-wheel-whl)"
    exit 1
else
    echo "# no setuptools and wheel wheels in $wheels: the plain-venv offline install is not tried"
fi
"$py" -m venv --system-site-packages "$tmp/venv"
cp -R "$src/python" "$tmp/pkg" && rm -rf "$tmp/pkg/build" "$tmp/pkg"/src/*.egg-info # build outside the tree
"$tmp/venv/bin/pip" install --quiet --no-build-isolation --no-index --no-deps "$tmp/pkg"
# the package comes from the virtual environment, not from the source tree
"$tmp/venv/bin/python" -c "import kvrun, sys; sys.exit(0 if kvrun.__file__.startswith(sys.argv[1]) else 1)" "$tmp/venv"
# typed (py.typed): the package passes mypy --strict where mypy is installed (python3-mypy)
if "$py" -m mypy --version >/dev/null 2>&1; then
    "$py" -m mypy --strict --no-incremental --cache-dir=/dev/null "$src/python/src/kvrun"
elif [ "${KVR_REQUIRE_PYTHON:-0}" = 1 ]; then
    echo "no mypy (Debian: python3-mypy)"; exit 1
else
    echo "# no mypy: the package's types are not checked"
fi
# a sanitizer build's library needs its runtime loaded first, which python is not: no ctypes
if ldd "$lib" 2>/dev/null | grep -q 'libasan'; then lib=; echo "# libkvr_lookup is an ASan build: ctypes test skipped"; fi
cd "$tmp"
KVR=$kvr KVR_LOOKUP_LIB=$lib KVR_SOURCE_ROOT=$(realpath "$src") \
    "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider "$(realpath "$src")/python/tests"
