# The build, the GPU, and the version built.
# build-gpu: release, CUDA and MPI (gpu_env.sh).
# Regenerates: nothing.
no_args "$@"
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv | tee "$out/gpus.txt" || bad=1
$kvr --version | tee "$out/version.txt" || bad=1
