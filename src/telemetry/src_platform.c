/* The `platform` source: the program's own log (core_log_emit) fed into the pipeline through
 * core_log_set_tap(), as service "pave". The tap runs on the logging thread, so it never
 * waits: when the pipeline is full the line is dropped and counted.
 *
 * The log tap is process-wide, so at most one platform source runs at a time. core_log_emit()
 * calls the tap outside its lock, so a call may still be running after core_log_set_tap(NULL)
 * returns: the tap therefore goes through a static slot guarded by its own mutex, which stop
 * clears before the state can be freed. */
#include <pthread.h>
#include <stdatomic.h>

#include "telemetry/telemetry_int.h"

struct psrc {
    struct tel_engine *e;
    struct tel_origin origin;
    atomic_llong dropped;
    bool started;
};

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static struct psrc *slot; /* the running platform source, if any */

static void tap(void *arg, const char *line, size_t len)
{
    (void)arg;
    pthread_mutex_lock(&slot_mu);
    struct psrc *p = slot;
    if (p && tel_engine_push(p->e, &p->origin, line, len, true, NULL) != 0)
        atomic_fetch_add(&p->dropped, 1);
    pthread_mutex_unlock(&slot_mu);
}

static int platform_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                           struct core_err *err)
{
    static const char *const keys[] = {"type", NULL};
    int rc = tel_cfg_keys(e, cfg, "the platform source", keys, err);
    if (rc)
        return rc;
    struct psrc *p = core_calloc(1, sizeof(*p));
    if (!p)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    p->e = e;
    p->origin = (struct tel_origin){.source = "platform", .service = "pave"};
    atomic_init(&p->dropped, 0);
    *state = p;
    return 0;
}

static int platform_start(void *state, struct core_err *err)
{
    struct psrc *p = state;
    pthread_mutex_lock(&slot_mu);
    if (slot) {
        pthread_mutex_unlock(&slot_mu);
        return core_err_set(err, CORE_E_CONFLICT,
                            "another telemetry engine already takes the platform log");
    }
    slot = p;
    pthread_mutex_unlock(&slot_mu);
    p->started = true;
    core_log_set_tap(tap, NULL);
    return 0;
}

static void platform_stop(void *state)
{
    struct psrc *p = state;
    if (!p->started)
        return;
    core_log_set_tap(NULL, NULL);
    pthread_mutex_lock(&slot_mu);
    if (slot == p)
        slot = NULL;
    pthread_mutex_unlock(&slot_mu);
    p->started = false;
    long long d = atomic_load(&p->dropped);
    if (d)
        log_warn("telemetry", "platform log lines dropped (pipeline full)",
                 LOG_INT("dropped", d));
}

static void platform_destroy(void *state)
{
    core_free(state);
}

const struct tel_source_ops tel_source_platform = {"platform", platform_create, platform_start,
                                                   platform_stop, platform_destroy};
