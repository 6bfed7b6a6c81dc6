/* kvrun built without CUDA: the cuda backend says so. */
#include "kvr_backend.h"
#include "kvr_exec.h"

#include <stdio.h>

enum kvr_status kvr_cuda_create(const struct kvr_model *m, uint32_t max_ctx, uint32_t max_chunk,
                                uint32_t v0, uint32_t n_vocab, int device, struct kvr_backend *out)
{
    (void)m, (void)max_ctx, (void)max_chunk, (void)v0, (void)n_vocab, (void)device, (void)out;
    return kvr_error(KVR_ERR_INPUT, "--backend cuda: this kvr was built without CUDA "
                                    "(meson setup -Dcuda=enabled on a machine with nvcc)");
}

uint64_t kvr_cuda_free_bytes(int device)
{
    (void)device;
    return 0;
}

int kvr_exec_cuda_devices(void)
{
    return 0;
}

enum kvr_status kvr_exec_bench_attention(struct kvr_attn_bench *b)
{
    (void)b;
    return kvr_error(KVR_ERR_INPUT, "kvr bench attention: this kvr was built without CUDA");
}

enum kvr_status kvr_exec_bench_ring(struct kvr_ring_bench *b)
{
    (void)b;
    return kvr_error(KVR_ERR_INPUT, "kvr bench attention --ring: this kvr was built without CUDA");
}

void kvr_cuda_driver_version(char *buf, size_t cap)
{
    snprintf(buf, cap, "none");
}

enum kvr_status kvr_exec_device_buffer(int device, size_t bytes, void **p)
{
    (void)device, (void)bytes, (void)p;
    return kvr_error(KVR_ERR_INPUT, "device buffers: this kvr was built without CUDA");
}

void kvr_exec_device_free(void *p)
{
    (void)p;
}
