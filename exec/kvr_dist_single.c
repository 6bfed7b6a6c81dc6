/* single on ranks: one rank prefills the whole context (kvr_dist_prefill runs p = 1 itself). */
#include "kvr_dist_int.h"

enum kvr_status kvr_dist_single(struct kvr_dist *d)
{
    return kvr_error(KVR_ERR_INPUT, "scheme single runs on one rank, not %d", d->p);
}
