/* The one check for MPI calls (the communicator and the kvr program's MPI use): an MPI error
 * becomes KVR_ERR_RUNTIME with MPI's own message, the call, file and line. Include only where
 * KVR_HAVE_MPI, after <mpi.h>. */
#pragma once

#include <mpi.h>

#include "kvr_status.h"

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
