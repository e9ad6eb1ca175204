/* The telemetry engine: configuration, the input queue, transform workers, in-order dispatch
 * to sinks, per-sink memory queues or disk buffers, retries with backoff, dead letters,
 * durability bookkeeping for checkpointing sources, and counters. See telemetry.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "telemetry/telemetry.h"
#include "telemetry/telemetry_int.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define INPUT_MAX_BYTES (8u << 20)  /* pushed chunks waiting for a worker */
#define SINK_MAX_BYTES (16u << 20)  /* encoded batches waiting for one memory sink */
#define CHUNK_MAX (4u << 20)        /* a push is split into chunks of at most this */
#define BATCH_ARENA (64u << 20)     /* arena cap of one batch */
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 30000
#define DISK_READ_EVENTS 2000
#define DISK_READ_BYTES (2u << 20)

/* ---- small helpers -------------------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t ns = ts->tv_nsec + (ms % 1000) * 1000000;
    ts->tv_sec += ms / 1000 + ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static const char *const sev_names[] = {"UNSPECIFIED", "TRACE", "DEBUG", "INFO",
                                        "WARN",        "ERROR", "FATAL"};

const char *tel_severity_name(int severity)
{
    if (severity <= 0 || severity > 24)
        return sev_names[0];
    return sev_names[1 + (severity - 1) / 4];
}

int tel_severity_parse(const char *s, size_t len)
{
    static const struct {
        const char *name;
        int sev;
    } map[] = {{"trace", TEL_SEV_TRACE}, {"debug", TEL_SEV_DEBUG},   {"info", TEL_SEV_INFO},
               {"warn", TEL_SEV_WARN},   {"warning", TEL_SEV_WARN},  {"error", TEL_SEV_ERROR},
               {"err", TEL_SEV_ERROR},   {"fatal", TEL_SEV_FATAL},   {"critical", TEL_SEV_FATAL},
               {"crit", TEL_SEV_FATAL},  {"notice", TEL_SEV_INFO + 1}, {"emerg", TEL_SEV_FATAL + 3},
               {"alert", TEL_SEV_FATAL + 2}, {"panic", TEL_SEV_FATAL + 3}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].name) == len && strncasecmp(map[i].name, s, len) == 0)
            return map[i].sev;
    return 0;
}

/* ---- structures ----------------------------------------------------------------------------- */

struct chunk {
    struct chunk *next;
    uint64_t seq;
    struct tel_origin origin; /* borrowed from the source */
    char *data;
    size_t len;
};

/* Records of one chunk encoded once, shared by every sink (reference counted). */
struct ebatch {
    uint64_t seq;
    atomic_int refs;
    struct tel_event *ev;
    size_t n;
    struct core_buf lines;
    struct core_arena arena; /* event strings */
    size_t bytes;
};

struct when {
    char *service, *env, *team; /* NULL: any */
    int min_severity;          /* 0: any */
    char *attr_key;            /* "\"NAME\":" of `attribute: NAME`; NULL: any */
};

struct sink {
    struct tel_engine *e;
    const struct tel_sink_ops *ops;
    void *state;
    char *name;
    struct when when;
    struct tel_diskbuf *disk; /* NULL: memory queue */
    /* memory queue (guarded by e->mu) */
    struct ebatch **q;
    size_t qhead, qlen, qcap, qbytes;
    uint64_t handled_seq; /* every batch up to this seq is handled (e->mu) */
    pthread_cond_t cv;    /* new work, or stop */
    pthread_t thread;
    bool started;
    int fd_dead;          /* dead-letter file, lazily opened */
    atomic_llong delivered, retries, rejected, dead_lettered;
};

struct xform {
    const struct tel_transform_ops *ops;
    void *state;
};

struct src {
    const struct tel_source_ops *ops;
    void *state;
    bool started;
};

struct tel_engine {
    char *data_dir;
    char *cfg_name;
    struct catalog *cat;
    struct security_alerts *alerts;
    struct store *st;
    struct core_doc doc;
    bool have_doc;

    struct src *srcs;
    size_t nsrcs;
    struct xform *xf;
    size_t nxf;
    struct sink *sinks;
    size_t nsinks;

    pthread_mutex_t mu; /* input queue, dispatch, sink queues, seqs */
    pthread_cond_t cv_in;    /* input queue: not empty / not full */
    pthread_cond_t cv_space; /* a sink queue has space */
    pthread_cond_t cv_done;  /* something got handled (flush waits) */
    struct chunk *in_head, *in_tail;
    size_t in_bytes;
    uint64_t next_seq;       /* next seq handed to a push */
    uint64_t dispatch_seq;   /* next seq to dispatch */
    struct ebatch **pending; /* finished out of order, waiting for dispatch */
    size_t npending, cappending;
    bool stopping_workers;
    bool stopping_sources;   /* a blocked push gives up instead of waiting for space */
    pthread_t *workers;
    int nworkers;

    atomic_llong lines_in, bytes_in, by_sev[7], dropped, truncated;
};

static _Thread_local uint64_t last_push_seq;

/* ---- config helpers ------------------------------------------------------------------------- */

const char *tel_engine_data_dir(const struct tel_engine *e)
{
    return e->data_dir;
}

struct catalog *tel_engine_catalog(const struct tel_engine *e)
{
    return e->cat;
}

struct security_alerts *tel_engine_alerts(const struct tel_engine *e)
{
    return e->alerts;
}

struct store *tel_engine_store(const struct tel_engine *e)
{
    return e->st;
}

const char *tel_engine_config_name(const struct tel_engine *e)
{
    return e->cfg_name;
}

int tel_cfg_error(const struct tel_engine *e, const struct core_node *n, struct core_err *err,
                  const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n)
        return core_err_set(err, CORE_E_INVAL, "%s:%d:%d: %s", e->cfg_name, n->line, n->col, msg);
    return core_err_set(err, CORE_E_INVAL, "%s: %s", e->cfg_name, msg);
}

int tel_cfg_keys(const struct tel_engine *e, const struct core_node *cfg, const char *what,
                 const char *const *allowed, struct core_err *err)
{
    if (!cfg)
        return 0;
    if (cfg->kind != CORE_NODE_MAP)
        return tel_cfg_error(e, cfg, err, "%s must be a map of settings", what);
    for (size_t i = 0; i < cfg->n; i++) {
        bool ok = false;
        for (size_t k = 0; allowed[k] && !ok; k++)
            ok = strcmp(cfg->keys[i], allowed[k]) == 0;
        if (ok)
            continue;
        const char *hint = core_did_you_mean(cfg->keys[i], allowed);
        char list[300] = "";
        for (size_t k = 0; allowed[k]; k++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s%s", k ? ", " : "", allowed[k]);
        }
        if (hint)
            return tel_cfg_error(e, cfg->key_nodes[i], err,
                                 "unknown key '%s' in %s; did you mean '%s'?", cfg->keys[i],
                                 what, hint);
        return tel_cfg_error(e, cfg->key_nodes[i], err, "unknown key '%s' in %s (known: %s)",
                             cfg->keys[i], what, list);
    }
    return 0;
}

int tel_cfg_str(const struct tel_engine *e, const struct core_node *cfg, const char *key,
                const char *def, const char **out, struct core_err *err)
{
    const struct core_node *n = cfg ? core_node_get(cfg, key) : NULL;
    *out = def;
    if (!n)
        return 0;
    if (n->kind != CORE_NODE_SCALAR)
        return tel_cfg_error(e, n, err, "'%s' must be a string", key);
    *out = n->value;
    return 0;
}

int tel_cfg_int(const struct tel_engine *e, const struct core_node *cfg, const char *key,
                enum tel_cfg_unit unit, int64_t lo, int64_t hi, int64_t def, int64_t *out,
                struct core_err *err)
{
    const struct core_node *n = cfg ? core_node_get(cfg, key) : NULL;
    *out = def;
    if (!n)
        return 0;
    int64_t v = 0;
    bool ok = n->kind == CORE_NODE_SCALAR;
    if (ok && unit == TEL_CFG_BYTES)
        ok = core_parse_bytes(n->value, &v) == 0;
    else if (ok && unit == TEL_CFG_MS)
        ok = core_parse_duration_ms(n->value, &v) == 0;
    else if (ok)
        ok = core_scalar_is_int(n, &v);
    if (!ok || v < lo || v > hi)
        return tel_cfg_error(e, n, err, "'%s' must be %s from %lld to %lld", key,
                             unit == TEL_CFG_BYTES ? "a size (e.g. 64Mi)"
                             : unit == TEL_CFG_MS  ? "a duration (e.g. 30s)"
                                                   : "an integer",
                             (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

int tel_cfg_bool(const struct tel_engine *e, const struct core_node *cfg, const char *key,
                 bool def, bool *out, struct core_err *err)
{
    const struct core_node *n = cfg ? core_node_get(cfg, key) : NULL;
    *out = def;
    if (!n)
        return 0;
    if (!core_scalar_is_bool(n, out))
        return tel_cfg_error(e, n, err, "'%s' must be true or false", key);
    return 0;
}

/* ---- batches -------------------------------------------------------------------------------- */

static void ebatch_unref(struct ebatch *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    core_free(b->ev);
    core_buf_release(&b->lines);
    core_arena_release(&b->arena);
    core_free(b);
}

static const char *arena_str(struct core_arena *a, const char *s)
{
    if (!s || !*s)
        return "";
    const char *c = core_arena_strdup(a, s);
    return c ? c : "";
}

/* arena_str, reusing the previous record's copy when the text is the same (records of a chunk
 * mostly share their service, env, team and instance, often the very same origin string).
 * last[0]: the previous record's string, last[1]: its copy; both "" at first. */
static const char *arena_str_same(struct core_arena *a, const char *s, const char *last[2])
{
    if (!s || !*s)
        return "";
    if (*last[1] && (s == last[0] || strcmp(s, last[1]) == 0)) {
        last[0] = s;
        return last[1];
    }
    last[0] = s;
    last[1] = arena_str(a, s);
    return last[1];
}

/* Number of '\n' in s[0..n). */
static size_t count_nl(const char *s, size_t n)
{
    size_t count = 0, i = 0;
#ifdef __SSE2__
    const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
    while (n - i >= 16) {
        /* per-byte counters (0 - matches) for at most 255 blocks, then summed by psadbw */
        __m128i acc = _mm_setzero_si128();
        size_t blocks = (n - i) / 16;
        if (blocks > 255)
            blocks = 255;
        for (size_t b = 0; b < blocks; b++, i += 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(x, nl));
        }
        __m128i sum = _mm_sad_epu8(acc, zero);
        count += (size_t)_mm_cvtsi128_si32(sum) + (size_t)_mm_extract_epi16(sum, 4);
    }
#endif
    for (; i < n; i++)
        count += s[i] == '\n';
    return count;
}

/* Splits the chunk into lines, parses, transforms and encodes them. */
static struct ebatch *process(struct tel_engine *e, struct chunk *c)
{
    struct tel_batch b = {.seq = c->seq};
    core_arena_init(&b.arena, BATCH_ARENA);
    size_t cap = count_nl(c->data, c->len) + 1;
    b.recs = core_calloc(cap, sizeof(*b.recs));
    struct ebatch *eb = core_calloc(1, sizeof(*eb));
    if (!b.recs || !eb) {
        core_free(b.recs);
        core_free(eb);
        core_arena_release(&b.arena);
        atomic_fetch_add(&e->dropped, (long long)cap);
        return NULL;
    }
    int64_t observed = now_ns();
    const char *p = c->data, *end = c->data + c->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len > TEL_LINE_MAX) {
            len = TEL_LINE_MAX; /* the rest of a giant line is dropped (and counted) */
            atomic_fetch_add(&e->truncated, 1);
        }
        if (len) {
            struct tel_record *r = &b.recs[b.n];
            if (c->origin.parser != TEL_PARSE_SYSLOG ||
                !tel_parse_syslog(p, len, &c->origin, &b.arena, r))
                tel_parse_line(p, len, &c->origin, &b.arena, r);
            if (!r->observed_ns)
                r->observed_ns = observed;
            if (!r->res.source)
                r->res.source = c->origin.source;
            b.n++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    atomic_fetch_add(&e->lines_in, (long long)b.n);
    atomic_fetch_add(&e->bytes_in, (long long)c->len);
    for (size_t i = 0; i < e->nxf; i++)
        e->xf[i].ops->apply(e->xf[i].state, &b);

    eb->seq = c->seq;
    atomic_init(&eb->refs, 1);
    core_buf_init(&eb->lines, 0);
    /* The standard JSON is about twice the size of typical input lines: reserve that once
     * rather than doubling (and copying) the buffer several times per batch. */
    (void)core_buf_reserve(&eb->lines, c->len + c->len / 4 * 5 + 4096); /* else: grow below */
    core_arena_init(&eb->arena, BATCH_ARENA);
    eb->ev = core_calloc(b.n + 1, sizeof(*eb->ev));
    size_t *offs = core_calloc(b.n + 1, sizeof(size_t));
    if (!eb->ev || !offs) {
        core_free(offs);
        atomic_fetch_add(&e->dropped, (long long)b.n);
        b.n = 0;
    }
    const char *l_service[2] = {"", ""}, *l_env[2] = {"", ""}, *l_team[2] = {"", ""},
               *l_instance[2] = {"", ""};
    long long by_sev[7] = {0};
    for (size_t i = 0; i < b.n; i++) {
        const struct tel_record *r = &b.recs[i];
        size_t at = eb->lines.len;
        /* Each line is followed by '\n' in the buffer (not part of the event's len), so a sink
         * writing lines can hand a run of them to the kernel as one piece. */
        if (tel_record_write_json(r, &eb->lines) || core_buf_addc(&eb->lines, '\n')) {
            eb->lines.len = at;
            if (eb->lines.cap)
                eb->lines.data[at] = 0;
            atomic_fetch_add(&e->dropped, 1);
            continue;
        }
        struct tel_event *ev = &eb->ev[eb->n];
        offs[eb->n] = at;
        ev->len = (uint32_t)(eb->lines.len - at - 1);
        ev->time_ns = r->time_ns ? r->time_ns : r->observed_ns;
        ev->severity = r->severity;
        ev->service = arena_str_same(&eb->arena, r->res.service, l_service);
        ev->env = arena_str_same(&eb->arena, r->res.env, l_env);
        ev->team = arena_str_same(&eb->arena, r->res.team, l_team);
        ev->instance = arena_str_same(&eb->arena, r->res.instance, l_instance);
        by_sev[r->severity <= 0 || r->severity > 24 ? 0 : 1 + (r->severity - 1) / 4]++;
        eb->n++;
    }
    for (int i = 0; i < 7; i++)
        if (by_sev[i])
            atomic_fetch_add(&e->by_sev[i], by_sev[i]);
    for (size_t i = 0; i < eb->n; i++)
        eb->ev[i].line = eb->lines.data + offs[i];
    eb->bytes = eb->lines.len + sizeof(*eb);
    core_free(offs);
    core_free(b.recs);
    core_arena_release(&b.arena);
    return eb;
}

static bool when_match(const struct when *w, const struct tel_event *ev)
{
    if (w->service && strcmp(w->service, ev->service) != 0)
        return false;
    if (w->env && strcmp(w->env, ev->env) != 0)
        return false;
    if (w->team && strcmp(w->team, ev->team) != 0)
        return false;
    /* Inside a JSON string every '"' is escaped, so `"NAME":` only occurs as a key. */
    if (w->attr_key && !memmem(ev->line, ev->len, w->attr_key, strlen(w->attr_key)))
        return false;
    return !w->min_severity || ev->severity >= w->min_severity;
}

static bool when_any(const struct when *w)
{
    return !w->service && !w->env && !w->team && !w->min_severity && !w->attr_key;
}

/* The events of b this sink wants: all of them, or a filtered copy (ev_out owned by caller). */
static struct tel_events filter(const struct sink *s, const struct ebatch *b,
                                struct tel_event **owned)
{
    *owned = NULL;
    if (when_any(&s->when))
        return (struct tel_events){b->ev, b->n};
    struct tel_event *v = core_calloc(b->n + 1, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v && i < b->n; i++)
        if (when_match(&s->when, &b->ev[i]))
            v[n++] = b->ev[i];
    *owned = v;
    return (struct tel_events){v, v ? n : 0};
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static uint64_t durable_locked(struct tel_engine *e)
{
    uint64_t d = e->dispatch_seq ? e->dispatch_seq - 1 : 0;
    for (size_t i = 0; i < e->nsinks; i++)
        if (e->sinks[i].handled_seq < d)
            d = e->sinks[i].handled_seq;
    return d;
}

static void dead_letter(struct sink *s, const struct tel_events *evs, const char *why)
{
    if (s->fd_dead < 0) {
        char dir[4200], path[4400];
        struct core_err err = {0};
        snprintf(dir, sizeof(dir), "%s/telemetry/dead-letter", s->e->data_dir);
        if (core_mkdir_p(dir, 0700, &err) == 0) {
            snprintf(path, sizeof(path), "%s/%s.jsonl", dir, s->name);
            s->fd_dead = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        }
    }
    atomic_fetch_add(&s->dead_lettered, (long long)evs->n);
    if (s->fd_dead < 0)
        return;
    struct core_buf b;
    core_buf_init(&b, 0);
    for (size_t i = 0; i < evs->n; i++) {
        core_buf_adds(&b, "{\"sink\":");
        core_buf_add_json_str(&b, s->name);
        core_buf_adds(&b, ",\"error\":");
        core_buf_add_json_str(&b, why);
        core_buf_adds(&b, ",\"event\":");
        core_buf_add(&b, evs->ev[i].line, evs->ev[i].len);
        core_buf_adds(&b, "}\n");
    }
    if (b.len && write(s->fd_dead, b.data, b.len) < 0)
        log_warn("telemetry", "cannot write dead letters", LOG_STR("sink", s->name));
    core_buf_release(&b);
}

/* Delivers evs, retrying with backoff while the sink asks to and the engine runs. returns:
 * true when handled (delivered or dead-lettered); false when stopping before that. */
static bool deliver(struct sink *s, const struct tel_events *evs, const volatile bool *stop)
{
    int64_t backoff = RETRY_MIN_MS;
    for (;;) {
        if (!evs->n)
            return true;
        struct core_err err = {0};
        enum tel_sink_result r = s->ops->write(s->state, evs, &err);
        if (r == TEL_SINK_OK) {
            atomic_fetch_add(&s->delivered, (long long)evs->n);
            return true;
        }
        if (r == TEL_SINK_REJECT) {
            atomic_fetch_add(&s->rejected, (long long)evs->n);
            log_warn("telemetry", "sink rejected events; dead-lettered", LOG_STR("sink", s->name),
                     LOG_STR("error", err.msg), LOG_INT("events", (long long)evs->n));
            dead_letter(s, evs, err.msg[0] ? err.msg : "rejected");
            return true;
        }
        atomic_fetch_add(&s->retries, 1);
        if (backoff == RETRY_MIN_MS || backoff >= RETRY_MAX_MS)
            log_warn("telemetry", "sink failed; retrying", LOG_STR("sink", s->name),
                     LOG_STR("error", err.msg), LOG_INT("backoff_ms", backoff));
        /* sleep in small steps so a stop is noticed */
        for (int64_t waited = 0; waited < backoff; waited += 50) {
            if (*stop)
                return false;
            usleep(50 * 1000);
        }
        backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
    }
}

static void *sink_main(void *arg)
{
    struct sink *s = arg;
    struct tel_engine *e = s->e;
    volatile bool stop = false;
    for (;;) {
        if (s->disk) {
            struct tel_event *ev = NULL;
            size_t n = 0;
            char *buf = NULL;
            struct core_err err = {0};
            if (tel_diskbuf_read(s->disk, DISK_READ_EVENTS, DISK_READ_BYTES, &ev, &n, &buf,
                                 &err) == 0 &&
                n) {
                struct tel_events evs = {ev, n};
                pthread_mutex_lock(&e->mu);
                stop = e->stopping_workers && !s->started;
                pthread_mutex_unlock(&e->mu);
                bool ok = deliver(s, &evs, &stop);
                core_free(ev);
                core_free(buf);
                if (ok && tel_diskbuf_commit(s->disk, &err))
                    log_warn("telemetry", "cannot commit disk buffer", LOG_STR("sink", s->name),
                             LOG_STR("error", err.msg));
                pthread_mutex_lock(&e->mu);
                pthread_cond_broadcast(&e->cv_done);
                pthread_mutex_unlock(&e->mu);
                if (!ok)
                    return NULL;
                continue;
            }
            core_free(ev);
            core_free(buf);
            pthread_mutex_lock(&e->mu);
            if (!s->started) {
                pthread_mutex_unlock(&e->mu);
                return NULL;
            }
            struct timespec ts;
            deadline_in(&ts, 200);
            pthread_cond_timedwait(&s->cv, &e->mu, &ts);
            pthread_mutex_unlock(&e->mu);
            continue;
        }
        pthread_mutex_lock(&e->mu);
        while (!s->qlen && s->started)
            pthread_cond_wait(&s->cv, &e->mu);
        if (!s->qlen && !s->started) {
            pthread_mutex_unlock(&e->mu);
            return NULL;
        }
        struct ebatch *b = s->q[s->qhead];
        pthread_mutex_unlock(&e->mu);
        struct tel_event *owned = NULL;
        struct tel_events evs = filter(s, b, &owned);
        /* on stop, a sink that keeps failing gives up: memory-buffered data is lost then */
        bool ok = deliver(s, &evs, &stop);
        core_free(owned);
        pthread_mutex_lock(&e->mu);
        if (!ok && !s->started) {
            pthread_mutex_unlock(&e->mu);
            return NULL;
        }
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
        s->qbytes -= b->bytes;
        s->handled_seq = b->seq;
        pthread_cond_broadcast(&e->cv_space);
        pthread_cond_broadcast(&e->cv_done);
        stop = !s->started;
        pthread_mutex_unlock(&e->mu);
        ebatch_unref(b);
    }
}

/* Hands b to every sink, in seq order (called with e->mu held; may wait for space). */
static void dispatch_one(struct tel_engine *e, struct ebatch *b)
{
    for (size_t i = 0; i < e->nsinks; i++) {
        struct sink *s = &e->sinks[i];
        if (s->disk) {
            struct tel_event *owned = NULL;
            struct tel_events evs = filter(s, b, &owned);
            struct core_err err = {0};
            int rc;
            /* a full disk buffer pushes back like a full queue */
            while ((rc = tel_diskbuf_append(s->disk, &evs, &err)) == CORE_E_TOO_BIG &&
                   s->started) {
                struct timespec ts;
                deadline_in(&ts, 100);
                pthread_cond_timedwait(&e->cv_space, &e->mu, &ts);
            }
            if (rc) {
                log_warn("telemetry", "disk buffer write failed; dead-lettered",
                         LOG_STR("sink", s->name), LOG_STR("error", err.msg));
                dead_letter(s, &evs, err.msg);
            }
            core_free(owned);
            s->handled_seq = b->seq;
            pthread_cond_signal(&s->cv);
            continue;
        }
        while (s->started && s->qlen &&
               (s->qlen == s->qcap || s->qbytes + b->bytes > SINK_MAX_BYTES))
            pthread_cond_wait(&e->cv_space, &e->mu);
        if (s->qlen == s->qcap) { /* stopped while full: count and drop */
            atomic_fetch_add(&e->dropped, (long long)b->n);
            s->handled_seq = b->seq;
            continue;
        }
        atomic_fetch_add(&b->refs, 1);
        s->q[(s->qhead + s->qlen) % s->qcap] = b;
        s->qlen++;
        s->qbytes += b->bytes;
        pthread_cond_signal(&s->cv);
    }
    pthread_cond_broadcast(&e->cv_done);
}

/* Batches finished ahead of the one being dispatched that may wait in e->pending. Without a
 * cap, workers kept taking chunks while a slow sink held the dispatch, and the pending list
 * (encoded output) grew without bound: hundreds of MiB behind a sink slower than the workers. */
static size_t pending_max(const struct tel_engine *e)
{
    return 2 * (size_t)(e->nworkers > 1 ? e->nworkers : 1);
}

static void finish(struct tel_engine *e, struct ebatch *b, uint64_t seq)
{
    pthread_mutex_lock(&e->mu);
    if (!b) { /* nothing to hand on, but the seq must still pass */
        b = core_calloc(1, sizeof(*b));
        if (b) {
            b->seq = seq;
            atomic_init(&b->refs, 1);
            core_buf_init(&b->lines, 0);
            core_arena_init(&b->arena, 1024);
        }
    }
    if (b) {
        if (e->npending == e->cappending) {
            size_t cap = e->cappending ? e->cappending * 2 : 16;
            struct ebatch **v = core_realloc(e->pending, cap * sizeof(*v));
            if (v) {
                e->pending = v;
                e->cappending = cap;
            }
        }
        if (e->npending < e->cappending)
            e->pending[e->npending++] = b;
    }
    bool was_full = e->npending >= pending_max(e);
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t i = 0; i < e->npending; i++) {
            if (e->pending[i]->seq != e->dispatch_seq)
                continue;
            struct ebatch *x = e->pending[i];
            e->pending[i] = e->pending[--e->npending];
            dispatch_one(e, x);
            e->dispatch_seq++;
            ebatch_unref(x);
            progress = true;
            break;
        }
    }
    if (was_full && e->npending < pending_max(e))
        pthread_cond_broadcast(&e->cv_in); /* workers waiting for room in pending */
    pthread_mutex_unlock(&e->mu);
}

static void *worker_main(void *arg)
{
    struct tel_engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        /* Wait for a chunk, and for room in pending. The batch due next is always with a
         * worker already (chunks are taken in seq order), so waiting here cannot stall it. */
        while (e->in_head ? e->npending >= pending_max(e) : !e->stopping_workers)
            pthread_cond_wait(&e->cv_in, &e->mu);
        struct chunk *c = e->in_head;
        if (!c) {
            pthread_mutex_unlock(&e->mu);
            return NULL;
        }
        e->in_head = c->next;
        if (!e->in_head)
            e->in_tail = NULL;
        e->in_bytes -= c->len;
        pthread_cond_broadcast(&e->cv_in);
        pthread_mutex_unlock(&e->mu);
        struct ebatch *b = process(e, c);
        finish(e, b, c->seq);
        core_free(c->data);
        core_free(c);
    }
}

/* ---- pushing -------------------------------------------------------------------------------- */

static int push_one(struct tel_engine *e, const struct tel_origin *origin, const char *data,
                    size_t len, bool nonblock, struct core_err *err)
{
    struct chunk *c = core_calloc(1, sizeof(*c));
    char *copy = core_malloc(len ? len : 1);
    if (!c || !copy) {
        core_free(c);
        core_free(copy);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    memcpy(copy, data, len);
    c->data = copy;
    c->len = len;
    if (origin)
        c->origin = *origin;
    pthread_mutex_lock(&e->mu);
    while (e->in_bytes && e->in_bytes + len > INPUT_MAX_BYTES && !e->stopping_workers &&
           !e->stopping_sources) {
        if (nonblock) {
            pthread_mutex_unlock(&e->mu);
            core_free(copy);
            core_free(c);
            return core_err_set(err, CORE_E_TOO_BIG, "the telemetry pipeline is full");
        }
        pthread_cond_wait(&e->cv_in, &e->mu);
    }
    if (e->stopping_workers || (e->stopping_sources && e->in_bytes &&
                                e->in_bytes + len > INPUT_MAX_BYTES)) {
        pthread_mutex_unlock(&e->mu);
        core_free(copy);
        core_free(c);
        return core_err_set(err, CORE_E_IO, "the telemetry pipeline is stopping");
    }
    c->seq = e->next_seq++;
    last_push_seq = c->seq;
    if (e->in_tail)
        e->in_tail->next = c;
    else
        e->in_head = c;
    e->in_tail = c;
    e->in_bytes += len;
    pthread_cond_broadcast(&e->cv_in);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

int tel_engine_push(struct tel_engine *e, const struct tel_origin *origin, const char *data,
                    size_t len, bool nonblock, struct core_err *err)
{
    /* split big pushes at line ends so workers share the work and memory stays bounded */
    while (len > CHUNK_MAX) {
        const char *cut = data + CHUNK_MAX;
        const char *nl = memrchr(data, '\n', CHUNK_MAX);
        size_t n = nl ? (size_t)(nl - data) + 1 : (size_t)(cut - data);
        int rc = push_one(e, origin, data, n, nonblock, err);
        if (rc)
            return rc;
        data += n;
        len -= n;
    }
    return len ? push_one(e, origin, data, len, nonblock, err) : 0;
}

uint64_t tel_engine_push_seq(void)
{
    return last_push_seq;
}

uint64_t tel_engine_durable_seq(struct tel_engine *e)
{
    pthread_mutex_lock(&e->mu);
    uint64_t d = durable_locked(e);
    pthread_mutex_unlock(&e->mu);
    return d;
}

int tel_engine_flush(struct tel_engine *e, int64_t timeout_ms, struct core_err *err)
{
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&e->mu);
    uint64_t want = e->next_seq;
    for (;;) {
        bool done = e->dispatch_seq >= want;
        for (size_t i = 0; done && i < e->nsinks; i++) {
            struct sink *s = &e->sinks[i];
            done = s->disk ? tel_diskbuf_pending(s->disk) == 0 : s->qlen == 0;
        }
        if (done)
            break;
        if (pthread_cond_timedwait(&e->cv_done, &e->mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&e->mu);
            return core_err_set(err, CORE_E_IO, "telemetry not flushed within %lld ms",
                                (long long)timeout_ms);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return 0;
}

/* ---- metrics -------------------------------------------------------------------------------- */

int tel_engine_metrics(struct tel_engine *e, struct core_buf *out)
{
    int rc = core_buf_addf(out,
                           "# HELP pave_telemetry_lines_total Lines read by the telemetry "
                           "pipeline.\n# TYPE pave_telemetry_lines_total counter\n"
                           "pave_telemetry_lines_total %lld\n"
                           "# HELP pave_telemetry_bytes_total Bytes read.\n"
                           "# TYPE pave_telemetry_bytes_total counter\n"
                           "pave_telemetry_bytes_total %lld\n"
                           "# HELP pave_telemetry_dropped_total Lines dropped (out of memory or "
                           "stopped while a queue was full).\n"
                           "# TYPE pave_telemetry_dropped_total counter\n"
                           "pave_telemetry_dropped_total %lld\n"
                           "# HELP pave_telemetry_truncated_total Lines cut at 1 MiB.\n"
                           "# TYPE pave_telemetry_truncated_total counter\n"
                           "pave_telemetry_truncated_total %lld\n"
                           "# HELP pave_telemetry_records_total Records by severity.\n"
                           "# TYPE pave_telemetry_records_total counter\n",
                           (long long)atomic_load(&e->lines_in),
                           (long long)atomic_load(&e->bytes_in),
                           (long long)atomic_load(&e->dropped),
                           (long long)atomic_load(&e->truncated));
    for (int i = 0; i < 7 && !rc; i++)
        rc = core_buf_addf(out, "pave_telemetry_records_total{severity=\"%s\"} %lld\n",
                           sev_names[i], (long long)atomic_load(&e->by_sev[i]));
    if (!rc)
        rc = core_buf_adds(out, "# HELP pave_telemetry_sink_events_total Events by sink and "
                                "outcome.\n# TYPE pave_telemetry_sink_events_total counter\n");
    for (size_t i = 0; i < e->nsinks && !rc; i++) {
        struct sink *s = &e->sinks[i];
        rc = core_buf_addf(out,
                           "pave_telemetry_sink_events_total{sink=\"%s\",outcome=\"delivered\"} "
                           "%lld\n"
                           "pave_telemetry_sink_events_total{sink=\"%s\",outcome=\"rejected\"} "
                           "%lld\n"
                           "pave_telemetry_sink_events_total{sink=\"%s\",outcome=\"dead_letter\"}"
                           " %lld\n"
                           "pave_telemetry_sink_retries_total{sink=\"%s\"} %lld\n",
                           s->name, (long long)atomic_load(&s->delivered), s->name,
                           (long long)atomic_load(&s->rejected), s->name,
                           (long long)atomic_load(&s->dead_lettered), s->name,
                           (long long)atomic_load(&s->retries));
    }
    return rc;
}

/* ---- configuration -------------------------------------------------------------------------- */

static void sink_release(struct sink *s);

static const char default_config[] = "# the defaults: no config file\n"
                                     "sources: [{type: replicas}, {type: platform}]\n"
                                     "transforms: [{type: enrich}, {type: redact}]\n"
                                     "sinks: [{type: store}]\n";
/* ... and with a store: the platform's audit log is a source too */
static const char default_config_store[] =
    "# the defaults: no config file\n"
    "sources: [{type: replicas}, {type: platform}, {type: audit}]\n"
    "transforms: [{type: enrich}, {type: redact}]\n"
    "sinks: [{type: store}]\n";

static const char *const top_keys[] = {"workers", "sources", "transforms", "sinks", NULL};

static int name_of(struct tel_engine *e, const struct core_node *cfg, const char *type,
                   size_t idx, char **out, struct core_err *err)
{
    const char *name = NULL;
    int rc = tel_cfg_str(e, cfg, "name", NULL, &name, err);
    if (rc)
        return rc;
    char buf[80];
    if (!name) {
        snprintf(buf, sizeof(buf), "%s%s%zu", type, idx ? "-" : "", idx);
        if (!idx)
            snprintf(buf, sizeof(buf), "%s", type);
        name = buf;
    }
    if (!core_is_dns_label(name))
        return tel_cfg_error(e, core_node_get(cfg, "name"), err,
                             "component name '%s' must be a DNS label", name);
    *out = core_strdup(name);
    return *out ? 0 : core_err_set(err, CORE_E_NOMEM, "out of memory");
}

/* Copies the `when` of a sink: service, env, team, severity (at least), attribute (records
 * that carry an attribute of that name, e.g. security.rule_ids). */
static int parse_when(struct tel_engine *e, const struct core_node *n, struct when *w,
                      struct core_err *err)
{
    static const char *const keys[] = {"service", "env", "team", "severity", "attribute",
                                       NULL};
    if (!n)
        return 0;
    int rc = tel_cfg_keys(e, n, "when", keys, err);
    const char *v = NULL;
    if (!rc && !(rc = tel_cfg_str(e, n, "service", NULL, &v, err)) && v)
        w->service = core_strdup(v);
    if (!rc && !(rc = tel_cfg_str(e, n, "env", NULL, &v, err)) && v)
        w->env = core_strdup(v);
    if (!rc && !(rc = tel_cfg_str(e, n, "team", NULL, &v, err)) && v)
        w->team = core_strdup(v);
    if (!rc && !(rc = tel_cfg_str(e, n, "attribute", NULL, &v, err)) && v) {
        struct core_buf k;
        core_buf_init(&k, 0);
        if (core_buf_add_json_str(&k, v) || core_buf_addc(&k, ':'))
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        w->attr_key = core_buf_detach(&k, NULL);
    }
    if (!rc && !(rc = tel_cfg_str(e, n, "severity", NULL, &v, err)) && v) {
        w->min_severity = tel_severity_parse(v, strlen(v));
        if (!w->min_severity)
            rc = tel_cfg_error(e, core_node_get(n, "severity"), err,
                               "unknown severity '%s' (trace, debug, info, warn, error, fatal)",
                               v);
    }
    return rc;
}

/* The settings every sink takes besides its own: name, type, when, buffer. The rest of the map
 * goes to the sink's create() unfiltered; sinks check their own keys with tel_cfg_keys. */
static int build_sink(struct tel_engine *e, const struct core_node *cfg, size_t idx,
                      struct core_err *err)
{
    struct sink *s = &e->sinks[e->nsinks];
    memset(s, 0, sizeof(*s));
    s->e = e;
    s->fd_dead = -1;
    cond_init_mono(&s->cv);
    const char *type = NULL;
    int rc = tel_cfg_str(e, cfg, "type", NULL, &type, err);
    if (rc)
        return rc;
    if (!type)
        return tel_cfg_error(e, cfg, err, "a sink needs a type (store, file, loki, http, "
                                          "elasticsearch, stdout)");
    s->ops = tel_sink_find(type);
    if (!s->ops)
        return tel_cfg_error(e, core_node_get(cfg, "type"), err, "unknown sink type '%s'", type);
    if ((rc = name_of(e, cfg, type, idx, &s->name, err)))
        return rc;
    for (size_t i = 0; i < e->nsinks; i++)
        if (strcmp(e->sinks[i].name, s->name) == 0)
            return tel_cfg_error(e, cfg, err, "two sinks are named '%s': give one a name",
                                 s->name);
    if ((rc = parse_when(e, core_node_get(cfg, "when"), &s->when, err)))
        return rc;
    const struct core_node *buf = core_node_get(cfg, "buffer");
    if (buf) {
        static const char *const bkeys[] = {"type", "max_bytes", NULL};
        const char *btype = NULL;
        int64_t max = 0;
        if ((rc = tel_cfg_keys(e, buf, "buffer", bkeys, err)) ||
            (rc = tel_cfg_str(e, buf, "type", "memory", &btype, err)) ||
            (rc = tel_cfg_int(e, buf, "max_bytes", TEL_CFG_BYTES, 1 << 20, INT64_MAX / 2,
                              1LL << 30, &max, err)))
            return rc;
        if (strcmp(btype, "disk") == 0) {
            if (!core_node_get(cfg, "name"))
                return tel_cfg_error(e, buf, err, "a sink with a disk buffer needs a name: its "
                                                  "buffer and dead letters are kept under it");
            char dir[4400];
            snprintf(dir, sizeof(dir), "%s/telemetry/buffer/%s", e->data_dir, s->name);
            if (!(s->disk = tel_diskbuf_open(dir, max, err)))
                return CORE_E_IO;
        } else if (strcmp(btype, "memory") != 0) {
            return tel_cfg_error(e, core_node_get(buf, "type"), err,
                                 "buffer type must be memory or disk, not '%s'", btype);
        }
    }
    s->qcap = 256;
    s->q = core_calloc(s->qcap, sizeof(*s->q));
    if (!s->q)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    if ((rc = s->ops->create(e, cfg, &s->state, err))) {
        core_err_wrap(err, "sink '%s'", s->name);
        return rc;
    }
    e->nsinks++;
    return 0;
}

static int build(struct tel_engine *e, struct core_node *root, struct core_err *err)
{
    int rc = tel_cfg_keys(e, root, "the telemetry config", top_keys, err);
    if (rc)
        return rc;
    int64_t workers = 0;
    if ((rc = tel_cfg_int(e, root, "workers", TEL_CFG_PLAIN, 1, 16, e->nworkers, &workers, err)))
        return rc;
    e->nworkers = (int)workers;
    const struct core_node *lists[3];
    const char *names[3] = {"sources", "transforms", "sinks"};
    struct core_doc defaults = {0};
    bool have_defaults = false;
    for (int k = 0; k < 3; k++) {
        lists[k] = root ? core_node_get(root, names[k]) : NULL;
        if (!lists[k]) {
            if (!have_defaults) {
                const char *dtext = e->st ? default_config_store : default_config;
                if ((rc = core_doc_parse(&defaults, "<defaults>", dtext, strlen(dtext), err)))
                    return rc;
                have_defaults = true;
            }
            lists[k] = core_node_get(defaults.root, names[k]);
        }
        if (lists[k]->kind != CORE_NODE_SEQ) {
            rc = tel_cfg_error(e, lists[k], err, "'%s' must be a list", names[k]);
            goto out;
        }
    }
    e->srcs = core_calloc(lists[0]->n + 1, sizeof(*e->srcs));
    e->xf = core_calloc(lists[1]->n + 1, sizeof(*e->xf));
    e->sinks = core_calloc(lists[2]->n + 1, sizeof(*e->sinks));
    if (!e->srcs || !e->xf || !e->sinks) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < lists[2]->n && !rc; i++) {
        rc = build_sink(e, lists[2]->items[i], i, err);
        if (rc)
            sink_release(&e->sinks[e->nsinks]); /* the half-built one */
    }
    for (size_t i = 0; i < lists[1]->n && !rc; i++) {
        const struct core_node *cfg = lists[1]->items[i];
        const char *type = NULL;
        if ((rc = tel_cfg_str(e, cfg, "type", NULL, &type, err)))
            break;
        const struct tel_transform_ops *ops = type ? tel_transform_find(type) : NULL;
        if (!ops) {
            rc = tel_cfg_error(e, cfg, err, "unknown transform type '%s' (enrich, redact, "
                                            "sample)",
                               type ? type : "");
            break;
        }
        e->xf[e->nxf].ops = ops;
        if ((rc = ops->create(e, cfg, &e->xf[e->nxf].state, err)))
            break;
        e->nxf++;
    }
    for (size_t i = 0; i < lists[0]->n && !rc; i++) {
        const struct core_node *cfg = lists[0]->items[i];
        const char *type = NULL;
        if ((rc = tel_cfg_str(e, cfg, "type", NULL, &type, err)))
            break;
        const struct tel_source_ops *ops = type ? tel_source_find(type) : NULL;
        if (!ops) {
            rc = tel_cfg_error(e, cfg, err, "unknown source type '%s'", type ? type : "");
            break;
        }
        e->srcs[e->nsrcs].ops = ops;
        if ((rc = ops->create(e, cfg, &e->srcs[e->nsrcs].state, err)))
            break;
        e->nsrcs++;
    }
out:
    if (have_defaults)
        core_doc_release(&defaults);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void stop_sinks(struct tel_engine *e, int64_t timeout_ms)
{
    struct core_err err = {0};
    if (timeout_ms > 0)
        tel_engine_flush(e, timeout_ms, &err);
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nsinks; i++) {
        e->sinks[i].started = false;
        pthread_cond_broadcast(&e->sinks[i].cv);
    }
    pthread_cond_broadcast(&e->cv_space);
    pthread_mutex_unlock(&e->mu);
}

static void sink_release(struct sink *s)
{
    if (s->state && s->ops->destroy)
        s->ops->destroy(s->state);
    while (s->qlen) {
        ebatch_unref(s->q[s->qhead]);
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
    }
    core_free(s->q);
    tel_diskbuf_close(s->disk);
    if (s->fd_dead >= 0)
        close(s->fd_dead);
    core_free(s->name);
    core_free(s->when.service);
    core_free(s->when.env);
    core_free(s->when.team);
    core_free(s->when.attr_key);
    pthread_cond_destroy(&s->cv);
    memset(s, 0, sizeof(*s));
}

static void free_engine(struct tel_engine *e)
{
    for (size_t i = 0; i < e->nsrcs; i++)
        if (e->srcs[i].ops->destroy)
            e->srcs[i].ops->destroy(e->srcs[i].state);
    for (size_t i = 0; i < e->nxf; i++)
        if (e->xf[i].ops->destroy)
            e->xf[i].ops->destroy(e->xf[i].state);
    for (size_t i = 0; i < e->nsinks; i++)
        sink_release(&e->sinks[i]);
    for (size_t i = 0; i < e->npending; i++)
        ebatch_unref(e->pending[i]);
    core_free(e->pending);
    while (e->in_head) {
        struct chunk *c = e->in_head;
        e->in_head = c->next;
        core_free(c->data);
        core_free(c);
    }
    core_free(e->srcs);
    core_free(e->xf);
    core_free(e->sinks);
    core_free(e->workers);
    if (e->have_doc)
        core_doc_release(&e->doc);
    core_free(e->data_dir);
    core_free(e->cfg_name);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv_in);
    pthread_cond_destroy(&e->cv_space);
    pthread_cond_destroy(&e->cv_done);
    core_free(e);
}

static void stop_threads(struct tel_engine *e, int64_t timeout_ms)
{
    pthread_mutex_lock(&e->mu);
    e->stopping_sources = true;
    pthread_cond_broadcast(&e->cv_in);
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < e->nsrcs; i++)
        if (e->srcs[i].started && e->srcs[i].ops->stop)
            e->srcs[i].ops->stop(e->srcs[i].state);
    /* workers finish what is queued, then exit */
    pthread_mutex_lock(&e->mu);
    e->stopping_workers = true;
    pthread_cond_broadcast(&e->cv_in);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->nworkers; i++)
        if (e->workers && e->workers[i])
            pthread_join(e->workers[i], NULL);
    stop_sinks(e, timeout_ms);
    for (size_t i = 0; i < e->nsinks; i++)
        if (e->sinks[i].thread)
            pthread_join(e->sinks[i].thread, NULL);
}

/* The pipeline allocates and frees buffers of a few hundred KiB to a few MiB per batch (the
 * pushed chunk, its records, the encoded lines), on one thread and freed on another. With
 * glibc's defaults, blocks that size are mmap'd or trimmed back to the kernel when freed, so
 * every batch faulted in fresh zeroed pages: about 70 000 page faults and 6 % of the CPU for
 * 2 M lines. Fixed thresholds keep them in the malloc heaps for reuse instead; what stays
 * mapped is bounded by the pipeline's own limits (input and sink queues, pending batches). Only
 * when the config asks (tune_malloc: `pave agent`): in the server every thread's arena could
 * keep up to the trim threshold. The agent's threads share two arenas: each arena keeps up to
 * the trim threshold, and with one per thread a run whose sink fell behind (queues full) ended
 * at 66-89 MiB of RSS instead of 54-59 MiB; the batch buffers are a few allocations per batch,
 * so the shared locks cost no measurable time. */
static void malloc_tune(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, (int)(CHUNK_MAX + CHUNK_MAX / 4 * 5 + 4096));
    mallopt(M_TRIM_THRESHOLD, (int)(4 * CHUNK_MAX));
    mallopt(M_ARENA_MAX, 2);
#endif
}

struct tel_engine *tel_engine_start(const struct tel_engine_config *cfg, struct core_err *err)
{
    static pthread_once_t tuned = PTHREAD_ONCE_INIT;
    if (cfg && cfg->tune_malloc)
        pthread_once(&tuned, malloc_tune);
    if (!cfg || !cfg->data_dir || !*cfg->data_dir) {
        core_err_set(err, CORE_E_INVAL, "the telemetry engine needs a data dir");
        return NULL;
    }
    struct tel_engine *e = core_calloc(1, sizeof(*e));
    if (!e) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv_in, NULL);
    cond_init_mono(&e->cv_space);
    cond_init_mono(&e->cv_done);
    e->data_dir = core_strdup(cfg->data_dir);
    e->cat = cfg->cat;
    e->alerts = cfg->alerts;
    e->st = cfg->st;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    e->nworkers = cfg->workers > 0 ? cfg->workers : (int)(ncpu < 1 ? 1 : ncpu > 4 ? 4 : ncpu);
    e->next_seq = 1;
    e->dispatch_seq = 1;
    int rc = 0;
    char *text = NULL;
    size_t len = 0;
    if (cfg->config_text) {
        e->cfg_name = core_strdup("<config>");
        text = core_strdup(cfg->config_text);
        len = text ? strlen(text) : 0;
    } else if (cfg->config_path) {
        e->cfg_name = core_strdup(cfg->config_path);
        rc = core_file_read(cfg->config_path, 1 << 20, &text, &len, err);
    } else {
        e->cfg_name = core_strdup("<defaults>");
    }
    if (rc || !e->data_dir || !e->cfg_name)
        goto fail;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/telemetry", e->data_dir);
    if ((rc = core_mkdir_p(dir, 0700, err)))
        goto fail;
    if (text) {
        if ((rc = core_doc_parse(&e->doc, e->cfg_name, text, len, err)))
            goto fail;
        e->have_doc = true;
        if (e->doc.root && e->doc.root->kind != CORE_NODE_MAP) {
            rc = tel_cfg_error(e, e->doc.root, err, "the telemetry config must be a map "
                                                    "(sources, transforms, sinks)");
            goto fail;
        }
    }
    if ((rc = build(e, e->have_doc ? e->doc.root : NULL, err)))
        goto fail;
    core_free(text);
    text = NULL;
    for (size_t i = 0; i < e->nsinks; i++) {
        struct sink *s = &e->sinks[i];
        s->started = true;
        if (pthread_create(&s->thread, NULL, sink_main, s) != 0) {
            s->started = false;
            rc = core_err_set(err, CORE_E_INTERNAL, "cannot start sink thread");
            goto fail_threads;
        }
    }
    e->workers = core_calloc((size_t)e->nworkers, sizeof(pthread_t));
    for (int i = 0; e->workers && i < e->nworkers; i++)
        if (pthread_create(&e->workers[i], NULL, worker_main, e) != 0) {
            rc = core_err_set(err, CORE_E_INTERNAL, "cannot start worker thread");
            goto fail_threads;
        }
    if (!e->workers) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto fail_threads;
    }
    for (size_t i = 0; i < e->nsrcs; i++) {
        if (e->srcs[i].ops->start && (rc = e->srcs[i].ops->start(e->srcs[i].state, err))) {
            core_err_wrap(err, "source '%s'", e->srcs[i].ops->type);
            goto fail_threads;
        }
        e->srcs[i].started = true;
    }
    return e;
fail_threads:
    stop_threads(e, 0);
fail:
    core_free(text);
    free_engine(e);
    return NULL;
}

void tel_engine_stop(struct tel_engine *e, int64_t timeout_ms)
{
    if (!e)
        return;
    stop_threads(e, timeout_ms);
    free_engine(e);
}
