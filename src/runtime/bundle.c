/* The local driver's bundles: an OCI image from the platform registry unpacked into a directory
 * the supervisor mounts read-only at /app (docs/runtime.md, "Bundles").
 *
 * Layout under DATA/bundles (mode 0700, so no other user reaches into it):
 *   .lock                     flock'ed by every unpack and prune: one writer at a time
 *   <hex>/rootfs/             the unpacked layers of manifest sha256:<hex>
 *   <hex>/.complete           written last, before the rename: marks a whole bundle
 *   .tmp-<hex>-<random>/      work in progress; removed by the next unpack or prune
 *
 * Layers are untrusted input. GNU tar extracts each one inside the sandbox with no network, the
 * blob mounted read-only and only the work dir writable, so a hostile member (../, an absolute
 * path, a symlink pointing out, a device node) can only ever touch the work dir. The host side
 * then only walks the tree through directory fds and *at() calls with AT_SYMLINK_NOFOLLOW /
 * O_NOFOLLOW, so a symlink inside a bundle never leads it outside either.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "registry/registry.h"
#include "runtime/runtime.h"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"

#define CONFIG_MAX (4 * 1024 * 1024)
#define LAYERS_MAX 128
#define LIST_MAX 4096 /* entries of Entrypoint+Cmd, of Env */
#define TAR_TIMEOUT_MS (10 * 60 * 1000)
#define TAR_MEMORY (512LL << 20)
#define TAR_PIDS 32
#define WALK_DEPTH_MAX 512 /* deeper trees are refused (and each level holds an fd) */

/* ---- small helpers ------------------------------------------------------------------------ */

static bool digest_ok(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        core_free(v[i]);
    core_free(v);
}

/* Removes name (file, symlink or whole tree) below pfd without ever following a symlink.
 * Directories a layer made unreadable or unwritable are chmod'ed first (we own every file:
 * tar ran with --no-same-owner). returns: 0 or -errno. */
static int remove_at(int pfd, const char *name, int depth)
{
    if (unlinkat(pfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    if (depth > WALK_DEPTH_MAX)
        return -ELOOP;
    int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && fchmodat(pfd, name, 0700, 0) == 0)
        fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, 0700) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    /* a pass may miss entries when removal reorders the directory: try a few passes */
    for (int pass = 0; pass < 4; pass++) {
        struct dirent *de;
        while (!rc && (de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            rc = remove_at(dirfd(d), de->d_name, depth + 1);
        }
        if (rc)
            break;
        if (unlinkat(pfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            break;
        rc = -errno;
        if (rc != -ENOTEMPTY)
            break;
        rc = 0;
        rewinddir(d);
        if (pass == 3)
            rc = -ENOTEMPTY;
    }
    closedir(d);
    return rc;
}

/* Removes the tree at path (absolute). */
static int remove_path(const char *path)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", path);
    char *slash = strrchr(parent, '/');
    if (!slash || !slash[1])
        return -EINVAL;
    const char *base = path + (slash - parent) + 1;
    if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    int dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int rc = remove_at(dfd, base, 0);
    close(dfd);
    return rc;
}

/* Applies the OCI whiteouts a layer just extracted into the tree: ".wh.<name>" removes <name> of
 * the lower layers and itself; ".wh..wh..opq" (an opaque dir) is dropped. */
static int apply_whiteouts(int pfd, int depth, struct core_err *err)
{
    if (depth > WALK_DEPTH_MAX)
        return core_err_set(err, CORE_E_INVAL, "image layers nest deeper than %d directories",
                            WALK_DEPTH_MAX);
    int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return core_err_set(err, CORE_E_IO, "cannot read the bundle: %s", strerror(errno));
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return core_err_set(err, CORE_E_IO, "cannot read the bundle: %s", strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        if (strncmp(n, ".wh.", 4) == 0) {
            const char *target = n + 4;
            int e = 0;
            if (strcmp(n, ".wh..wh..opq") != 0 && strcmp(target, ".") != 0 &&
                strcmp(target, "..") != 0 && target[0])
                e = remove_at(dirfd(d), target, 0);
            if (!e)
                e = remove_at(dirfd(d), n, 0);
            if (e)
                rc = core_err_set(err, CORE_E_IO, "cannot apply whiteout '%s': %s", n,
                                  strerror(-e));
            continue;
        }
        struct stat sb;
        if (fstatat(dirfd(d), n, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            continue; /* unreadable dir of the image: nothing of ours to do in it */
        rc = apply_whiteouts(sub, depth + 1, err);
        close(sub);
    }
    closedir(d);
    return rc;
}

/* ---- the image config --------------------------------------------------------------------- */

static int strv_append_json(char ***v, size_t *n, const json_t *arr, const char *what,
                            struct core_err *err)
{
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return core_err_set(err, CORE_E_INVAL, "image config: '%s' is not a list of strings",
                            what);
    size_t i;
    const json_t *x;
    json_array_foreach(arr, i, x)
    {
        if (!json_is_string(x))
            return core_err_set(err, CORE_E_INVAL, "image config: '%s' holds a non-string",
                                what);
        if (*n + 1 >= LIST_MAX)
            return core_err_set(err, CORE_E_TOO_BIG, "image config: '%s' is too long", what);
        char **nv = core_realloc(*v, (*n + 2) * sizeof(char *));
        if (!nv)
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
        *v = nv;
        if (!(nv[*n] = core_strdup(json_string_value(x))))
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
        nv[++*n] = NULL;
    }
    return 0;
}

static int empty_strv(char ***v)
{
    if (*v)
        return 0;
    *v = core_calloc(1, sizeof(char *));
    return *v ? 0 : CORE_E_NOMEM;
}

static int parse_config(const char *data, size_t len, struct runtime_image *img,
                        struct core_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return core_err_set(err, CORE_E_INVAL, "image config is not a JSON object: %s",
                            root ? "wrong type" : jerr.text);
    }
    int rc = 0;
    size_t ncmd = 0, nenv = 0;
    const json_t *c = json_object_get(root, "config");
    if (c && !json_is_object(c) && !json_is_null(c)) {
        rc = core_err_set(err, CORE_E_INVAL, "image config: 'config' is not an object");
        goto out;
    }
    if (json_is_object(c)) {
        if ((rc = strv_append_json(&img->cmd, &ncmd, json_object_get(c, "Entrypoint"),
                                   "Entrypoint", err)) ||
            (rc = strv_append_json(&img->cmd, &ncmd, json_object_get(c, "Cmd"), "Cmd", err)) ||
            (rc = strv_append_json(&img->env, &nenv, json_object_get(c, "Env"), "Env", err)))
            goto out;
        for (size_t i = 0; i < nenv; i++)
            if (!strchr(img->env[i], '=') || img->env[i][0] == '=') {
                rc = core_err_set(err, CORE_E_INVAL, "image config: Env entry '%.80s' is not K=V",
                                  img->env[i]);
                goto out;
            }
        const json_t *wd = json_object_get(c, "WorkingDir");
        if (wd && !json_is_null(wd) && !json_is_string(wd)) {
            rc = core_err_set(err, CORE_E_INVAL, "image config: 'WorkingDir' is not a string");
            goto out;
        }
        if (json_is_string(wd) && json_string_value(wd)[0] &&
            !(img->workdir = core_strdup(json_string_value(wd)))) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
    }
    if (empty_strv(&img->cmd) || empty_strv(&img->env))
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
out:
    json_decref(root);
    return rc;
}

/* ---- the lock ----------------------------------------------------------------------------- */

static int bundles_lock(const char *bundles, int *fd, struct core_err *err)
{
    int rc = core_mkdir_p(bundles, 0700, err);
    if (rc)
        return rc;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.lock", bundles);
    *fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (*fd < 0)
        return core_err_set(err, CORE_E_IO, "cannot open '%s': %s (check the data directory's "
                                            "permissions)",
                            path, strerror(errno));
    while (flock(*fd, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(*fd);
        *fd = -1;
        return core_err_set(err, CORE_E_IO, "cannot lock '%s': %s", path, strerror(e));
    }
    return 0;
}

static void bundles_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* Removes every .tmp-* entry: with the lock held, nobody is working in them. */
static void remove_stale(const char *bundles)
{
    DIR *d = opendir(bundles);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, ".tmp-", 5) == 0)
            (void)remove_at(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* ---- unpacking ---------------------------------------------------------------------------- */

/* What tar said (from the memfd it wrote to), for an error message: the last line that is not
 * tar's closing summary or one of its harmless notes. */
static void tail_of(int fd, char *out, size_t outsz)
{
    out[0] = '\0';
    off_t end = lseek(fd, 0, SEEK_END);
    if (end <= 0)
        return;
    char buf[1024];
    off_t start = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, (size_t)(end - start), start);
    if (n <= 0)
        return;
    buf[n] = '\0';
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\n')
            *p = ' ';
    const char *pick = NULL, *last = NULL;
    char *line = buf;
    if (start > 0 && strchr(line, '\n'))
        line = strchr(line, '\n') + 1; /* a partial first line */
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (*line) {
            last = line;
            if (!strstr(line, "Exiting with failure status") && !strstr(line, "Removing leading"))
                pick = line;
        }
        line = nl ? nl + 1 : NULL;
    }
    snprintf(out, outsz, "%.300s", pick ? pick : last ? last : "");
}

static int extract_layer(const char *blob, bool gzip, const char *rootfs, const char *hex,
                         size_t idx, const struct sandbox_caps *caps, bool allow_unisolated,
                         struct core_err *err)
{
    /* With bubblewrap the paths are the mount points; without it (unisolated, tests only) tar
     * runs on the host and gets the host paths. */
    const char *layer_arg = caps->bwrap ? "/layer" : blob;
    const char *out_arg = caps->bwrap ? "/out" : rootfs;
    const char *const argv[] = {"tar",
                                gzip ? "-xzf" : "-xf",
                                layer_arg,
                                "-C",
                                out_arg,
                                "--no-same-owner",
                                "--delay-directory-restore",
                                NULL};
    static const char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LC_ALL=C",
                                      NULL};
    struct sandbox_mount mounts[] = {{blob, "/layer", false}, {rootfs, "/out", true}};
    char name[64];
    snprintf(name, sizeof(name), "bundle-%.12s-%zu", hex, idx);
    int logfd = memfd_create("pave-bundle-tar", MFD_CLOEXEC);
    if (logfd < 0)
        return core_err_set(err, CORE_E_IO, "cannot create a log for tar: %s", strerror(errno));
    struct sandbox_spec spec = {
        .argv = argv,
        .env = env,
        .workdir = caps->bwrap ? "/out" : rootfs,
        .mounts = mounts,
        .nmounts = 2,
        .limits = {.cpu_millicores = 0,
                   .memory_bytes = caps->memory ? TAR_MEMORY : 0,
                   .pids = caps->pids ? TAR_PIDS : 0,
                   .timeout_ms = TAR_TIMEOUT_MS},
        .network = false,
        .allow_unisolated = allow_unisolated,
        .out_fd = logfd,
        .name = name,
        .caps = caps,
    };
    struct sandbox_result res;
    memset(&res, 0, sizeof(res));
    int rc = sandbox_run(&spec, &res, err);
    if (rc) {
        core_err_wrap(err, "unpacking layer %zu", idx + 1);
        goto out;
    }
    if (res.timed_out || res.oom_killed || res.pids_limited || res.exit_code != 0) {
        char why[512];
        tail_of(logfd, why, sizeof(why));
        const char *what = res.timed_out    ? "took too long"
                           : res.oom_killed ? "ran out of memory"
                                            : "failed";
        rc = core_err_set(err, CORE_E_INVAL,
                          "layer %zu of the image could not be unpacked (tar %s, exit %d%s%s): "
                          "the layer is corrupt or holds unsafe members; rebuild and push the "
                          "image again",
                          idx + 1, what, res.exit_code, why[0] ? ": " : "", why);
    }
out:
    close(logfd);
    return rc;
}

struct layer {
    char digest[72];
    bool gzip;
};

/* Parses an image manifest: config digest, layers (digest, compression). */
static int parse_manifest(const char *data, size_t len, char config[72], struct layer **layers,
                          size_t *nlayers, struct core_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(data, len, 0, &jerr);
    int rc = 0;
    *layers = NULL;
    *nlayers = 0;
    if (!json_is_object(root)) {
        rc = core_err_set(err, CORE_E_INVAL, "image manifest is not a JSON object");
        goto out;
    }
    const char *cd = json_string_value(json_object_get(json_object_get(root, "config"), "digest"));
    if (!digest_ok(cd)) {
        rc = core_err_set(err, CORE_E_INVAL, "image manifest has no valid config digest");
        goto out;
    }
    snprintf(config, 72, "%s", cd);
    const json_t *arr = json_object_get(root, "layers");
    if (!json_is_array(arr) || json_array_size(arr) > LAYERS_MAX) {
        rc = core_err_set(err, CORE_E_INVAL, "image manifest needs a 'layers' list of at most %d",
                          LAYERS_MAX);
        goto out;
    }
    size_t n = json_array_size(arr);
    *layers = core_calloc(n ? n : 1, sizeof(**layers));
    if (!*layers) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *l = json_array_get(arr, i);
        const char *mt = json_string_value(json_object_get(l, "mediaType"));
        const char *d = json_string_value(json_object_get(l, "digest"));
        if (!digest_ok(d)) {
            rc = core_err_set(err, CORE_E_INVAL, "layer %zu of the image has no valid digest",
                              i + 1);
            goto out;
        }
        if (!mt || (strcmp(mt, MT_LAYER_GZIP) != 0 && strcmp(mt, MT_LAYER_TAR) != 0)) {
            rc = core_err_set(err, CORE_E_UNSUPPORTED,
                              "layer %zu has media type '%.100s': only '" MT_LAYER_GZIP
                              "' and '" MT_LAYER_TAR "' can be unpacked; rebuild the image with "
                              "gzip or plain tar layers",
                              i + 1, mt ? mt : "(none)");
            goto out;
        }
        snprintf((*layers)[i].digest, sizeof((*layers)[i].digest), "%s", d);
        (*layers)[i].gzip = strcmp(mt, MT_LAYER_GZIP) == 0;
    }
    *nlayers = n;
out:
    json_decref(root);
    if (rc) {
        core_free(*layers);
        *layers = NULL;
    }
    return rc;
}

void runtime_image_release(struct runtime_image *img)
{
    if (!img)
        return;
    strv_free(img->cmd);
    strv_free(img->env);
    core_free(img->workdir);
    memset(img, 0, sizeof(*img));
}

static int bundles_dir(const char *data_dir, char *out, size_t outsz, struct core_err *err)
{
    if (!data_dir || !data_dir[0])
        return core_err_set(err, CORE_E_INVAL, "no data directory given");
    int rc = core_mkdir_p(data_dir, 0700, err);
    if (rc)
        return rc;
    char abs[PATH_MAX];
    if (!realpath(data_dir, abs))
        return core_err_set(err, CORE_E_IO, "cannot resolve data directory '%s': %s", data_dir,
                            strerror(errno));
    if ((size_t)snprintf(out, outsz, "%s/bundles", abs) >= outsz)
        return core_err_set(err, CORE_E_INVAL, "data directory path '%s' is too long", abs);
    return 0;
}

int runtime_bundle_unpack(struct registry *reg, const char *data_dir, const char *repo,
                          const char *ref, bool allow_unisolated, struct runtime_image *out,
                          struct core_err *err)
{
    if (!out)
        return core_err_set(err, CORE_E_INVAL, "runtime_bundle_unpack: bad argument");
    memset(out, 0, sizeof(*out));
    if (!reg || !repo || !ref)
        return core_err_set(err, CORE_E_INVAL, "runtime_bundle_unpack: bad argument");
    char *manifest = NULL, *config = NULL;
    size_t mlen = 0, clen = 0;
    struct layer *layers = NULL;
    size_t nlayers = 0;
    int lockfd = -1;
    char bundles[3000], final[3200], tmp[3200], rootfs[3300], path[3400];
    char mt[128] = "", digest[72] = "", config_digest[72];
    tmp[0] = '\0';

    int rc = registry_get_manifest(reg, repo, ref, &manifest, &mlen, mt, digest, err);
    if (rc) {
        if (rc == CORE_E_NOTFOUND)
            core_err_wrap(err, "image '%s:%s' not found in the registry (push it or check the "
                               "tag)",
                          repo, ref);
        goto out;
    }
    if (strcmp(mt, MT_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0) {
        rc = core_err_set(err, CORE_E_UNSUPPORTED,
                          "image '%s:%s' is an image index (multi-platform): the local runtime "
                          "needs a single image manifest; deploy the platform's manifest by "
                          "digest",
                          repo, ref);
        goto out;
    }
    if (strcmp(mt, MT_MANIFEST) != 0) {
        rc = core_err_set(err, CORE_E_UNSUPPORTED,
                          "image '%s:%s' has manifest type '%s': only OCI image manifests "
                          "('" MT_MANIFEST "') can be unpacked; push it as an OCI image",
                          repo, ref, mt);
        goto out;
    }
    if (!digest_ok(digest)) {
        rc = core_err_set(err, CORE_E_INTERNAL, "registry returned a malformed digest");
        goto out;
    }
    snprintf(out->digest, sizeof(out->digest), "%s", digest);
    const char *hex = digest + 7;
    if ((rc = parse_manifest(manifest, mlen, config_digest, &layers, &nlayers, err)))
        goto out;
    if ((rc = registry_blob_path(reg, config_digest, path, sizeof(path), err)) ||
        (rc = core_file_read(path, CONFIG_MAX, &config, &clen, err))) {
        core_err_wrap(err, "reading the config of image '%s:%s'", repo, ref);
        goto out;
    }
    if ((rc = parse_config(config, clen, out, err)))
        goto out;

    if ((rc = bundles_dir(data_dir, bundles, sizeof(bundles), err)) ||
        (rc = bundles_lock(bundles, &lockfd, err)))
        goto out;
    snprintf(final, sizeof(final), "%s/%s", bundles, hex);
    snprintf(out->dir, sizeof(out->dir), "%s/rootfs", final);
    snprintf(path, sizeof(path), "%s/.complete", final);
    struct stat sb;
    if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        goto out; /* already unpacked: reuse */
    remove_stale(bundles);
    if (lstat(final, &sb) == 0) {
        /* not ours (we rename only complete bundles): clear it */
        int e = remove_path(final);
        if (e) {
            rc = core_err_set(err, CORE_E_IO, "cannot remove incomplete bundle '%s': %s", final,
                              strerror(-e));
            goto out;
        }
    }
    char rnd[17];
    if ((rc = core_random_hex(rnd, 8))) {
        rc = core_err_set(err, CORE_E_INTERNAL, "no randomness for a temporary directory name");
        goto out;
    }
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-%s", bundles, hex, rnd);
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmp);
    if (mkdir(tmp, 0700) != 0 || mkdir(rootfs, 0755) != 0) {
        rc = core_err_set(err, CORE_E_IO, "cannot create '%s': %s (check free space and the data "
                                          "directory's permissions)",
                          rootfs, strerror(errno));
        goto out;
    }
    struct sandbox_caps caps;
    sandbox_probe(&caps);
    for (size_t i = 0; i < nlayers; i++) {
        if ((rc = registry_blob_path(reg, layers[i].digest, path, sizeof(path), err))) {
            core_err_wrap(err, "layer %zu of image '%s:%s'", i + 1, repo, ref);
            goto out;
        }
        if ((rc = extract_layer(path, layers[i].gzip, rootfs, hex, i, &caps, allow_unisolated,
                                err)))
            goto out;
        int rfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rfd < 0) {
            rc = core_err_set(err, CORE_E_IO, "cannot open '%s': %s", rootfs, strerror(errno));
            goto out;
        }
        rc = apply_whiteouts(rfd, 0, err);
        close(rfd);
        if (rc)
            goto out;
    }
    /* a layer may have left the root without write/search for us; the supervisor mounts it
     * read-only anyway */
    if (chmod(rootfs, 0755) != 0) {
        rc = core_err_set(err, CORE_E_IO, "cannot chmod '%s': %s", rootfs, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof(path), "%s/.complete", tmp);
    if ((rc = core_file_write_atomic(path, digest, strlen(digest), 0600, err)))
        goto out;
    if (rename(tmp, final) != 0) {
        rc = core_err_set(err, CORE_E_IO, "cannot move the bundle into place at '%s': %s", final,
                          strerror(errno));
        goto out;
    }
    tmp[0] = '\0';
    int dfd = open(bundles, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* the rename is durable before anyone relies on the bundle */
        close(dfd);
    }
out:
    if (tmp[0])
        (void)remove_path(tmp);
    bundles_unlock(lockfd);
    core_free(manifest);
    core_free(config);
    core_free(layers);
    if (rc)
        runtime_image_release(out);
    return rc;
}

int runtime_bundle_prune(const char *data_dir, const char *const *keep, size_t nkeep,
                         int *removed, struct core_err *err)
{
    if (removed)
        *removed = 0;
    if (nkeep && !keep)
        return core_err_set(err, CORE_E_INVAL, "runtime_bundle_prune: bad argument");
    char bundles[3000];
    int lockfd = -1;
    int rc = bundles_dir(data_dir, bundles, sizeof(bundles), err);
    if (rc || (rc = bundles_lock(bundles, &lockfd, err)))
        return rc;
    remove_stale(bundles);
    DIR *d = opendir(bundles);
    if (!d) {
        rc = core_err_set(err, CORE_E_IO, "cannot read '%s': %s", bundles, strerror(errno));
        goto out;
    }
    struct dirent *de;
    int count = 0;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (!is_hex64(n))
            continue;
        bool kept = false;
        for (size_t i = 0; i < nkeep && !kept; i++) {
            const char *k = keep[i];
            if (k && strncmp(k, "sha256:", 7) == 0)
                k += 7;
            kept = k && strcmp(k, n) == 0;
        }
        if (kept)
            continue;
        int e = remove_at(dirfd(d), n, 0);
        if (e) {
            rc = core_err_set(err, CORE_E_IO, "cannot remove bundle '%s/%s': %s (remove it by "
                                              "hand)",
                              bundles, n, strerror(-e));
            break;
        }
        count++;
    }
    closedir(d);
    if (removed)
        *removed = count;
out:
    bundles_unlock(lockfd);
    return rc;
}
