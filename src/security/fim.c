/* File integrity monitoring (security.h, docs/security.md "File integrity"). A baseline row per
 * regular file, directory, symlink or other node under the watched roots lives in the store table
 * security_fim. A scan walks every root again (never following a symlink, so nothing outside the
 * tree is read; device files, FIFOs and sockets are recorded but never opened; files over
 * FIM_HASH_MAX are not hashed and compare by size and mtime), compares it with the baseline and
 * raises one alert per changed path. The baseline itself only moves on security_fim_accept(), so
 * a change stays visible until someone accepts it; an in-memory set of what was already raised
 * keeps repeated scans from bumping the alert every interval.
 *
 * Roots: every configured path (scope "path") and every complete bundle DATA/bundles/<hex>/rootfs
 * (scope "bundle"). A root with no baseline row for itself is new (first start, a bundle of a new
 * deployment) and is baselined without alerts; a bundle directory that disappears as a whole was
 * pruned by the deploy controller and its rows are dropped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "catalog/catalog.h"
#include "security/security.h"
#include "store/store.h"

/* The alert book (alerts.c) is developed separately; until it is linked the raise resolves to
 * NULL and changes are only logged and returned. */
#pragma weak security_alert_raise

#define FIM_HASH_MAX (64LL << 20)  /* larger files are compared by size and mtime only */
#define FIM_MAX_DEPTH 64           /* deeper directories are not descended into */
#define FIM_MAX_ENTRIES 200000     /* per scan; beyond that the walk stops (logged) */
#define FIM_ALERTS_PER_SCAN 200    /* findings raised per scan; the rest wait for the next */
#define FIM_CHANGES_MAX 1000       /* items of a scan's change list */
#define FIM_PATH_MAX 4096

struct fim_entry {
    char *path;
    char kind[8]; /* file, dir, symlink, other */
    char sha256[65]; /* "" when not hashed (not a file, too big, unreadable) */
    char *target;    /* symlink target, NULL otherwise */
    int64_t mode, uid, gid, size, mtime_ns;
    /* not stored: what says a file is unchanged since the last scan, so its hash is reused */
    uint64_t dev, ino;
    int64_t ctime_ns;
};

struct fim_list {
    struct fim_entry *v;
    size_t n, cap;
};

struct fim_root {
    char path[FIM_PATH_MAX];
    bool bundle;
    char hex[72]; /* bundle: the digest's hex */
};

struct security_fim {
    struct store *st;
    struct security_alerts *alerts;
    char **paths;
    size_t npaths;
    char *bundles_dir;
    int interval_ms;
    pthread_mutex_t scan_mu; /* one scan or accept at a time */
    json_t *raised;          /* keys of findings already raised (guarded by scan_mu) */
    struct fim_list cache;   /* the last scan's entries, sorted (guarded by scan_mu) */
    pthread_mutex_t mu;      /* guards stop */
    pthread_cond_t cv;
    bool stop, started;
    pthread_t thread;
};

/* ---- entries ------------------------------------------------------------------------------ */

static void entry_release(struct fim_entry *e)
{
    core_free(e->path);
    core_free(e->target);
    e->path = e->target = NULL;
}

static void list_release(struct fim_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        entry_release(&l->v[i]);
    core_free(l->v);
    memset(l, 0, sizeof(*l));
}

static struct fim_entry *list_push(struct fim_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct fim_entry *v = core_realloc(l->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    struct fim_entry *e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct fim_entry *)a)->path, ((const struct fim_entry *)b)->path);
}

static bool under(const char *path, const char *root)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* SHA-256 of the open regular file fd (at most FIM_HASH_MAX bytes are read). */
static bool hash_fd(int fd, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    unsigned char buf[65536];
    int64_t total = 0;
    while (ok) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ok = false;
            break;
        }
        if (r == 0)
            break;
        total += r;
        if (total > FIM_HASH_MAX || EVP_DigestUpdate(ctx, buf, (size_t)r) != 1)
            ok = false;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32) {
        for (int i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
    } else {
        ok = false;
    }
    EVP_MD_CTX_free(ctx);
    return ok;
}

static int64_t ns_of(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static const struct fim_entry *cache_find(const struct fim_list *l, const char *path)
{
    size_t lo = 0, hi = l ? l->n : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(l->v[mid].path, path);
        if (!c)
            return &l->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void kind_of(mode_t m, char out[8])
{
    snprintf(out, 8, "%s",
             S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink" : "other");
}

struct walk {
    struct fim_list *out;
    const struct fim_list *cache; /* the last scan (sorted), or NULL to hash everything */
    bool incomplete; /* something could not be read: removals are not reported for the root */
    size_t *budget;  /* entries left for this scan */
};

/* Records the node `name` of directory dfd (AT_FDCWD with a full path for a root) whose lstat is
 * sb. Opens regular files only, without following links and without blocking on a FIFO swapped
 * in meanwhile; a node that changed type between the two calls is recorded as found by fstat. */
static int add_node(struct walk *w, int dfd, const char *name, const char *path,
                    const struct stat *sb)
{
    if (!*w->budget) {
        w->incomplete = true;
        return 0;
    }
    (*w->budget)--;
    struct fim_entry *e = list_push(w->out);
    if (!e || !(e->path = core_strdup(path)))
        return CORE_E_NOMEM;
    struct stat st = *sb;
    const struct fim_entry *was = S_ISREG(st.st_mode) ? cache_find(w->cache, path) : NULL;
    if (was && was->sha256[0] && was->dev == (uint64_t)st.st_dev &&
        was->ino == (uint64_t)st.st_ino && was->size == (int64_t)st.st_size &&
        was->mtime_ns == ns_of(st.st_mtim) && was->ctime_ns == ns_of(st.st_ctim)) {
        /* the ctime moves on every write, chmod and chown and cannot be set back by a
         * process: same inode and ctime means the same content */
        memcpy(e->sha256, was->sha256, sizeof(e->sha256));
    } else if (S_ISREG(st.st_mode) && st.st_size <= FIM_HASH_MAX) {
        int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat fs;
        if (fd >= 0 && fstat(fd, &fs) == 0 && S_ISREG(fs.st_mode)) {
            st = fs;
            if (st.st_size > FIM_HASH_MAX || !hash_fd(fd, e->sha256))
                e->sha256[0] = 0;
        } else {
            w->incomplete = w->incomplete || fd < 0;
        }
        if (fd >= 0)
            close(fd);
    } else if (S_ISLNK(st.st_mode)) {
        char buf[FIM_PATH_MAX];
        ssize_t n = readlinkat(dfd, name, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = 0;
        if (!(e->target = core_strdup(buf)))
            return CORE_E_NOMEM;
    }
    kind_of(st.st_mode, e->kind);
    e->mode = st.st_mode & 07777;
    e->uid = st.st_uid;
    e->gid = st.st_gid;
    e->size = S_ISDIR(st.st_mode) ? 0 : (int64_t)st.st_size;
    e->mtime_ns = ns_of(st.st_mtim);
    e->ctime_ns = ns_of(st.st_ctim);
    e->dev = (uint64_t)st.st_dev;
    e->ino = (uint64_t)st.st_ino;
    return 0;
}

/* Walks the directory open as fd (consumed) whose path is `path`. */
static int walk_dir(struct walk *w, int fd, const char *path, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        w->incomplete = true;
        return 0;
    }
    int rc = 0;
    struct dirent *de;
    char child[FIM_PATH_MAX];
    while (!rc && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if ((size_t)snprintf(child, sizeof(child), "%s/%s", path, de->d_name) >= sizeof(child)) {
            w->incomplete = true;
            continue;
        }
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            w->incomplete = true;
            continue;
        }
        if ((rc = add_node(w, dirfd(d), de->d_name, child, &sb)))
            break;
        if (!S_ISDIR(sb.st_mode))
            continue;
        if (depth >= FIM_MAX_DEPTH) {
            w->incomplete = true;
            continue;
        }
        int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) {
            w->incomplete = true;
            continue;
        }
        rc = walk_dir(w, cfd, child, depth + 1);
    }
    closedir(d);
    return rc;
}

/* Walks root into out. *exists: whether the root itself is there. */
static int walk_root(const char *root, const struct fim_list *cache, struct fim_list *out,
                     bool *exists, bool *incomplete, size_t *budget)
{
    struct walk w = {.out = out, .cache = cache, .budget = budget};
    struct stat sb;
    *exists = lstat(root, &sb) == 0;
    *incomplete = false;
    if (!*exists) {
        *incomplete = errno != ENOENT && errno != ENOTDIR;
        return 0;
    }
    int rc = add_node(&w, AT_FDCWD, root, root, &sb);
    if (!rc && S_ISDIR(sb.st_mode)) {
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            w.incomplete = true;
        else
            rc = walk_dir(&w, fd, root, 1);
    }
    *incomplete = w.incomplete;
    return rc;
}

/* ---- the store ---------------------------------------------------------------------------- */

static int baseline_row(void *arg, const struct store_row *row)
{
    struct fim_list *l = arg;
    struct fim_entry *e = list_push(l);
    if (!e || !(e->path = core_strdup(store_row_text(row, "path"))))
        return CORE_E_NOMEM;
    snprintf(e->kind, sizeof(e->kind), "%s", store_row_text(row, "kind") ?: "");
    snprintf(e->sha256, sizeof(e->sha256), "%s", store_row_text(row, "sha256") ?: "");
    const char *t = store_row_text(row, "target");
    if (t && !(e->target = core_strdup(t)))
        return CORE_E_NOMEM;
    e->mode = store_row_int(row, "mode");
    e->uid = store_row_int(row, "uid");
    e->gid = store_row_int(row, "gid");
    e->size = store_row_int(row, "size");
    e->mtime_ns = store_row_int(row, "mtime_ns");
    return 0;
}

static int load_baseline(struct store *st, struct fim_list *out, struct core_err *err)
{
    int rc = store_query(st, "SELECT * FROM security_fim", NULL, 0, baseline_row, out, err);
    if (rc == CORE_E_NOMEM)
        return core_err_set(err, CORE_E_NOMEM, "out of memory loading the file baseline");
    if (rc < 0)
        return rc;
    if (out->n)
        qsort(out->v, out->n, sizeof(*out->v), entry_cmp);
    return 0;
}

static int row_insert(struct store *st, const struct fim_entry *e, const char *scope,
                      struct core_err *err)
{
    char ts[40];
    core_time_format(core_now_ms(), ts, sizeof(ts));
    struct store_value v[] = {
        STORE_V_TEXT(e->path),       STORE_V_TEXT(scope),     STORE_V_TEXT(e->kind),
        STORE_V_TEXT(e->sha256[0] ? e->sha256 : NULL), STORE_V_TEXT(e->target),
        STORE_V_INT(e->mode),        STORE_V_INT(e->uid),     STORE_V_INT(e->gid),
        STORE_V_INT(e->size),        STORE_V_INT(e->mtime_ns), STORE_V_TEXT(ts)};
    return store_exec(st,
                      "INSERT INTO security_fim (path, scope, kind, sha256, target, mode, uid, "
                      "gid, size, mtime_ns, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      v, 11, NULL, err);
}

static int row_delete(struct store *st, const char *path, struct core_err *err)
{
    struct store_value v[] = {STORE_V_TEXT(path)};
    return store_exec(st, "DELETE FROM security_fim WHERE path=?", v, 1, NULL, err);
}

/* ---- comparing ---------------------------------------------------------------------------- */

static bool is_big(const struct fim_entry *e)
{
    return !strcmp(e->kind, "file") && e->size > FIM_HASH_MAX;
}

/* What changed between base and cur ("content, mode"); "" when nothing that matters did.
 * mtime alone is not a change, except for files too big to hash. */
static void diff(const struct fim_entry *b, const struct fim_entry *c, char *out, size_t outsz)
{
    out[0] = 0;
    struct core_buf w;
    core_buf_init(&w, outsz - 1);
    if (strcmp(b->kind, c->kind) != 0) {
        core_buf_adds(&w, "type, ");
    } else if (!strcmp(b->kind, "file")) {
        bool content = b->sha256[0] && c->sha256[0]
                           ? strcmp(b->sha256, c->sha256) != 0
                           : b->size != c->size || b->mtime_ns != c->mtime_ns;
        if (content)
            core_buf_adds(&w, "content, ");
    } else if (!strcmp(b->kind, "symlink") &&
               strcmp(b->target ? b->target : "", c->target ? c->target : "") != 0) {
        core_buf_adds(&w, "target, ");
    }
    if (b->mode != c->mode)
        core_buf_adds(&w, "mode, ");
    if (b->uid != c->uid || b->gid != c->gid)
        core_buf_adds(&w, "owner, ");
    if (w.len >= 2)
        w.data[w.len - 2] = 0;
    snprintf(out, outsz, "%s", w.data);
    core_buf_release(&w);
}

static json_t *state_json(const struct fim_entry *e)
{
    if (!e)
        return json_null();
    char mode[16];
    snprintf(mode, sizeof(mode), "%04llo", (unsigned long long)e->mode);
    json_t *o = json_pack("{s:s,s:s?,s:s,s:I,s:I,s:I}", "kind", e->kind, "sha256",
                          e->sha256[0] ? e->sha256 : NULL, "mode", mode, "uid",
                          (json_int_t)e->uid, "gid", (json_int_t)e->gid, "size",
                          (json_int_t)e->size);
    if (o && e->target)
        json_object_set_new(o, "target", json_string(e->target));
    if (o && is_big(e))
        json_object_set_new(o, "note", json_string("not hashed: larger than 64 MiB"));
    return o;
}

struct scan_ctx {
    struct security_fim *f;
    json_t *changes; /* the items array */
    int raised;
    json_t *seen;    /* keys raised by this scan (replaces f->raised afterwards) */
    struct fim_list next_cache; /* entries walked by this scan (replaces f->cache) */
    char service[64], team[64], team_hex[72]; /* last bundle owner looked up */
};

static int owner_row(void *arg, const struct store_row *row)
{
    struct scan_ctx *c = arg;
    snprintf(c->service, sizeof(c->service), "%s", store_row_text(row, "service") ?: "");
    snprintf(c->team, sizeof(c->team), "%s", store_row_text(row, "team") ?: "");
    return 1;
}

/* The service (and its team) the bundle of digest hex was deployed for, newest deployment
 * first; "" when none is known. */
static void bundle_owner(struct scan_ctx *c, const char *hex)
{
    if (!strcmp(c->team_hex, hex))
        return;
    snprintf(c->team_hex, sizeof(c->team_hex), "%s", hex);
    c->service[0] = c->team[0] = 0;
    char digest[80];
    snprintf(digest, sizeof(digest), "sha256:%s", hex);
    struct store_value v[] = {STORE_V_TEXT(digest)};
    struct core_err err = {0};
    store_query(c->f->st,
                "SELECT d.service AS service, s.team AS team FROM deployments d LEFT JOIN "
                "services s ON s.name = d.service WHERE d.digest = ? ORDER BY d.id DESC LIMIT 1",
                v, 1, owner_row, c, &err);
}

static void report(struct scan_ctx *c, const struct fim_root *root, const char *change,
                   const struct fim_entry *before, const struct fim_entry *after,
                   const char *what)
{
    const char *path = before ? before->path : after->path;
    json_t *b = state_json(before), *a = state_json(after);
    json_t *item = json_pack("{s:s,s:s,s:s,s:O,s:O}", "path", path, "scope",
                             root->bundle ? "bundle" : "path", "change", change, "before", b,
                             "after", a);
    if (item && what && what[0])
        json_object_set_new(item, "what", json_string(what));
    if (!item)
        goto out;
    if (c->changes && json_array_size(c->changes) < FIM_CHANGES_MAX)
        json_array_append(c->changes, item);
    if (!c->f->alerts || !security_alert_raise)
        goto out;
    /* the key says what the path looks like now, so a second, different change is raised
     * again (one more event on the same alert) while an unchanged one is not */
    char *key = NULL;
    const char *now = after ? (after->sha256[0] ? after->sha256 : after->kind) : "-";
    char keybuf[FIM_PATH_MAX + 200];
    snprintf(keybuf, sizeof(keybuf), "%s|%s|%s|%llo|%lld|%lld", change, path, now,
             after ? (unsigned long long)after->mode : 0ULL, after ? (long long)after->uid : -1LL,
             after ? (long long)after->gid : -1LL);
    key = keybuf;
    if (json_object_get(c->f->raised, key)) {
        json_object_set_new(c->seen, key, json_true()); /* still there: keep it raised */
        goto out;
    }
    if (c->raised >= FIM_ALERTS_PER_SCAN)
        goto out;
    c->raised++;
    if (root->bundle)
        bundle_owner(c, root->hex);
    char rule[32], title[64], dedup[FIM_PATH_MAX + 40], summary[FIM_PATH_MAX + 200];
    snprintf(rule, sizeof(rule), "fim.%s", change);
    snprintf(title, sizeof(title), "File integrity: %s %s", root->bundle ? "deployed file" : "file",
             change);
    snprintf(dedup, sizeof(dedup), "fim.%s:%s", change, path);
    if (root->bundle && c->service[0])
        snprintf(summary, sizeof(summary), "%s %s in a deployed bundle of %s%s%s%s", path, change,
                 c->service, what && what[0] ? " (" : "", what && what[0] ? what : "",
                 what && what[0] ? ")" : "");
    else
        snprintf(summary, sizeof(summary), "%s %s%s%s%s", path, change,
                 what && what[0] ? " (" : "", what && what[0] ? what : "",
                 what && what[0] ? ")" : "");
    char *event = json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS);
    struct security_finding fd = {
        .rule_id = rule,
        .rule_title = title,
        .source = "fim",
        .severity = root->bundle ? "high" : "medium",
        .dedup_key = dedup,
        .service = root->bundle && c->service[0] ? c->service : NULL,
        .team = root->bundle && c->team[0] ? c->team : NULL,
        .summary = summary,
        .event_json = event,
    };
    struct core_err err = {0};
    if (security_alert_raise(c->f->alerts, &fd, NULL, NULL, &err) == 0)
        json_object_set_new(c->seen, key, json_true());
    else
        log_warn("security", "cannot raise a file integrity alert", LOG_STR("path", path),
                 LOG_STR("error", err.msg));
    free(event);
out:
    json_decref(item);
    json_decref(b);
    json_decref(a);
}

/* Index of the first baseline row at or under root (sorted list), via binary search. */
static size_t first_under(const struct fim_list *l, const char *root)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(l->v[mid].path, root) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Baseline rows of root: [*from, *to) are not contiguous in a sorted list ("/a/b" < "/a/b.c" <
 * "/a/b/x"), so the caller filters with under(). */
static int compare_root(struct scan_ctx *c, const struct fim_root *root,
                        const struct fim_list *base, size_t *budget, struct core_err *err)
{
    struct fim_list cur = {0};
    bool exists = false, incomplete = false;
    int rc = walk_root(root->path, &c->f->cache, &cur, &exists, &incomplete, budget);
    if (rc) {
        rc = core_err_set(err, rc, "out of memory walking '%s'", root->path);
        goto out;
    }
    if (cur.n)
        qsort(cur.v, cur.n, sizeof(*cur.v), entry_cmp);
    size_t start = first_under(base, root->path);
    bool known = start < base->n && !strcmp(base->v[start].path, root->path);
    const char *scope = root->bundle ? "bundle" : "path";
    if (!known) {
        /* a new root: its first view is the baseline */
        if (root->bundle && !exists)
            goto out;
        if (!cur.n)
            goto out;
        if ((rc = store_txn_begin(c->f->st, err)))
            goto out;
        for (size_t i = 0; i < cur.n && !rc; i++)
            rc = row_insert(c->f->st, &cur.v[i], scope, err);
        if (!rc)
            rc = store_txn_commit(c->f->st, err);
        if (rc) {
            store_txn_rollback(c->f->st);
            core_err_wrap(err, "baselining '%s'", root->path);
            goto out;
        }
        log_info("security", "file integrity baseline taken", LOG_STR("root", root->path),
                 LOG_STR("scope", scope), LOG_INT("entries", (int64_t)cur.n));
        goto out;
    }
    if (root->bundle && !exists) {
        /* pruned by the deploy controller: the bundle is gone as a whole */
        if ((rc = store_txn_begin(c->f->st, err)))
            goto out;
        for (size_t i = start; i < base->n && !rc; i++)
            if (under(base->v[i].path, root->path))
                rc = row_delete(c->f->st, base->v[i].path, err);
            else if (strncmp(base->v[i].path, root->path, strlen(root->path)) != 0)
                break;
        if (!rc)
            rc = store_txn_commit(c->f->st, err);
        if (rc)
            store_txn_rollback(c->f->st);
        else
            log_info("security", "bundle removed; its baseline is dropped",
                     LOG_STR("root", root->path));
        goto out;
    }
    /* merge the two sorted lists, restricted to the root */
    size_t i = start, j = 0;
    char what[64];
    for (;;) {
        while (i < base->n && strncmp(base->v[i].path, root->path, strlen(root->path)) == 0 &&
               !under(base->v[i].path, root->path))
            i++;
        bool bi = i < base->n && under(base->v[i].path, root->path);
        bool cj = j < cur.n;
        if (!bi && !cj)
            break;
        int cmp = !bi ? 1 : !cj ? -1 : strcmp(base->v[i].path, cur.v[j].path);
        if (cmp < 0) {
            if (!incomplete)
                report(c, root, "removed", &base->v[i], NULL, NULL);
            i++;
        } else if (cmp > 0) {
            report(c, root, "added", NULL, &cur.v[j], NULL);
            j++;
        } else {
            diff(&base->v[i], &cur.v[j], what, sizeof(what));
            if (what[0])
                report(c, root, "modified", &base->v[i], &cur.v[j], what);
            i++;
            j++;
        }
    }
    if (incomplete)
        log_warn("security", "file integrity: part of a root could not be read; removals "
                             "there are not reported",
                 LOG_STR("root", root->path));
out:
    /* what was seen becomes the next scan's cache (moved, not copied) */
    for (size_t k = 0; !rc && k < cur.n; k++) {
        struct fim_entry *e = list_push(&c->next_cache);
        if (!e)
            break;
        *e = cur.v[k];
        cur.v[k].path = cur.v[k].target = NULL;
    }
    list_release(&cur);
    return rc;
}

/* Every root to look at: configured paths, bundles on disk, bundles in the baseline. */
static int collect_roots(struct security_fim *f, const struct fim_list *base,
                         struct fim_root **out, size_t *n)
{
    size_t cap = f->npaths + 16;
    struct fim_root *v = core_calloc(cap, sizeof(*v));
    if (!v)
        return CORE_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < f->npaths; i++) {
        /* a path inside another watched one (or inside the bundles) is that one's already */
        bool inside = f->bundles_dir && under(f->paths[i], f->bundles_dir);
        for (size_t j = 0; j < f->npaths && !inside; j++)
            inside = j != i && under(f->paths[i], f->paths[j]) &&
                     (strcmp(f->paths[i], f->paths[j]) != 0 || j < i);
        if (!inside)
            snprintf(v[k++].path, sizeof(v[0].path), "%s", f->paths[i]);
    }
    /* bundle roots: DATA/bundles/<hex>/rootfs, on disk (complete ones) and in the baseline */
    size_t blen = f->bundles_dir ? strlen(f->bundles_dir) : 0;
    DIR *d = f->bundles_dir ? opendir(f->bundles_dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' || strlen(de->d_name) > 64)
            continue;
        char marker[FIM_PATH_MAX];
        snprintf(marker, sizeof(marker), "%s/%s/.complete", f->bundles_dir, de->d_name);
        if (access(marker, F_OK) != 0)
            continue;
        if (k == cap) {
            struct fim_root *nv = core_realloc(v, cap * 2 * sizeof(*v));
            if (!nv) {
                closedir(d);
                core_free(v);
                return CORE_E_NOMEM;
            }
            v = nv;
            cap *= 2;
        }
        memset(&v[k], 0, sizeof(v[k]));
        snprintf(v[k].path, sizeof(v[k].path), "%s/%s/rootfs", f->bundles_dir, de->d_name);
        snprintf(v[k].hex, sizeof(v[k].hex), "%.64s", de->d_name);
        v[k++].bundle = true;
    }
    if (d)
        closedir(d);
    for (size_t i = 0; blen && i < base->n; i++) {
        const char *p = base->v[i].path;
        if (strncmp(p, f->bundles_dir, blen) != 0 || p[blen] != '/')
            continue;
        const char *hex = p + blen + 1, *slash = strchr(hex, '/');
        if (!slash || strcmp(slash, "/rootfs") != 0 || (size_t)(slash - hex) >= 72)
            continue;
        bool have = false;
        for (size_t r = 0; r < k && !have; r++)
            have = !strcmp(v[r].path, p);
        if (have)
            continue;
        if (k == cap) {
            struct fim_root *nv = core_realloc(v, cap * 2 * sizeof(*v));
            if (!nv) {
                core_free(v);
                return CORE_E_NOMEM;
            }
            v = nv;
            cap *= 2;
        }
        memset(&v[k], 0, sizeof(v[k]));
        snprintf(v[k].path, sizeof(v[k].path), "%s", p);
        snprintf(v[k].hex, sizeof(v[k].hex), "%.*s", (int)(slash - hex), hex);
        v[k++].bundle = true;
    }
    *out = v;
    *n = k;
    return 0;
}

static int scan_locked(struct security_fim *f, json_t *changes, struct core_err *err)
{
    struct fim_list base = {0};
    struct fim_root *roots = NULL;
    size_t nroots = 0, budget = FIM_MAX_ENTRIES;
    struct scan_ctx c = {.f = f, .changes = changes, .seen = json_object()};
    int rc = 0;
    if (!c.seen) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = load_baseline(f->st, &base, err)))
        goto out;
    if ((rc = collect_roots(f, &base, &roots, &nroots))) {
        rc = core_err_set(err, rc, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nroots && !rc; i++)
        rc = compare_root(&c, &roots[i], &base, &budget, err);
    if (!budget)
        log_warn("security", "file integrity: too many files; the scan stopped early",
                 LOG_INT("max_entries", FIM_MAX_ENTRIES));
    if (c.raised >= FIM_ALERTS_PER_SCAN)
        log_warn("security", "file integrity: more changes than alerts per scan; the rest "
                             "are raised by the next scans",
                 LOG_INT("per_scan", FIM_ALERTS_PER_SCAN));
    if (!rc) {
        /* forget what is no longer seen, so it is raised again if it comes back */
        json_decref(f->raised);
        f->raised = c.seen;
        c.seen = NULL;
        if (c.next_cache.n)
            qsort(c.next_cache.v, c.next_cache.n, sizeof(*c.next_cache.v), entry_cmp);
        list_release(&f->cache);
        f->cache = c.next_cache;
        memset(&c.next_cache, 0, sizeof(c.next_cache));
    }
out:
    list_release(&c.next_cache);
    json_decref(c.seen);
    core_free(roots);
    list_release(&base);
    return rc;
}

int security_fim_scan(struct security_fim *f, json_t **changes, struct core_err *err)
{
    json_t *items = changes ? json_array() : NULL;
    if (changes && !items)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    pthread_mutex_lock(&f->scan_mu);
    int rc = scan_locked(f, items, err);
    pthread_mutex_unlock(&f->scan_mu);
    if (changes) {
        if (rc)
            json_decref(items);
        else
            *changes = json_pack("{s:o}", "items", items);
    }
    return rc;
}

/* ---- the thread ---------------------------------------------------------------------------- */

static void *scan_loop(void *arg)
{
    struct security_fim *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)(f->interval_ms % 1000) * 1000000;
        ts.tv_sec += f->interval_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (!f->stop && pthread_cond_timedwait(&f->cv, &f->mu, &ts) == 0)
            ;
        if (f->stop)
            break;
        pthread_mutex_unlock(&f->mu);
        struct core_err err = {0};
        if (security_fim_scan(f, NULL, &err))
            log_warn("security", "file integrity scan failed", LOG_STR("error", err.msg));
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static char *absolute(const char *p)
{
    if (p[0] == '/') {
        char *s = core_strdup(p);
        size_t n = s ? strlen(s) : 0;
        while (n > 1 && s[n - 1] == '/')
            s[--n] = 0;
        return s;
    }
    char cwd[FIM_PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    struct core_buf b;
    core_buf_init(&b, FIM_PATH_MAX);
    if (core_buf_addf(&b, "%s/%s", cwd, p)) {
        core_buf_release(&b);
        return NULL;
    }
    while (b.len > 1 && b.data[b.len - 1] == '/')
        b.data[--b.len] = 0;
    return core_buf_detach(&b, NULL);
}

struct security_fim *security_fim_start(struct store *st, struct security_alerts *alerts,
                                        const struct security_fim_opts *o, struct core_err *err)
{
    if (!st || !o || o->interval_ms < 0 || (o->npaths && !o->paths)) {
        core_err_set(err, CORE_E_INVAL, "file integrity: bad options");
        return NULL;
    }
    struct security_fim *f = core_calloc(1, sizeof(*f));
    if (!f) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    f->st = st;
    f->alerts = alerts;
    f->interval_ms = o->interval_ms;
    pthread_mutex_init(&f->scan_mu, NULL);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->raised = json_object();
    f->paths = core_calloc(o->npaths + 1, sizeof(char *));
    if (!f->raised || !f->paths)
        goto nomem;
    for (size_t i = 0; i < o->npaths; i++) {
        if (!o->paths[i] || !o->paths[i][0]) {
            core_err_set(err, CORE_E_INVAL, "file integrity: an empty path to watch");
            goto fail;
        }
        if (!(f->paths[f->npaths] = absolute(o->paths[i])))
            goto nomem;
        f->npaths++;
    }
    if (o->bundles_dir && !(f->bundles_dir = absolute(o->bundles_dir)))
        goto nomem;
    /* the baseline of whatever is new; changes since the last run are raised now */
    if (security_fim_scan(f, NULL, err))
        goto fail;
    if (f->interval_ms > 0) {
        if (pthread_create(&f->thread, NULL, scan_loop, f) != 0) {
            core_err_set(err, CORE_E_INTERNAL, "file integrity: cannot start the scan thread");
            goto fail;
        }
        f->started = true;
    }
    log_info("security", "file integrity monitoring started", LOG_INT("paths", (int64_t)f->npaths),
             LOG_STR("bundles", f->bundles_dir ? f->bundles_dir : ""),
             LOG_INT("interval_ms", f->interval_ms));
    return f;
nomem:
    core_err_set(err, CORE_E_NOMEM, "out of memory");
fail:
    security_fim_stop(f);
    return NULL;
}

void security_fim_stop(struct security_fim *f)
{
    if (!f)
        return;
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
    }
    for (size_t i = 0; i < f->npaths; i++)
        core_free(f->paths[i]);
    core_free(f->paths);
    core_free(f->bundles_dir);
    json_decref(f->raised);
    list_release(&f->cache);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->scan_mu);
    core_free(f);
}

/* ---- baseline and accept ------------------------------------------------------------------- */

struct list_acc {
    json_t *items;
};

static int list_row(void *arg, const struct store_row *row)
{
    struct list_acc *a = arg;
    char mode[16];
    snprintf(mode, sizeof(mode), "%04llo", (unsigned long long)store_row_int(row, "mode"));
    json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s,s:I,s:I,s:I,s:s}", "path",
                          store_row_text(row, "path"), "scope", store_row_text(row, "scope"),
                          "kind", store_row_text(row, "kind"), "sha256",
                          store_row_text(row, "sha256"), "mode", mode, "uid",
                          (json_int_t)store_row_int(row, "uid"), "gid",
                          (json_int_t)store_row_int(row, "gid"), "size",
                          (json_int_t)store_row_int(row, "size"), "updated_at",
                          store_row_text(row, "updated_at"));
    if (!o)
        return CORE_E_NOMEM;
    const char *t = store_row_text(row, "target");
    if (t)
        json_object_set_new(o, "target", json_string(t));
    if (!strcmp(store_row_text(row, "kind"), "file") && store_row_int(row, "size") > FIM_HASH_MAX)
        json_object_set_new(o, "note", json_string("not hashed: larger than 64 MiB"));
    json_array_append_new(a->items, o);
    return 0;
}

json_t *security_fim_baseline(struct store *st, const char *scope, struct core_err *err)
{
    if (scope && strcmp(scope, "path") != 0 && strcmp(scope, "bundle") != 0) {
        core_err_set(err, CORE_E_INVAL, "unknown scope '%s' (use path or bundle)", scope);
        return NULL;
    }
    struct list_acc a = {json_array()};
    if (!a.items) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    struct store_value v[] = {STORE_V_TEXT(scope)};
    int rc = scope ? store_query(st, "SELECT * FROM security_fim WHERE scope=? ORDER BY path", v,
                                 1, list_row, &a, err)
                   : store_query(st, "SELECT * FROM security_fim ORDER BY path", NULL, 0,
                                 list_row, &a, err);
    if (rc) {
        if (rc == CORE_E_NOMEM)
            core_err_set(err, CORE_E_NOMEM, "out of memory");
        json_decref(a.items);
        return NULL;
    }
    return json_pack("{s:o}", "items", a.items);
}

/* Replaces the baseline of target (a root or anything under one) with what is there now. */
static int accept_root(struct security_fim *f, const struct fim_root *root, const char *target,
                       const struct fim_list *base, int64_t *changed, struct core_err *err)
{
    struct fim_list cur = {0};
    bool exists = false, incomplete = false;
    size_t budget = FIM_MAX_ENTRIES;
    int rc = walk_root(root->path, NULL, &cur, &exists, &incomplete, &budget);
    if (rc) {
        rc = core_err_set(err, rc, "out of memory walking '%s'", root->path);
        goto out;
    }
    if (incomplete) {
        rc = core_err_set(err, CORE_E_IO, "'%s' could not be read completely; nothing accepted",
                          root->path);
        goto out;
    }
    for (size_t i = first_under(base, target); i < base->n; i++) {
        if (strncmp(base->v[i].path, target, strlen(target)) != 0)
            break;
        if (!under(base->v[i].path, target))
            continue;
        if ((rc = row_delete(f->st, base->v[i].path, err)))
            goto out;
        (*changed)++;
    }
    for (size_t i = 0; i < cur.n; i++) {
        if (!under(cur.v[i].path, target))
            continue;
        if ((rc = row_insert(f->st, &cur.v[i], root->bundle ? "bundle" : "path", err)))
            goto out;
        (*changed)++;
    }
out:
    list_release(&cur);
    return rc;
}

/* Drops the raised keys ("change|path|...") of paths at or under target (NULL: all). */
static void forget_raised(struct security_fim *f, const char *target)
{
    const char *k;
    json_t *v;
    void *tmp;
    size_t n = target ? strlen(target) : 0;
    json_object_foreach_safe (f->raised, tmp, k, v) {
        const char *p = strchr(k, '|');
        if (!target || (p && strncmp(p + 1, target, n) == 0 && (p[1 + n] == '|' || p[1 + n] == '/')))
            json_object_del(f->raised, k);
    }
}

int security_fim_accept(struct security_fim *f, const struct catalog_actor *actor,
                        const char *path, struct core_err *err)
{
    struct fim_list base = {0};
    struct fim_root *roots = NULL;
    size_t nroots = 0;
    char *target = NULL;
    int64_t changed = 0;
    bool in_txn = false;
    if (path && !path[0])
        return core_err_set(err, CORE_E_INVAL, "an empty path to accept");
    if (path && !(target = absolute(path)))
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    pthread_mutex_lock(&f->scan_mu);
    int rc = load_baseline(f->st, &base, err);
    if (rc)
        goto out;
    if ((rc = collect_roots(f, &base, &roots, &nroots))) {
        rc = core_err_set(err, rc, "out of memory");
        goto out;
    }
    bool found = false;
    if ((rc = store_txn_begin(f->st, err)))
        goto out;
    in_txn = true;
    for (size_t i = 0; i < nroots && !rc; i++) {
        const char *t = target ? target : roots[i].path;
        if (!under(t, roots[i].path))
            continue;
        found = true;
        rc = accept_root(f, &roots[i], t, &base, &changed, err);
    }
    if (rc)
        goto out;
    if (!found) {
        rc = core_err_set(err, CORE_E_NOTFOUND,
                          "'%s' is not watched (list the baseline with GET "
                          "/api/v1/security/fim/baseline)",
                          target ? target : "");
        goto out;
    }
    char detail[200];
    snprintf(detail, sizeof(detail), "%lld baseline rows replaced", (long long)changed);
    struct store_audit_event ev = {.actor = actor && actor->user ? actor->user : "system",
                                   .action = "security.fim.accept",
                                   .kind = "fim",
                                   .object = target ? target : "*",
                                   .detail = detail};
    if ((rc = store_audit_append(f->st, &ev, err)))
        goto out;
    rc = store_txn_commit(f->st, err);
    in_txn = false;
    if (!rc) {
        /* what was raised for accepted paths is raised again if it changes once more */
        forget_raised(f, target);
        log_info("security", "file integrity baseline accepted",
                 LOG_STR("path", target ? target : "*"), LOG_INT("rows", changed));
    }
out:
    if (in_txn)
        store_txn_rollback(f->st);
    pthread_mutex_unlock(&f->scan_mu);
    core_free(roots);
    core_free(target);
    list_release(&base);
    return rc;
}
