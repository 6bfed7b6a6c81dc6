/* Model profiles as INI files (data/models/NAME.ini): one [model] section with the keys of
 * kvr_model_fields.c. Unknown, repeated or missing keys are errors with file:line. */
#include <string.h>

#include "kvr_file.h"
#include "kvr_ini.h"
#include "kvr_model_fields.h"

struct model_ini {
    struct kvr_model *model;
    uint64_t set_mask;
    int lines[KVR_N_FIELDS];
};

static enum kvr_status on_model_key(void *user, const char *section, const char *key,
                                    const char *value, int line)
{
    struct model_ini *mi = user;
    if (strcmp(section, "model") != 0)
        return kvr_error(KVR_ERR_INPUT, "unknown section [%s] (expected [model])", section);
    int f = kvr_model_field_find(key);
    if (f < 0) return kvr_error(KVR_ERR_INPUT, "unknown key '%s' in [model]", key);
    if (mi->set_mask & (1ull << f))
        return kvr_error(KVR_ERR_INPUT, "key '%s' repeats the one on line %d", key, mi->lines[f]);
    mi->set_mask |= 1ull << f;
    mi->lines[f] = line;
    return kvr_model_field_set(mi->model, (enum kvr_model_field)f, value);
}

enum kvr_status kvr_model_load_ini(const char *path, struct kvr_model *out)
{
    struct kvr_model m = {0};
    struct model_ini mi = {.model = &m};
    enum kvr_status st = kvr_ini_parse(path, on_model_key, &mi);
    if (st) return st;
    for (int f = 0; f < KVR_N_FIELDS; f++)
        if (kvr_model_field_required((enum kvr_model_field)f) && !(mi.set_mask & (1ull << f)))
            return kvr_error(KVR_ERR_INPUT, "%s: missing key '%s' in [model]", path,
                             kvr_model_field_key((enum kvr_model_field)f));
    uint64_t three = 1ull << KVR_F_BIAS_QKV | 1ull << KVR_F_BIAS_OUT | 1ull << KVR_F_BIAS_MLP;
    if ((mi.set_mask & (1ull << KVR_F_BIAS)) && (mi.set_mask & three))
        return kvr_error(KVR_ERR_INPUT,
                         "%s:%d: key 'bias' sets all three biases; give it or bias_qkv, bias_out "
                         "and bias_mlp, not both",
                         path, mi.lines[KVR_F_BIAS]);
    /* a scaling type without its factor would run at 1, which no config means (dynamic NTK
     * still changes the base at 1; transformers requires the factor) */
    if ((mi.set_mask & (1ull << KVR_F_ROPE_SCALING)) && m.rope_scaling != KVR_ROPE_NONE &&
        !(mi.set_mask & (1ull << KVR_F_ROPE_FACTOR)))
        return kvr_error(KVR_ERR_INPUT, "%s:%d: rope_scaling = %s needs rope_factor", path,
                         mi.lines[KVR_F_ROPE_SCALING], kvr_rope_scaling_name(m.rope_scaling));
    if (!(mi.set_mask & (1ull << KVR_F_NAME))) kvr_file_stem(path, m.name, sizeof m.name);
    kvr_model_fill_defaults(&m, mi.set_mask);
    int bad;
    st = kvr_model_check(&m, &bad);
    if (st) {
        if (mi.set_mask & (1ull << bad))
            return kvr_error_prefix(st, "%s:%d: ", path, mi.lines[bad]);
        return kvr_error_prefix(st, "%s: ", path);
    }
    *out = m;
    return KVR_OK;
}
