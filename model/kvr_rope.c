/* Rotary inverse frequencies and the sliding window, as transformers (modeling_rope_utils.py,
 * masking_utils.py) computes them; shared by both backends so that they cannot disagree. */
#include <math.h>

#include "kvr_model.h"

uint32_t kvr_rotary_dims(const struct kvr_model *m)
{
    uint32_t rot = (uint32_t)((double)m->head_dim * m->rotary_fraction);
    return rot & ~1u;
}

/* base^(-2j/dim) for j < dim/2 */
static void plain(double base, uint32_t dim, double *f)
{
    for (uint32_t j = 0; j < dim / 2; j++) f[j] = 1.0 / pow(base, (double)(2 * j) / dim);
}

static void llama3(const struct kvr_model *m, uint32_t dim, double *f)
{
    double old = m->rope_orig_ctx, factor = m->rope_factor;
    double low_wl = old / m->rope_low_freq, high_wl = old / m->rope_high_freq;
    for (uint32_t j = 0; j < dim / 2; j++) {
        double wl = 2 * M_PI / f[j];
        double scaled = wl > low_wl ? f[j] / factor : f[j];
        if (!(wl < high_wl) && !(wl > low_wl)) {
            double smooth = (old / wl - m->rope_low_freq) / (m->rope_high_freq - m->rope_low_freq);
            scaled = (1 - smooth) * scaled / factor + smooth * scaled;
        }
        f[j] = scaled;
    }
}

static double yarn_dim(double rotations, uint32_t dim, double base, double ctx)
{
    return (dim * log(ctx / (rotations * 2 * M_PI))) / (2 * log(base));
}

static void yarn(const struct kvr_model *m, uint32_t dim, double *f)
{
    double base = m->rope_theta, ctx = m->rope_orig_ctx;
    double lo = yarn_dim(m->rope_beta_fast, dim, base, ctx);
    double hi = yarn_dim(m->rope_beta_slow, dim, base, ctx);
    if (m->rope_truncate) lo = floor(lo), hi = ceil(hi);
    lo = fmax(lo, 0), hi = fmin(hi, dim - 1);
    if (lo == hi) hi += 0.001;
    for (uint32_t j = 0; j < dim / 2; j++) {
        double ramp = fmin(fmax(((double)j - lo) / (hi - lo), 0), 1);
        double extra = 1 - ramp; /* share of the extrapolated (unscaled) frequency */
        f[j] = f[j] / m->rope_factor * (1 - extra) + f[j] * extra;
    }
}

void kvr_rope_inv_freq(const struct kvr_model *m, uint32_t ctx, double *f, double *attn_factor)
{
    uint32_t dim = kvr_rotary_dims(m);
    double base = m->rope_theta;
    *attn_factor = 1;
    if (m->rope_scaling == KVR_ROPE_DYNAMIC && m->max_pos && ctx > m->max_pos) {
        double L = (double)ctx, factor = m->rope_factor;
        base *= pow(factor * L / m->max_pos - (factor - 1), (double)dim / (dim - 2));
    }
    plain(base, dim, f);
    switch (m->rope_scaling) {
    case KVR_ROPE_LINEAR:
        for (uint32_t j = 0; j < dim / 2; j++) f[j] /= m->rope_factor;
        break;
    case KVR_ROPE_LLAMA3:
        llama3(m, dim, f);
        break;
    case KVR_ROPE_YARN:
        yarn(m, dim, f);
        *attn_factor = m->rope_attn_factor;
        break;
    default:
        break;
    }
}

uint64_t kvr_window_first(const struct kvr_model *m, uint64_t i)
{
    uint64_t w = m->sliding_window;
    return w && i + 1 > w ? i + 1 - w : 0;
}
