/* MPI's lifetime in the kvr program. Started by mpirun and built with MPI: real ranks;
 * otherwise one rank and every call a no-op, so callers need no #ifdefs. What travels between
 * ranks goes through the executor's communicator (kvr_comm.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "kvr_status.h"

/* Whether this process was started by mpirun (Open MPI, or a PMI launcher). */
bool kvr_mpi_launched(void);
/* MPI_Init when launched (errors return instead of aborting); rank and size otherwise 0, 1. */
enum kvr_status kvr_mpi_init(int *rank, int *size);
void kvr_mpi_finalize(void);
/* This rank's GPU: the rank on its host (Open MPI's local rank) modulo the GPUs there; 0 when
 * not under mpirun or without a GPU. Ranks of one host share their GPUs round robin. */
int kvr_mpi_local_device(void);
/* Ends every rank with this exit code: after a failure that the others cannot see. */
void kvr_mpi_abort(int code);
/* After a failure (st) on one of several ranks the job ends here: this rank says why on stderr
 * ("kvr: rank R: ...") and aborts every rank with st's exit code, since a peer may be dead or
 * waiting for it (finalizing could wait forever). Returns when st is KVR_OK or size is 1. */
void kvr_mpi_abort_failed(enum kvr_status st, int rank, int size);
