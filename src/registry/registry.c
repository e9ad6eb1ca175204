/* The OCI registry: content-addressed blob storage on disk, repository state in the store, rights
 * from the catalog, and the /v2 HTTP protocol on top. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "registry/registry.h"
#include "registry/registry_int.h"
#include "store/store.h"

#define GC_GRACE_MS (60 * 60 * 1000)
#define UPLOAD_TTL_MS (24 * 60 * 60 * 1000)
#define TAGS_PAGE_MAX 10000
#define UUID_HEX 32

#define REGISTRY_KNOWN 32

struct registry {
    struct store *st;
    struct catalog *cat;
    char root[960];
    char blobs[1000];
    char uploads[1000];
    /* Writers (blob commits, manifest puts) hold it shared; the GC sweep holds it exclusive, so a
     * blob cannot vanish between "it exists" and "a manifest now references it". */
    pthread_rwlock_t gc_lock;
    int64_t gc_grace_ms;
    int64_t upload_ttl_ms;
    /* uploads whose content hash is already known (see known_put) */
    pthread_mutex_t known_lock;
    struct {
        char uuid[40];
        char hex[65];
        uint64_t size;
    } known[REGISTRY_KNOWN];
    int known_next;
    registry_gate_fn gate;
    void *gate_arg;
};

void registry_set_gate(struct registry *reg, registry_gate_fn fn, void *arg)
{
    reg->gate = fn;
    reg->gate_arg = arg;
}

/* The outcome of one operation: a core error plus the spec's error code and HTTP status. */
struct op {
    struct core_err err;
    const char *oci; /* NULL: derive from err.code */
    int status;
    char detail[REGISTRY_DIGEST_LEN + 1]; /* digest the error is about, if any */
};

#define OP_FAIL(o, st_, oci_, code, ...)                                                           \
    ((o)->status = (st_), (o)->oci = (oci_), core_err_set(&(o)->err, (code), __VA_ARGS__))

/* ---- small helpers ---------------------------------------------------------------------- */

static void now_text(int64_t ms, char out[32])
{
    core_time_format(ms, out, 32);
}

static void blob_path(const struct registry *reg, const char *digest, char *out, size_t outsz)
{
    const char *hex = digest + 7;
    snprintf(out, outsz, "%s/sha256/%.2s/%.64s", reg->blobs, hex, hex);
}

static bool uuid_valid(const char *u)
{
    if (!u || strlen(u) != UUID_HEX)
        return false;
    for (const char *p = u; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* An INSERT whose unique violation means "already there". */
static int exec_ignore_dup(struct store *st, const char *sql, const struct store_value *p, size_t n,
                           struct core_err *err)
{
    int rc = store_exec(st, sql, p, n, NULL, err);
    if (rc == CORE_E_CONFLICT) {
        core_err_clear(err);
        rc = 0;
    }
    return rc;
}

static int count_rows(struct store *st, const char *sql, const struct store_value *p, size_t n,
                      int64_t *out, struct core_err *err)
{
    *out = 0;
    return store_query_int(st, sql, p, n, out, err);
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* SHA-256 of a whole file (from offset 0). */
static int hash_fd(int fd, char hex[65], uint64_t *size, struct core_err *err)
{
    static const char digits[] = "0123456789abcdef";
    int rc = 0;
    char *buf = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint64_t total = 0;
    if (!ctx || !(buf = core_malloc(64 * 1024))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = core_err_set(err, CORE_E_INTERNAL, "sha256 unavailable");
        goto out;
    }
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, 64 * 1024, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = core_err_set(err, CORE_E_IO, "cannot read the upload: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)r);
        off += r;
        total += (uint64_t)r;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = 0;
    *size = total;
out:
    EVP_MD_CTX_free(ctx);
    core_free(buf);
    return rc;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

struct registry *registry_new(struct store *st, struct catalog *cat, const char *data_dir,
                              struct core_err *err)
{
    struct registry *reg = NULL;
    if (!st || !cat || !data_dir) {
        core_err_set(err, CORE_E_INVAL, "registry needs a store, a catalog and a data dir");
        return NULL;
    }
    reg = core_calloc(1, sizeof(*reg));
    if (!reg) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    reg->st = st;
    reg->cat = cat;
    reg->gc_grace_ms = GC_GRACE_MS;
    reg->upload_ttl_ms = UPLOAD_TTL_MS;
    if ((size_t)snprintf(reg->root, sizeof(reg->root), "%s/registry", data_dir) >=
        sizeof(reg->root)) {
        core_err_set(err, CORE_E_INVAL, "data dir path is too long");
        core_free(reg);
        return NULL;
    }
    snprintf(reg->blobs, sizeof(reg->blobs), "%s/blobs", reg->root);
    snprintf(reg->uploads, sizeof(reg->uploads), "%s/uploads", reg->root);
    char sha[1200];
    snprintf(sha, sizeof(sha), "%s/sha256", reg->blobs);
    if (core_mkdir_p(sha, 0700, err) || core_mkdir_p(reg->uploads, 0700, err)) {
        core_err_wrap(err, "creating the registry storage");
        core_free(reg);
        return NULL;
    }
    if (pthread_rwlock_init(&reg->gc_lock, NULL)) {
        core_err_set(err, CORE_E_INTERNAL, "cannot create the registry lock");
        core_free(reg);
        return NULL;
    }
    pthread_mutex_init(&reg->known_lock, NULL);
    return reg;
}

void registry_free(struct registry *reg)
{
    if (!reg)
        return;
    pthread_rwlock_destroy(&reg->gc_lock);
    pthread_mutex_destroy(&reg->known_lock);
    core_free(reg);
}

void registry_set_gc_grace(struct registry *reg, int64_t grace_ms, int64_t upload_ttl_ms)
{
    reg->gc_grace_ms = grace_ms;
    reg->upload_ttl_ms = upload_ttl_ms;
}

/* ---- rights ------------------------------------------------------------------------------ */

/* Checks the name and the actor's right to read (push=false) or write the repository. */
static int check_access(struct registry *reg, const struct catalog_actor *actor, const char *repo,
                        bool push, struct op *o)
{
    if (!actor)
        return OP_FAIL(o, 401, "UNAUTHORIZED", CORE_E_AUTH, "authentication required");
    if (!registry_name_valid(repo))
        return OP_FAIL(o, 400, "NAME_INVALID", CORE_E_INVAL,
                       "invalid repository name: use <service>[/<name>] of "
                       "lowercase DNS labels");
    char svc[64];
    size_t n = strcspn(repo, "/");
    memcpy(svc, repo, n); /* a valid name's first label is at most 63 chars */
    svc[n] = 0;
    struct catalog_service s = {0};
    struct core_err cerr = {0};
    int rc = catalog_service_get(reg->cat, svc, &s, &cerr);
    if (rc == CORE_E_NOTFOUND) {
        rc =
            OP_FAIL(o, 404, "NAME_UNKNOWN", CORE_E_NOTFOUND, "no service '%s' in the catalog", svc);
        goto out;
    }
    if (rc) {
        o->err = cerr;
        goto out;
    }
    if (push && !actor->is_admin && !catalog_actor_in_team(actor, s.team))
        rc = OP_FAIL(o, 403, "DENIED", CORE_E_PERM,
                     "only team '%s' may push to or delete from '%s'", s.team, repo);
out:
    catalog_service_release(&s);
    return rc;
}

/* ---- blobs ------------------------------------------------------------------------------- */

static bool blob_on_disk(struct registry *reg, const char *digest)
{
    char path[1300];
    blob_path(reg, digest, path, sizeof(path));
    return access(path, F_OK) == 0;
}

/* Whether the blob is stored (row and file). */
static int blob_exists(struct registry *reg, const char *digest, bool *yes, struct core_err *err)
{
    int64_t n = 0;
    struct store_value p[] = {STORE_V_TEXT(digest)};
    int rc =
        count_rows(reg->st, "SELECT COUNT(*) FROM registry_blobs WHERE digest = ?", p, 1, &n, err);
    *yes = !rc && n > 0 && blob_on_disk(reg, digest);
    return rc;
}

/* Whether repo may serve the blob: linked to it (uploaded, mounted, referenced) or a manifest. */
static int blob_linked(struct registry *reg, const char *repo, const char *digest, bool *yes,
                       struct core_err *err)
{
    int64_t n = 0;
    struct store_value p[] = {STORE_V_TEXT(repo), STORE_V_TEXT(digest), STORE_V_TEXT(repo),
                              STORE_V_TEXT(digest)};
    int rc = count_rows(reg->st,
                        "SELECT (SELECT COUNT(*) FROM registry_repo_blobs WHERE repo = ? AND "
                        "digest = ?) + (SELECT COUNT(*) FROM registry_manifests WHERE repo = ? "
                        "AND digest = ?)",
                        p, 4, &n, err);
    *yes = !rc && n > 0;
    return rc;
}

static int blob_link(struct registry *reg, const char *repo, const char *digest,
                     struct core_err *err)
{
    struct store_value p[] = {STORE_V_TEXT(repo), STORE_V_TEXT(digest)};
    return exec_ignore_dup(reg->st, "INSERT INTO registry_repo_blobs (repo, digest) VALUES (?, ?)",
                           p, 2, err);
}

/* Records the blob (or refreshes its age, so a GC does not take a blob just re-pushed). */
static int blob_record(struct registry *reg, const char *digest, uint64_t size,
                       struct core_err *err)
{
    int64_t now = core_now_ms();
    struct store_value p[] = {STORE_V_TEXT(digest), STORE_V_INT((int64_t)size), STORE_V_INT(now)};
    int rc = store_exec(reg->st,
                        "INSERT INTO registry_blobs (digest, size, created_ms) VALUES (?, ?, ?)", p,
                        3, NULL, err);
    if (rc == CORE_E_CONFLICT) {
        core_err_clear(err);
        struct store_value u[] = {STORE_V_INT(now), STORE_V_TEXT(digest)};
        rc = store_exec(reg->st, "UPDATE registry_blobs SET created_ms = ? WHERE digest = ?", u, 2,
                        NULL, err);
    }
    return rc;
}

/* Moves a verified temp file into the blob store (or drops it when the blob is already there: one
 * copy per blob) and records it. Caller holds gc_lock shared. */
static int blob_commit_locked(struct registry *reg, const char *repo, const char *tmp,
                              const char *digest, uint64_t size, struct core_err *err)
{
    char path[1300], dir[1300];
    blob_path(reg, digest, path, sizeof(path));
    snprintf(dir, sizeof(dir), "%s/sha256/%.2s", reg->blobs, digest + 7);
    int rc = 0;
    if (access(path, F_OK) == 0) {
        unlink(tmp);
    } else {
        if ((rc = core_mkdir_p(dir, 0700, err)))
            goto out;
        if (rename(tmp, path)) {
            rc = core_err_set(err, CORE_E_IO, "cannot store blob: %s", strerror(errno));
            unlink(tmp);
            goto out;
        }
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if ((rc = blob_record(reg, digest, size, err)))
        goto out;
    if (repo)
        rc = blob_link(reg, repo, digest, err);
out:
    return rc;
}

/* Creates an upload file uploads/<uuid>. returns: 0 and *fd (read-write). */
static int upload_file_create(struct registry *reg, char uuid[UUID_HEX + 1], char *path,
                              size_t pathsz, int *fd, struct core_err *err)
{
    if (core_random_hex(uuid, UUID_HEX / 2))
        return core_err_set(err, CORE_E_IO, "no randomness for an upload id");
    snprintf(path, pathsz, "%s/%s", reg->uploads, uuid);
    *fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (*fd < 0)
        return core_err_set(err, CORE_E_IO, "cannot create an upload: %s", strerror(errno));
    return 0;
}

/* Appends a request body (in memory or spooled) at the end of fd. */
static int append_body(int fd, const char *body, const char *body_path, size_t len,
                       struct core_err *err)
{
    int rc = 0, in = -1;
    char *buf = NULL;
    if (lseek(fd, 0, SEEK_END) < 0)
        return core_err_set(err, CORE_E_IO, "cannot seek the upload: %s", strerror(errno));
    if (!body_path) {
        if (len && write_all(fd, body, len))
            rc = core_err_set(err, CORE_E_IO, "cannot write the upload: %s", strerror(errno));
        return rc;
    }
    in = open(body_path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return core_err_set(err, CORE_E_IO, "cannot read the request body: %s", strerror(errno));
    /* The spooled body and the upload live on the same file system: let the kernel move the
     * bytes (no round trip through user space); fall back to read/write where it can't. */
    size_t moved = 0;
    while (moved < len) {
        ssize_t c = copy_file_range(in, NULL, fd, NULL, len - moved, 0);
        if (c < 0 && errno == EINTR)
            continue;
        if (c <= 0)
            break;
        moved += (size_t)c;
    }
    if (moved == len)
        goto out;
    if (moved && lseek(in, (off_t)moved, SEEK_SET) < 0) {
        rc = core_err_set(err, CORE_E_IO, "cannot seek the request body: %s", strerror(errno));
        goto out;
    }
    len -= moved;
    if (!(buf = core_malloc(64 * 1024))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    size_t left = len;
    while (left) {
        ssize_t r = read(in, buf, left < 64 * 1024 ? left : 64 * 1024);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = core_err_set(err, CORE_E_IO, "short request body");
            goto out;
        }
        if (write_all(fd, buf, (size_t)r)) {
            rc = core_err_set(err, CORE_E_IO, "cannot write the upload: %s", strerror(errno));
            goto out;
        }
        left -= (size_t)r;
    }
out:
    core_free(buf);
    if (in >= 0)
        close(in);
    return rc;
}

/* Verifies the upload in fd/path against digest and moves it into the store; on a mismatch the file
 * is removed and nothing is kept. */
static int upload_finish(struct registry *reg, const char *repo, int fd, const char *path,
                         const char *digest, const char *known_hex, struct op *o)
{
    char hex[65];
    uint64_t size = 0;
    int rc = 0;
    struct stat sb;
    if (known_hex && fstat(fd, &sb) == 0) {
        /* hashed by the server as the bytes arrived: no second pass over the file */
        snprintf(hex, sizeof(hex), "%s", known_hex);
        size = (uint64_t)sb.st_size;
    } else {
        rc = hash_fd(fd, hex, &size, &o->err);
    }
    if (rc) {
        unlink(path);
        return rc;
    }
    if (strcmp(hex, digest + 7) != 0) {
        unlink(path);
        snprintf(o->detail, sizeof(o->detail), "%s", digest);
        return OP_FAIL(o, 400, "DIGEST_INVALID", CORE_E_INVAL,
                       "content does not match digest (it is sha256:%s)", hex);
    }
    if (fsync(fd)) {
        unlink(path);
        return core_err_set(&o->err, CORE_E_IO, "cannot sync the upload: %s", strerror(errno));
    }
    pthread_rwlock_rdlock(&reg->gc_lock);
    rc = blob_commit_locked(reg, repo, path, digest, size, &o->err);
    pthread_rwlock_unlock(&reg->gc_lock);
    return rc;
}

/* Stores a complete blob from memory or a file in one go. */
/* Moves a spooled request body over the (empty) upload file at path: same file system, so a
 * rename, not a copy. Reopens *fd on the moved file. returns: 0, or -1 when the caller should
 * copy instead. */
static int adopt_spool(const char *src_path, const char *path, int *fd)
{
    if (!src_path || rename(src_path, path) != 0)
        return -1;
    int nfd = open(path, O_RDWR | O_CLOEXEC);
    if (nfd < 0)
        return -1;
    if (*fd >= 0)
        close(*fd);
    *fd = nfd;
    return 0;
}

static int blob_put_whole(struct registry *reg, const char *repo, const void *data,
                          const char *src_path, size_t len, const char *known_hex,
                          const char *digest, struct op *o)
{
    char uuid[UUID_HEX + 1], path[1300];
    int fd = -1;
    int rc = upload_file_create(reg, uuid, path, sizeof(path), &fd, &o->err);
    if (rc)
        return rc;
    if (known_hex && adopt_spool(src_path, path, &fd) == 0) {
        rc = upload_finish(reg, repo, fd, path, digest, known_hex, o);
        goto out;
    }
    if ((rc = append_body(fd, data, src_path, len, &o->err))) {
        unlink(path);
        goto out;
    }
    rc = upload_finish(reg, repo, fd, path, digest, NULL, o);
out:
    close(fd);
    return rc;
}

/* Hashes known for uploads whose whole content came from one spooled body (uuid → sha256), so
 * the final PUT need not read the file again. Small and best effort: a miss just rehashes. */
static void known_put(struct registry *reg, const char *uuid, const char *hex, uint64_t size)
{
    pthread_mutex_lock(&reg->known_lock);
    int slot = reg->known_next++ % REGISTRY_KNOWN;
    snprintf(reg->known[slot].uuid, sizeof(reg->known[slot].uuid), "%s", uuid);
    snprintf(reg->known[slot].hex, sizeof(reg->known[slot].hex), "%s", hex);
    reg->known[slot].size = size;
    pthread_mutex_unlock(&reg->known_lock);
}

static bool known_get(struct registry *reg, const char *uuid, uint64_t size, char hex[65])
{
    bool hit = false;
    pthread_mutex_lock(&reg->known_lock);
    for (int i = 0; i < REGISTRY_KNOWN && !hit; i++) {
        if (strcmp(reg->known[i].uuid, uuid) == 0) {
            hit = reg->known[i].size == size;
            if (hit)
                snprintf(hex, 65, "%s", reg->known[i].hex);
            reg->known[i].uuid[0] = 0;
        }
    }
    pthread_mutex_unlock(&reg->known_lock);
    return hit;
}

/* ---- manifests -------------------------------------------------------------------------- */

/* A text column, or "" when NULL. */
static const char *row_text(const struct store_row *row, const char *name)
{
    const char *s = store_row_text(row, name);
    return s ? s : "";
}

struct mrow {
    char digest[REGISTRY_DIGEST_LEN + 1];
    char media_type[REGISTRY_MEDIA_TYPE_MAX];
    int64_t size;
    bool found;
};

static int mrow_cb(void *arg, const struct store_row *row)
{
    struct mrow *m = arg;
    snprintf(m->digest, sizeof(m->digest), "%s", row_text(row, "digest"));
    snprintf(m->media_type, sizeof(m->media_type), "%s", row_text(row, "media_type"));
    m->size = store_row_int(row, "size");
    m->found = true;
    return 0;
}

/* Resolves a tag or digest of repo to its manifest. */
static int manifest_resolve(struct registry *reg, const char *repo, const char *ref, struct mrow *m,
                            struct op *o)
{
    memset(m, 0, sizeof(*m));
    struct store_value p[] = {STORE_V_TEXT(repo), STORE_V_TEXT(ref)};
    int rc;
    if (strchr(ref, ':')) {
        if (!registry_digest_valid(ref))
            return OP_FAIL(o, 400, "DIGEST_INVALID", CORE_E_INVAL, "invalid digest '%s'", ref);
        rc = store_query(reg->st,
                         "SELECT digest, media_type, size FROM registry_manifests "
                         "WHERE repo = ? AND digest = ?",
                         p, 2, mrow_cb, m, &o->err);
    } else {
        if (!registry_tag_valid(ref))
            return OP_FAIL(o, 400, "MANIFEST_INVALID", CORE_E_INVAL, "invalid tag");
        rc = store_query(reg->st,
                         "SELECT m.digest AS digest, m.media_type AS media_type, m.size AS size "
                         "FROM registry_tags t JOIN registry_manifests m ON m.repo = t.repo AND "
                         "m.digest = t.digest WHERE t.repo = ? AND t.tag = ?",
                         p, 2, mrow_cb, m, &o->err);
    }
    if (rc)
        return rc;
    if (!m->found || !registry_digest_valid(m->digest))
        return OP_FAIL(o, 404, "MANIFEST_UNKNOWN", CORE_E_NOTFOUND,
                       "manifest '%s' not found in '%s'", ref, repo);
    return 0;
}

/* Validates and stores a manifest (exact bytes) of repo; tags it when ref is a tag. The caller has
 * checked the rights. */
static int manifest_put(struct registry *reg, const char *repo, const char *media_type,
                        const void *data, size_t len, const char *ref,
                        char digest_out[REGISTRY_DIGEST_LEN + 1],
                        struct registry_manifest_info *info, struct op *o)
{
    int rc = registry_manifest_parse(media_type, data, len, info, &o->err);
    bool locked = false, in_txn = false;
    if (rc == CORE_E_TOO_BIG)
        return OP_FAIL(o, 413, "SIZE_INVALID", rc, "manifest is larger than %d bytes",
                       REGISTRY_MANIFEST_MAX);
    if (rc == CORE_E_INVAL || rc == CORE_E_UNSUPPORTED) {
        o->status = 400;
        o->oci = "MANIFEST_INVALID";
        return rc;
    }
    if (rc)
        return rc;
    char digest[REGISTRY_DIGEST_LEN + 1] = "sha256:";
    core_sha256_hex(data, len, digest + 7);
    const char *tag = NULL;
    if (ref && strchr(ref, ':')) {
        if (!registry_digest_valid(ref) || strcmp(ref, digest) != 0) {
            snprintf(o->detail, sizeof(o->detail), "%s", digest);
            return OP_FAIL(o, 400, "DIGEST_INVALID", CORE_E_INVAL,
                           "manifest digest is %s, not the reference", digest);
        }
    } else if (ref) {
        if (!registry_tag_valid(ref))
            return OP_FAIL(o, 400, "MANIFEST_INVALID", CORE_E_INVAL,
                           "invalid tag: use [A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
        tag = ref;
    }
    pthread_rwlock_rdlock(&reg->gc_lock);
    locked = true;
    for (size_t i = 0; i < info->nblobs; i++) {
        bool yes = false;
        if ((rc = blob_exists(reg, info->blobs[i], &yes, &o->err)))
            goto out;
        if (!yes) {
            snprintf(o->detail, sizeof(o->detail), "%s", info->blobs[i]);
            rc = OP_FAIL(o, 400, "MANIFEST_BLOB_UNKNOWN", CORE_E_NOTFOUND,
                         "blob %s is not in the registry", info->blobs[i]);
            goto out;
        }
    }
    for (size_t i = 0; i < info->nmanifests; i++) {
        int64_t n = 0;
        struct store_value p[] = {STORE_V_TEXT(repo), STORE_V_TEXT(info->manifests[i])};
        if ((rc = count_rows(reg->st,
                             "SELECT COUNT(*) FROM registry_manifests WHERE repo = ? AND "
                             "digest = ?",
                             p, 2, &n, &o->err)))
            goto out;
        if (!n || !blob_on_disk(reg, info->manifests[i])) {
            snprintf(o->detail, sizeof(o->detail), "%s", info->manifests[i]);
            rc = OP_FAIL(o, 400, "MANIFEST_BLOB_UNKNOWN", CORE_E_NOTFOUND,
                         "manifest %s is not in '%s'", info->manifests[i], repo);
            goto out;
        }
    }
    /* the bytes themselves, as a blob */
    if (!blob_on_disk(reg, digest)) {
        char uuid[UUID_HEX + 1], path[1300];
        int fd = -1;
        if ((rc = upload_file_create(reg, uuid, path, sizeof(path), &fd, &o->err)))
            goto out;
        if (write_all(fd, data, len) || fsync(fd)) {
            rc = core_err_set(&o->err, CORE_E_IO, "cannot write the manifest: %s", strerror(errno));
            close(fd);
            unlink(path);
            goto out;
        }
        close(fd);
        if ((rc = blob_commit_locked(reg, NULL, path, digest, len, &o->err)))
            goto out;
    } else if ((rc = blob_record(reg, digest, len, &o->err))) {
        goto out;
    }
    if ((rc = store_txn_begin(reg->st, &o->err)))
        goto out;
    in_txn = true;
    int64_t now = core_now_ms();
    char now_s[32];
    now_text(now, now_s);
    struct store_value mp[] = {
        STORE_V_TEXT(repo),
        STORE_V_TEXT(digest),
        STORE_V_TEXT(info->media_type),
        STORE_V_TEXT(info->artifact_type[0] ? info->artifact_type : NULL),
        STORE_V_TEXT(info->subject[0] ? info->subject : NULL),
        STORE_V_TEXT(info->annotations),
        STORE_V_INT((int64_t)len),
        STORE_V_INT(now),
        STORE_V_TEXT(now_s),
    };
    if ((rc = exec_ignore_dup(reg->st,
                              "INSERT INTO registry_manifests (repo, digest, media_type, "
                              "artifact_type, subject, annotations, size, created_ms, created_at)"
                              " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              mp, 9, &o->err)))
        goto out;
    for (size_t k = 0; k < 2; k++) {
        size_t n = k ? info->nmanifests : info->nblobs;
        for (size_t i = 0; i < n; i++) {
            const char *d = k ? info->manifests[i] : info->blobs[i];
            struct store_value rp[] = {STORE_V_TEXT(repo), STORE_V_TEXT(digest), STORE_V_TEXT(d)};
            if ((rc = exec_ignore_dup(reg->st,
                                      "INSERT INTO registry_manifest_refs (repo, manifest, "
                                      "digest) VALUES (?, ?, ?)",
                                      rp, 3, &o->err)))
                goto out;
            if (!k && (rc = blob_link(reg, repo, d, &o->err)))
                goto out;
        }
    }
    if (tag) {
        struct store_value dp[] = {STORE_V_TEXT(repo), STORE_V_TEXT(tag)};
        struct store_value tp[] = {STORE_V_TEXT(repo), STORE_V_TEXT(tag), STORE_V_TEXT(digest),
                                   STORE_V_TEXT(now_s)};
        if ((rc = store_exec(reg->st, "DELETE FROM registry_tags WHERE repo = ? AND tag = ?", dp, 2,
                             NULL, &o->err)) ||
            (rc = store_exec(reg->st,
                             "INSERT INTO registry_tags (repo, tag, digest, updated_at) "
                             "VALUES (?, ?, ?, ?)",
                             tp, 4, NULL, &o->err)))
            goto out;
    }
    rc = store_txn_commit(reg->st, &o->err);
    in_txn = false;
    if (!rc)
        memcpy(digest_out, digest, sizeof(digest));
out:
    if (in_txn)
        store_txn_rollback(reg->st);
    if (locked)
        pthread_rwlock_unlock(&reg->gc_lock);
    return rc;
}

static int manifest_delete(struct registry *reg, const char *repo, const char *ref, struct op *o)
{
    int64_t changes = 0;
    int rc;
    if (!strchr(ref, ':')) {
        if (!registry_tag_valid(ref))
            return OP_FAIL(o, 400, "MANIFEST_INVALID", CORE_E_INVAL, "invalid tag");
        struct store_value p[] = {STORE_V_TEXT(repo), STORE_V_TEXT(ref)};
        rc = store_exec(reg->st, "DELETE FROM registry_tags WHERE repo = ? AND tag = ?", p, 2,
                        &changes, &o->err);
        if (!rc && !changes)
            rc = OP_FAIL(o, 404, "MANIFEST_UNKNOWN", CORE_E_NOTFOUND, "no tag '%s' in '%s'", ref,
                         repo);
        return rc;
    }
    if (!registry_digest_valid(ref))
        return OP_FAIL(o, 400, "DIGEST_INVALID", CORE_E_INVAL, "invalid digest");
    struct store_value p[] = {STORE_V_TEXT(repo), STORE_V_TEXT(ref)};
    if ((rc = store_txn_begin(reg->st, &o->err)))
        return rc;
    if ((rc = store_exec(reg->st, "DELETE FROM registry_manifests WHERE repo = ? AND digest = ?", p,
                         2, &changes, &o->err)))
        goto out;
    if (!changes) {
        rc = OP_FAIL(o, 404, "MANIFEST_UNKNOWN", CORE_E_NOTFOUND, "manifest not found");
        goto out;
    }
    if ((rc = store_exec(reg->st,
                         "DELETE FROM registry_manifest_refs WHERE repo = ? AND manifest = ?", p, 2,
                         NULL, &o->err)) ||
        (rc = store_exec(reg->st, "DELETE FROM registry_tags WHERE repo = ? AND digest = ?", p, 2,
                         NULL, &o->err)))
        goto out;
    rc = store_txn_commit(reg->st, &o->err);
    return rc;
out:
    store_txn_rollback(reg->st);
    return rc;
}

/* ---- HTTP -------------------------------------------------------------------------------- */

struct hctx {
    struct registry *reg;
    const struct registry_request *req;
    struct registry_response *resp;
    struct op op;
    char name[REGISTRY_NAME_MAX + 1];
    char ref[160];
    int nomem; /* set when building the response failed for lack of memory */
};

static void hdr(struct hctx *h, const char *name, const char *fmt, ...) CORE_PRINTF(3, 4);
static void hdr(struct hctx *h, const char *name, const char *fmt, ...)
{
    struct registry_response *r = h->resp;
    for (int i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->headers[i].value, sizeof(r->headers[i].value), fmt, ap);
            va_end(ap);
            return;
        }
    if (r->nheaders >= REGISTRY_MAX_HEADERS)
        return;
    snprintf(r->headers[r->nheaders].name, sizeof(r->headers[0].name), "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->headers[r->nheaders].value, sizeof(r->headers[0].value), fmt, ap);
    va_end(ap);
    r->nheaders++;
}

static const char *req_header(struct hctx *h, const char *name)
{
    return h->req->header ? h->req->header(h->req->header_arg, name) : NULL;
}

/* Query parameter into out; false when absent or unusable. */
static bool query_get(struct hctx *h, const char *key, char *out, size_t outsz)
{
    return h->req->query && core_form_get(h->req->query, key, out, outsz) == 0;
}

static void body_add(struct hctx *h, int rc)
{
    if (rc == CORE_E_NOMEM)
        h->nomem = 1;
}

static void reply_error(struct hctx *h, int status, const char *code, const char *msg,
                        const char *detail)
{
    struct registry_response *r = h->resp;
    r->status = status;
    core_buf_clear(&r->body);
    body_add(h, core_buf_adds(&r->body, "{\"errors\":[{\"code\":"));
    body_add(h, core_buf_add_json_str(&r->body, code));
    body_add(h, core_buf_adds(&r->body, ",\"message\":"));
    body_add(h, core_buf_add_json_str(&r->body, msg));
    body_add(h, core_buf_adds(&r->body, ",\"detail\":"));
    if (detail && detail[0]) {
        body_add(h, core_buf_adds(&r->body, "{\"digest\":"));
        body_add(h, core_buf_add_json_str(&r->body, detail));
        body_add(h, core_buf_adds(&r->body, "}"));
    } else {
        body_add(h, core_buf_adds(&r->body, "null"));
    }
    body_add(h, core_buf_adds(&r->body, "}]}"));
    hdr(h, "Content-Type", "application/json");
    if (status == 401)
        hdr(h, "WWW-Authenticate", "Basic realm=\"pave\"");
}

/* Turns a failed operation into the spec's error document. */
static void reply_op(struct hctx *h)
{
    struct op *o = &h->op;
    if (o->err.code == CORE_E_NOMEM)
        h->nomem = 1;
    if (o->oci) {
        reply_error(h, o->status, o->oci, o->err.msg, o->detail);
        return;
    }
    log_error("registry", "request failed", LOG_STR("error", o->err.msg),
              LOG_STR("path", h->req->path));
    reply_error(h, 500, "UNKNOWN", "internal error", NULL);
}

static void reply_empty(struct hctx *h, int status)
{
    h->resp->status = status;
    core_buf_clear(&h->resp->body);
}

/* GET /v2/ */
static void serve_base(struct hctx *h)
{
    reply_empty(h, 200);
    body_add(h, core_buf_adds(&h->resp->body, "{}"));
    hdr(h, "Content-Type", "application/json");
}

/* Serves a stored blob (all or a Range) from the file store. */
static void send_blob(struct hctx *h, const char *digest, const char *content_type, bool ranges)
{
    char path[1300];
    blob_path(h->reg, digest, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        if (fd >= 0)
            close(fd);
        reply_error(h, 404, content_type ? "MANIFEST_UNKNOWN" : "BLOB_UNKNOWN",
                    "content is missing from the store", digest);
        return;
    }
    uint64_t size = (uint64_t)sb.st_size, start = 0, len = size;
    const char *range = ranges ? req_header(h, "Range") : NULL;
    int status = 200;
    if (range) {
        int rc = registry_range_parse(range, size, &start, &len);
        if (rc == CORE_E_TOO_BIG) {
            close(fd);
            reply_error(h, 416, "BLOB_UNKNOWN", "range not satisfiable", digest);
            hdr(h, "Content-Range", "bytes */%llu", (unsigned long long)size);
            return;
        }
        if (rc == 0) {
            status = 206;
            hdr(h, "Content-Range", "bytes %llu-%llu/%llu", (unsigned long long)start,
                (unsigned long long)(start + len - 1), (unsigned long long)size);
        } else {
            start = 0;
            len = size;
        }
    }
    reply_empty(h, status);
    hdr(h, "Content-Type", "%s", content_type ? content_type : "application/octet-stream");
    hdr(h, "Docker-Content-Digest", "%s", digest);
    if (ranges)
        hdr(h, "Accept-Ranges", "bytes");
    hdr(h, "ETag", "\"%s\"", digest);
    h->resp->has_file = true;
    h->resp->file_fd = fd;
    h->resp->file_offset = start;
    h->resp->file_len = len;
}

static void serve_blob(struct hctx *h, const char *method)
{
    const char *digest = h->ref;
    bool push = strcmp(method, "DELETE") == 0;
    if (check_access(h->reg, h->req->actor, h->name, push, &h->op))
        return reply_op(h);
    if (!registry_digest_valid(digest))
        return reply_error(h, 400, "DIGEST_INVALID", "invalid digest", NULL);
    if (push) {
        int64_t changes = 0;
        struct store_value p[] = {STORE_V_TEXT(h->name), STORE_V_TEXT(digest)};
        if (store_exec(h->reg->st, "DELETE FROM registry_repo_blobs WHERE repo = ? AND digest = ?",
                       p, 2, &changes, &h->op.err))
            return reply_op(h);
        if (!changes)
            return reply_error(h, 404, "BLOB_UNKNOWN", "blob unknown to the repository", digest);
        return reply_empty(h, 202);
    }
    bool yes = false;
    if (blob_linked(h->reg, h->name, digest, &yes, &h->op.err))
        return reply_op(h);
    if (!yes)
        return reply_error(h, 404, "BLOB_UNKNOWN", "blob unknown to the repository", digest);
    send_blob(h, digest, NULL, true);
}

/* Headers describing an upload in progress. */
static void upload_headers(struct hctx *h, const char *uuid, uint64_t size)
{
    hdr(h, "Location", "/v2/%s/blobs/uploads/%s", h->name, uuid);
    hdr(h, "Docker-Upload-UUID", "%s", uuid);
    hdr(h, "Range", "0-%llu", (unsigned long long)(size ? size - 1 : 0));
}

static void blob_created(struct hctx *h, const char *digest)
{
    reply_empty(h, 201);
    hdr(h, "Location", "/v2/%s/blobs/%s", h->name, digest);
    hdr(h, "Docker-Content-Digest", "%s", digest);
}

/* POST ?mount=<digest>[&from=<repo>]: true when it answered 201. */
static bool try_mount(struct hctx *h, const char *digest)
{
    char from[REGISTRY_NAME_MAX + 2];
    bool yes = false;
    struct core_err e = {0};
    if (!registry_digest_valid(digest))
        return false;
    if (query_get(h, "from", from, sizeof(from))) {
        struct op ro = {0};
        /* reading `from` needs only a token, but it must be a repository we know */
        if (check_access(h->reg, h->req->actor, from, false, &ro) ||
            blob_linked(h->reg, from, digest, &yes, &e) || !yes)
            return false;
    }
    pthread_rwlock_rdlock(&h->reg->gc_lock);
    int rc = blob_exists(h->reg, digest, &yes, &e);
    if (!rc && yes) {
        char path[1300];
        int64_t size = 0;
        struct stat sb;
        blob_path(h->reg, digest, path, sizeof(path));
        if (stat(path, &sb) == 0)
            size = sb.st_size;
        rc = blob_record(h->reg, digest, (uint64_t)size, &e);
        if (!rc)
            rc = blob_link(h->reg, h->name, digest, &e);
    }
    pthread_rwlock_unlock(&h->reg->gc_lock);
    if (rc || !yes)
        return false;
    blob_created(h, digest);
    return true;
}

static void serve_upload_start(struct hctx *h)
{
    char digest[REGISTRY_DIGEST_LEN + 8];
    if (check_access(h->reg, h->req->actor, h->name, true, &h->op))
        return reply_op(h);
    if (query_get(h, "mount", digest, sizeof(digest)) && try_mount(h, digest))
        return;
    if (query_get(h, "digest", digest, sizeof(digest))) {
        if (!registry_digest_valid(digest))
            return reply_error(h, 400, "DIGEST_INVALID", "invalid digest", NULL);
        if (blob_put_whole(h->reg, h->name, h->req->body, h->req->body_path, h->req->body_len,
                           h->req->body_sha256, digest, &h->op))
            return reply_op(h);
        return blob_created(h, digest);
    }
    char uuid[UUID_HEX + 1], path[1300];
    int fd = -1;
    if (upload_file_create(h->reg, uuid, path, sizeof(path), &fd, &h->op.err))
        return reply_op(h);
    int64_t now = core_now_ms();
    struct store_value p[] = {STORE_V_TEXT(uuid), STORE_V_TEXT(h->name), STORE_V_INT(now),
                              STORE_V_INT(now)};
    int rc = store_exec(h->reg->st,
                        "INSERT INTO registry_uploads (uuid, repo, created_ms, updated_ms) "
                        "VALUES (?, ?, ?, ?)",
                        p, 4, NULL, &h->op.err);
    if (!rc && h->req->body_len)
        rc = append_body(fd, h->req->body, h->req->body_path, h->req->body_len, &h->op.err);
    struct stat sb;
    uint64_t size = !rc && fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    close(fd);
    if (rc) {
        unlink(path);
        return reply_op(h);
    }
    reply_empty(h, 202);
    upload_headers(h, uuid, size);
}

static void serve_upload(struct hctx *h, const char *method)
{
    const char *uuid = h->ref;
    char path[1300];
    int fd = -1;
    if (check_access(h->reg, h->req->actor, h->name, true, &h->op))
        return reply_op(h);
    int64_t n = 0;
    struct store_value p[] = {STORE_V_TEXT(uuid), STORE_V_TEXT(h->name)};
    if (!uuid_valid(uuid))
        return reply_error(h, 404, "BLOB_UPLOAD_UNKNOWN", "upload unknown", NULL);
    if (count_rows(h->reg->st, "SELECT COUNT(*) FROM registry_uploads WHERE uuid = ? AND repo = ?",
                   p, 2, &n, &h->op.err))
        return reply_op(h);
    snprintf(path, sizeof(path), "%s/%s", h->reg->uploads, uuid);
    if (n)
        fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return reply_error(h, 404, "BLOB_UPLOAD_UNKNOWN", "upload unknown", NULL);
    /* one request at a time per upload: chunks must land in order */
    flock(fd, LOCK_EX);
    struct stat sb;
    uint64_t size = fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    struct store_value dp[] = {STORE_V_TEXT(uuid)};
    if (strcmp(method, "DELETE") == 0) {
        unlink(path);
        store_exec(h->reg->st, "DELETE FROM registry_uploads WHERE uuid = ?", dp, 1, NULL, NULL);
        reply_empty(h, 204);
        goto out;
    }
    if (strcmp(method, "GET") == 0) {
        reply_empty(h, 204);
        upload_headers(h, uuid, size);
        goto out;
    }
    const char *cr = req_header(h, "Content-Range");
    if (cr && (h->req->body_len || strcmp(method, "PATCH") == 0)) {
        uint64_t a, b;
        if (registry_content_range_parse(cr, &a, &b)) {
            reply_error(h, 400, "BLOB_UPLOAD_INVALID", "invalid Content-Range", NULL);
            goto out;
        }
        if (a != size) {
            reply_error(h, 416, "BLOB_UPLOAD_INVALID",
                        "chunk out of order: it must start where the upload ends", NULL);
            upload_headers(h, uuid, size);
            goto out;
        }
        if (b - a + 1 != h->req->body_len) {
            reply_error(h, 400, "BLOB_UPLOAD_INVALID", "Content-Range does not match the body",
                        NULL);
            goto out;
        }
    }
    char digest[REGISTRY_DIGEST_LEN + 8];
    bool is_put = strcmp(method, "PUT") == 0;
    if (is_put &&
        (!query_get(h, "digest", digest, sizeof(digest)) || !registry_digest_valid(digest))) {
        reply_error(h, 400, "DIGEST_INVALID", "PUT needs ?digest=sha256:<hex>", NULL);
        goto out;
    }
    bool adopted = false;
    if (h->req->body_len && size == 0 && h->req->body_sha256 &&
        adopt_spool(h->req->body_path, path, &fd) == 0) {
        /* the new file is complete before anyone else can see it; lock it like the old one */
        flock(fd, LOCK_EX);
        adopted = true;
        known_put(h->reg, uuid, h->req->body_sha256, h->req->body_len);
    } else if (h->req->body_len &&
               append_body(fd, h->req->body, h->req->body_path, h->req->body_len, &h->op.err)) {
        reply_op(h);
        goto out;
    }
    if (!is_put) {
        struct store_value up[] = {STORE_V_INT(core_now_ms()), STORE_V_TEXT(uuid)};
        store_exec(h->reg->st, "UPDATE registry_uploads SET updated_ms = ? WHERE uuid = ?", up, 2,
                   NULL, NULL);
        size = fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        reply_empty(h, 202);
        upload_headers(h, uuid, size);
        goto out;
    }
    char known[65];
    size = fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    bool have = adopted ? (snprintf(known, sizeof(known), "%s", h->req->body_sha256), true)
                        : known_get(h->reg, uuid, size, known);
    int rc = upload_finish(h->reg, h->name, fd, path, digest, have ? known : NULL, &h->op);
    store_exec(h->reg->st, "DELETE FROM registry_uploads WHERE uuid = ?", dp, 1, NULL, NULL);
    if (rc) {
        reply_op(h);
        goto out;
    }
    blob_created(h, digest);
out:
    close(fd);
}

/* Content-Type without parameters. */
static void media_type_of(const char *ct, char *out, size_t outsz)
{
    out[0] = 0;
    if (!ct)
        return;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    if (n >= outsz)
        return;
    memcpy(out, ct, n);
    out[n] = 0;
}

static void serve_manifest_put(struct hctx *h)
{
    char mt[REGISTRY_MEDIA_TYPE_MAX];
    char *data = NULL;
    size_t len = h->req->body_len;
    struct registry_manifest_info info = {0};
    char digest[REGISTRY_DIGEST_LEN + 1];
    if (check_access(h->reg, h->req->actor, h->name, true, &h->op))
        return reply_op(h);
    media_type_of(req_header(h, "Content-Type"), mt, sizeof(mt));
    if (!registry_manifest_type_known(mt, NULL))
        return reply_error(h, 400, "MANIFEST_INVALID",
                           "unsupported manifest media type (Content-Type)", NULL);
    if (len > REGISTRY_MANIFEST_MAX)
        return reply_error(h, 413, "SIZE_INVALID", "manifest is too large", NULL);
    const char *bytes = h->req->body;
    if (h->req->body_path) {
        if (core_file_read(h->req->body_path, REGISTRY_MANIFEST_MAX, &data, &len, &h->op.err)) {
            if (h->op.err.code == CORE_E_TOO_BIG)
                return reply_error(h, 413, "SIZE_INVALID", "manifest is too large", NULL);
            return reply_op(h);
        }
        bytes = data;
    }
    /* image manifests (not referrers such as signatures) ask the guard rails first */
    if (h->reg->gate && strstr(mt, "image.manifest") && bytes &&
        !memmem(bytes, len, "\"subject\"", 9)) {
        char hex[65], dg[80];
        core_sha256_hex(bytes, len, hex);
        snprintf(dg, sizeof(dg), "sha256:%s", hex);
        if (h->reg->gate(h->reg->gate_arg, h->req->actor, h->name, dg, bytes, len, &h->op.err)) {
            reply_error(h, 403, "DENIED", h->op.err.msg, NULL);
            goto out;
        }
    }
    if (manifest_put(h->reg, h->name, mt, bytes, len, h->ref, digest, &info, &h->op)) {
        reply_op(h);
        goto out;
    }
    reply_empty(h, 201);
    hdr(h, "Location", "/v2/%s/manifests/%s", h->name, digest);
    hdr(h, "Docker-Content-Digest", "%s", digest);
    if (info.subject[0])
        hdr(h, "OCI-Subject", "%s", info.subject);
out:
    registry_manifest_info_release(&info);
    core_free(data);
}

static void serve_manifest(struct hctx *h, const char *method)
{
    if (strcmp(method, "PUT") == 0)
        return serve_manifest_put(h);
    bool del = strcmp(method, "DELETE") == 0;
    if (check_access(h->reg, h->req->actor, h->name, del, &h->op))
        return reply_op(h);
    if (del) {
        if (manifest_delete(h->reg, h->name, h->ref, &h->op))
            return reply_op(h);
        return reply_empty(h, 202);
    }
    struct mrow m;
    if (manifest_resolve(h->reg, h->name, h->ref, &m, &h->op))
        return reply_op(h);
    send_blob(h, m.digest, m.media_type, false);
}

struct tags_ctx {
    struct hctx *h;
    int64_t limit;
    int64_t seen;
    char last[REGISTRY_TAG_MAX + 1];
};

static int tag_cb(void *arg, const struct store_row *row)
{
    struct tags_ctx *t = arg;
    const char *tag = store_row_text(row, "tag");
    if (!tag)
        return 0;
    if (t->seen++ >= t->limit)
        return 0;
    struct core_buf *b = &t->h->resp->body;
    if (t->seen > 1)
        body_add(t->h, core_buf_addc(b, ','));
    body_add(t->h, core_buf_add_json_str(b, tag));
    snprintf(t->last, sizeof(t->last), "%s", tag);
    return 0;
}

static void serve_tags(struct hctx *h)
{
    char nbuf[16], last[REGISTRY_TAG_MAX + 2] = "";
    struct tags_ctx t = {.h = h, .limit = TAGS_PAGE_MAX};
    if (check_access(h->reg, h->req->actor, h->name, false, &h->op))
        return reply_op(h);
    if (query_get(h, "n", nbuf, sizeof(nbuf))) {
        char *end;
        long v = strtol(nbuf, &end, 10);
        if (*end || end == nbuf || v < 0)
            return reply_error(h, 400, "UNSUPPORTED", "n must be a non-negative integer", NULL);
        t.limit = v > TAGS_PAGE_MAX ? TAGS_PAGE_MAX : v;
    }
    query_get(h, "last", last, sizeof(last));
    int64_t n = 0;
    struct store_value cp[] = {STORE_V_TEXT(h->name), STORE_V_TEXT(h->name)};
    if (count_rows(h->reg->st,
                   "SELECT (SELECT COUNT(*) FROM registry_manifests WHERE repo = ?) + "
                   "(SELECT COUNT(*) FROM registry_tags WHERE repo = ?)",
                   cp, 2, &n, &h->op.err))
        return reply_op(h);
    if (!n)
        return reply_error(h, 404, "NAME_UNKNOWN", "repository has no manifests", NULL);
    reply_empty(h, 200);
    struct core_buf *b = &h->resp->body;
    body_add(h, core_buf_adds(b, "{\"name\":"));
    body_add(h, core_buf_add_json_str(b, h->name));
    body_add(h, core_buf_adds(b, ",\"tags\":["));
    struct store_value p[] = {STORE_V_TEXT(h->name), STORE_V_TEXT(last), STORE_V_INT(t.limit + 1)};
    if (store_query(h->reg->st,
                    "SELECT tag FROM registry_tags WHERE repo = ? AND tag > ? "
                    "ORDER BY tag "
                    "LIMIT ?",
                    p, 3, tag_cb, &t, &h->op.err))
        return reply_op(h);
    body_add(h, core_buf_adds(b, "]}"));
    hdr(h, "Content-Type", "application/json");
    if (t.seen > t.limit && t.limit > 0) {
        struct core_buf enc;
        core_buf_init(&enc, 1024);
        body_add(h, core_buf_add_urlenc(&enc, t.last));
        hdr(h, "Link", "</v2/%s/tags/list?n=%lld&last=%s>; rel=\"next\"", h->name,
            (long long)t.limit, enc.data);
        core_buf_release(&enc);
    }
}

struct ref_ctx {
    struct hctx *h;
    int n;
};

static int referrer_cb(void *arg, const struct store_row *row)
{
    struct ref_ctx *c = arg;
    struct core_buf *b = &c->h->resp->body;
    const char *at = store_row_text(row, "artifact_type");
    const char *ann = store_row_text(row, "annotations");
    if (c->n++)
        body_add(c->h, core_buf_addc(b, ','));
    body_add(c->h, core_buf_adds(b, "{\"mediaType\":"));
    body_add(c->h, core_buf_add_json_str(b, row_text(row, "media_type")));
    body_add(c->h, core_buf_adds(b, ",\"digest\":"));
    body_add(c->h, core_buf_add_json_str(b, row_text(row, "digest")));
    body_add(c->h, core_buf_addf(b, ",\"size\":%lld", (long long)store_row_int(row, "size")));
    if (at) {
        body_add(c->h, core_buf_adds(b, ",\"artifactType\":"));
        body_add(c->h, core_buf_add_json_str(b, at));
    }
    if (ann && ann[0] == '{') {
        /* stored by us as compact JSON from jansson */
        body_add(c->h, core_buf_adds(b, ",\"annotations\":"));
        body_add(c->h, core_buf_adds(b, ann));
    }
    body_add(c->h, core_buf_addc(b, '}'));
    return 0;
}

static void serve_referrers(struct hctx *h)
{
    char at[REGISTRY_MEDIA_TYPE_MAX] = "";
    if (check_access(h->reg, h->req->actor, h->name, false, &h->op))
        return reply_op(h);
    if (!registry_digest_valid(h->ref))
        return reply_error(h, 400, "DIGEST_INVALID", "invalid digest", NULL);
    bool filter = query_get(h, "artifactType", at, sizeof(at)) && at[0];
    reply_empty(h, 200);
    struct core_buf *b = &h->resp->body;
    body_add(h, core_buf_adds(b, "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_INDEX
                                 "\",\"manifests\":["));
    struct ref_ctx c = {.h = h};
    struct store_value p[] = {STORE_V_TEXT(h->name), STORE_V_TEXT(h->ref), STORE_V_TEXT(at)};
    int rc = store_query(h->reg->st,
                         filter ? "SELECT digest, media_type, size, artifact_type, annotations "
                                  "FROM registry_manifests WHERE repo = ? AND subject = ? AND "
                                  "artifact_type = ? ORDER BY created_ms, digest"
                                : "SELECT digest, media_type, size, artifact_type, annotations "
                                  "FROM registry_manifests WHERE repo = ? AND subject = ? "
                                  "ORDER BY created_ms, digest",
                         p, filter ? 3 : 2, referrer_cb, &c, &h->op.err);
    if (rc)
        return reply_op(h);
    body_add(h, core_buf_adds(b, "]}"));
    hdr(h, "Content-Type", REGISTRY_MT_OCI_INDEX);
    if (filter)
        hdr(h, "OCI-Filters-Applied", "artifactType");
}

enum route {
    ROUTE_NONE = 0,
    ROUTE_BASE,
    ROUTE_TAGS,
    ROUTE_MANIFEST,
    ROUTE_BLOB,
    ROUTE_UPLOAD_START,
    ROUTE_UPLOAD,
    ROUTE_REFERRERS,
};

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Splits "/<name>/<kind>/<ref>" into name and ref; the name may contain '/'. */
static enum route parse_path(const char *path, char *name, size_t namesz, char *ref, size_t refsz)
{
    name[0] = ref[0] = 0;
    if (!path || path[0] != '/')
        return ROUTE_NONE;
    if (strcmp(path, "/") == 0)
        return ROUTE_BASE;
    const char *p = path + 1;
    size_t n = strlen(p);
    static const struct {
        const char *suffix;
        enum route r;
    } fixed[] = {
        {"/tags/list", ROUTE_TAGS},
        {"/blobs/uploads/", ROUTE_UPLOAD_START},
        {"/blobs/uploads", ROUTE_UPLOAD_START},
    };
    /* matched against the whole path so that "/tags/list" yields an empty (invalid) name */
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (ends_with(path, n + 1, fixed[i].suffix)) {
            size_t k = n + 1 - strlen(fixed[i].suffix);
            k = k ? k - 1 : 0;
            if (k >= namesz)
                k = 0; /* too long: an empty name is invalid */
            memcpy(name, p, k);
            name[k] = 0;
            return fixed[i].r;
        }
    }
    const char *last = strrchr(p, '/');
    if (!last || strlen(last + 1) >= refsz)
        return ROUTE_NONE;
    size_t before = (size_t)(last - p);
    static const struct {
        const char *kind;
        enum route r;
    } kinds[] = {
        {"/manifests", ROUTE_MANIFEST},
        {"/referrers", ROUTE_REFERRERS},
        {"/blobs/uploads", ROUTE_UPLOAD},
        {"/blobs", ROUTE_BLOB},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (ends_with(p, before, kinds[i].kind)) {
            size_t k = before - strlen(kinds[i].kind);
            if (k >= namesz)
                k = 0;
            memcpy(name, p, k);
            name[k] = 0;
            snprintf(ref, refsz, "%s", last + 1);
            return kinds[i].r;
        }
    }
    return ROUTE_NONE;
}

bool registry_wants_spool(const char *method, const char *path)
{
    if (!method || !path)
        return false;
    if (strcmp(method, "POST") && strcmp(method, "PATCH") && strcmp(method, "PUT"))
        return false;
    return strstr(path, "/blobs/uploads") != NULL || strstr(path, "/manifests/") != NULL;
}

static bool method_is(const char *m, const char *a, const char *b, const char *c)
{
    return strcmp(m, a) == 0 || (b && strcmp(m, b) == 0) || (c && strcmp(m, c) == 0);
}

int registry_handle(struct registry *reg, const struct registry_request *req,
                    struct registry_response *resp)
{
    struct hctx h = {.reg = reg, .req = req, .resp = resp};
    resp->status = 500;
    resp->nheaders = 0;
    resp->has_file = false;
    resp->file_fd = -1;
    const char *m = req->method ? req->method : "";
    hdr(&h, "Docker-Distribution-API-Version", "registry/2.0");
    enum route r = parse_path(req->path, h.name, sizeof(h.name), h.ref, sizeof(h.ref));
    if (!req->actor) {
        reply_error(&h, 401, "UNAUTHORIZED", "authentication required", NULL);
        goto out;
    }
    switch (r) {
    case ROUTE_BASE:
        if (!method_is(m, "GET", "HEAD", NULL))
            goto not_allowed;
        serve_base(&h);
        break;
    case ROUTE_TAGS:
        if (!method_is(m, "GET", "HEAD", NULL))
            goto not_allowed;
        serve_tags(&h);
        break;
    case ROUTE_MANIFEST:
        if (!method_is(m, "GET", "HEAD", "PUT") && strcmp(m, "DELETE"))
            goto not_allowed;
        serve_manifest(&h, m);
        break;
    case ROUTE_BLOB:
        if (!method_is(m, "GET", "HEAD", "DELETE"))
            goto not_allowed;
        serve_blob(&h, m);
        break;
    case ROUTE_UPLOAD_START:
        if (strcmp(m, "POST"))
            goto not_allowed;
        serve_upload_start(&h);
        break;
    case ROUTE_UPLOAD:
        if (!method_is(m, "GET", "PATCH", "PUT") && strcmp(m, "DELETE"))
            goto not_allowed;
        serve_upload(&h, m);
        break;
    case ROUTE_REFERRERS:
        if (!method_is(m, "GET", "HEAD", NULL))
            goto not_allowed;
        serve_referrers(&h);
        break;
    default:
        reply_error(&h, 404, "NAME_UNKNOWN", "no such registry endpoint", NULL);
        break;
    }
    goto out;
not_allowed:
    reply_error(&h, 405, "UNSUPPORTED", "method not allowed here", NULL);
out:
    if (h.nomem) {
        if (resp->has_file)
            close(resp->file_fd);
        resp->has_file = false;
        resp->file_fd = -1;
        return CORE_E_NOMEM;
    }
    return 0;
}

/* ---- in-process API ------------------------------------------------------------------- */

static int op_return(struct op *o, struct core_err *err)
{
    if (err)
        *err = o->err;
    return o->err.code ? o->err.code : CORE_E_INTERNAL;
}

int registry_put_blob_file(struct registry *reg, const struct catalog_actor *actor,
                           const char *repo, const char *path, const char *digest,
                           struct core_err *err)
{
    struct op o = {0};
    struct stat sb;
    if (!reg || !path || !digest)
        return core_err_set(err, CORE_E_INVAL, "registry_put_blob_file: missing argument");
    if (check_access(reg, actor, repo, true, &o))
        return op_return(&o, err);
    if (!registry_digest_valid(digest))
        return core_err_set(err, CORE_E_INVAL, "invalid digest '%s'", digest);
    if (stat(path, &sb) || !S_ISREG(sb.st_mode))
        return core_err_set(err, CORE_E_IO, "cannot read '%s'", path);
    if (blob_put_whole(reg, repo, NULL, path, (size_t)sb.st_size, NULL, digest, &o))
        return op_return(&o, err);
    return 0;
}

int registry_put_blob(struct registry *reg, const struct catalog_actor *actor, const char *repo,
                      const void *data, size_t len, char digest_out[72], struct core_err *err)
{
    struct op o = {0};
    char digest[REGISTRY_DIGEST_LEN + 1] = "sha256:";
    if (!reg || (!data && len))
        return core_err_set(err, CORE_E_INVAL, "registry_put_blob: missing argument");
    if (check_access(reg, actor, repo, true, &o))
        return op_return(&o, err);
    core_sha256_hex(data ? data : "", len, digest + 7);
    if (blob_put_whole(reg, repo, data ? data : "", NULL, len, NULL, digest, &o))
        return op_return(&o, err);
    if (digest_out)
        memcpy(digest_out, digest, sizeof(digest));
    return 0;
}

int registry_put_manifest(struct registry *reg, const struct catalog_actor *actor, const char *repo,
                          const char *media_type, const void *data, size_t len, const char *tag,
                          char digest_out[72], struct core_err *err)
{
    struct op o = {0};
    struct registry_manifest_info info = {0};
    char digest[REGISTRY_DIGEST_LEN + 1];
    if (!reg || !data)
        return core_err_set(err, CORE_E_INVAL, "registry_put_manifest: missing argument");
    if (tag && !registry_tag_valid(tag))
        return core_err_set(err, CORE_E_INVAL, "invalid tag '%s'", tag);
    if (check_access(reg, actor, repo, true, &o))
        return op_return(&o, err);
    int rc = manifest_put(reg, repo, media_type, data, len, tag, digest, &info, &o);
    registry_manifest_info_release(&info);
    if (rc)
        return op_return(&o, err);
    if (digest_out)
        memcpy(digest_out, digest, sizeof(digest));
    return 0;
}

int registry_get_manifest(struct registry *reg, const char *repo, const char *ref, char **out,
                          size_t *len, char media_type[128], char digest[72], struct core_err *err)
{
    struct op o = {0};
    struct mrow m;
    char path[1300];
    if (!reg || !out || !len || !ref || !registry_name_valid(repo))
        return core_err_set(err, CORE_E_INVAL, "registry_get_manifest: bad argument");
    *out = NULL;
    *len = 0;
    if (manifest_resolve(reg, repo, ref, &m, &o))
        return op_return(&o, err);
    blob_path(reg, m.digest, path, sizeof(path));
    int rc = core_file_read(path, REGISTRY_MANIFEST_MAX, out, len, err);
    if (rc == CORE_E_NOTFOUND || (rc && access(path, F_OK)))
        return core_err_set(err, CORE_E_NOTFOUND, "manifest %s is missing from the store",
                            m.digest);
    if (rc)
        return rc;
    if (media_type)
        snprintf(media_type, 128, "%s", m.media_type);
    if (digest)
        snprintf(digest, 72, "%s", m.digest);
    return 0;
}

int registry_blob_path(struct registry *reg, const char *digest, char *out, size_t outsz,
                       struct core_err *err)
{
    if (!reg || !out || !outsz)
        return core_err_set(err, CORE_E_INVAL, "registry_blob_path: bad argument");
    out[0] = '\0';
    if (!digest || !registry_digest_valid(digest))
        return core_err_set(err, CORE_E_INVAL,
                            "invalid digest '%.80s': expected 'sha256:' and 64 lowercase hex",
                            digest ? digest : "");
    char path[1300];
    blob_path(reg, digest, path, sizeof(path));
    if (strlen(path) >= outsz)
        return core_err_set(err, CORE_E_INVAL, "registry_blob_path: buffer too small");
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return core_err_set(err, CORE_E_NOTFOUND,
                            "blob %s is not in the registry store: push it again", digest);
    memcpy(out, path, strlen(path) + 1);
    return 0;
}

struct image_ctx {
    const char *repo;
    registry_image_fn fn;
    void *arg;
};

static int image_cb(void *arg, const struct store_row *row)
{
    struct image_ctx *c = arg;
    struct registry_image img = {
        .repo = c->repo,
        .tag = store_row_text(row, "tag"),
        .digest = store_row_text(row, "digest"),
        .media_type = store_row_text(row, "media_type"),
        .artifact_type = store_row_text(row, "artifact_type"),
        .subject = store_row_text(row, "subject"),
        .size = store_row_int(row, "size"),
        .created_at = store_row_text(row, "created_at"),
    };
    return c->fn(c->arg, &img);
}

int registry_list(struct registry *reg, const char *repo, registry_image_fn fn, void *arg,
                  struct core_err *err)
{
    if (!reg || !fn || !registry_name_valid(repo))
        return core_err_set(err, CORE_E_INVAL, "registry_list: bad argument");
    struct image_ctx c = {repo, fn, arg};
    struct store_value p[] = {STORE_V_TEXT(repo)};
    return store_query(reg->st,
                       "SELECT m.digest AS digest, m.media_type AS media_type, m.artifact_type "
                       "AS artifact_type, m.subject AS subject, m.size AS size, m.created_at AS "
                       "created_at, t.tag AS tag FROM registry_manifests m LEFT JOIN "
                       "registry_tags t ON t.repo = m.repo AND t.digest = m.digest "
                       "WHERE m.repo = ? ORDER BY m.created_ms DESC, m.digest, t.tag",
                       p, 1, image_cb, &c, err);
}

int registry_referrers(struct registry *reg, const char *repo, const char *digest,
                       registry_image_fn fn, void *arg, struct core_err *err)
{
    if (!reg || !fn || !registry_name_valid(repo) || !registry_digest_valid(digest))
        return core_err_set(err, CORE_E_INVAL, "registry_referrers: bad argument");
    struct image_ctx c = {repo, fn, arg};
    struct store_value p[] = {STORE_V_TEXT(repo), STORE_V_TEXT(digest)};
    return store_query(reg->st,
                       "SELECT digest, media_type, artifact_type, subject, size, created_at, "
                       "NULL AS tag FROM registry_manifests WHERE repo = ? AND subject = ? "
                       "ORDER BY created_ms, digest",
                       p, 2, image_cb, &c, err);
}

/* ---- garbage collection --------------------------------------------------------------- */

struct sweep {
    struct core_buf list; /* digests, NUL-separated */
    int64_t bytes;
};

static int sweep_cb(void *arg, const struct store_row *row)
{
    struct sweep *s = arg;
    const char *d = store_row_text(row, "digest");
    if (!d || !registry_digest_valid(d))
        return 0;
    return core_buf_add(&s->list, d, strlen(d) + 1);
}

static int gc_uploads(struct registry *reg, int64_t *freed, struct core_err *err)
{
    DIR *dir = opendir(reg->uploads);
    if (!dir)
        return core_err_set(err, CORE_E_IO, "cannot list uploads: %s", strerror(errno));
    int64_t cutoff = core_now_ms() - reg->upload_ttl_ms;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        char path[1400];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", reg->uploads, de->d_name);
        if (lstat(path, &sb))
            continue;
        int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
        if (mtime >= cutoff)
            continue;
        if (unlink(path) == 0)
            *freed += sb.st_size;
        struct store_value p[] = {STORE_V_TEXT(de->d_name)};
        store_exec(reg->st, "DELETE FROM registry_uploads WHERE uuid = ?", p, 1, NULL, NULL);
    }
    closedir(dir);
    /* rows whose file is gone (a crash between unlink and delete) */
    struct store_value p[] = {STORE_V_INT(cutoff)};
    return store_exec(reg->st, "DELETE FROM registry_uploads WHERE updated_ms < ?", p, 1, NULL,
                      err);
}

int registry_gc(struct registry *reg, int64_t *freed, struct core_err *err)
{
    struct sweep s = {.bytes = 0};
    int64_t total = 0;
    int rc = 0;
    if (!reg)
        return core_err_set(err, CORE_E_INVAL, "registry_gc: no registry");
    core_buf_init(&s.list, 0);
    int64_t mark = core_now_ms() - reg->gc_grace_ms;
    pthread_rwlock_wrlock(&reg->gc_lock);
    struct store_value p[] = {STORE_V_INT(mark)};
    rc = store_query(reg->st,
                     "SELECT digest FROM registry_blobs WHERE created_ms <= ? AND digest NOT "
                     "IN "
                     "(SELECT digest FROM registry_manifest_refs) AND digest NOT IN "
                     "(SELECT digest FROM registry_manifests)",
                     p, 1, sweep_cb, &s, err);
    if (rc) {
        if (rc == CORE_E_NOMEM)
            core_err_set(err, rc, "out of memory");
        goto out;
    }
    for (size_t off = 0; off < s.list.len; off += strlen(s.list.data + off) + 1) {
        const char *d = s.list.data + off;
        char path[1300];
        struct stat sb;
        blob_path(reg, d, path, sizeof(path));
        if (stat(path, &sb) == 0 && unlink(path) == 0)
            total += sb.st_size;
        struct store_value dp[] = {STORE_V_TEXT(d)};
        if ((rc = store_exec(reg->st, "DELETE FROM registry_repo_blobs WHERE digest = ?", dp, 1,
                             NULL, err)) ||
            (rc = store_exec(reg->st, "DELETE FROM registry_blobs WHERE digest = ?", dp, 1, NULL,
                             err)))
            goto out;
    }
    rc = gc_uploads(reg, &total, err);
    if (!rc)
        log_info("registry", "garbage collected", LOG_INT("bytes", total));
out:
    pthread_rwlock_unlock(&reg->gc_lock);
    core_buf_release(&s.list);
    if (freed)
        *freed = total;
    return rc;
}

void registry_gc_grace_set(struct registry *reg, int64_t grace_ms)
{
    reg->gc_grace_ms = grace_ms < 0 ? 0 : grace_ms;
}

/* Collects "repo\0digest\0" pairs of images (manifests without a subject), newest first. */
struct retain_ctx {
    struct core_buf list;
    char repo[REGISTRY_NAME_MAX + 1];
    int seen;
    int keep;
};

static int retain_cb(void *arg, const struct store_row *row)
{
    struct retain_ctx *c = arg;
    const char *repo = store_row_text(row, "repo");
    const char *digest = store_row_text(row, "digest");
    if (!repo || !digest)
        return 0;
    if (strcmp(repo, c->repo) != 0) {
        snprintf(c->repo, sizeof(c->repo), "%s", repo);
        c->seen = 0;
    }
    if (c->seen++ < c->keep)
        return 0;
    /* an image with a tag other than run-N stays */
    if (store_row_int(row, "pinned") > 0)
        return 0;
    if (core_buf_add(&c->list, repo, strlen(repo) + 1) ||
        core_buf_add(&c->list, digest, strlen(digest) + 1))
        return CORE_E_NOMEM;
    return 0;
}

int registry_retain(struct registry *reg, const char *repo, int keep, int64_t *removed,
                    struct core_err *err)
{
    struct retain_ctx c = {.keep = keep < 0 ? 0 : keep};
    core_buf_init(&c.list, 0);
    int64_t n = 0;
    struct store_value p[] = {STORE_V_TEXT(repo), STORE_V_TEXT(repo)};
    int rc = store_query(reg->st,
                         "SELECT m.repo AS repo, m.digest AS digest, (SELECT COUNT(*) FROM "
                         "registry_tags t WHERE t.repo = m.repo AND t.digest = m.digest AND t.tag "
                         "NOT LIKE 'run-%') AS pinned FROM registry_manifests m WHERE m.subject IS "
                         "NULL AND (? IS NULL OR m.repo = ?) ORDER BY m.repo, m.created_ms DESC, "
                         "m.digest",
                         p, 2, retain_cb, &c, err);
    if (rc == CORE_E_NOMEM)
        core_err_set(err, rc, "out of memory");
    for (size_t off = 0; !rc && off < c.list.len;) {
        const char *r = c.list.data + off;
        const char *d = r + strlen(r) + 1;
        off = (size_t)(d - c.list.data) + strlen(d) + 1;
        struct op o = {0};
        /* referrers first (their subject is this image), then the image itself */
        struct store_value q[] = {STORE_V_TEXT(r), STORE_V_TEXT(d)};
        struct sweep refs = {.bytes = 0};
        core_buf_init(&refs.list, 0);
        rc = store_query(reg->st,
                         "SELECT digest FROM registry_manifests WHERE repo = ? AND subject = ?", q,
                         2, sweep_cb, &refs, err);
        for (size_t k = 0; !rc && k < refs.list.len; k += strlen(refs.list.data + k) + 1) {
            struct op ro = {0};
            manifest_delete(reg, r, refs.list.data + k, &ro);
        }
        core_buf_release(&refs.list);
        if (!rc && manifest_delete(reg, r, d, &o) == 0)
            n++;
        if (!rc)
            log_info("registry", "image removed by retention", LOG_STR("repo", r),
                     LOG_STR("digest", d));
    }
    core_buf_release(&c.list);
    if (removed)
        *removed = n;
    return rc;
}
