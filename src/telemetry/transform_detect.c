/* The detect transform: the built-in detections of src/security that read logs (today: bursts
 * of failed logins, security_detect_feed). Records pass through unchanged; findings are raised
 * on the engine's alert book (docs/security.md, "Built-in detections").
 *
 *   transforms:
 *     - type: detect
 *       threshold: 5        # failures from one source ...
 *       window: 60s         # ... within this much event time
 *       max_sources: 4096   # sources tracked at once (least recently seen dropped)
 *       max_events: 10      # failing lines kept in the alert
 *
 * Without an alert book (tel_engine_config.alerts) the transform refuses to start. */
#include <string.h>

#include "security/security.h"
#include "telemetry/telemetry_int.h"

struct detect {
    struct security_detect *d;
    struct security_alerts *alerts;
};

static int detect_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                         struct core_err *err)
{
    static const char *const keys[] = {"type",        "threshold",  "window",
                                       "max_sources", "max_events", NULL};
    int64_t threshold = 5, window = 60000, max_sources = 4096, max_events = 10;
    int rc = tel_cfg_keys(e, cfg, "the detect transform", keys, err);
    if (!rc)
        rc = tel_cfg_int(e, cfg, "threshold", TEL_CFG_PLAIN, 2, 1000, 5, &threshold, err);
    if (!rc)
        rc = tel_cfg_int(e, cfg, "window", TEL_CFG_MS, 1000, 86400000, 60000, &window, err);
    if (!rc)
        rc = tel_cfg_int(e, cfg, "max_sources", TEL_CFG_PLAIN, 1, 1000000, 4096, &max_sources,
                         err);
    if (!rc)
        rc = tel_cfg_int(e, cfg, "max_events", TEL_CFG_PLAIN, 1, 100, 10, &max_events, err);
    if (rc)
        return rc;
    if (!tel_engine_alerts(e))
        return tel_cfg_error(e, cfg, err,
                             "the detect transform needs the security alert book: run it in "
                             "the server (pave server --telemetry-config FILE)");
    struct detect *x = core_calloc(1, sizeof(*x));
    struct security_detect_opts o = {
        .threshold = (int)threshold,
        .window_ms = window,
        .max_sources = (size_t)max_sources,
        .max_events = (int)max_events,
    };
    if (x)
        x->d = security_detect_new(&o);
    if (!x || !x->d) {
        core_free(x);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    x->alerts = tel_engine_alerts(e);
    *state = x;
    return 0;
}

static void detect_apply(void *state, struct tel_batch *b)
{
    struct detect *x = state;
    for (size_t i = 0; i < b->n; i++) {
        struct core_err err = {0};
        if (security_detect_feed(x->d, x->alerts, &b->recs[i], NULL, &err))
            log_warn("telemetry", "cannot raise a detection", LOG_STR("transform", "detect"),
                     LOG_STR("error", err.msg));
    }
}

static void detect_destroy(void *state)
{
    struct detect *x = state;
    if (!x)
        return;
    security_detect_free(x->d);
    core_free(x);
}

const struct tel_transform_ops tel_transform_detect = {"detect", detect_create, detect_apply,
                                                       detect_destroy};
