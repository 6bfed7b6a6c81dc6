#include "kvr_mpi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_config.h"

bool kvr_mpi_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

#if KVR_HAVE_MPI
#include <mpi.h>

/* MPI's own message for a failed call, with the call, file and line. */
#define KVR_MPI_CHECK(call)                                                                        \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MPI_SUCCESS) {                                                                  \
            char msg_[MPI_MAX_ERROR_STRING];                                                       \
            int len_ = 0;                                                                          \
            MPI_Error_string(rc_, msg_, &len_);                                                    \
            return kvr_error(KVR_ERR_RUNTIME, "%s:%d: MPI: %s failed: %s", __FILE__, __LINE__,     \
                             #call, msg_);                                                         \
        }                                                                                          \
    } while (0)

static bool initialised;

enum kvr_status kvr_mpi_init(int *rank, int *size)
{
    *rank = 0, *size = 1;
    if (!kvr_mpi_launched()) return KVR_OK;
    if (!initialised) KVR_MPI_CHECK(MPI_Init(NULL, NULL));
    initialised = true;
    KVR_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    KVR_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, rank));
    KVR_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, size));
    return KVR_OK;
}

void kvr_mpi_finalize(void)
{
    if (initialised) MPI_Finalize();
    initialised = false;
}

void kvr_mpi_abort(int code)
{
    if (initialised) MPI_Abort(MPI_COMM_WORLD, code);
}

enum kvr_status kvr_mpi_bcast(void *buf, size_t bytes, int root)
{
    if (!initialised) return KVR_OK;
    if (bytes > INT32_MAX) return kvr_error(KVR_ERR_RANGE, "MPI: broadcast of %zu bytes", bytes);
    KVR_MPI_CHECK(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD));
    return KVR_OK;
}

enum kvr_status kvr_mpi_gather(const void *mine, size_t bytes, int root, void **all,
                               size_t *all_bytes)
{
    int rank, size;
    *all = NULL, *all_bytes = 0;
    KVR_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    KVR_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    if (bytes > INT32_MAX) return kvr_error(KVR_ERR_RANGE, "MPI: gather of %zu bytes", bytes);
    int n = (int)bytes, *counts = calloc((size_t)size, sizeof *counts);
    int *displs = calloc((size_t)size, sizeof *displs);
    enum kvr_status st = counts && displs ? KVR_OK : kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st && MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, root, MPI_COMM_WORLD))
        st = kvr_error(KVR_ERR_RUNTIME, "MPI: gathering sizes failed");
    size_t total = 0;
    for (int r = 0; !st && rank == root && r < size; r++)
        displs[r] = (int)total, total += (size_t)counts[r];
    if (!st && rank == root && total > INT32_MAX)
        st = kvr_error(KVR_ERR_RANGE, "MPI: gather too large");
    char *buf = !st && rank == root ? malloc(total ? total : 1) : NULL;
    if (!st && rank == root && !buf) st = kvr_error(KVR_ERR_NOMEM, "out of memory");
    if (!st && MPI_Gatherv(mine, n, MPI_BYTE, buf, counts, displs, MPI_BYTE, root, MPI_COMM_WORLD))
        st = kvr_error(KVR_ERR_RUNTIME, "MPI: gathering results failed");
    free(counts), free(displs);
    if (st) {
        free(buf);
        return st;
    }
    *all = buf, *all_bytes = total;
    return KVR_OK;
}

#else

enum kvr_status kvr_mpi_init(int *rank, int *size)
{
    *rank = 0, *size = 1;
    if (kvr_mpi_launched())
        return kvr_error(KVR_ERR_INPUT, "started by mpirun, but this kvr was built without MPI "
                                        "(install Open MPI and rebuild)");
    return KVR_OK;
}

void kvr_mpi_finalize(void) {}

void kvr_mpi_abort(int code)
{
    (void)code;
}

enum kvr_status kvr_mpi_bcast(void *buf, size_t bytes, int root)
{
    (void)buf, (void)bytes, (void)root;
    return KVR_OK;
}

enum kvr_status kvr_mpi_gather(const void *mine, size_t bytes, int root, void **all,
                               size_t *all_bytes)
{
    (void)root;
    *all = malloc(bytes ? bytes : 1);
    if (!*all) return kvr_error(KVR_ERR_NOMEM, "out of memory");
    memcpy(*all, mine, bytes);
    *all_bytes = bytes;
    return KVR_OK;
}
#endif
