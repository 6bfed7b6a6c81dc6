/* The backends' shared host code (kvr_backend.h): what every backend does alike, written once
 * over the method table. */
#include "kvr_backend.h"

uint64_t kvr_backend_tensor_numel(const struct kvr_model *m, uint32_t n_vocab, enum kvr_tensor t)
{
    return t == KVR_T_LM_HEAD ? (uint64_t)n_vocab * m->d_model : kvr_tensor_numel(m, t);
}

enum kvr_status kvr_backend_keep_row(const struct kvr_backend *be, uint32_t row, uint32_t max_chunk)
{
    static const enum kvr_buf keep[] = {KVR_BUF_X, KVR_BUF_XN, KVR_BUF_XN2, KVR_BUF_QKV};
    if (row >= max_chunk) return kvr_error(KVR_ERR_INPUT, "keep_row: row %u of %u", row, max_chunk);
    enum kvr_status st = KVR_OK;
    for (size_t i = 0; i < sizeof keep / sizeof *keep && !st; i++)
        st = be->ops->keep_row(be->state, keep[i], row);
    return st;
}
