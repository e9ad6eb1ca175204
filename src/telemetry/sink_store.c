/* The `store` sink: appends to the embedded log store (DATA/telemetry/store, logstore.c) that
 * `pave logs` and GET /api/v1/services/{name}/logs read. The engine's default sink. */
#include <string.h>

#include "telemetry/telemetry_int.h"

static int store_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                        struct core_err *err)
{
    static const char *const keys[] = {"type",          "name",           "when", "buffer",
                                       "retention_age", "retention_bytes", NULL};
    int64_t age_ms = 0, bytes = 0;
    int rc = tel_cfg_keys(e, cfg, "the store sink", keys, err);
    if (!rc)
        rc = tel_cfg_int(e, cfg, "retention_age", TEL_CFG_MS, 60000, 3650LL * 86400000,
                         7LL * 86400000, &age_ms, err);
    if (!rc)
        rc = tel_cfg_int(e, cfg, "retention_bytes", TEL_CFG_BYTES, 1 << 20, INT64_MAX / 2,
                         1LL << 30, &bytes, err);
    if (rc)
        return rc;
    char dir[4400];
    tel_store_dir(tel_engine_data_dir(e), dir, sizeof(dir));
    struct tel_store_options opt = {.retention_age_ns = age_ms * 1000000,
                                    .retention_bytes = bytes};
    struct tel_store *s = tel_store_open(dir, &opt, err);
    if (!s)
        return err && err->code ? err->code : CORE_E_IO;
    *state = s;
    return 0;
}

static enum tel_sink_result store_write(void *state, const struct tel_events *b,
                                        struct core_err *err)
{
    /* a failed write (disk full) is worth retrying: retention or an operator may free space */
    return tel_store_append(state, b, err) ? TEL_SINK_RETRY : TEL_SINK_OK;
}

static void store_destroy(void *state)
{
    tel_store_close(state);
}

const struct tel_sink_ops tel_sink_store = {"store", store_create, store_write, store_destroy};
