# Sourced by the multi-GPU scripts: NVLink multicast off everywhere (the device tool's rule),
# Open MPI as root in a container, the output folder ($OUT or ./gpu-out) in $out, the
# carried build dependencies (.gpu-deps), P = the GPUs of this host, and a build of build-gpu.
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
out=${OUT:-gpu-out}
mkdir -p "$out"
. .gpu-deps/env.sh
P=$(nvidia-smi -L | wc -l)
[ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release -Dcuda=enabled -Dmpi=enabled >/dev/null 2>&1
meson compile -C build-gpu 2>&1 | grep -E "error" | head
kvr=build-gpu/experiments/kvr
