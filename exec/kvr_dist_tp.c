/* tp on ranks: Megatron tensor parallelism is the hybrid layout with one stage of all P ranks
 * (kvr exec --scheme tp is --tp P; exec/kvr_exec_tp.c). Each rank's chain is itself alone, so
 * kvr_dist_prefill runs its whole prompt as one chunk and never calls this. */
#include "kvr_dist_int.h"

enum kvr_status kvr_dist_tp(struct kvr_dist *d)
{
    return kvr_error(KVR_ERR_INPUT,
                     "scheme tp is one stage of tensor parallelism (--tp P): its chain has one "
                     "rank, not %d",
                     d->p);
}
