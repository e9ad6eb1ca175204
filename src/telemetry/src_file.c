/* Sources that tail files: `file` (a path or glob with static labels) and `replicas` (every
 * replica log under DATA/deploy/logs, labelled from its name). One thread per source polls its
 * files every 200 ms and rescans the path/glob or directory every second.
 *
 * Per file we keep two positions: `rpos`, how far the file has been read, and `off`, the end of
 * the last complete line pushed (rpos - off bytes are an unfinished last line kept in `part`).
 * After each push the (seq, inode, off) triple is remembered; a checkpoint
 * (DATA/telemetry/checkpoints/<name>.json, {path: {inode, offset}}) stores for each path the
 * newest triple whose seq the engine reports durable, so a restart resumes without loss and,
 * after a clean stop, without duplicates.
 *
 * Rotation: when the path names another inode, the old descriptor is read to EOF and closed,
 * and the new file is read from 0. When the path is gone, the old descriptor is kept (a rotator
 * that renames before creating) until the file is deleted or 5 s passed. Truncation (size <
 * read position) restarts at 0. Origin strings are kept until the source is destroyed because
 * batches in flight borrow them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "telemetry/telemetry_auditd.h"
#include "telemetry/telemetry_int.h"

#define POLL_MS 200
#define SCAN_MS 1000
#define CKPT_MS 500
#define PARTIAL_FLUSH_MS 1000
#define GONE_GRACE_MS 5000
#define READ_SIZE (256u << 10)
#define PAIRS_MAX 4096
#define RETIRED_MAX 64
#define FILES_MAX 1024
#define AUDITD_WAIT_MS 500 /* an auditd event without its EOE is complete after this */

struct pair {
    uint64_t seq;
    uint64_t ino;
    int64_t off;
};

struct tfile {
    struct tfile *next;
    char *path; /* kept in the source's string list */
    int fd;
    uint64_t dev, ino;
    int64_t rpos, off;
    struct core_buf part;  /* unfinished last line */
    int64_t part_since_ms; /* when part last grew */
    int64_t gone_since_ms; /* path missing since (0: present) */
    struct tel_origin origin;
    struct pair *pairs;
    size_t npairs, cappairs;
    uint64_t ck_ino; /* newest durable position (0: none) */
    int64_t ck_off;
    bool seen;       /* matched by the latest scan */
    struct tel_auditd *aj; /* format auditd: the records of open events */
    struct core_buf jout;  /* ... and what the joiner completed, to push */
};

struct retired {
    uint64_t dev, ino;
    int64_t off;
};

struct strnode {
    struct strnode *next;
    char s[];
};

struct fsrc {
    struct tel_engine *e;
    bool replicas;
    char *name;        /* checkpoint name */
    char *pattern;     /* file: the path or glob; replicas: DATA/deploy/logs */
    char *data_dir;
    bool from_end;     /* read_from: end */
    bool auditd;       /* format: auditd (records joined into events, telemetry_auditd.h) */
    bool is_glob;
    struct tel_origin base; /* static labels (strings kept) */
    struct tfile *files;
    size_t nfiles;
    struct retired retired[RETIRED_MAX];
    size_t nretired;
    struct strnode *strs; /* every string origins may point to */
    json_t *ck_loaded;    /* checkpoint read at start (NULL: none) */
    char *ck_last;        /* last checkpoint text written */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    char buf[READ_SIZE];
};

/* ---- strings that live as long as the source ------------------------------------------------ */

static const char *keep(struct fsrc *s, const char *str)
{
    if (!str)
        return NULL;
    size_t n = strlen(str);
    struct strnode *k = core_malloc(sizeof(*k) + n + 1);
    if (!k)
        return NULL;
    memcpy(k->s, str, n + 1);
    k->next = s->strs;
    s->strs = k;
    return k->s;
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

static void ck_path(const struct fsrc *s, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/telemetry/checkpoints/%s.json", s->data_dir, s->name);
}

static void ck_load(struct fsrc *s)
{
    char path[4400];
    ck_path(s, path, sizeof(path));
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    s->ck_loaded = j;
}

/* The checkpointed offset of path if its inode is still ino, else -1. */
static int64_t ck_lookup(const struct fsrc *s, const char *path, uint64_t ino)
{
    json_t *ent = s->ck_loaded ? json_object_get(s->ck_loaded, path) : NULL;
    json_t *ji = json_object_get(ent, "inode"), *jo = json_object_get(ent, "offset");
    if (!json_is_integer(ji) || !json_is_integer(jo))
        return -1;
    if ((uint64_t)json_integer_value(ji) != ino || json_integer_value(jo) < 0)
        return -1;
    return json_integer_value(jo);
}

static void remember(struct tfile *f, uint64_t seq)
{
    if (f->npairs == PAIRS_MAX) {
        /* dropping every other pair only makes the checkpoint lag (never lose data) */
        size_t j = 0;
        for (size_t i = 1; i < f->npairs; i += 2)
            f->pairs[j++] = f->pairs[i];
        f->npairs = j;
    }
    if (f->npairs == f->cappairs) {
        size_t cap = f->cappairs ? f->cappairs * 2 : 16;
        struct pair *v = core_realloc(f->pairs, cap * sizeof(*v));
        if (!v)
            return; /* the checkpoint lags; harmless */
        f->pairs = v;
        f->cappairs = cap;
    }
    f->pairs[f->npairs++] = (struct pair){seq, f->ino, f->off};
}

/* Moves every pair up to durable into the file's checkpoint position. */
static void advance(struct tfile *f, uint64_t durable)
{
    size_t i = 0;
    while (i < f->npairs && f->pairs[i].seq <= durable) {
        f->ck_ino = f->pairs[i].ino;
        f->ck_off = f->pairs[i].off;
        i++;
    }
    if (i && f->npairs > i)
        memmove(f->pairs, f->pairs + i, (f->npairs - i) * sizeof(*f->pairs));
    f->npairs -= i;
}

static void ck_write(struct fsrc *s)
{
    uint64_t durable = tel_engine_durable_seq(s->e);
    json_t *o = json_object();
    if (!o)
        return;
    for (struct tfile *f = s->files; f; f = f->next) {
        advance(f, durable);
        if (f->ck_ino)
            json_object_set_new(o, f->path,
                                json_pack("{s:I,s:I}", "inode", (json_int_t)f->ck_ino, "offset",
                                          (json_int_t)f->ck_off));
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!text)
        return;
    if (s->ck_last && strcmp(s->ck_last, text) == 0) {
        free(text);
        return;
    }
    char path[4400], dir[4400];
    struct core_err err = {0};
    snprintf(dir, sizeof(dir), "%s/telemetry/checkpoints", s->data_dir);
    ck_path(s, path, sizeof(path));
    if (core_mkdir_p(dir, 0700, &err) || core_file_write_atomic(path, text, strlen(text), 0600,
                                                                &err)) {
        log_warn("telemetry", "cannot write checkpoint", LOG_STR("source", s->name),
                 LOG_STR("error", err.msg));
        free(text);
        return;
    }
    core_free(s->ck_last);
    s->ck_last = core_strdup(text);
    free(text);
}

/* ---- pushing -------------------------------------------------------------------------------- */

static bool stopping(struct fsrc *s)
{
    pthread_mutex_lock(&s->mu);
    bool st = s->stop;
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* Pushes data with backpressure: waits while the pipeline is full, but gives up when the source
 * is stopped (a blocking push could wait forever on a sink that keeps failing). */
static int push(struct fsrc *s, const struct tel_origin *o, const char *data, size_t len,
                uint64_t *seq)
{
    for (;;) {
        struct core_err err = {0};
        int rc = tel_engine_push(s->e, o, data, len, true, &err);
        if (rc == 0) {
            *seq = tel_engine_push_seq();
            return 0;
        }
        if (rc != CORE_E_TOO_BIG || stopping(s))
            return rc;
        usleep(10 * 1000);
    }
}

/* Pushes complete lines of f: as they are, or through the auditd joiner, which may hold
 * records back (*seq stays 0 when nothing was pushed). */
static int push_lines(struct fsrc *s, struct tfile *f, const char *data, size_t len,
                      uint64_t *seq)
{
    *seq = 0;
    if (!f->aj)
        return push(s, &f->origin, data, len, seq);
    int64_t now = core_now_ms();
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (tel_auditd_feed(f->aj, p, (size_t)(le - p), now, &f->jout) == CORE_E_NOMEM)
            log_warn("telemetry", "auditd join out of memory", LOG_STR("source", s->name));
        p = nl ? nl + 1 : end;
    }
    if (!f->jout.len)
        return 0;
    int rc = push(s, &f->origin, f->jout.data, f->jout.len, seq);
    core_buf_clear(&f->jout);
    return rc;
}

/* Completes the auditd events of f that waited age_ms (0: all) and pushes them. */
static void flush_events(struct fsrc *s, struct tfile *f, int64_t age_ms)
{
    if (!f->aj)
        return;
    tel_auditd_flush(f->aj, core_now_ms(), age_ms, &f->jout);
    uint64_t seq = 0;
    if (f->jout.len && push(s, &f->origin, f->jout.data, f->jout.len, &seq) == 0)
        remember(f, seq);
    core_buf_clear(&f->jout);
}

/* Pushes the unfinished last line as a line of its own. */
static int flush_part(struct fsrc *s, struct tfile *f)
{
    if (!f->part.len)
        return 0;
    uint64_t seq = 0;
    int rc = push_lines(s, f, f->part.data, f->part.len, &seq);
    if (rc)
        return rc;
    f->off = f->rpos;
    core_buf_clear(&f->part);
    if (seq)
        remember(f, seq);
    return 0;
}

/* Reads f to EOF, pushing complete lines. returns: 0, or an error when stopping. */
static int drain(struct fsrc *s, struct tfile *f)
{
    for (;;) {
        ssize_t n = pread(f->fd, s->buf, sizeof(s->buf), (off_t)f->rpos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        f->rpos += n;
        const char *nl = memrchr(s->buf, '\n', (size_t)n);
        if (!nl) {
            if (core_buf_add(&f->part, s->buf, (size_t)n) == 0 &&
                f->part.len < TEL_LINE_MAX) {
                f->part_since_ms = core_now_ms();
                continue;
            }
            /* a line longer than the engine keeps: push what we have as a line */
            bool oom = f->part.len < TEL_LINE_MAX;
            if (oom)
                f->rpos -= n; /* read it again at the next poll */
            int rc = flush_part(s, f);
            if (rc || oom)
                return rc;
            continue;
        }
        size_t head = (size_t)(nl - s->buf) + 1;
        uint64_t seq = 0;
        int rc;
        if (f->part.len) {
            if (core_buf_add(&f->part, s->buf, head))
                return CORE_E_NOMEM;
            rc = push_lines(s, f, f->part.data, f->part.len, &seq);
        } else {
            rc = push_lines(s, f, s->buf, head, &seq);
        }
        if (rc) {
            f->rpos = f->off; /* not taken: read again (if ever) from the last pushed line */
            core_buf_clear(&f->part);
            return rc;
        }
        core_buf_clear(&f->part);
        f->off = f->rpos - (int64_t)((size_t)n - head);
        if (seq)
            remember(f, seq);
        if ((size_t)n > head) {
            core_buf_add(&f->part, s->buf + head, (size_t)n - head);
            f->part_since_ms = core_now_ms();
        }
    }
}

/* ---- files ---------------------------------------------------------------------------------- */

static void retire(struct fsrc *s, const struct tfile *f)
{
    if (s->nretired == RETIRED_MAX) {
        memmove(s->retired, s->retired + 1, (RETIRED_MAX - 1) * sizeof(s->retired[0]));
        s->nretired--;
    }
    s->retired[s->nretired++] = (struct retired){f->dev, f->ino, f->rpos};
}

/* Where a file seen for the first time starts: after a rotation we may have read it under its
 * old name; else the checkpoint; else read_from. */
static int64_t start_offset(struct fsrc *s, const char *path, const struct stat *st, bool initial)
{
    for (size_t i = 0; i < s->nretired; i++)
        if (s->retired[i].dev == (uint64_t)st->st_dev && s->retired[i].ino == (uint64_t)st->st_ino)
            return s->retired[i].off <= st->st_size ? s->retired[i].off : 0;
    int64_t off = ck_lookup(s, path, (uint64_t)st->st_ino);
    if (off >= 0)
        return off <= st->st_size ? off : 0;
    return initial && s->from_end ? st->st_size : 0;
}

/* Opens path as a tracked file (fd positioned per start_offset). */
static int open_at(struct fsrc *s, struct tfile *f, bool initial)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return CORE_E_IO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return CORE_E_INVAL;
    }
    f->fd = fd;
    f->dev = (uint64_t)st.st_dev;
    f->ino = (uint64_t)st.st_ino;
    f->off = f->rpos = start_offset(s, f->path, &st, initial);
    if (f->off > 0 && !f->ck_ino) {
        f->ck_ino = f->ino;
        f->ck_off = f->off;
    }
    f->gone_since_ms = 0;
    return 0;
}

/* Origin of a replica log from its name <service>.<env>.<seq>.log; false when it is not one. */
static bool replica_origin(struct fsrc *s, const char *base, struct tel_origin *o)
{
    char name[256];
    size_t n = strlen(base);
    if (n < 5 || n >= sizeof(name) || strcmp(base + n - 4, ".log") != 0)
        return false;
    memcpy(name, base, n - 4);
    name[n - 4] = 0;
    char *d1 = strchr(name, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.') || !d2[1])
        return false;
    for (const char *p = d2 + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    char service[256], env[256];
    snprintf(service, sizeof(service), "%.*s", (int)(d1 - name), name);
    snprintf(env, sizeof(env), "%.*s", (int)(d2 - d1 - 1), d1 + 1);
    if (!core_is_dns_label(service) || !core_is_dns_label(env))
        return false;
    o->service = keep(s, service);
    o->env = keep(s, env);
    o->instance = keep(s, name);
    return o->service && o->env && o->instance;
}

/* service.version of a replica: the first 12 hex of its spec's digest, when known. */
static void replica_version(struct fsrc *s, struct tfile *f)
{
    if (!s->replicas || f->origin.version || !f->origin.instance)
        return;
    char path[4400];
    snprintf(path, sizeof(path), "%s/deploy/replicas/%s/spec.json", s->data_dir,
             f->origin.instance);
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    const char *d = json_string_value(json_object_get(j, "digest"));
    if (d) {
        const char *colon = strchr(d, ':');
        const char *hex = colon ? colon + 1 : d;
        char v[13];
        size_t k = 0;
        while (k < 12 && ((hex[k] >= '0' && hex[k] <= '9') || (hex[k] >= 'a' && hex[k] <= 'f')))
            k++;
        if (k == 12) {
            memcpy(v, hex, 12);
            v[12] = 0;
            f->origin.version = keep(s, v);
        }
    }
    json_decref(j);
}

static struct tfile *find(struct fsrc *s, const char *path)
{
    for (struct tfile *f = s->files; f; f = f->next)
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

static bool tracks_inode(struct fsrc *s, const struct stat *st)
{
    for (struct tfile *f = s->files; f; f = f->next)
        if (f->fd >= 0 && f->dev == (uint64_t)st->st_dev && f->ino == (uint64_t)st->st_ino)
            return true;
    return false;
}

/* A path the scan found: tracked already, or a new file to tail. */
static void found(struct fsrc *s, const char *path, const char *base, bool initial)
{
    struct tfile *f = find(s, path);
    if (f) {
        f->seen = true;
        return;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || tracks_inode(s, &st) ||
        s->nfiles >= FILES_MAX)
        return; /* a hard link or a renamed file we still read under its old name */
    f = core_calloc(1, sizeof(*f));
    if (!f)
        return;
    f->fd = -1;
    core_buf_init(&f->part, 0);
    core_buf_init(&f->jout, 0);
    if (s->auditd && !(f->aj = tel_auditd_new())) {
        core_free(f);
        return;
    }
    f->origin = s->base;
    f->path = (char *)keep(s, path);
    f->origin.file = f->path;
    if (!f->path || (s->replicas && !replica_origin(s, base, &f->origin)) ||
        open_at(s, f, initial)) {
        tel_auditd_free(f->aj);
        core_buf_release(&f->part);
        core_free(f);
        return;
    }
    replica_version(s, f);
    f->seen = true;
    f->next = s->files;
    s->files = f;
    s->nfiles++;
}

static void scan(struct fsrc *s, bool initial)
{
    for (struct tfile *f = s->files; f; f = f->next)
        f->seen = false;
    if (s->replicas) {
        DIR *d = opendir(s->pattern);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char path[4400];
            snprintf(path, sizeof(path), "%s/%s", s->pattern, de->d_name);
            found(s, path, de->d_name, initial);
        }
        if (d)
            closedir(d);
        return;
    }
    if (!s->is_glob) {
        found(s, s->pattern, NULL, initial);
        return;
    }
    glob_t g;
    if (glob(s->pattern, GLOB_NOSORT, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            found(s, g.gl_pathv[i], NULL, initial);
    globfree(&g);
}

static void close_file(struct fsrc *s, struct tfile *f)
{
    if (f->fd < 0)
        return;
    struct stat st;
    /* a deleted file's inode may be reused: only remember files that still exist */
    if (fstat(f->fd, &st) == 0 && st.st_nlink > 0)
        retire(s, f);
    close(f->fd);
    f->fd = -1;
}

/* One poll of one file. returns: false when the file is finished (deleted) and can be
 * forgotten. */
static bool poll_file(struct fsrc *s, struct tfile *f, int64_t now)
{
    if (f->fd < 0) { /* waiting for the path to appear again */
        if (open_at(s, f, false) != 0)
            return f->seen || !s->is_glob; /* a fixed path may come back */
    }
    if (drain(s, f))
        return true;
    replica_version(s, f);
    struct stat st, fst;
    if (stat(f->path, &st) == 0) {
        f->gone_since_ms = 0;
        if ((uint64_t)st.st_ino != f->ino || (uint64_t)st.st_dev != f->dev) {
            /* rotated: the old file was read to EOF just above */
            if (flush_part(s, f))
                return true;
            close_file(s, f);
            if (open_at(s, f, false) == 0)
                drain(s, f);
            return true;
        }
        if (st.st_size < f->rpos) { /* truncated */
            flush_part(s, f);
            f->off = f->rpos = 0;
            core_buf_clear(&f->part);
            drain(s, f);
        }
    } else {
        bool deleted = fstat(f->fd, &fst) == 0 && fst.st_nlink == 0;
        if (!f->gone_since_ms)
            f->gone_since_ms = now;
        if (deleted || now - f->gone_since_ms >= GONE_GRACE_MS) {
            flush_part(s, f);
            close_file(s, f);
            return s->replicas || s->is_glob ? false : true;
        }
    }
    if (f->part.len && now - f->part_since_ms >= PARTIAL_FLUSH_MS)
        flush_part(s, f);
    flush_events(s, f, AUDITD_WAIT_MS);
    return true;
}

static void forget(struct fsrc *s, struct tfile *f)
{
    struct tfile **pp = &s->files;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    s->nfiles--;
    close_file(s, f);
    tel_auditd_free(f->aj);
    core_buf_release(&f->jout);
    core_buf_release(&f->part);
    core_free(f->pairs);
    core_free(f);
}

static void *tail_main(void *arg)
{
    struct fsrc *s = arg;
    int64_t last_scan = core_now_ms(), last_ck = last_scan;
    while (!stopping(s)) {
        int64_t now = core_now_ms();
        if (now - last_scan >= SCAN_MS) {
            scan(s, false);
            last_scan = now;
        }
        for (struct tfile *f = s->files, *next; f && !stopping(s); f = next) {
            next = f->next;
            if (!poll_file(s, f, now))
                forget(s, f);
        }
        if (now - last_ck >= CKPT_MS) {
            ck_write(s);
            last_ck = now;
        }
        pthread_mutex_lock(&s->mu);
        if (!s->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += POLL_MS * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
    }
    for (struct tfile *f = s->files; f; f = f->next) /* stopping: open events are complete */
        flush_events(s, f, 0);
    return NULL;
}

/* ---- the component -------------------------------------------------------------------------- */

static void fsrc_free(struct fsrc *s)
{
    if (!s)
        return;
    while (s->files)
        forget(s, s->files);
    while (s->strs) {
        struct strnode *k = s->strs;
        s->strs = k->next;
        core_free(k);
    }
    json_decref(s->ck_loaded);
    core_free(s->ck_last);
    core_free(s->name);
    core_free(s->pattern);
    core_free(s->data_dir);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    core_free(s);
}

static struct fsrc *fsrc_new(struct tel_engine *e)
{
    struct fsrc *s = core_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->e = e;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &a);
    pthread_condattr_destroy(&a);
    s->data_dir = core_strdup(tel_engine_data_dir(e));
    return s;
}

static int name_ok(struct tel_engine *e, const struct core_node *cfg, const char *name,
                   struct core_err *err)
{
    if (core_is_dns_label(name))
        return 0;
    return tel_cfg_error(e, core_node_get(cfg, "name"), err,
                         "source name '%s' must be a DNS label", name);
}

static int file_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                       struct core_err *err)
{
    static const char *const keys[] = {"type",    "name", "path", "parser", "read_from",
                                       "service", "env",  "team", "format", NULL};
    const char *name, *path, *parser, *from, *service, *env, *team, *format;
    int rc = tel_cfg_keys(e, cfg, "the file source", keys, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "name", "file", &name, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "path", NULL, &path, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "parser", "auto", &parser, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "read_from", "beginning", &from, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "service", NULL, &service, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "env", NULL, &env, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "team", NULL, &team, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "format", "lines", &format, err);
    if (!rc)
        rc = name_ok(e, cfg, name, err);
    if (rc)
        return rc;
    if (!path || path[0] != '/')
        return tel_cfg_error(e, core_node_get(cfg, "path") ? core_node_get(cfg, "path") : cfg,
                             err, "the file source needs an absolute path (a glob is allowed)");
    if (strcmp(parser, "auto") != 0 && strcmp(parser, "syslog") != 0)
        return tel_cfg_error(e, core_node_get(cfg, "parser"), err,
                             "parser must be auto or syslog, not '%s'", parser);
    if (strcmp(from, "beginning") != 0 && strcmp(from, "end") != 0)
        return tel_cfg_error(e, core_node_get(cfg, "read_from"), err,
                             "read_from must be beginning or end, not '%s'", from);
    if (strcmp(format, "lines") != 0 && strcmp(format, "auditd") != 0)
        return tel_cfg_error(e, core_node_get(cfg, "format"), err,
                             "format must be lines or auditd, not '%s'", format);
    struct fsrc *s = fsrc_new(e);
    if (!s)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    s->auditd = strcmp(format, "auditd") == 0;
    /* config strings may belong to a document freed after create: copy them */
    s->name = core_strdup(name);
    s->pattern = core_strdup(path);
    s->is_glob = strpbrk(path, "*?[") != NULL;
    s->from_end = strcmp(from, "end") == 0;
    s->base.source = keep(s, name);
    s->base.service = keep(s, service);
    s->base.env = keep(s, env);
    s->base.team = keep(s, team);
    s->base.parser = strcmp(parser, "syslog") == 0 ? TEL_PARSE_SYSLOG : TEL_PARSE_AUTO;
    if (!s->name || !s->pattern || !s->data_dir || !s->base.source) {
        fsrc_free(s);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    *state = s;
    return 0;
}

static int replicas_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                           struct core_err *err)
{
    static const char *const keys[] = {"type", "read_from", NULL};
    const char *from;
    int rc = tel_cfg_keys(e, cfg, "the replicas source", keys, err);
    if (!rc)
        rc = tel_cfg_str(e, cfg, "read_from", "beginning", &from, err);
    if (rc)
        return rc;
    if (strcmp(from, "beginning") != 0 && strcmp(from, "end") != 0)
        return tel_cfg_error(e, core_node_get(cfg, "read_from"), err,
                             "read_from must be beginning or end, not '%s'", from);
    struct fsrc *s = fsrc_new(e);
    if (!s)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    s->replicas = true;
    s->from_end = strcmp(from, "end") == 0;
    s->name = core_strdup("replicas");
    s->base.source = keep(s, "replicas");
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/deploy/logs", tel_engine_data_dir(e));
    s->pattern = core_strdup(dir);
    if (!s->name || !s->pattern || !s->data_dir || !s->base.source) {
        fsrc_free(s);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    *state = s;
    return 0;
}

static int tail_start(void *state, struct core_err *err)
{
    struct fsrc *s = state;
    ck_load(s);
    scan(s, true);
    if (pthread_create(&s->thread, NULL, tail_main, s) != 0)
        return core_err_set(err, CORE_E_INTERNAL, "cannot start the %s source thread", s->name);
    s->started = true;
    return 0;
}

static void tail_stop(void *state)
{
    struct fsrc *s = state;
    if (!s->started)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
}

static void tail_destroy(void *state)
{
    struct fsrc *s = state;
    if (!s)
        return;
    /* The engine calls destroy after it drained its queues into the sinks, so what was pushed
     * before the stop is durable now (unless a sink failed): the final checkpoint. */
    if (s->started)
        ck_write(s);
    fsrc_free(s);
}

const struct tel_source_ops tel_source_file = {"file", file_create, tail_start, tail_stop,
                                               tail_destroy};
const struct tel_source_ops tel_source_replicas = {"replicas", replicas_create, tail_start,
                                                   tail_stop, tail_destroy};
