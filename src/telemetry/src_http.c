/* The `http` source: enables HTTP ingest (POST /api/v1/logs, src/api/routes_ingest.c). It has no
 * thread; requests push through tel_engine_ingest_http(). The engine struct is private to
 * engine.c, so which engines have an http source is kept in a small table here, keyed by engine
 * pointer.
 *
 * Origins must outlive the batches that borrow them, while a request's strings die with the
 * request: each distinct (service, env, team) gets one interned origin kept until the engine
 * stops (at most ORIGINS_MAX; services must exist in the catalog, so this stays small). */
#include <pthread.h>
#include <string.h>

#include "telemetry/telemetry_int.h"

#define ENGINES_MAX 16
#define ORIGINS_MAX 4096

struct hsrc {
    struct tel_engine *e;
    char name[64];
    struct tel_origin **origins;
    size_t norigins, cap;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hsrc *reg[ENGINES_MAX];

static struct hsrc *lookup_locked(const struct tel_engine *e)
{
    for (size_t i = 0; i < ENGINES_MAX; i++)
        if (reg[i] && reg[i]->e == e)
            return reg[i];
    return NULL;
}

bool tel_engine_accepts_http(struct tel_engine *e)
{
    if (!e)
        return false;
    pthread_mutex_lock(&reg_mu);
    bool ok = lookup_locked(e) != NULL;
    pthread_mutex_unlock(&reg_mu);
    return ok;
}

static bool eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const struct tel_origin *intern_locked(struct hsrc *h, const char *service,
                                              const char *env, const char *team)
{
    for (size_t i = 0; i < h->norigins; i++) {
        const struct tel_origin *o = h->origins[i];
        if (eq(o->service, service) && eq(o->env, env) && eq(o->team, team))
            return o;
    }
    if (h->norigins == ORIGINS_MAX)
        return NULL;
    if (h->norigins == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct tel_origin **v = core_realloc(h->origins, cap * sizeof(*v));
        if (!v)
            return NULL;
        h->origins = v;
        h->cap = cap;
    }
    struct tel_origin *o = core_calloc(1, sizeof(*o));
    char *s = service ? core_strdup(service) : NULL, *en = env ? core_strdup(env) : NULL,
         *t = team ? core_strdup(team) : NULL;
    if (!o || (service && !s) || (env && !en) || (team && !t)) {
        core_free(o);
        core_free(s);
        core_free(en);
        core_free(t);
        return NULL;
    }
    *o = (struct tel_origin){.source = h->name, .service = s, .env = en, .team = t};
    h->origins[h->norigins++] = o;
    return o;
}

int tel_engine_ingest_http(struct tel_engine *e, const char *service, const char *env,
                           const char *team, const char *data, size_t len, struct core_err *err)
{
    int rc;
    pthread_mutex_lock(&reg_mu);
    struct hsrc *h = e ? lookup_locked(e) : NULL;
    const struct tel_origin *o = h ? intern_locked(h, service, env, team) : NULL;
    if (!h)
        rc = core_err_set(err, CORE_E_UNSUPPORTED, "log ingest over HTTP is not enabled");
    else if (!o)
        rc = core_err_set(err, CORE_E_NOMEM, "too many distinct log origins");
    else /* nonblock: a full pipeline answers at once (429) instead of holding the request */
        rc = tel_engine_push(e, o, data, len, true, err);
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

static int http_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                       struct core_err *err)
{
    static const char *const keys[] = {"type", "name", NULL};
    const char *name;
    int rc = tel_cfg_keys(e, cfg, "the http source", keys, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "name", "http", &name, err);
    if (rc)
        return rc;
    if (!core_is_dns_label(name) || strlen(name) >= 64)
        return tel_cfg_error(e, core_node_get(cfg, "name"), err,
                             "source name '%s' must be a DNS label", name);
    struct hsrc *h = core_calloc(1, sizeof(*h));
    if (!h)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    h->e = e;
    memcpy(h->name, name, strlen(name) + 1);
    pthread_mutex_lock(&reg_mu);
    size_t i = 0;
    while (i < ENGINES_MAX && reg[i])
        i++;
    bool dup = lookup_locked(e) != NULL;
    if (i < ENGINES_MAX && !dup)
        reg[i] = h;
    pthread_mutex_unlock(&reg_mu);
    if (dup || i == ENGINES_MAX) {
        core_free(h);
        return tel_cfg_error(e, cfg, err,
                             dup ? "only one http source per telemetry config"
                                 : "too many telemetry engines with an http source");
    }
    *state = h;
    return 0;
}

/* Requests stop reaching the pipeline before the engine stops its workers. */
static void http_stop(void *state)
{
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < ENGINES_MAX; i++)
        if (reg[i] == state)
            reg[i] = NULL;
    pthread_mutex_unlock(&reg_mu);
}

static void http_destroy(void *state)
{
    struct hsrc *h = state;
    if (!h)
        return;
    http_stop(h);
    for (size_t i = 0; i < h->norigins; i++) {
        core_free((char *)h->origins[i]->service);
        core_free((char *)h->origins[i]->env);
        core_free((char *)h->origins[i]->team);
        core_free(h->origins[i]);
    }
    core_free(h->origins);
    core_free(h);
}

const struct tel_source_ops tel_source_http = {"http", http_create, NULL, http_stop,
                                               http_destroy};
