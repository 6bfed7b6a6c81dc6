/* MPI for the kvr program (sweeps spread over ranks). Started by mpirun and built with MPI:
 * real ranks; otherwise one rank and every call a no-op, so callers need no #ifdefs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_status.h"

/* Whether this process was started by mpirun (Open MPI, or a PMI launcher). */
bool kvr_mpi_launched(void);
/* MPI_Init when launched (errors return instead of aborting); rank and size otherwise 0, 1. */
enum kvr_status kvr_mpi_init(int *rank, int *size);
void kvr_mpi_finalize(void);
/* Ends every rank with this exit code: after a failure that the others cannot see. */
void kvr_mpi_abort(int code);
enum kvr_status kvr_mpi_bcast(void *buf, size_t bytes, int root);
/* Each rank's bytes to root, concatenated in rank order into *all (root only; free()). */
enum kvr_status kvr_mpi_gather(const void *mine, size_t bytes, int root, void **all,
                               size_t *all_bytes);
