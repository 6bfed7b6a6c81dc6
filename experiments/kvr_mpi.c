#include "kvr_mpi.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvr_config.h"
#include "kvr_exec.h"

bool kvr_mpi_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int kvr_mpi_local_device(void)
{
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    int n = kvr_exec_cuda_devices();
    return lr && n > 0 ? atoi(lr) % n : 0;
}

#if KVR_HAVE_MPI
#include <mpi.h>

#include "kvr_mpi_check.h"

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

#endif

void kvr_mpi_abort_failed(enum kvr_status st, int rank, int size)
{
    if (!st || size <= 1) return;
    fprintf(stderr, "kvr: rank %d: %s: %s\n", rank, kvr_status_name(st), kvr_error_message());
    fflush(stderr);
    kvr_mpi_abort(kvr_status_exit_code(st));
}
