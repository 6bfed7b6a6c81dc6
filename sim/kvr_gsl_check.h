/* The one check for GSL calls: turns a GSL status into KVR_ERR_RUNTIME with GSL's own message,
 * the call, file and line. The error handler is switched off once (kvr_gsl_init), so GSL never
 * aborts the process. */
#pragma once

#include <gsl/gsl_errno.h>

#include "kvr_status.h"

static inline void kvr_gsl_init(void)
{
    gsl_set_error_handler_off();
}

#define KVR_GSL_CHECK(call)                                                                        \
    do {                                                                                           \
        int gsl_rc_ = (call);                                                                      \
        if (gsl_rc_ != GSL_SUCCESS)                                                                \
            return kvr_error(KVR_ERR_RUNTIME, "%s:%d: %s: GSL: %s", __FILE__, __LINE__, #call,     \
                             gsl_strerror(gsl_rc_));                                               \
    } while (0)
