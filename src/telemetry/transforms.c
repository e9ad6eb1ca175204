/* Transforms after parsing: enrich (team from the catalog), redact (secrets and personal data)
 * and sample (keep 1 in N of the low-severity records). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "telemetry/telemetry_int.h"

/* ---- enrich: the owning team of the service, from the catalog (cached 30 s) ---------------- */

#define ENRICH_TTL_MS 30000
#define ENRICH_MAX 4096

struct team_entry {
    char service[64];
    char team[64]; /* "" when the catalog does not know the service */
    int64_t at_ms;
};

struct enrich {
    struct catalog *cat;
    pthread_mutex_t mu;
    struct team_entry *v;
    size_t n;
};

static int enrich_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                         struct core_err *err)
{
    static const char *const keys[] = {"type", NULL};
    int rc = tel_cfg_keys(e, cfg, "the enrich transform", keys, err);
    if (rc)
        return rc;
    struct enrich *x = core_calloc(1, sizeof(*x));
    x->v = x ? core_calloc(ENRICH_MAX, sizeof(*x->v)) : NULL;
    if (!x || !x->v) {
        core_free(x);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    x->cat = tel_engine_catalog(e);
    pthread_mutex_init(&x->mu, NULL);
    *state = x;
    return 0;
}

/* The team of service into out ("" if unknown). */
static void team_of(struct enrich *x, const char *service, char out[64])
{
    int64_t now = core_now_ms();
    out[0] = 0;
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < x->n; i++) {
        if (strcmp(x->v[i].service, service) == 0 && now - x->v[i].at_ms < ENRICH_TTL_MS) {
            memcpy(out, x->v[i].team, 64);
            pthread_mutex_unlock(&x->mu);
            return;
        }
    }
    pthread_mutex_unlock(&x->mu);
    struct catalog_service s = {0};
    struct core_err err = {0};
    if (catalog_service_get(x->cat, service, &s, &err) == 0) {
        snprintf(out, 64, "%s", s.team);
        catalog_service_release(&s);
    }
    pthread_mutex_lock(&x->mu);
    size_t slot = x->n < ENRICH_MAX ? x->n++ : (size_t)(now % ENRICH_MAX);
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->v[i].service, service) == 0)
            slot = i;
    snprintf(x->v[slot].service, sizeof(x->v[slot].service), "%s", service);
    memcpy(x->v[slot].team, out, 64);
    x->v[slot].at_ms = now;
    pthread_mutex_unlock(&x->mu);
}

static void enrich_apply(void *state, struct tel_batch *b)
{
    struct enrich *x = state;
    if (!x->cat)
        return;
    for (size_t i = 0; i < b->n; i++) {
        struct tel_record *r = &b->recs[i];
        if (!r->res.service || !*r->res.service || (r->res.team && *r->res.team) ||
            !core_is_dns_label(r->res.service))
            continue;
        char team[64];
        team_of(x, r->res.service, team);
        if (team[0])
            r->res.team = core_arena_strdup(&b->arena, team);
    }
}

static void enrich_destroy(void *state)
{
    struct enrich *x = state;
    if (!x)
        return;
    pthread_mutex_destroy(&x->mu);
    core_free(x->v);
    core_free(x);
}

const struct tel_transform_ops tel_transform_enrich = {"enrich", enrich_create, enrich_apply,
                                                       enrich_destroy};

/* ---- redact ---------------------------------------------------------------------------------- */

static int redact_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                         struct core_err *err)
{
    static const char *const keys[] = {"type", "emails", "cards", "bearer", "patterns",
                                       "replacement", NULL};
    struct tel_redact_config rc_cfg = {0};
    const char *pats[256];
    int rc = tel_cfg_keys(e, cfg, "the redact transform", keys, err);
    if (!rc)
        rc = tel_cfg_bool(e, cfg, "emails", true, &rc_cfg.emails, err);
    if (!rc)
        rc = tel_cfg_bool(e, cfg, "cards", true, &rc_cfg.cards, err);
    if (!rc)
        rc = tel_cfg_bool(e, cfg, "bearer", true, &rc_cfg.bearer, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "replacement", NULL, &rc_cfg.replacement, err);
    const struct core_node *list = cfg ? core_node_get(cfg, "patterns") : NULL;
    if (!rc && list) {
        if (list->kind != CORE_NODE_SEQ || list->n > 256)
            return tel_cfg_error(e, list, err, "patterns must be a list of at most 256 regular "
                                               "expressions");
        for (size_t i = 0; i < list->n; i++) {
            if (list->items[i]->kind != CORE_NODE_SCALAR)
                return tel_cfg_error(e, list->items[i], err, "a pattern must be a string");
            pats[i] = list->items[i]->value;
        }
        rc_cfg.patterns = pats;
        rc_cfg.npatterns = list->n;
    }
    if (rc)
        return rc;
    struct tel_redactor *r = tel_redactor_new(&rc_cfg, err);
    if (!r)
        return tel_cfg_error(e, list, err, "%s", err->msg);
    *state = r;
    return 0;
}

static void redact_apply(void *state, struct tel_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        tel_redact(state, &b->recs[i], &b->arena);
}

static void redact_destroy(void *state)
{
    tel_redactor_free(state);
}

const struct tel_transform_ops tel_transform_redact = {"redact", redact_create, redact_apply,
                                                       redact_destroy};

/* ---- sample: keep 1 in `rate` of the records below `keep_at_least` --------------------------- */

struct sample {
    int64_t rate;
    int keep_from; /* records at or above this severity are always kept */
    atomic_ullong counter;
};

static int sample_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                         struct core_err *err)
{
    static const char *const keys[] = {"type", "rate", "keep_at_least", NULL};
    int64_t rate = 0;
    const char *keep = NULL;
    int rc = tel_cfg_keys(e, cfg, "the sample transform", keys, err);
    if (!rc)
        rc = tel_cfg_int(e, cfg, "rate", TEL_CFG_PLAIN, 1, 1000000, 10, &rate, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "keep_at_least", "warn", &keep, err);
    if (rc)
        return rc;
    int sev = tel_severity_parse(keep, strlen(keep));
    if (!sev)
        return tel_cfg_error(e, core_node_get(cfg, "keep_at_least"), err,
                             "unknown severity '%s' (trace, debug, info, warn, error, fatal)",
                             keep);
    struct sample *x = core_calloc(1, sizeof(*x));
    if (!x)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    x->rate = rate;
    x->keep_from = sev;
    atomic_init(&x->counter, 0);
    *state = x;
    return 0;
}

static void sample_apply(void *state, struct tel_batch *b)
{
    struct sample *x = state;
    size_t out = 0;
    for (size_t i = 0; i < b->n; i++) {
        const struct tel_record *r = &b->recs[i];
        bool keep = r->severity >= x->keep_from ||
                    atomic_fetch_add(&x->counter, 1) % (unsigned long long)x->rate == 0;
        if (keep)
            b->recs[out++] = b->recs[i];
    }
    b->n = out;
}

static void sample_destroy(void *state)
{
    core_free(state);
}

const struct tel_transform_ops tel_transform_sample = {"sample", sample_create, sample_apply,
                                                       sample_destroy};
