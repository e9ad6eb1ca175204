/* Built-in detections (docs/security.md, "Built-in detections"):
 *
 *  - failed logins: sshd / PAM / sudo lines and the platform's own "token refused" warning are
 *    recognized (security_failed_login_parse); a source with `threshold` failures within
 *    `window_ms` of event time raises builtin.failed-logins once per burst. Per source we keep
 *    the event times of its recent failures (sorted, at most threshold of them matter) and the
 *    first failing lines of the burst; sources live in a table bounded by max_sources where the
 *    least recently seen one is dropped.
 *  - tokens used from a new source: (token id, address) pairs are cached in memory and stored
 *    in security_seen; a new pair of a token that has been seen before raises
 *    builtin.token-new-source.
 *
 * Both objects have one mutex; alerts are raised after it is released. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "security/security.h"
#include "store/store.h"

#define DEF_THRESHOLD 5
#define DEF_WINDOW_MS 60000
#define DEF_MAX_SOURCES 4096
#define DEF_MAX_EVENTS 10
#define THRESHOLD_MAX 1000
#define EVENT_LINE_MAX 1024 /* failing lines kept in an event are cut here */

static int alert_raise(struct security_alerts *a, const struct security_finding *f,
                       struct core_err *err)
{
    if (!a)
        return core_err_set(err, CORE_E_UNSUPPORTED, "no alert book to raise '%s' on",
                            f->rule_id);
    return security_alert_raise(a, f, NULL, NULL, err);
}

/* ---- recognizing failed logins ---------------------------------------------------------- */

static const char *find(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle));
}

/* Copies the word at p (up to a space, ';' or the end) into out; trailing ',' / ':' dropped. */
static size_t word(const char *p, const char *end, char *out, size_t outsz)
{
    size_t n = 0;
    while (p + n < end && p[n] != ' ' && p[n] != ';' && p[n] != '\t')
        n++;
    while (n && (p[n - 1] == ',' || p[n - 1] == ':' || p[n - 1] == '.'))
        n--;
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, p, n);
    out[n] = 0;
    for (size_t i = 0; i < n; i++) /* an address or a login name: no control bytes */
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            out[i] = '?';
    return n;
}

/* "Failed METHOD for [invalid user ]USER from ADDR" */
static bool parse_sshd_failed(const char *s, size_t n, struct security_login_failure *out)
{
    const char *end = s + n, *p = find(s, n, "Failed ");
    if (!p)
        return false;
    const char *f = find(p, (size_t)(end - p), " for ");
    if (!f)
        return false;
    f += 5;
    if ((size_t)(end - f) > 13 && memcmp(f, "invalid user ", 13) == 0)
        f += 13;
    const char *from = find(f, (size_t)(end - f), " from ");
    if (!from)
        return false;
    size_t ul = (size_t)(from - f);
    if (ul >= sizeof(out->user))
        ul = sizeof(out->user) - 1;
    memcpy(out->user, f, ul);
    out->user[ul] = 0;
    return word(from + 6, end, out->source, sizeof(out->source)) > 0;
}

/* "Invalid user USER from ADDR" */
static bool parse_sshd_invalid(const char *s, size_t n, struct security_login_failure *out)
{
    const char *end = s + n, *p = find(s, n, "Invalid user ");
    if (!p)
        return false;
    p += 13;
    const char *from = find(p, (size_t)(end - p), " from ");
    if (!from)
        return false;
    word(p, from, out->user, sizeof(out->user));
    return word(from + 6, end, out->source, sizeof(out->source)) > 0;
}

/* PAM: "authentication failure; logname= uid=0 ... rhost=ADDR  user=USER" */
static bool parse_pam(const char *s, size_t n, struct security_login_failure *out)
{
    const char *end = s + n, *p = find(s, n, "authentication failure;");
    if (!p)
        return false;
    const char *rh = find(p, (size_t)(end - p), " rhost=");
    if (!rh || !word(rh + 7, end, out->source, sizeof(out->source)))
        return false; /* a local failure (su, sudo): sudo's own summary line counts those */
    const char *u = find(p, (size_t)(end - p), " user=");
    if (u)
        word(u + 6, end, out->user, sizeof(out->user));
    return true;
}

/* sudo: "USER : N incorrect password attempts ; TTY=..." */
static bool parse_sudo(const struct tel_record *rec, const char *s, size_t n,
                       struct security_login_failure *out)
{
    const char *p = find(s, n, " incorrect password attempt");
    if (!p)
        return false;
    const char *d = p;
    while (d > s && d[-1] >= '0' && d[-1] <= '9')
        d--;
    int count = 0;
    for (const char *q = d; q < p && count < THRESHOLD_MAX; q++)
        count = count * 10 + (*q - '0');
    out->count = count > 0 ? count : 1;
    const char *colon = d > s ? memchr(s, ':', (size_t)(d - s)) : NULL;
    if (colon) {
        const char *b = s;
        while (b < colon && *b == ' ')
            b++;
        word(b, colon, out->user, sizeof(out->user));
    }
    snprintf(out->source, sizeof(out->source), "local:%s",
             rec->res.host && *rec->res.host ? rec->res.host : "localhost");
    return true;
}

static const struct tel_kv *attr(const struct tel_record *rec, const char *key)
{
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < rec->nattrs; i++)
        if (rec->attrs[i].klen == kl && memcmp(rec->attrs[i].key, key, kl) == 0 &&
            rec->attrs[i].type == TEL_V_STR)
            return &rec->attrs[i];
    return NULL;
}

bool security_failed_login_parse(const struct tel_record *rec, struct security_login_failure *out)
{
    memset(out, 0, sizeof(*out));
    out->count = 1;
    const char *s = rec->body ? rec->body : "";
    size_t n = rec->body ? rec->body_len : 0;
    if (n == 13 && memcmp(s, "token refused", 13) == 0) { /* src/api/server.c */
        const struct tel_kv *a = attr(rec, "client.address");
        if (!a || !a->vlen)
            return false;
        word(a->val, a->val + a->vlen, out->source, sizeof(out->source));
        return out->source[0] != 0;
    }
    if (parse_sshd_failed(s, n, out) || parse_sshd_invalid(s, n, out) || parse_pam(s, n, out) ||
        parse_sudo(rec, s, n, out))
        return out->source[0] != 0;
    memset(out, 0, sizeof(*out));
    return false;
}

/* ---- failed-login bursts ---------------------------------------------------------------- */

struct fsource {
    struct fsource *prev, *next; /* LRU list, most recent first */
    char key[64];
    int64_t *times;              /* sorted event times of recent failures, at most threshold */
    int ntimes;
    int64_t alerted_until;       /* in a reported burst while failures keep coming before this */
    json_t *lines;               /* failing lines of the current burst, at most max_events */
    int total;                   /* failures in the current burst */
};

struct security_detect {
    struct security_detect_opts o;
    pthread_mutex_t mu;
    struct fsource *head, *tail;
    size_t n;
};

struct security_detect *security_detect_new(const struct security_detect_opts *o)
{
    struct security_detect *d = core_calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    if (o)
        d->o = *o;
    if (d->o.threshold <= 0)
        d->o.threshold = DEF_THRESHOLD;
    if (d->o.threshold > THRESHOLD_MAX)
        d->o.threshold = THRESHOLD_MAX;
    if (d->o.window_ms <= 0)
        d->o.window_ms = DEF_WINDOW_MS;
    if (d->o.max_sources == 0)
        d->o.max_sources = DEF_MAX_SOURCES;
    if (d->o.max_events <= 0)
        d->o.max_events = DEF_MAX_EVENTS;
    if (d->o.max_events > SECURITY_ALERT_EVENTS_MAX * 5)
        d->o.max_events = SECURITY_ALERT_EVENTS_MAX * 5;
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

static void unlink_src(struct security_detect *d, struct fsource *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        d->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        d->tail = f->prev;
    f->prev = f->next = NULL;
}

static void push_front(struct security_detect *d, struct fsource *f)
{
    f->next = d->head;
    if (d->head)
        d->head->prev = f;
    d->head = f;
    if (!d->tail)
        d->tail = f;
}

static void src_free(struct fsource *f)
{
    if (!f)
        return;
    core_free(f->times);
    json_decref(f->lines);
    core_free(f);
}

void security_detect_free(struct security_detect *d)
{
    if (!d)
        return;
    while (d->head) {
        struct fsource *f = d->head;
        unlink_src(d, f);
        src_free(f);
    }
    pthread_mutex_destroy(&d->mu);
    core_free(d);
}

/* The source's entry, made most recent; created (dropping the least recent one when the table
 * is full) when absent. NULL on NOMEM. */
static struct fsource *src_get(struct security_detect *d, const char *key)
{
    for (struct fsource *f = d->head; f; f = f->next) {
        if (strcmp(f->key, key) == 0) {
            unlink_src(d, f);
            push_front(d, f);
            return f;
        }
    }
    if (d->n >= d->o.max_sources && d->tail) {
        struct fsource *old = d->tail;
        unlink_src(d, old);
        src_free(old);
        d->n--;
    }
    struct fsource *f = core_calloc(1, sizeof(*f));
    if (f)
        f->times = core_calloc((size_t)d->o.threshold, sizeof(*f->times));
    if (!f || !f->times) {
        src_free(f);
        return NULL;
    }
    snprintf(f->key, sizeof(f->key), "%s", key);
    push_front(d, f);
    d->n++;
    return f;
}

/* Adds time t (sorted; when full the oldest goes, or t itself when it is older than all). */
static void add_time(struct fsource *f, int cap, int64_t t)
{
    if (f->ntimes == cap) {
        if (t <= f->times[0])
            return;
        memmove(f->times, f->times + 1, (size_t)(cap - 1) * sizeof(*f->times));
        f->ntimes--;
    }
    int i = f->ntimes;
    while (i > 0 && f->times[i - 1] > t) {
        f->times[i] = f->times[i - 1];
        i--;
    }
    f->times[i] = t;
    f->ntimes++;
}

static void keep_line(struct security_detect *d, struct fsource *f, const struct tel_record *rec,
                      int64_t t)
{
    if (!f->lines)
        f->lines = json_array();
    if (!f->lines || json_array_size(f->lines) >= (size_t)d->o.max_events)
        return;
    size_t n = rec->body_len < EVENT_LINE_MAX ? rec->body_len : EVENT_LINE_MAX;
    char ts[40];
    core_time_format(t / 1000000, ts, sizeof(ts));
    /* bodies are UTF-8 (the parser replaced invalid bytes); a cut may split a character */
    while (n < rec->body_len && n && ((unsigned char)rec->body[n] & 0xC0) == 0x80)
        n--;
    json_t *line = json_stringn(rec->body ? rec->body : "", rec->body ? n : 0);
    json_t *o = json_pack("{s:s,s:o*,s:s?,s:s?}", "time", ts, "body", line, "host",
                          rec->res.host, "service", rec->res.service);
    if (o)
        json_array_append_new(f->lines, o);
}

int security_detect_feed(struct security_detect *d, struct security_alerts *a,
                         const struct tel_record *rec, bool *raised, struct core_err *err)
{
    if (raised)
        *raised = false;
    struct security_login_failure lf;
    if (!security_failed_login_parse(rec, &lf))
        return 0;
    int64_t t = rec->time_ns ? rec->time_ns : rec->observed_ns;
    int64_t win = d->o.window_ms * 1000000;
    char *event = NULL;
    int total = 0;
    pthread_mutex_lock(&d->mu);
    struct fsource *f = src_get(d, lf.source);
    if (!f) {
        pthread_mutex_unlock(&d->mu);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    if (f->alerted_until && t > f->alerted_until) { /* quiet for a window: a new burst */
        f->alerted_until = 0;
        f->ntimes = 0;
        f->total = 0;
        json_decref(f->lines);
        f->lines = NULL;
    }
    if (f->ntimes && t - f->times[f->ntimes - 1] > win && !f->alerted_until) {
        /* nothing recent: the lines kept belong to failures that made no burst */
        f->ntimes = 0;
        f->total = 0;
        json_decref(f->lines);
        f->lines = NULL;
    }
    for (int i = 0; i < lf.count; i++)
        add_time(f, d->o.threshold, t);
    f->total += lf.count;
    keep_line(d, f, rec, t);
    if (f->alerted_until) {
        if (t + win > f->alerted_until)
            f->alerted_until = t + win;
    } else if (f->ntimes == d->o.threshold &&
               f->times[f->ntimes - 1] - f->times[0] <= win) {
        f->alerted_until = t + win;
        total = f->total;
        json_t *ev = json_pack("{s:s,s:s,s:i,s:i,s:I,s:O*}", "source.address", lf.source,
                               "user.name", lf.user, "failures", f->total, "threshold",
                               d->o.threshold, "window_ms", (json_int_t)d->o.window_ms, "lines",
                               f->lines);
        event = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
        json_decref(ev);
    }
    pthread_mutex_unlock(&d->mu);
    if (!total)
        return 0;
    char key[96], summary[256];
    snprintf(key, sizeof(key), "failed-logins:%s", lf.source);
    snprintf(summary, sizeof(summary), "%d failed logins from %s within %llds%s%s", total,
             lf.source, (long long)(d->o.window_ms / 1000), lf.user[0] ? " (last user " : "",
             lf.user[0] ? lf.user : "");
    if (lf.user[0])
        snprintf(summary + strlen(summary), sizeof(summary) - strlen(summary), ")");
    struct security_finding fd = {
        .rule_id = "builtin.failed-logins",
        .rule_title = "Burst of failed logins from one source",
        .source = "builtin",
        .severity = "high",
        .dedup_key = key,
        .service = rec->res.service,
        .team = rec->res.team,
        .summary = summary,
        .event_json = event,
    };
    int rc = alert_raise(a, &fd, err);
    free(event);
    if (!rc && raised)
        *raised = true;
    return rc;
}

/* ---- tokens used from a new source ------------------------------------------------------ */

#define SEEN_MAX 8192

struct security_seen {
    pthread_mutex_t mu;
    char **pairs; /* "TOKEN_ID ADDR", sorted */
    size_t n;
};

struct security_seen *security_seen_new(void)
{
    struct security_seen *s = core_calloc(1, sizeof(*s));
    if (s)
        pthread_mutex_init(&s->mu, NULL);
    return s;
}

void security_seen_free(struct security_seen *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        core_free(s->pairs[i]);
    core_free(s->pairs);
    pthread_mutex_destroy(&s->mu);
    core_free(s);
}

/* Index of key in the sorted cache, or where it goes (*found false). Called locked. */
static size_t seen_find(const struct security_seen *s, const char *key, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->pairs[mid], key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static bool seen_cached(struct security_seen *s, const char *key)
{
    bool found;
    pthread_mutex_lock(&s->mu);
    seen_find(s, key, &found);
    pthread_mutex_unlock(&s->mu);
    return found;
}

static void seen_add(struct security_seen *s, const char *key)
{
    pthread_mutex_lock(&s->mu);
    bool found;
    size_t at = seen_find(s, key, &found);
    if (!found) {
        if (s->n == SEEN_MAX) { /* the store stays the truth: forgetting only costs lookups */
            for (size_t i = 0; i < s->n; i++)
                core_free(s->pairs[i]);
            s->n = 0;
            at = 0;
        }
        if (!s->pairs)
            s->pairs = core_calloc(SEEN_MAX, sizeof(*s->pairs));
        char *k = s->pairs ? core_strdup(key) : NULL;
        if (k) {
            memmove(s->pairs + at + 1, s->pairs + at, (s->n - at) * sizeof(*s->pairs));
            s->pairs[at] = k;
            s->n++;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

int security_token_seen(struct security_seen *s, struct security_alerts *a, struct store *st,
                        const char *token_id, const char *owner, const char *addr, bool *raised,
                        struct core_err *err)
{
    if (raised)
        *raised = false;
    if (!s || !st || !token_id || !*token_id || !addr || !*addr)
        return 0;
    char key[256];
    snprintf(key, sizeof(key), "%s %s", token_id, addr);
    if (seen_cached(s, key))
        return 0;
    int64_t before = 0, changes = 0;
    char now[40];
    core_time_format(core_now_ms(), now, sizeof(now));
    struct store_value q[] = {STORE_V_TEXT(token_id)};
    int rc = store_query_int(st,
                             "SELECT count(*) FROM security_seen WHERE kind = 'token-source' "
                             "AND key = ?",
                             q, 1, &before, err);
    struct store_value ins[] = {STORE_V_TEXT(token_id), STORE_V_TEXT(addr), STORE_V_TEXT(now)};
    if (!rc)
        rc = store_exec(st,
                        "INSERT INTO security_seen (kind, key, value, first_seen) "
                        "VALUES ('token-source', ?, ?, ?) ON CONFLICT DO NOTHING",
                        ins, 3, &changes, err);
    if (rc)
        return rc;
    seen_add(s, key);
    if (changes != 1 || before == 0) /* known already, or the token's first use: the baseline */
        return 0;
    char dkey[256], summary[320];
    snprintf(dkey, sizeof(dkey), "token-new-source:%s:%s", token_id, addr);
    snprintf(summary, sizeof(summary), "token %s of user %s used from a new source %s", token_id,
             owner && *owner ? owner : "?", addr);
    json_t *ev = json_pack("{s:s,s:s?,s:s,s:s}", "token.id", token_id, "user.name", owner,
                           "client.address", addr, "first_seen", now);
    char *event = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    struct security_finding f = {
        .rule_id = "builtin.token-new-source",
        .rule_title = "API token used from a new source address",
        .source = "builtin",
        .severity = "medium",
        .dedup_key = dkey,
        .summary = summary,
        .event_json = event,
    };
    rc = alert_raise(a, &f, err);
    free(event);
    if (!rc && raised)
        *raised = true;
    return rc;
}
