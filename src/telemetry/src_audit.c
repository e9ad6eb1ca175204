/* The `audit` source: the platform's own audit log (the store's append-only `audit` table,
 * store_audit_list) as telemetry, so detections see who changed what. One thread polls for
 * events with an id above the last one seen every poll_ms and pushes each as one standard JSON
 * line with service "pave", component "audit" and the event's fields as audit.* attributes.
 *
 * Where to resume: after each push the (seq, last id) pair is remembered; the checkpoint
 * (DATA/telemetry/checkpoints/<name>.json, {"last_id": N}) stores the newest id whose seq the
 * engine reports durable, as the file source does, so a restart neither loses nor (after a
 * clean stop) replays events. Without a checkpoint the source starts at the newest event (no
 * history) unless `from: beginning`. Audit events carry no secrets (store.h: detail is short
 * free text; auth and secret record ids and names only), so records are pushed as they are. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "telemetry/telemetry_int.h"

#define PAGE 200       /* events per query */
#define PAIRS_MAX 1024 /* (seq, id) pairs waiting to become durable */
#define FIELD_MAX 4096 /* bytes of one field kept in the record */

struct apair {
    uint64_t seq;
    int64_t id;
};

struct asrc {
    struct tel_engine *e;
    struct store *st;
    char *name;
    char *data_dir;
    int64_t poll_ms;
    bool from_beginning;
    struct tel_origin origin;
    int64_t last_id;  /* the newest id pushed */
    int64_t ck_id;    /* the newest id known durable */
    int64_t ck_saved; /* what the checkpoint file holds (-1: nothing written) */
    struct apair pairs[PAIRS_MAX];
    size_t npairs;
    struct core_buf out; /* the JSON lines of one page */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* ---- checkpoint ------------------------------------------------------------------------------ */

static void ck_path(const struct asrc *s, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/telemetry/checkpoints/%s.json", s->data_dir, s->name);
}

/* The checkpointed id, or -1 when there is none (or it is unreadable). */
static int64_t ck_load(const struct asrc *s)
{
    char path[4400];
    ck_path(s, path, sizeof(path));
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    json_t *v = json_object_get(j, "last_id");
    int64_t id = json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
    json_decref(j);
    return id;
}

static void remember(struct asrc *s, uint64_t seq, int64_t id)
{
    if (s->npairs == PAIRS_MAX) {
        /* dropping every other pair only makes the checkpoint lag (never lose events) */
        size_t j = 0;
        for (size_t i = 1; i < s->npairs; i += 2)
            s->pairs[j++] = s->pairs[i];
        s->npairs = j;
    }
    s->pairs[s->npairs++] = (struct apair){seq, id};
}

static void ck_write(struct asrc *s)
{
    uint64_t durable = tel_engine_durable_seq(s->e);
    size_t i = 0;
    while (i < s->npairs && s->pairs[i].seq <= durable)
        s->ck_id = s->pairs[i++].id;
    if (i && s->npairs > i)
        memmove(s->pairs, s->pairs + i, (s->npairs - i) * sizeof(*s->pairs));
    s->npairs -= i;
    if (s->ck_id == s->ck_saved)
        return;
    char path[4400], dir[4400], text[64];
    struct core_err err = {0};
    int n = snprintf(text, sizeof(text), "{\"last_id\":%lld}", (long long)s->ck_id);
    snprintf(dir, sizeof(dir), "%s/telemetry/checkpoints", s->data_dir);
    ck_path(s, path, sizeof(path));
    if (core_mkdir_p(dir, 0700, &err) ||
        core_file_write_atomic(path, text, (size_t)n, 0600, &err)) {
        log_warn("telemetry", "cannot write checkpoint", LOG_STR("source", s->name),
                 LOG_STR("error", err.msg));
        return;
    }
    s->ck_saved = s->ck_id;
}

/* ---- reading the log ------------------------------------------------------------------------- */

static bool stopping(struct asrc *s)
{
    pthread_mutex_lock(&s->mu);
    bool st = s->stop;
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* A JSON string of at most FIELD_MAX bytes; text that is not UTF-8 is replaced, not dropped. */
static json_t *jstr(const char *v)
{
    size_t n = strlen(v);
    if (n > FIELD_MAX)
        n = FIELD_MAX;
    while (n > 0 && n < strlen(v) && ((unsigned char)v[n] & 0xC0) == 0x80)
        n--; /* cut on a character boundary */
    json_t *j = json_stringn(v, n);
    return j ? j : json_string("[not UTF-8]");
}

/* One event as one standard JSON line appended to out. */
static int event_line(const struct store_audit_event *ev, struct core_buf *out)
{
    char body[FIELD_MAX];
    snprintf(body, sizeof(body), "%s %s %s/%s", ev->actor ? ev->actor : "-",
             ev->action ? ev->action : "-", ev->kind ? ev->kind : "-",
             ev->object ? ev->object : "-");
    json_t *attrs = json_object(), *o = json_object();
    int rc = CORE_E_NOMEM;
    if (!attrs || !o)
        goto out;
    json_object_set_new(attrs, "audit.id", json_integer((json_int_t)ev->id));
    const char *keys[] = {"audit.actor", "audit.action", "audit.kind", "audit.object",
                          "audit.detail"};
    const char *vals[] = {ev->actor, ev->action, ev->kind, ev->object, ev->detail};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (vals[i])
            json_object_set_new(attrs, keys[i], jstr(vals[i]));
    if (ev->ts)
        json_object_set_new(o, "ts", jstr(ev->ts));
    json_object_set_new(o, "severity", json_string("info"));
    json_object_set_new(o, "body", jstr(body));
    json_object_set_new(o, "resource", json_pack("{s:s}", "component", "audit"));
    json_object_set(o, "attributes", attrs);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        goto out;
    rc = core_buf_adds(out, text);
    if (!rc)
        rc = core_buf_addc(out, '\n');
    free(text);
out:
    json_decref(attrs);
    json_decref(o);
    return rc;
}

struct page {
    struct asrc *s;
    size_t n;
    int64_t max_id;
    int rc;
};

static int page_row(void *arg, const struct store_audit_event *ev)
{
    struct page *p = arg;
    if ((p->rc = event_line(ev, &p->s->out)))
        return p->rc;
    p->n++;
    if (ev->id > p->max_id)
        p->max_id = ev->id;
    return 0;
}

/* Pushes data, waiting while the pipeline is full, giving up when the source is stopped. */
static int push(struct asrc *s, const char *data, size_t len, uint64_t *seq)
{
    for (;;) {
        struct core_err err = {0};
        int rc = tel_engine_push(s->e, &s->origin, data, len, true, &err);
        if (rc == 0) {
            *seq = tel_engine_push_seq();
            return 0;
        }
        if (rc != CORE_E_TOO_BIG || stopping(s))
            return rc;
        usleep(10 * 1000);
    }
}

/* Reads and pushes every event after last_id, a page at a time. */
static void poll_log(struct asrc *s)
{
    while (!stopping(s)) {
        core_buf_clear(&s->out);
        struct page p = {.s = s, .max_id = s->last_id};
        struct store_audit_filter f = {.after_id = s->last_id > 0 ? s->last_id : -1,
                                       .limit = PAGE};
        struct core_err err = {0};
        int rc = store_audit_list(s->st, &f, page_row, &p, &err);
        if (rc && !p.rc) {
            log_warn("telemetry", "cannot read the audit log", LOG_STR("source", s->name),
                     LOG_STR("error", err.msg));
            return;
        }
        if (p.n == 0)
            return;
        if (p.rc) { /* out of memory building the page: push what was built */
            log_warn("telemetry", "audit page cut short", LOG_STR("source", s->name),
                     LOG_INT("events", (int64_t)p.n));
        }
        uint64_t seq = 0;
        if (push(s, s->out.data, s->out.len, &seq))
            return; /* not taken (stopping): read again from last_id at the next start */
        s->last_id = p.max_id;
        remember(s, seq, p.max_id);
        if (p.n < PAGE || p.rc)
            return;
    }
}

static void *audit_main(void *arg)
{
    struct asrc *s = arg;
    while (!stopping(s)) {
        poll_log(s);
        ck_write(s);
        pthread_mutex_lock(&s->mu);
        if (!s->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += (s->poll_ms % 1000) * 1000000L;
            ts.tv_sec += s->poll_ms / 1000 + ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* ---- the component --------------------------------------------------------------------------- */

static void asrc_free(struct asrc *s)
{
    if (!s)
        return;
    core_buf_release(&s->out);
    core_free(s->name);
    core_free(s->data_dir);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    core_free(s);
}

static int audit_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                        struct core_err *err)
{
    static const char *const keys[] = {"type", "name", "poll_ms", "from", NULL};
    const char *name, *from;
    int64_t poll_ms = 1000;
    int rc = tel_cfg_keys(e, cfg, "the audit source", keys, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "name", "audit", &name, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "from", "end", &from, err);
    if (!rc)
        rc = tel_cfg_int(e, cfg, "poll_ms", TEL_CFG_PLAIN, 10, 3600000, 1000, &poll_ms, err);
    if (rc)
        return rc;
    if (!core_is_dns_label(name))
        return tel_cfg_error(e, core_node_get(cfg, "name"), err,
                             "source name '%s' must be a DNS label", name);
    if (strcmp(from, "beginning") != 0 && strcmp(from, "end") != 0)
        return tel_cfg_error(e, core_node_get(cfg, "from"), err,
                             "from must be beginning or end, not '%s'", from);
    if (!tel_engine_store(e))
        return tel_cfg_error(e, cfg, err,
                             "the audit source needs the platform's store: use it in the "
                             "pipeline of `pave server`, or remove it");
    struct asrc *s = core_calloc(1, sizeof(*s));
    if (!s)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    s->e = e;
    s->st = tel_engine_store(e);
    s->poll_ms = poll_ms;
    s->from_beginning = strcmp(from, "beginning") == 0;
    s->ck_saved = -1;
    core_buf_init(&s->out, 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &a);
    pthread_condattr_destroy(&a);
    /* config strings may belong to a document freed after create: copy them */
    s->name = core_strdup(name);
    s->data_dir = core_strdup(tel_engine_data_dir(e));
    s->origin = (struct tel_origin){.source = "audit", .service = "pave"};
    if (!s->name || !s->data_dir) {
        asrc_free(s);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    *state = s;
    return 0;
}

static int newest_row(void *arg, const struct store_audit_event *ev)
{
    *(int64_t *)arg = ev->id;
    return 0;
}

static int audit_start(void *state, struct core_err *err)
{
    struct asrc *s = state;
    int64_t newest = 0;
    struct store_audit_filter f = {.limit = 1};
    int rc = store_audit_list(s->st, &f, newest_row, &newest, err);
    if (rc) {
        core_err_wrap(err, "reading the audit log");
        return rc;
    }
    int64_t ck = ck_load(s);
    if (ck > newest) {
        /* a checkpoint from another (older) store: its ids mean nothing here */
        log_warn("telemetry", "audit checkpoint is past the newest event, starting there",
                 LOG_STR("source", s->name), LOG_INT("checkpoint", ck),
                 LOG_INT("newest", newest));
        ck = newest;
    }
    s->last_id = ck >= 0 ? ck : s->from_beginning ? 0 : newest;
    s->ck_id = s->last_id;
    s->ck_saved = ck;
    if (pthread_create(&s->thread, NULL, audit_main, s) != 0)
        return core_err_set(err, CORE_E_INTERNAL, "cannot start the %s source thread", s->name);
    s->started = true;
    return 0;
}

static void audit_stop(void *state)
{
    struct asrc *s = state;
    if (!s->started)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
}

static void audit_destroy(void *state)
{
    struct asrc *s = state;
    if (!s)
        return;
    /* destroy runs after the engine drained its queues: what was pushed is durable now */
    if (s->started)
        ck_write(s);
    asrc_free(s);
}

const struct tel_source_ops tel_source_audit = {"audit", audit_create, audit_start, audit_stop,
                                                audit_destroy};
