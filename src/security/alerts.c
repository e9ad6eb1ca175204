/*
 * Security alerts (security.h, "alerts"): findings become stored alerts, deduplicated by key
 * while an alert is not closed, and new alerts are routed to a JSON-lines file and a webhook.
 *
 * Raising is one short store transaction (find the live alert of the key, bump it or insert a
 * new one, keep the first SECURITY_ALERT_EVENTS_MAX events); the store's writer lock makes the
 * find-then-insert atomic, and the partial unique index on dedup_key (migration 11) backs it.
 * Routing never runs on the caller's thread: a new alert is encoded once and put on a bounded
 * queue that one thread drains (append to the file, POST to the webhook with a few retries and
 * backoff). A full queue drops the notification (the alert itself is stored) with a warning, so
 * a slow webhook never slows the pipeline. security_alerts_free() drains what is queued within
 * a fixed bound and drops the rest, logged.
 */
#include "security/security.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "store/store.h"

#define ROUTE_QUEUE_MAX 1024
#define ROUTE_ATTEMPTS 4          /* webhook tries per alert */
#define ROUTE_BACKOFF_MS 250      /* doubled after each failed try */
#define ROUTE_TIMEOUT_MS 5000     /* per webhook request */
#define DRAIN_MS 10000            /* security_alerts_free waits at most this long */
#define EVENT_MAX (64 * 1024)     /* a longer event is kept cut */
#define TEXT_MAX 512              /* rule ids, titles, services, teams */
#define SUMMARY_MAX 1024
#define COMMENT_MAX 1000
#define DETAIL_MAX 200            /* the audit row's detail: the comment, cut */

struct route_item {
    struct route_item *next;
    char *json; /* one line, no newline */
};

struct security_alerts {
    struct store *st;
    char *webhook_url;
    char *file_path;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct route_item *head, *tail;
    size_t qlen;
    bool stop;
    int64_t drain_until_ms; /* when stopping: give up on what is left after this */
    pthread_t thread;
    bool running;
};

static const char *const severities[] = {"informational", "low", "medium", "high", "critical",
                                         NULL};

static bool is_severity(const char *s)
{
    for (size_t i = 0; severities[i]; i++)
        if (strcmp(s, severities[i]) == 0)
            return true;
    return false;
}

/* ---- routing ---------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t discard_body(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}

static int append_line(const char *path, const char *json)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return CORE_E_IO;
    size_t len = strlen(json);
    struct core_buf b;
    core_buf_init(&b, 0);
    int rc = core_buf_add(&b, json, len);
    if (!rc)
        rc = core_buf_addc(&b, '\n');
    /* one write with O_APPEND: lines of concurrent writers do not interleave */
    if (!rc && write(fd, b.data, b.len) != (ssize_t)b.len)
        rc = CORE_E_IO;
    core_buf_release(&b);
    close(fd);
    return rc;
}

/* returns: 0 when the webhook answered 2xx; *status gets the HTTP status (0: no answer). */
static int post_once(const char *url, const char *json, long *status, char *why, size_t whysz)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, whysz, "out of memory");
        return CORE_E_NOMEM;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ROUTE_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ROUTE_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pave-security");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(c);
    *status = 0;
    int rc = 0;
    if (cc != CURLE_OK) {
        snprintf(why, whysz, "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
        rc = CORE_E_IO;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (*status < 200 || *status > 299) {
            snprintf(why, whysz, "HTTP %ld", *status);
            rc = CORE_E_IO;
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}

/* Waits ms unless stopping past the drain deadline. Called with a->mu held. returns: false when
 * the routing thread should give up on the current item. */
static bool backoff_locked(struct security_alerts *a, int64_t ms)
{
    int64_t until = core_now_ms() + ms;
    while (core_now_ms() < until) {
        if (a->stop && core_now_ms() >= a->drain_until_ms)
            return false;
        int64_t left = until - core_now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
    return !(a->stop && core_now_ms() >= a->drain_until_ms);
}

static void route_one(struct security_alerts *a, const char *json)
{
    if (a->file_path && append_line(a->file_path, json))
        log_warn("security", "cannot append the alert to the alerts file",
                 LOG_STR("path", a->file_path), LOG_STR("error", strerror(errno)));
    if (!a->webhook_url)
        return;
    int64_t wait = ROUTE_BACKOFF_MS;
    for (int attempt = 1; attempt <= ROUTE_ATTEMPTS; attempt++) {
        char why[CURL_ERROR_SIZE + 32] = "";
        long status = 0;
        if (post_once(a->webhook_url, json, &status, why, sizeof(why)) == 0)
            return;
        bool last = attempt == ROUTE_ATTEMPTS;
        log_warn("security", last ? "alert webhook failed, giving up" : "alert webhook failed",
                 LOG_STR("error", why), LOG_INT("attempt", attempt));
        if (last)
            return;
        pthread_mutex_lock(&a->mu);
        bool go_on = backoff_locked(a, wait);
        pthread_mutex_unlock(&a->mu);
        if (!go_on) {
            log_warn("security", "alert webhook given up at shutdown");
            return;
        }
        wait *= 2;
    }
}

static void *route_loop(void *arg)
{
    struct security_alerts *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->head && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (!a->head)
            break; /* stopping, nothing left */
        if (a->stop && core_now_ms() >= a->drain_until_ms) {
            log_warn("security", "alert notifications dropped at shutdown",
                     LOG_INT("count", (int64_t)a->qlen));
            break;
        }
        struct route_item *it = a->head;
        a->head = it->next;
        if (!a->head)
            a->tail = NULL;
        a->qlen--;
        pthread_mutex_unlock(&a->mu);
        route_one(a, it->json);
        core_free(it->json);
        core_free(it);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Queues json (consumed, even on error). */
static void route_enqueue(struct security_alerts *a, char *json)
{
    struct route_item *it = json ? core_calloc(1, sizeof(*it)) : NULL;
    if (!it) {
        core_free(json);
        log_warn("security", "alert notification dropped: out of memory");
        return;
    }
    it->json = json;
    pthread_mutex_lock(&a->mu);
    if (a->qlen >= ROUTE_QUEUE_MAX || a->stop) {
        pthread_mutex_unlock(&a->mu);
        log_warn("security", "alert notification dropped: the routing queue is full");
        core_free(json);
        core_free(it);
        return;
    }
    if (a->tail)
        a->tail->next = it;
    else
        a->head = it;
    a->tail = it;
    a->qlen++;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

struct security_alerts *security_alerts_open(struct store *st, const struct security_alert_opts *o,
                                             struct core_err *err)
{
    if (!st) {
        core_err_set(err, CORE_E_INVAL, "the alerts need a store");
        return NULL;
    }
    struct security_alerts *a = core_calloc(1, sizeof(*a));
    if (!a) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    a->st = st;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    const char *url = o ? o->webhook_url : NULL, *path = o ? o->file_path : NULL;
    if (url && *url) {
        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
            core_err_set(err, CORE_E_INVAL, "alert webhook '%s' must be an http:// or https:// URL",
                         url);
            goto fail;
        }
        if (!(a->webhook_url = core_strdup(url)))
            goto nomem;
        pthread_once(&curl_once, curl_init_once);
    }
    if (path && *path) {
        if (!(a->file_path = core_strdup(path)))
            goto nomem;
        char *slash = strrchr(a->file_path, '/');
        if (slash && slash != a->file_path) {
            *slash = 0;
            int rc = core_mkdir_p(a->file_path, 0700, err);
            *slash = '/';
            if (rc)
                goto fail;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            core_err_set(err, CORE_E_IO, "cannot open the alerts file '%s': %s", path,
                         strerror(errno));
            goto fail;
        }
        close(fd);
    }
    if (a->webhook_url || a->file_path) {
        if (pthread_create(&a->thread, NULL, route_loop, a) != 0) {
            core_err_set(err, CORE_E_IO, "cannot start the alert routing thread");
            goto fail;
        }
        a->running = true;
    }
    return a;
nomem:
    core_err_set(err, CORE_E_NOMEM, "out of memory");
fail:
    security_alerts_free(a);
    return NULL;
}

void security_alerts_free(struct security_alerts *a)
{
    if (!a)
        return;
    if (a->running) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        a->drain_until_ms = core_now_ms() + DRAIN_MS;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    while (a->head) {
        struct route_item *it = a->head;
        a->head = it->next;
        core_free(it->json);
        core_free(it);
    }
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    core_free(a->webhook_url);
    core_free(a->file_path);
    core_free(a);
}

/* ---- raise ------------------------------------------------------------------------------ */

/* The event as stored: valid JSON object text, cut to a wrapper when too long. returns: owned. */
static char *event_text(const char *ev, struct core_err *err)
{
    json_error_t jerr;
    json_t *j = json_loads(ev, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        core_err_set(err, CORE_E_INVAL, "the finding's event must be a JSON object");
        return NULL;
    }
    char *out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (out && strlen(out) > EVENT_MAX) {
        json_t *w = json_pack("{s:b,s:s%}", "truncated", 1, "head", out, (size_t)4096);
        free(out);
        out = w ? json_dumps(w, JSON_COMPACT) : NULL;
        json_decref(w);
    }
    if (!out) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    char *copy = core_strdup(out);
    free(out);
    if (!copy)
        core_err_set(err, CORE_E_NOMEM, "out of memory");
    return copy;
}

static int check_text(const char *what, const char *s, size_t max, bool required,
                      struct core_err *err)
{
    if (!s || !*s)
        return required ? core_err_set(err, CORE_E_INVAL, "a finding needs a %s", what) : 0;
    size_t n = strlen(s);
    if (n > max)
        return core_err_set(err, CORE_E_INVAL, "the finding's %s is longer than %zu bytes", what,
                            max);
    if (!core_utf8_valid(s, n))
        return core_err_set(err, CORE_E_INVAL, "the finding's %s is not valid UTF-8", what);
    return 0;
}

static int validate(const struct security_finding *f, struct core_err *err)
{
    if (!f)
        return core_err_set(err, CORE_E_INVAL, "no finding");
    int rc;
    if ((rc = check_text("rule_id", f->rule_id, TEXT_MAX, true, err)) ||
        (rc = check_text("rule_title", f->rule_title, TEXT_MAX, true, err)) ||
        (rc = check_text("source", f->source, TEXT_MAX, true, err)) ||
        (rc = check_text("severity", f->severity, TEXT_MAX, true, err)) ||
        (rc = check_text("summary", f->summary, SUMMARY_MAX * 4, true, err)) ||
        (rc = check_text("dedup_key", f->dedup_key, TEXT_MAX * 2, false, err)) ||
        (rc = check_text("service", f->service, TEXT_MAX, false, err)) ||
        (rc = check_text("team", f->team, TEXT_MAX, false, err)))
        return rc;
    if (!is_severity(f->severity))
        return core_err_set(err, CORE_E_INVAL,
                            "unknown severity '%s' (informational, low, medium, high, critical)",
                            f->severity);
    return 0;
}

/* Cuts s to at most max bytes on a UTF-8 boundary into out (max + 1 bytes). */
static void cut_utf8(const char *s, size_t max, char *out)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = 0;
}

struct live {
    int64_t id, count;
    bool found;
};

static int live_row(void *arg, const struct store_row *row)
{
    struct live *l = arg;
    l->id = store_row_int(row, "id");
    l->count = store_row_int(row, "count");
    l->found = true;
    return 0;
}

static char *notification(int64_t id, const struct security_finding *f, const char *ts)
{
    char link[64];
    snprintf(link, sizeof(link), "/security/alerts/%lld", (long long)id);
    json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s?,s:s?,s:s,s:s,s:s}", "id", (json_int_t)id,
                          "rule_id", f->rule_id, "rule", f->rule_title, "source", f->source,
                          "severity", f->severity, "service", f->service, "team", f->team,
                          "summary", f->summary, "first_seen", ts, "link", link);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char *copy = s ? core_strdup(s) : NULL;
    free(s);
    return copy;
}

int security_alert_raise(struct security_alerts *a, const struct security_finding *f, int64_t *id,
                         bool *is_new, struct core_err *err)
{
    if (!a)
        return core_err_set(err, CORE_E_INVAL, "no alert book");
    int rc = validate(f, err);
    if (rc)
        return rc;
    char *event = NULL, *key = NULL;
    char summary[SUMMARY_MAX + 1];
    cut_utf8(f->summary, SUMMARY_MAX, summary);
    if (f->event_json && !(event = event_text(f->event_json, err)))
        return err ? err->code : CORE_E_INVAL;
    if (f->dedup_key && *f->dedup_key) {
        key = core_strdup(f->dedup_key);
    } else {
        /* rule id and service: one alert per rule and service while it is not closed */
        size_t n = strlen(f->rule_id) + (f->service ? strlen(f->service) : 0) + 2;
        if ((key = core_malloc(n)))
            snprintf(key, n, "%s|%s", f->rule_id, f->service ? f->service : "");
    }
    if (!key) {
        core_free(event);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    char ts[40];
    core_time_format(core_now_ms(), ts, sizeof(ts));
    struct live l = {0};
    bool created = false;
    if ((rc = store_txn_begin(a->st, err)))
        goto out;
    struct store_value kp[] = {STORE_V_TEXT(key)};
    rc = store_query(a->st,
                     "SELECT id, count FROM security_alerts WHERE dedup_key = ? AND "
                     "state != 'closed'",
                     kp, 1, live_row, &l, err);
    int64_t seq = 0;
    if (!rc && l.found) {
        seq = l.count;
        struct store_value p[] = {STORE_V_TEXT(ts), STORE_V_INT(l.id)};
        rc = store_exec(a->st,
                        "UPDATE security_alerts SET count = count + 1, last_seen = ? WHERE id = ?",
                        p, 2, NULL, err);
    } else if (!rc) {
        struct store_value p[] = {
            STORE_V_TEXT(f->rule_id),  STORE_V_TEXT(f->rule_title), STORE_V_TEXT(f->source),
            STORE_V_TEXT(f->severity), STORE_V_TEXT(key),           STORE_V_TEXT(f->service),
            STORE_V_TEXT(f->team),     STORE_V_TEXT(summary),       STORE_V_TEXT(ts),
            STORE_V_TEXT(ts),
        };
        rc = store_exec(a->st,
                        "INSERT INTO security_alerts (rule_id, rule_title, source, severity, "
                        "dedup_key, state, service, team, summary, count, first_seen, last_seen) "
                        "VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, 1, ?, ?)",
                        p, 10, NULL, err);
        if (!rc)
            rc = store_query(a->st,
                             "SELECT id, count FROM security_alerts WHERE dedup_key = ? AND "
                             "state != 'closed'",
                             kp, 1, live_row, &l, err);
        if (!rc && !l.found)
            rc = core_err_set(err, CORE_E_INTERNAL, "the new alert is not there");
        created = true;
    }
    if (!rc && event && seq < SECURITY_ALERT_EVENTS_MAX) {
        struct store_value p[] = {STORE_V_INT(l.id), STORE_V_INT(seq), STORE_V_TEXT(event)};
        rc = store_exec(a->st,
                        "INSERT INTO security_alert_events (alert_id, seq, event) VALUES (?, ?, ?)",
                        p, 3, NULL, err);
    }
    if (!rc)
        rc = store_txn_commit(a->st, err);
    else
        store_txn_rollback(a->st);
    if (rc)
        goto out;
    if (id)
        *id = l.id;
    if (is_new)
        *is_new = created;
    if (created) {
        log_info("security", "new alert", LOG_INT("id", l.id), LOG_STR("rule", f->rule_id),
                 LOG_STR("severity", f->severity), LOG_STR("service", f->service));
        if (a->running)
            route_enqueue(a, notification(l.id, f, ts));
    }
out:
    core_free(event);
    core_free(key);
    return rc;
}

/* ---- list / get ------------------------------------------------------------------------- */

#define ALERT_COLS                                                                             \
    "id, rule_id, rule_title, source, severity, state, service, team, summary, count, "        \
    "first_seen, last_seen, updated_by, comment"

static json_t *alert_json(const struct store_row *row)
{
    return json_pack("{s:I,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:I,s:s?,s:s?,s:s?,s:s?}", "id",
                     (json_int_t)store_row_int(row, "id"), "rule_id",
                     store_row_text(row, "rule_id"), "rule_title",
                     store_row_text(row, "rule_title"), "source", store_row_text(row, "source"),
                     "severity", store_row_text(row, "severity"), "state",
                     store_row_text(row, "state"), "service", store_row_text(row, "service"),
                     "team", store_row_text(row, "team"), "summary",
                     store_row_text(row, "summary"), "count",
                     (json_int_t)store_row_int(row, "count"), "first_seen",
                     store_row_text(row, "first_seen"), "last_seen",
                     store_row_text(row, "last_seen"), "updated_by",
                     store_row_text(row, "updated_by"), "comment", store_row_text(row, "comment"));
}

static int list_row(void *arg, const struct store_row *row)
{
    json_t *o = alert_json(row);
    if (!o || json_array_append_new(arg, o))
        return CORE_E_NOMEM;
    return 0;
}

json_t *security_alert_list(struct store *st, const char *state, const char *severity,
                            const char *service, int limit, struct core_err *err)
{
    if (limit <= 0)
        limit = 100;
    if (limit > 1000)
        limit = 1000;
    if (state && *state && strcmp(state, "open") != 0 && strcmp(state, "acknowledged") != 0 &&
        strcmp(state, "closed") != 0 && strcmp(state, "live") != 0) {
        core_err_set(err, CORE_E_INVAL,
                     "unknown state '%s' (open, acknowledged, closed, live)", state);
        return NULL;
    }
    if (severity && *severity && !is_severity(severity)) {
        core_err_set(err, CORE_E_INVAL,
                     "unknown severity '%s' (informational, low, medium, high, critical)",
                     severity);
        return NULL;
    }
    struct core_buf sql;
    core_buf_init(&sql, 0);
    struct store_value p[4];
    size_t n = 0;
    core_buf_adds(&sql, "SELECT " ALERT_COLS " FROM security_alerts WHERE 1 = 1");
    if (state && *state && strcmp(state, "live") == 0) {
        core_buf_adds(&sql, " AND state != 'closed'");
    } else if (state && *state) {
        core_buf_adds(&sql, " AND state = ?");
        p[n++] = STORE_V_TEXT(state);
    }
    if (severity && *severity) {
        core_buf_adds(&sql, " AND severity = ?");
        p[n++] = STORE_V_TEXT(severity);
    }
    if (service && *service) {
        core_buf_adds(&sql, " AND service = ?");
        p[n++] = STORE_V_TEXT(service);
    }
    core_buf_adds(&sql, " ORDER BY id DESC LIMIT ?");
    p[n++] = STORE_V_INT(limit);
    json_t *items = json_array();
    json_t *out = NULL;
    if (!items) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    int rc = store_query(st, sql.data, p, n, list_row, items, err);
    if (rc == CORE_E_NOMEM)
        core_err_set(err, rc, "out of memory");
    if (!rc && !(out = json_pack("{s:O}", "items", items)))
        core_err_set(err, CORE_E_NOMEM, "out of memory");
out:
    json_decref(items);
    core_buf_release(&sql);
    return out;
}

static int one_row(void *arg, const struct store_row *row)
{
    json_t **out = arg;
    *out = alert_json(row);
    return *out ? 0 : CORE_E_NOMEM;
}

static int event_row(void *arg, const struct store_row *row)
{
    const char *text = store_row_text(row, "event");
    json_t *ev = text ? json_loads(text, 0, NULL) : NULL;
    if (!ev)
        ev = json_pack("{s:s?}", "raw", text);
    if (!ev || json_array_append_new(arg, ev))
        return CORE_E_NOMEM;
    return 0;
}

json_t *security_alert_get(struct store *st, int64_t id, struct core_err *err)
{
    json_t *out = NULL, *events = NULL;
    struct store_value p[] = {STORE_V_INT(id)};
    int rc = store_query(st, "SELECT " ALERT_COLS " FROM security_alerts WHERE id = ?", p, 1,
                         one_row, &out, err);
    if (rc)
        goto fail;
    if (!out) {
        core_err_set(err, CORE_E_NOTFOUND, "no alert %lld", (long long)id);
        return NULL;
    }
    if (!(events = json_array())) {
        rc = CORE_E_NOMEM;
        goto fail;
    }
    rc = store_query(st, "SELECT event FROM security_alert_events WHERE alert_id = ? ORDER BY seq",
                     p, 1, event_row, events, err);
    if (rc) {
        json_decref(events);
        goto fail;
    }
    if (json_object_set_new(out, "events", events)) { /* steals events even on failure */
        rc = CORE_E_NOMEM;
        goto fail;
    }
    return out;
fail:
    if (rc == CORE_E_NOMEM || !rc)
        core_err_set(err, CORE_E_NOMEM, "out of memory");
    json_decref(out);
    return NULL;
}

/* ---- transitions ------------------------------------------------------------------------ */

struct cur {
    char state[32];
    bool found;
};

static int cur_row(void *arg, const struct store_row *row)
{
    struct cur *c = arg;
    const char *s = store_row_text(row, "state");
    snprintf(c->state, sizeof(c->state), "%s", s ? s : "");
    c->found = true;
    return 0;
}

int security_alert_transition(struct store *st, const struct catalog_actor *actor, int64_t id,
                              const char *to, const char *comment, struct core_err *err)
{
    if (!to || (strcmp(to, "acknowledged") != 0 && strcmp(to, "closed") != 0))
        return core_err_set(err, CORE_E_INVAL,
                            "an alert moves to 'acknowledged' or 'closed', not '%s'",
                            to ? to : "");
    bool closing = strcmp(to, "closed") == 0;
    if (closing && (!comment || !*comment))
        return core_err_set(err, CORE_E_INVAL,
                            "closing an alert needs a comment: say why (-m \"...\")");
    if (comment && !core_utf8_valid(comment, strlen(comment)))
        return core_err_set(err, CORE_E_INVAL, "the comment is not valid UTF-8");
    char stored[COMMENT_MAX + 1] = "", detail[DETAIL_MAX + 1] = "";
    if (comment) {
        cut_utf8(comment, COMMENT_MAX, stored);
        cut_utf8(comment, DETAIL_MAX, detail);
    }
    const char *who = actor && actor->user ? actor->user : "system";
    char ts[40], object[32], before_in[64], after_in[64], before[65], after[65];
    core_time_format(core_now_ms(), ts, sizeof(ts));
    snprintf(object, sizeof(object), "%lld", (long long)id);
    int rc = store_txn_begin(st, err);
    if (rc)
        return rc;
    struct cur c = {0};
    struct store_value p[] = {STORE_V_INT(id)};
    rc = store_query(st, "SELECT state FROM security_alerts WHERE id = ?", p, 1, cur_row, &c, err);
    if (!rc && !c.found)
        rc = core_err_set(err, CORE_E_NOTFOUND, "no alert %lld (list them with 'pave security "
                                                "alerts')", (long long)id);
    if (!rc && strcmp(c.state, "closed") == 0)
        rc = core_err_set(err, CORE_E_INVAL,
                          "alert %lld is closed; a new finding opens a new alert", (long long)id);
    if (!rc && strcmp(c.state, to) == 0)
        rc = core_err_set(err, CORE_E_INVAL, "alert %lld is already %s", (long long)id, to);
    if (!rc) {
        struct store_value u[] = {STORE_V_TEXT(to), STORE_V_TEXT(who),
                                  STORE_V_TEXT(comment && *comment ? stored : NULL),
                                  STORE_V_INT(id)};
        rc = store_exec(st,
                        "UPDATE security_alerts SET state = ?, updated_by = ?, "
                        "comment = COALESCE(?, comment) WHERE id = ?",
                        u, 4, NULL, err);
    }
    if (!rc) {
        snprintf(before_in, sizeof(before_in), "%lld:%s", (long long)id, c.state);
        snprintf(after_in, sizeof(after_in), "%lld:%s", (long long)id, to);
        core_sha256_hex(before_in, strlen(before_in), before);
        core_sha256_hex(after_in, strlen(after_in), after);
        struct store_audit_event ev = {
            .ts = ts,
            .actor = who,
            .action = closing ? "security.alert.close" : "security.alert.ack",
            .kind = "security_alert",
            .object = object,
            .before = before,
            .after = after,
            .detail = detail,
        };
        rc = store_audit_append(st, &ev, err);
    }
    if (!rc)
        rc = store_txn_commit(st, err);
    else
        store_txn_rollback(st);
    return rc;
}
