/* The embedded log store behind `pave logs` (telemetry.h, "log store").
 *
 * Layout of DIR: NNNNNNNNNNNNNNNNNNNN.log segments (20-digit ids, increasing) of standard JSON
 * lines, and beside each an NNNN.idx text file:
 *
 *   pave-store-index 1
 *   covered <bytes of the segment this index describes>
 *   min <ns>  max <ns>  wrote <ns>          (one per line)
 *   many                                    (optional: too many services to list)
 *   svc <offset of the first line> <name>   (one per service)
 *
 * The writer keeps the index of its current segment in memory and rewrites the file (temp +
 * rename, so readers see the old or the new one) at most once a second, on rotation and on
 * close. A reader trusts an index only for the first `covered` bytes and scans the rest, so a
 * stale index costs time, never results. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "telemetry/telemetry.h"

#define DEF_AGE_NS (7LL * 86400 * 1000000000)
#define DEF_BYTES (1LL << 30)
#define DEF_SEG_BYTES (64LL << 20)
#define DEF_SEG_NS (3600LL * 1000000000)
#define RETENTION_EVERY_NS (10LL * 1000000000)
#define INDEX_EVERY_MS 1000
#define MAX_SERVICES 512 /* more in one segment: the index says "many" */
#define READ_CHUNK (256u << 10)
#define LINE_MAX_READ (16u << 20) /* longer lines (cannot be written by the engine) are skipped */
#define LIMIT_MAX 1000000

struct svc {
    char *name;
    int64_t off;
};

struct idx {
    int64_t covered, min, max, wrote;
    bool many;
    struct svc *svc;
    size_t nsvc, capsvc;
};

struct tel_store {
    char *dir;
    struct tel_store_options opt;
    pthread_mutex_t mu;
    int fd;
    uint64_t seg;
    int64_t size;
    int64_t started;       /* store clock when the segment began */
    struct idx idx;
    bool idx_dirty;
    int64_t idx_written_ms; /* monotonic */
    int64_t last_retention; /* store clock */
};

static int64_t real_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t store_now(const struct tel_store *s)
{
    return s->opt.now_ns ? s->opt.now_ns(s->opt.now_arg) : real_now_ns();
}

void tel_store_dir(const char *data_dir, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/telemetry/store", data_dir);
}

/* ---- the index -------------------------------------------------------------------------- */

static void idx_release(struct idx *x)
{
    for (size_t i = 0; i < x->nsvc; i++)
        core_free(x->svc[i].name);
    core_free(x->svc);
    memset(x, 0, sizeof(*x));
}

static const struct svc *idx_find(const struct idx *x, const char *name)
{
    for (size_t i = 0; i < x->nsvc; i++)
        if (strcmp(x->svc[i].name, name) == 0)
            return &x->svc[i];
    return NULL;
}

static void idx_note(struct idx *x, const struct tel_event *ev, int64_t off)
{
    if (!x->min || ev->time_ns < x->min)
        x->min = ev->time_ns;
    if (ev->time_ns > x->max)
        x->max = ev->time_ns;
    const char *name = ev->service ? ev->service : "";
    if (x->many || idx_find(x, name))
        return;
    if (x->nsvc >= MAX_SERVICES || strlen(name) > 253 || strchr(name, '\n')) {
        x->many = true;
        return;
    }
    if (x->nsvc == x->capsvc) {
        size_t cap = x->capsvc ? x->capsvc * 2 : 8;
        struct svc *v = core_realloc(x->svc, cap * sizeof(*v));
        if (!v) {
            x->many = true;
            return;
        }
        x->svc = v;
        x->capsvc = cap;
    }
    char *copy = core_strdup(name);
    if (!copy) {
        x->many = true;
        return;
    }
    x->svc[x->nsvc++] = (struct svc){copy, off};
}

static void seg_path(const char *dir, uint64_t id, const char *ext, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%020llu.%s", dir, (unsigned long long)id, ext);
}

/* Best effort: a missing or stale index only makes readers scan more. */
static void idx_write(struct tel_store *s)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    const struct idx *x = &s->idx;
    int rc = core_buf_addf(&b, "pave-store-index 1\ncovered %lld\nmin %lld\nmax %lld\nwrote %lld\n",
                           (long long)x->covered, (long long)x->min, (long long)x->max,
                           (long long)x->wrote);
    if (!rc && x->many)
        rc = core_buf_adds(&b, "many\n");
    for (size_t i = 0; i < x->nsvc && !rc; i++)
        rc = core_buf_addf(&b, "svc %lld %s\n", (long long)x->svc[i].off, x->svc[i].name);
    char path[4400], tmp[4500];
    seg_path(s->dir, s->seg, "idx", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = rc ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd >= 0) {
        ssize_t w = write(fd, b.data, b.len);
        close(fd);
        if (w == (ssize_t)b.len && rename(tmp, path) == 0) {
            s->idx_dirty = false;
            s->idx_written_ms = mono_ms();
        } else {
            unlink(tmp);
        }
    }
    core_buf_release(&b);
}

/* returns: 0, or CORE_E_NOTFOUND when there is no (valid) index. */
static int idx_read(const char *path, struct idx *x)
{
    memset(x, 0, sizeof(*x));
    char *text = NULL;
    size_t len = 0;
    if (core_file_read(path, 1 << 20, &text, &len, NULL))
        return CORE_E_NOTFOUND;
    int rc = strncmp(text, "pave-store-index 1\n", 19) == 0 ? 0 : CORE_E_NOTFOUND;
    char *save = NULL;
    for (char *ln = rc ? NULL : strtok_r(text + 19, "\n", &save); ln;
         ln = strtok_r(NULL, "\n", &save)) {
        long long v = 0;
        int n = 0;
        if (sscanf(ln, "covered %lld", &v) == 1)
            x->covered = v;
        else if (sscanf(ln, "min %lld", &v) == 1)
            x->min = v;
        else if (sscanf(ln, "max %lld", &v) == 1)
            x->max = v;
        else if (sscanf(ln, "wrote %lld", &v) == 1)
            x->wrote = v;
        else if (strcmp(ln, "many") == 0)
            x->many = true;
        else if (sscanf(ln, "svc %lld %n", &v, &n) == 1 && n > 0) {
            struct tel_event ev = {.time_ns = x->min ? x->min : 1, .service = ln + n};
            int64_t mn = x->min, mx = x->max;
            idx_note(x, &ev, v);
            x->min = mn;
            x->max = mx;
        }
    }
    core_free(text);
    if (rc)
        idx_release(x);
    return rc;
}

/* ---- segments on disk ------------------------------------------------------------------- */

struct seglist {
    uint64_t *ids;
    size_t n;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The segment ids in dir, ascending. A missing dir is empty. */
static int seg_list(const char *dir, struct seglist *out, struct core_err *err)
{
    out->ids = NULL;
    out->n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : core_err_set(err, CORE_E_IO, "cannot read '%s': %s", dir,
                                                   strerror(errno));
    size_t cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (strlen(nm) != 24 || strcmp(nm + 20, ".log") != 0 ||
            strspn(nm, "0123456789") != 20)
            continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *v = core_realloc(out->ids, cap * sizeof(*v));
            if (!v) {
                rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
                break;
            }
            out->ids = v;
        }
        out->ids[out->n++] = strtoull(nm, NULL, 10);
    }
    closedir(d);
    if (rc) {
        core_free(out->ids);
        out->ids = NULL;
        out->n = 0;
        return rc;
    }
    if (out->n)
        qsort(out->ids, out->n, sizeof(*out->ids), cmp_u64);
    return 0;
}

/* ---- the writer ------------------------------------------------------------------------- */

static int seg_start(struct tel_store *s, uint64_t id, struct core_err *err)
{
    char path[4400];
    seg_path(s->dir, id, "log", path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return core_err_set(err, CORE_E_IO, "cannot create '%s': %s", path, strerror(errno));
    struct stat st;
    fstat(fd, &st);
    s->fd = fd;
    s->seg = id;
    s->size = st.st_size;
    s->started = store_now(s);
    idx_release(&s->idx);
    s->idx.covered = s->size;
    s->idx_dirty = true;
    return 0;
}

static void seg_finish(struct tel_store *s)
{
    if (s->fd < 0)
        return;
    if (s->idx_dirty || s->idx.covered != s->size)
        idx_write(s);
    close(s->fd);
    s->fd = -1;
}

struct tel_store *tel_store_open(const char *dir, const struct tel_store_options *opt,
                                 struct core_err *err)
{
    struct tel_store *s = core_calloc(1, sizeof(*s));
    if (!s) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    s->fd = -1;
    if (opt)
        s->opt = *opt;
    if (s->opt.retention_age_ns <= 0)
        s->opt.retention_age_ns = DEF_AGE_NS;
    if (s->opt.retention_bytes <= 0)
        s->opt.retention_bytes = DEF_BYTES;
    if (s->opt.segment_bytes <= 0)
        s->opt.segment_bytes = DEF_SEG_BYTES;
    if (s->opt.segment_ns <= 0)
        s->opt.segment_ns = DEF_SEG_NS;
    pthread_mutex_init(&s->mu, NULL);
    struct seglist l = {0};
    s->dir = core_strdup(dir);
    if (!s->dir) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto fail;
    }
    if (core_mkdir_p(dir, 0750, err) || seg_list(dir, &l, err))
        goto fail;
    /* always a new segment: the last one may end in a line torn by a crash */
    if (seg_start(s, l.n ? l.ids[l.n - 1] + 1 : 1, err))
        goto fail;
    core_free(l.ids);
    s->last_retention = store_now(s) - RETENTION_EVERY_NS; /* first append checks */
    return s;
fail:
    core_free(l.ids);
    tel_store_close(s);
    return NULL;
}

void tel_store_close(struct tel_store *s)
{
    if (!s)
        return;
    seg_finish(s);
    idx_release(&s->idx);
    pthread_mutex_destroy(&s->mu);
    core_free(s->dir);
    core_free(s);
}

static int write_buf(struct tel_store *s, struct core_buf *b, struct core_err *err)
{
    size_t done = 0;
    while (done < b->len) {
        ssize_t w = write(s->fd, b->data + done, b->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            /* a torn line must not be glued to the next one: continue in a new segment */
            uint64_t next = s->seg + 1;
            seg_finish(s);
            struct core_err ignore = {0};
            seg_start(s, next, &ignore);
            core_buf_clear(b);
            return core_err_set(err, CORE_E_IO, "writing the log store: %s", strerror(e));
        }
        done += (size_t)w;
    }
    s->size += (int64_t)b->len;
    s->idx.covered = s->size;
    s->idx.wrote = store_now(s);
    core_buf_clear(b);
    return 0;
}

static int rotate(struct tel_store *s, struct core_err *err)
{
    uint64_t next = s->seg + 1;
    seg_finish(s);
    return seg_start(s, next, err);
}

static int retention_locked(struct tel_store *s)
{
    struct seglist l = {0};
    if (seg_list(s->dir, &l, NULL))
        return 0;
    int64_t now = store_now(s);
    int64_t *size = core_calloc(l.n + 1, sizeof(int64_t));
    bool *gone = core_calloc(l.n + 1, sizeof(bool));
    int removed = 0;
    if (!size || !gone)
        goto out;
    int64_t total = 0;
    for (size_t i = 0; i < l.n; i++) {
        char path[4400];
        struct stat st;
        seg_path(s->dir, l.ids[i], "log", path, sizeof(path));
        if (stat(path, &st) != 0) {
            gone[i] = true;
            continue;
        }
        size[i] = st.st_size;
        total += st.st_size;
        if (l.ids[i] == s->seg)
            continue;
        /* age: when the segment was last written (store clock, from its index), else mtime */
        struct idx x;
        int64_t wrote = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        seg_path(s->dir, l.ids[i], "idx", path, sizeof(path));
        if (idx_read(path, &x) == 0) {
            if (x.wrote)
                wrote = x.wrote;
            idx_release(&x);
        }
        if (now - wrote > s->opt.retention_age_ns)
            gone[i] = true;
    }
    for (size_t i = 0; i < l.n; i++) {
        if (!gone[i] && total > s->opt.retention_bytes && l.ids[i] != s->seg)
            gone[i] = true;
        if (!gone[i])
            continue;
        char path[4400];
        seg_path(s->dir, l.ids[i], "log", path, sizeof(path));
        if (unlink(path) == 0) {
            removed++;
            total -= size[i];
        }
        seg_path(s->dir, l.ids[i], "idx", path, sizeof(path));
        unlink(path);
    }
out:
    core_free(size);
    core_free(gone);
    core_free(l.ids);
    return removed;
}

int tel_store_retention(struct tel_store *s)
{
    pthread_mutex_lock(&s->mu);
    int n = retention_locked(s);
    s->last_retention = store_now(s);
    pthread_mutex_unlock(&s->mu);
    return n;
}

int tel_store_append(struct tel_store *s, const struct tel_events *evs, struct core_err *err)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->fd < 0 && (rc = seg_start(s, s->seg + 1, err)))
        goto out;
    for (size_t i = 0; i < evs->n && !rc; i++) {
        const struct tel_event *ev = &evs->ev[i];
        if (!ev->line || !ev->len)
            continue;
        int64_t now = store_now(s);
        if (s->size + (int64_t)b.len > 0 &&
            (s->size + (int64_t)b.len >= s->opt.segment_bytes ||
             now - s->started >= s->opt.segment_ns)) {
            if ((b.len && (rc = write_buf(s, &b, err))) || (rc = rotate(s, err)))
                break;
        }
        idx_note(&s->idx, ev, s->size + (int64_t)b.len);
        s->idx_dirty = true;
        if (core_buf_add(&b, ev->line, ev->len) || core_buf_addc(&b, '\n'))
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    if (!rc && b.len)
        rc = write_buf(s, &b, err);
    if (s->fd >= 0 && s->idx_dirty && mono_ms() - s->idx_written_ms >= INDEX_EVERY_MS)
        idx_write(s);
    if (store_now(s) - s->last_retention >= RETENTION_EVERY_NS) {
        retention_locked(s);
        s->last_retention = store_now(s);
    }
out:
    pthread_mutex_unlock(&s->mu);
    core_buf_release(&b);
    return rc;
}

/* ---- time ------------------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_rfc3339(const char *s, size_t len, int64_t *out)
{
    int y, mo, d, h, mi, se;
    if (len < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se))
        return CORE_E_INVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return CORE_E_INVAL;
    size_t i = 19;
    int64_t frac = 0, scale = 1000000000;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9')
            return CORE_E_INVAL;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (scale > 1) {
                scale /= 10;
                frac += (s[i] - '0') * scale;
            }
    }
    int64_t offset = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 <= len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh, om;
        if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return CORE_E_INVAL;
        offset = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return CORE_E_INVAL;
    }
    if (i != len)
        return CORE_E_INVAL;
    int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
                   se - offset;
    *out = secs * 1000000000 + frac;
    return 0;
}

int tel_store_parse_time(const char *s, int64_t now_ns, int64_t *out_ns)
{
    if (!s || !*s)
        return CORE_E_INVAL;
    if (parse_rfc3339(s, strlen(s), out_ns) == 0)
        return 0;
    int64_t ms = 0;
    const char *p = s;
    /* "1w" is not in core_parse_duration_ms; accept it here */
    char buf[64];
    size_t n = strlen(s);
    if (n > 1 && n < sizeof(buf) && s[n - 1] == 'w' && strspn(s, "0123456789") == n - 1) {
        snprintf(buf, sizeof(buf), "%.*sd", (int)(n - 1), s);
        if (core_parse_duration_ms(buf, &ms))
            return CORE_E_INVAL;
        ms *= 7;
    } else if (core_parse_duration_ms(p, &ms)) {
        return CORE_E_INVAL;
    }
    *out_ns = now_ns - ms * 1000000;
    return 0;
}

/* ---- the reader ------------------------------------------------------------------------- */

struct hit {
    uint64_t seg, off;
    uint32_t len;
};

struct qstate {
    const struct tel_store_query *q;
    tel_store_row_fn fn;
    void *arg;
    struct core_buf svc_needle; /* "service.name":"<escaped>" */
    struct hit *ring;           /* limit: the newest matches */
    size_t nring, ring_head;
    size_t limit;
};

/* Parses the fields a query filters on. returns: false when the line is not a record. */
static bool line_fields(const char *line, size_t len, int64_t *time_ns, int *sev,
                        json_t **doc)
{
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return false;
    }
    const char *ts = json_string_value(json_object_get(j, "ts"));
    *time_ns = 0;
    if (ts)
        parse_rfc3339(ts, strlen(ts), time_ns);
    *sev = (int)json_integer_value(json_object_get(j, "severity_number"));
    *doc = j;
    return true;
}

static bool str_is(json_t *v, const char *want)
{
    const char *s = json_string_value(v);
    return s ? strcmp(s, want) == 0 : !*want;
}

static bool matches(struct qstate *st, const char *line, size_t len, int64_t *time_ns, int *sev)
{
    const struct tel_store_query *q = st->q;
    if (st->svc_needle.len && !memmem(line, len, st->svc_needle.data, st->svc_needle.len))
        return false;
    json_t *j = NULL;
    if (!line_fields(line, len, time_ns, sev, &j))
        return false;
    bool ok = true;
    json_t *res = json_object_get(j, "resource");
    if (q->service && *q->service)
        ok = str_is(json_object_get(res, "service.name"), q->service);
    if (ok && q->env && *q->env)
        ok = str_is(json_object_get(res, "deployment.environment"), q->env);
    if (ok && q->since_ns && *time_ns < q->since_ns)
        ok = false;
    if (ok && q->until_ns && *time_ns >= q->until_ns)
        ok = false;
    if (ok && q->min_severity && *sev < q->min_severity)
        ok = false;
    if (ok && q->grep && *q->grep && !memmem(line, len, q->grep, strlen(q->grep))) {
        const char *body = json_string_value(json_object_get(j, "body"));
        ok = body && strstr(body, q->grep);
    }
    json_decref(j);
    return ok;
}

/* Scans segment id from start; returns fn's value or 0; *end gets the last complete line end. */
static int scan_segment(struct qstate *st, int fd, uint64_t id, int64_t start, int64_t size,
                        int64_t *end, struct core_err *err)
{
    size_t cap = READ_CHUNK, len = 0;
    char *buf = core_malloc(cap);
    int64_t pos = start;     /* file offset of buf[0] */
    int64_t readpos = start;
    int rc = 0;
    bool skipping = false;   /* inside an over-long line */
    *end = start;
    if (!buf)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    while (readpos < size && !rc) {
        if (len == cap) {
            if (cap >= LINE_MAX_READ) {
                /* a line longer than any record: drop it up to its end */
                skipping = true;
                pos += (int64_t)len;
                len = 0;
            } else {
                char *v = core_realloc(buf, cap * 2);
                if (!v) {
                    rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
                    break;
                }
                buf = v;
                cap *= 2;
            }
        }
        size_t want = cap - len;
        if ((int64_t)want > size - readpos)
            want = (size_t)(size - readpos);
        ssize_t n = pread(fd, buf + len, want, (off_t)readpos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        readpos += n;
        size_t consumed = 0;
        for (;;) {
            char *nl = memchr(buf + consumed, '\n', len - consumed);
            if (!nl)
                break;
            char *line = buf + consumed;
            size_t llen = (size_t)(nl - line);
            int64_t line_off = pos + (int64_t)consumed;
            consumed += llen + 1;
            *end = pos + (int64_t)consumed;
            if (skipping) {
                skipping = false;
                continue;
            }
            if (st->q->stats)
                st->q->stats->lines++;
            int64_t t = 0;
            int sev = 0;
            if (!llen || !matches(st, line, llen, &t, &sev))
                continue;
            if (st->limit) {
                struct hit *h;
                if (st->nring == st->limit) {
                    h = &st->ring[st->ring_head];
                    st->ring_head = (st->ring_head + 1) % st->limit;
                } else {
                    h = &st->ring[(st->ring_head + st->nring) % st->limit];
                    st->nring++;
                }
                *h = (struct hit){id, (uint64_t)line_off, (uint32_t)llen};
                continue;
            }
            *nl = 0; /* callers get a NUL-terminated line */
            struct tel_store_row row = {line, llen, t, sev, {id, (uint64_t)*end}};
            if ((rc = st->fn(st->arg, &row)))
                break;
        }
        if (consumed) {
            memmove(buf, buf + consumed, len - consumed);
            len -= consumed;
            pos += (int64_t)consumed;
        }
    }
    core_free(buf);
    return rc;
}

/* Replays the limit ring (oldest first), reading each line again. */
static int replay_ring(struct qstate *st, const char *dir, struct core_err *err)
{
    int rc = 0, fd = -1;
    uint64_t fd_seg = 0;
    char *line = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < st->nring && !rc; i++) {
        const struct hit *h = &st->ring[(st->ring_head + i) % st->limit];
        if (fd < 0 || fd_seg != h->seg) {
            if (fd >= 0)
                close(fd);
            char path[4400];
            seg_path(dir, h->seg, "log", path, sizeof(path));
            fd = open(path, O_RDONLY | O_CLOEXEC);
            fd_seg = h->seg;
            if (fd < 0)
                continue; /* removed by retention meanwhile */
        }
        if (cap < (size_t)h->len + 1) {
            char *v = core_realloc(line, (size_t)h->len + 1);
            if (!v) {
                rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
                break;
            }
            line = v;
            cap = (size_t)h->len + 1;
        }
        ssize_t n = pread(fd, line, h->len, (off_t)h->off);
        if (n != (ssize_t)h->len)
            continue;
        line[n] = 0;
        int64_t t = 0;
        int sev = 0;
        json_t *j = NULL;
        if (!line_fields(line, h->len, &t, &sev, &j))
            continue;
        json_decref(j);
        struct tel_store_row row = {line, h->len, t, sev, {h->seg, h->off + h->len + 1}};
        rc = st->fn(st->arg, &row);
    }
    if (fd >= 0)
        close(fd);
    core_free(line);
    return rc;
}

int tel_store_query(const char *dir, const struct tel_store_query *q, tel_store_row_fn fn,
                    void *arg, struct core_err *err)
{
    struct qstate st = {.q = q, .fn = fn, .arg = arg};
    core_buf_init(&st.svc_needle, 0);
    struct seglist l = {0};
    struct tel_store_cursor end = q->has_after ? q->after : (struct tel_store_cursor){0, 0};
    int rc = 0;
    if (q->stats)
        memset(q->stats, 0, sizeof(*q->stats));
    if (q->service && *q->service &&
        (core_buf_adds(&st.svc_needle, "\"service.name\":") ||
         core_buf_add_json_str(&st.svc_needle, q->service))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    st.limit = q->limit > LIMIT_MAX ? LIMIT_MAX : q->limit;
    if (st.limit && !(st.ring = core_calloc(st.limit, sizeof(*st.ring)))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = seg_list(dir, &l, err)))
        goto out;
    for (size_t i = 0; i < l.n && !rc; i++) {
        uint64_t id = l.ids[i];
        if (q->has_after && id < q->after.seg)
            continue;
        char path[4400];
        seg_path(dir, id, "log", path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* removed by retention since the listing */
        struct stat sb;
        if (fstat(fd, &sb) != 0) {
            close(fd);
            continue;
        }
        int64_t size = sb.st_size;
        int64_t start = q->has_after && id == q->after.seg ? (int64_t)q->after.off : 0;
        if (start > size)
            start = size;
        if (q->stats)
            q->stats->segments++;
        struct idx x;
        seg_path(dir, id, "idx", path, sizeof(path));
        if (start < size && idx_read(path, &x) == 0) {
            if (x.covered <= size) {
                bool skip = (q->since_ns && x.max && x.max < q->since_ns) ||
                            (q->until_ns && x.min >= q->until_ns);
                const struct svc *sv = NULL;
                if (!skip && q->service && *q->service && !x.many) {
                    sv = idx_find(&x, q->service);
                    skip = !sv;
                }
                if (skip && start < x.covered)
                    start = x.covered;
                else if (sv && start < sv->off)
                    start = sv->off;
                if (skip && x.covered == size && q->stats)
                    q->stats->segments_skipped++;
            }
            idx_release(&x);
        }
        int64_t seg_end = start;
        if (start < size)
            rc = scan_segment(&st, fd, id, start, size, &seg_end, err);
        close(fd);
        end = (struct tel_store_cursor){id, (uint64_t)seg_end};
    }
    if (!rc && st.limit)
        rc = replay_ring(&st, dir, err);
out:
    if (q->end && !rc)
        *q->end = end;
    core_free(l.ids);
    core_free(st.ring);
    core_buf_release(&st.svc_needle);
    return rc;
}
