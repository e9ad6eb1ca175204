/* The `security` sink: turns records the sigma transform tagged into security alerts
 * (src/security, security_alert_raise). One finding per matching rule of each record: rule id,
 * title and level from the transform's `security.rule_ids` / `security.rule_titles` /
 * `security.rule_levels`, service and team from the record's resource, the summary is the rule
 * title and the record's body, and the record itself is the alert's event. docs/security.md.
 *
 *   transforms: [{type: sigma, builtin: true}]
 *   sinks:
 *     - type: security
 *       when: {attribute: security.rule_ids}   # only tagged records reach it
 *
 * Records without the attributes are skipped, so the `when` is an optimization, not a need. The
 * sink refuses to start when the engine has no alert book (tel_engine_config.alerts). */
#include "security/security.h"
#include "telemetry/telemetry_int.h"

struct ssink {
    struct security_alerts *alerts;
};

static int security_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                           struct core_err *err)
{
    static const char *const keys[] = {"type", "name", "when", "buffer", NULL};
    int rc = tel_cfg_keys(e, cfg, "the security sink", keys, err);
    if (rc)
        return rc;
    struct security_alerts *a = tel_engine_alerts(e);
    if (!a)
        return tel_cfg_error(e, cfg, err,
                             "the security sink needs the platform's alert book: it runs in "
                             "'pave server' / 'pave up' only (docs/security.md)");
    struct ssink *s = core_calloc(1, sizeof(*s));
    if (!s)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    s->alerts = a;
    *state = s;
    return 0;
}

struct raise_ctx {
    struct ssink *s;
    int raised;
    bool retry;
};

static int raise_one(void *arg, const struct security_finding *f)
{
    struct raise_ctx *c = arg;
    struct core_err err = {0};
    int rc = security_alert_raise(c->s->alerts, f, NULL, NULL, &err);
    if (rc) {
        log_warn("telemetry", "cannot raise a security alert", LOG_STR("rule", f->rule_id),
                 LOG_STR("error", err.msg));
        if (rc != CORE_E_INVAL && !c->raised)
            c->retry = true;
        return 0;
    }
    c->raised++;
    return 0;
}

/* Raises the findings of one event. returns: the number raised, or -1 when a store error
 * happened before any was (worth a retry). */
static int raise_event(struct ssink *s, const struct tel_event *ev)
{
    struct raise_ctx c = {s, 0, false};
    const char *team = ev->team && *ev->team ? ev->team : NULL;
    const char *service = ev->service && *ev->service ? ev->service : NULL;
    if (tel_security_findings(ev->line, ev->len, service, team, raise_one, &c) == CORE_E_NOMEM)
        log_warn("telemetry", "security findings dropped: out of memory");
    return c.retry ? -1 : c.raised;
}

static enum tel_sink_result security_write(void *state, const struct tel_events *b,
                                           struct core_err *err)
{
    struct ssink *s = state;
    for (size_t i = 0; i < b->n; i++) {
        /* a retry replays the whole batch: only retry when nothing of it was recorded yet */
        if (raise_event(s, &b->ev[i]) < 0 && i == 0) {
            core_err_set(err, CORE_E_IO, "the store did not take the alert");
            return TEL_SINK_RETRY;
        }
    }
    return TEL_SINK_OK;
}

static void security_destroy(void *state)
{
    core_free(state);
}

const struct tel_sink_ops tel_sink_security = {"security", security_create, security_write,
                                               security_destroy};
