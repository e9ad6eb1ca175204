/* Unit tests for the local driver's bundles (src/runtime/bundle.c): real images pushed through the
 * registry's in-process API (temp store, demo catalog), unpacked by tar in the sandbox. Layers
 * are built here as ustar archives, gzip'd with zlib. Tests that depend on bubblewrap's
 * isolation (the hostile layer) skip, with a message, when it cannot run here; the others allow
 * the sandbox's unisolated fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "catalog/catalog.h"
#include "core/core.h"
#include "registry/registry.h"
#include "registry/registry_int.h"
#include "runtime/runtime.h"
#include "store/store.h"

#define REPO "payments-api"

struct fx {
    char dir[64];
    char data[96];
    struct store *st;
    struct catalog *cat;
    struct registry *reg;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-bundle-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
    char url[128];
    snprintf(url, sizeof(url), "sqlite:%s/pave.db", f->dir);
    struct core_err err = {0};
    assert_int_equal(store_open(&f->st, url, &err), 0);
    assert_non_null(f->cat = catalog_new(f->st, &err));
    assert_int_equal(catalog_demo_load(f->cat, &err), 0);
    assert_non_null(f->reg = registry_new(f->st, f->cat, f->dir, &err));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    registry_free(f->reg);
    catalog_free(f->cat);
    store_close(f->st);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", f->dir, f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

/* ---- building layers ---------------------------------------------------------------------- */

struct tar {
    unsigned char *data;
    size_t len;
};

/* Appends one ustar member: type '0' file, '2' symlink, '5' dir, '3' char device. */
static void tar_add(struct tar *t, const char *name, char type, unsigned mode, const char *body,
                    const char *link)
{
    size_t blen = body ? strlen(body) : 0;
    size_t add = 512 + (blen + 511) / 512 * 512;
    t->data = realloc(t->data, t->len + add);
    assert_non_null(t->data);
    unsigned char *h = t->data + t->len;
    memset(h, 0, add);
    assert_true(strlen(name) < 100);
    memcpy(h, name, strlen(name));
    snprintf((char *)h + 100, 8, "%07o", mode);
    snprintf((char *)h + 108, 8, "%07o", 0u);
    snprintf((char *)h + 116, 8, "%07o", 0u);
    snprintf((char *)h + 124, 12, "%011o", (unsigned)blen);
    snprintf((char *)h + 136, 12, "%011o", 1700000000u);
    h[156] = (unsigned char)type;
    if (link)
        memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    if (type == '3') {
        snprintf((char *)h + 329, 8, "%07o", 1u);
        snprintf((char *)h + 337, 8, "%07o", 3u);
    }
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    if (blen)
        memcpy(h + 512, body, blen);
    t->len += add;
}

static void tar_end(struct tar *t)
{
    t->data = realloc(t->data, t->len + 1024);
    assert_non_null(t->data);
    memset(t->data + t->len, 0, 1024);
    t->len += 1024;
}

/* gzip of t (consumes t). */
static struct tar gzip_of(struct tar *t)
{
    struct tar g = {malloc(t->len + 1024), 0};
    assert_non_null(g.data);
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = t->data;
    zs.avail_in = (uInt)t->len;
    zs.next_out = g.data;
    zs.avail_out = (uInt)(t->len + 1024);
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    g.len = zs.total_out;
    deflateEnd(&zs);
    free(t->data);
    t->data = NULL;
    return g;
}

struct blob {
    const char *media_type;
    const void *data;
    size_t len;
};

/* Pushes config + layers and an image manifest tagged `tag`; digest receives its digest. */
static void push_image(struct fx *f, const char *config, const struct blob *layers, size_t n,
                       const char *tag, char digest[72])
{
    struct core_err err = {0};
    char cd[72], ld[72];
    assert_int_equal(registry_put_blob(f->reg, &catalog_actor_system, REPO, config,
                                       strlen(config), cd, &err),
                     0);
    struct core_buf m;
    core_buf_init(&m, 1 << 20);
    core_buf_addf(&m,
                  "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
                  "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
                  "\"layers\":[",
                  REGISTRY_MT_OCI_MANIFEST, cd, strlen(config));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(registry_put_blob(f->reg, &catalog_actor_system, REPO, layers[i].data,
                                           layers[i].len, ld, &err),
                         0);
        core_buf_addf(&m, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}", i ? "," : "",
                      layers[i].media_type, ld, layers[i].len);
    }
    core_buf_adds(&m, "]}");
    int rc = registry_put_manifest(f->reg, &catalog_actor_system, REPO, REGISTRY_MT_OCI_MANIFEST,
                                   m.data, m.len, tag, digest, &err);
    if (rc)
        fail_msg("put manifest: %s", err.msg);
    core_buf_release(&m);
}

static const char config_json[] =
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":[\"/app/bin/hello\"],"
    "\"Cmd\":[\"--greet\",\"world\"],\"Env\":[\"PATH=/usr/bin:/bin\",\"GREETING=hi\"],"
    "\"WorkingDir\":\"/app/work\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";

/* The hello image: one gzip layer (bin/hello 0755, work/), optionally a second plain tar layer
 * that whites out bin/hello and adds bin/other. */
static void push_hello(struct fx *f, const char *tag, bool second, char digest[72])
{
    struct tar t = {0};
    tar_add(&t, "bin/", '5', 0755, NULL, NULL);
    tar_add(&t, "bin/hello", '0', 0755, "#!/bin/sh\necho hello\n", NULL);
    tar_add(&t, "bin/keep", '0', 0644, "kept\n", NULL);
    tar_add(&t, "work/", '5', 0750, NULL, NULL);
    tar_end(&t);
    struct tar g = gzip_of(&t);
    struct tar t2 = {0};
    tar_add(&t2, "bin/.wh.hello", '0', 0644, NULL, NULL);
    tar_add(&t2, "bin/other", '0', 0700, "other\n", NULL);
    tar_end(&t2);
    struct blob layers[] = {{"application/vnd.oci.image.layer.v1.tar+gzip", g.data, g.len},
                            {"application/vnd.oci.image.layer.v1.tar", t2.data, t2.len}};
    push_image(f, config_json, layers, second ? 2 : 1, tag, digest);
    free(g.data);
    free(t2.data);
}

static bool have_bwrap(void)
{
    struct sandbox_caps caps;
    sandbox_probe(&caps);
    if (!caps.bwrap)
        print_message("bubblewrap cannot create namespaces here: %s\n", caps.detail);
    return caps.bwrap;
}

static void unpack_ok(struct fx *f, const char *ref, struct runtime_image *img)
{
    struct core_err err = {0};
    int rc = runtime_bundle_unpack(f->reg, f->data, REPO, ref, true, img, &err);
    if (rc)
        fail_msg("runtime_bundle_unpack(%s): %s", ref, err.msg);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void unpack_by_tag_and_reuse(void **state)
{
    struct fx *f = *state;
    char digest[72];
    push_hello(f, "v1", false, digest);
    struct runtime_image img;
    unpack_ok(f, "v1", &img);
    assert_string_equal(img.digest, digest);
    char want[4096], path[4200];
    char *real = realpath(f->data, NULL);
    assert_non_null(real);
    snprintf(want, sizeof(want), "%s/bundles/%s/rootfs", real, digest + 7);
    free(real);
    assert_string_equal(img.dir, want);

    struct stat sb;
    snprintf(path, sizeof(path), "%s/bin/hello", img.dir);
    assert_int_equal(lstat(path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0755);
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(core_file_read(path, 1024, &body, &len, NULL), 0);
    assert_string_equal(body, "#!/bin/sh\necho hello\n");
    core_free(body);
    snprintf(path, sizeof(path), "%s/work", img.dir);
    assert_int_equal(lstat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0750);

    assert_non_null(img.cmd);
    assert_string_equal(img.cmd[0], "/app/bin/hello");
    assert_string_equal(img.cmd[1], "--greet");
    assert_string_equal(img.cmd[2], "world");
    assert_null(img.cmd[3]);
    assert_string_equal(img.env[0], "PATH=/usr/bin:/bin");
    assert_string_equal(img.env[1], "GREETING=hi");
    assert_null(img.env[2]);
    assert_string_equal(img.workdir, "/app/work");

    /* the second call, by digest, reuses the bundle without touching it */
    struct stat m1, m2;
    snprintf(path, sizeof(path), "%s/bundles/%s/.complete", f->data, digest + 7);
    assert_int_equal(stat(path, &m1), 0);
    usleep(20000);
    struct runtime_image again;
    unpack_ok(f, digest, &again);
    assert_string_equal(again.dir, img.dir);
    assert_string_equal(again.digest, digest);
    assert_string_equal(again.cmd[0], "/app/bin/hello");
    assert_int_equal(stat(path, &m2), 0);
    assert_int_equal(m1.st_ino, m2.st_ino);
    assert_int_equal(m1.st_mtim.tv_sec, m2.st_mtim.tv_sec);
    assert_int_equal(m1.st_mtim.tv_nsec, m2.st_mtim.tv_nsec);
    runtime_image_release(&again);
    runtime_image_release(&img);
    runtime_image_release(&img); /* zeroed: harmless */

    /* nothing left in progress */
    snprintf(path, sizeof(path), "%s/bundles", f->data);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        assert_true(strncmp(de->d_name, ".tmp-", 5) != 0);
    closedir(d);
}

static void layers_apply_in_order(void **state)
{
    struct fx *f = *state;
    char digest[72];
    push_hello(f, "v2", true, digest);
    struct runtime_image img;
    unpack_ok(f, "v2", &img);
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/bin/hello", img.dir);
    assert_int_not_equal(lstat(path, &sb), 0); /* whited out */
    snprintf(path, sizeof(path), "%s/bin/.wh.hello", img.dir);
    assert_int_not_equal(lstat(path, &sb), 0);
    snprintf(path, sizeof(path), "%s/bin/keep", img.dir);
    assert_int_equal(lstat(path, &sb), 0);
    snprintf(path, sizeof(path), "%s/bin/other", img.dir);
    assert_int_equal(lstat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);
    runtime_image_release(&img);
}

static void refusals(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct runtime_image img;
    char digest[72];
    push_hello(f, "v1", false, digest);

    assert_int_equal(runtime_bundle_unpack(f->reg, f->data, REPO, "nope", true, &img, &err),
                     CORE_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "nope"));
    assert_null(img.cmd);

    /* an image index */
    char index[512], idx_digest[72];
    snprintf(index, sizeof(index),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":1,\"platform\":{\"architecture\":\"amd64\",\"os\":"
             "\"linux\"}}]}",
             REGISTRY_MT_OCI_INDEX, REGISTRY_MT_OCI_MANIFEST, digest);
    assert_int_equal(registry_put_manifest(f->reg, &catalog_actor_system, REPO,
                                           REGISTRY_MT_OCI_INDEX, index, strlen(index), "multi",
                                           idx_digest, &err),
                     0);
    assert_int_equal(runtime_bundle_unpack(f->reg, f->data, REPO, "multi", true, &img, &err),
                     CORE_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "index"));

    /* a layer media type we cannot unpack */
    struct blob zstd = {"application/vnd.oci.image.layer.v1.tar+zstd", "not really zstd", 15};
    push_image(f, config_json, &zstd, 1, "zstd", digest);
    assert_int_equal(runtime_bundle_unpack(f->reg, f->data, REPO, "zstd", true, &img, &err),
                     CORE_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "tar+zstd"));

    /* a corrupt gzip layer: refused, nothing left under the final name */
    struct blob bad = {"application/vnd.oci.image.layer.v1.tar+gzip", "not gzip at all", 15};
    push_image(f, config_json, &bad, 1, "corrupt", digest);
    assert_int_equal(runtime_bundle_unpack(f->reg, f->data, REPO, "corrupt", true, &img, &err),
                     CORE_E_INVAL);
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/bundles/%s", f->data, digest + 7);
    assert_int_not_equal(lstat(path, &sb), 0);

    assert_int_equal(runtime_bundle_unpack(NULL, f->data, REPO, "v1", true, &img, &err),
                     CORE_E_INVAL);
}

/* Every file named in `names` found below the root must be inside a rootfs. */
static const char *walk_root;
static int escapes;
static int check_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    const char *base = path + ftw->base;
    static const char *const names[] = {"escape", "abs-escape", "through", "through2", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(base, names[i]) == 0 && !strstr(path + strlen(walk_root), "/rootfs/")) {
            print_message("escaped: %s\n", path);
            escapes++;
        }
    return 0;
}

static void hostile_layer_stays_inside(void **state)
{
    struct fx *f = *state;
    if (!have_bwrap())
        skip();
    char abs_target[128], through[160], host_tmp[64], host_tmp_check[80];
    snprintf(abs_target, sizeof(abs_target), "%s/abs-escape", f->dir);
    /* symlink to / then a file through it into the test dir */
    snprintf(through, sizeof(through), "rootlink%s/through", f->dir);
    snprintf(host_tmp, sizeof(host_tmp), "/tmp/pave-bundle-x-%d", (int)getpid());
    snprintf(host_tmp_check, sizeof(host_tmp_check), "%s", host_tmp);
    unlink(host_tmp_check);
    struct tar t = {0};
    tar_add(&t, "ok", '0', 0644, "fine\n", NULL);
    tar_add(&t, "../escape", '0', 0644, "out\n", NULL);
    tar_add(&t, "../../escape", '0', 0644, "out\n", NULL);
    tar_add(&t, abs_target, '0', 0644, "out\n", NULL);
    tar_add(&t, host_tmp, '0', 0644, "out\n", NULL);
    tar_add(&t, "rootlink", '2', 0777, NULL, "/");
    tar_add(&t, through, '0', 0644, "out\n", NULL);
    tar_add(&t, "datalink", '2', 0777, NULL, f->dir);
    tar_add(&t, "datalink/through2", '0', 0644, "out\n", NULL);
    tar_add(&t, "uplink", '2', 0777, NULL, "../..");
    tar_add(&t, "uplink/through", '0', 0644, "out\n", NULL);
    tar_add(&t, "null", '3', 0666, NULL, NULL);
    tar_end(&t);
    struct tar g = gzip_of(&t);
    struct blob layer = {"application/vnd.oci.image.layer.v1.tar+gzip", g.data, g.len};
    char digest[72];
    push_image(f, config_json, &layer, 1, "hostile", digest);
    free(g.data);

    struct core_err err = {0};
    struct runtime_image img;
    int rc = runtime_bundle_unpack(f->reg, f->data, REPO, "hostile", false, &img, &err);
    print_message("hostile layer: rc=%d %s\n", rc, rc ? err.msg : "(unpacked)");
    struct stat sb;
    char path[4400];
    if (rc) {
        /* refused: nothing under the final name, no work dir left behind */
        assert_int_equal(rc, CORE_E_INVAL);
        snprintf(path, sizeof(path), "%s/bundles/%s", f->data, digest + 7);
        assert_int_not_equal(lstat(path, &sb), 0);
        snprintf(path, sizeof(path), "%s/bundles", f->data);
        DIR *d = opendir(path);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            assert_true(strncmp(de->d_name, ".tmp-", 5) != 0);
        closedir(d);
    } else {
        /* a device node never appears as one */
        snprintf(path, sizeof(path), "%s/null", img.dir);
        assert_false(lstat(path, &sb) == 0 && (S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode)));
        runtime_image_release(&img);
    }
    assert_int_not_equal(lstat(abs_target, &sb), 0);
    assert_int_not_equal(lstat(host_tmp_check, &sb), 0);
    snprintf(path, sizeof(path), "%s/through", f->dir);
    assert_int_not_equal(lstat(path, &sb), 0);
    snprintf(path, sizeof(path), "%s/through2", f->dir);
    assert_int_not_equal(lstat(path, &sb), 0);
    walk_root = f->dir;
    escapes = 0;
    assert_int_equal(nftw(f->dir, check_entry, 32, FTW_PHYS), 0);
    assert_int_equal(escapes, 0);
    assert_int_not_equal(lstat("/escape", &sb), 0);
    assert_int_not_equal(lstat("/tmp/escape", &sb), 0);

    /* a layer tar accepts: absolute names land inside, symlinks pointing out stay links */
    struct tar t2 = {0};
    tar_add(&t2, abs_target, '0', 0644, "in\n", NULL);
    tar_add(&t2, "datalink", '2', 0777, NULL, f->dir);
    tar_add(&t2, "uplink", '2', 0777, NULL, "../..");
    tar_add(&t2, ".wh.pave.db", '0', 0644, NULL, NULL);
    tar_add(&t2, "datalink2", '2', 0777, NULL, f->dir);
    tar_end(&t2);
    struct tar t3 = {0};
    tar_add(&t3, ".wh.datalink2", '0', 0644, NULL, NULL);
    tar_end(&t3);
    struct blob ok_layers[] = {{"application/vnd.oci.image.layer.v1.tar", t2.data, t2.len},
                               {"application/vnd.oci.image.layer.v1.tar", t3.data, t3.len}};
    push_image(f, config_json, ok_layers, 2, "links", digest);
    free(t2.data);
    free(t3.data);
    rc = runtime_bundle_unpack(f->reg, f->data, REPO, "links", false, &img, &err);
    if (rc)
        fail_msg("links image: %s", err.msg);
    snprintf(path, sizeof(path), "%s%s", img.dir, abs_target);
    assert_int_equal(lstat(path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_not_equal(lstat(abs_target, &sb), 0);
    snprintf(path, sizeof(path), "%s/datalink", img.dir);
    assert_int_equal(lstat(path, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    /* whited out: the link went, not its target */
    snprintf(path, sizeof(path), "%s/datalink2", img.dir);
    assert_int_not_equal(lstat(path, &sb), 0);
    snprintf(path, sizeof(path), "%s/pave.db", f->dir);
    assert_int_equal(lstat(path, &sb), 0);
    runtime_image_release(&img);
}

static void prune_keeps_only_listed(void **state)
{
    struct fx *f = *state;
    char d1[72], d2[72];
    push_hello(f, "one", false, d1);
    push_hello(f, "two", true, d2);
    struct runtime_image a, b;
    unpack_ok(f, "one", &a);
    unpack_ok(f, "two", &b);
    assert_string_not_equal(a.dir, b.dir);
    /* a stale work dir from a "crash" */
    char stale[4200];
    snprintf(stale, sizeof(stale), "%s/bundles/.tmp-%s-deadbeef", f->data, d2 + 7);
    assert_int_equal(mkdir(stale, 0700), 0);

    const char *const keep[] = {d1};
    int removed = -1;
    struct core_err err = {0};
    assert_int_equal(runtime_bundle_prune(f->data, keep, 1, &removed, &err), 0);
    assert_int_equal(removed, 1);
    struct stat sb;
    assert_int_equal(stat(a.dir, &sb), 0);
    assert_int_not_equal(lstat(b.dir, &sb), 0);
    assert_int_not_equal(lstat(stale, &sb), 0);
    /* nothing more to do */
    assert_int_equal(runtime_bundle_prune(f->data, keep, 1, &removed, &err), 0);
    assert_int_equal(removed, 0);
    /* the pruned image unpacks again */
    struct runtime_image b2;
    unpack_ok(f, "two", &b2);
    assert_string_equal(b2.dir, b.dir);
    runtime_image_release(&b2);
    runtime_image_release(&a);
    runtime_image_release(&b);
    assert_int_equal(runtime_bundle_prune(f->data, NULL, 0, &removed, &err), 0);
    assert_int_equal(removed, 2);
}

static void blob_path_lookup(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    char digest[72], out[1300];
    assert_int_equal(registry_put_blob(f->reg, &catalog_actor_system, REPO, "data", 4, digest,
                                       &err),
                     0);
    assert_int_equal(registry_blob_path(f->reg, digest, out, sizeof(out), &err), 0);
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(core_file_read(out, 64, &body, &len, NULL), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(body, "data", 4);
    core_free(body);
    assert_int_equal(registry_blob_path(f->reg, "sha256:abc", out, sizeof(out), &err),
                     CORE_E_INVAL);
    assert_int_equal(registry_blob_path(f->reg,
                                        "sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789"
                                        "abcdef0123456789",
                                        out, sizeof(out), &err),
                     CORE_E_INVAL);
    assert_int_equal(registry_blob_path(f->reg,
                                        "sha256:0000000000000000000000000000000000000000000000000"
                                        "000000000000000",
                                        out, sizeof(out), &err),
                     CORE_E_NOTFOUND);
    assert_int_equal(registry_blob_path(f->reg, digest, out, 8, &err), CORE_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(blob_path_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(unpack_by_tag_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(layers_apply_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_layer_stays_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(prune_keeps_only_listed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
