/* Unit tests for the OCI registry: uploads, manifests, tags, referrers, mounts, rights, GC, the
 * in-process API and the header parsers, driven through registry_handle() on a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>

#include "../testutil.h"
#include "catalog/catalog.h"
#include "registry/registry.h"
#include "registry/registry_int.h"

struct fx {
    struct test_env env;
    struct catalog *cat;
    struct registry *reg;
    struct core_buf last; /* body of the last response, so a failed assert leaks nothing */
};

static const char *const payments_teams[] = {"payments"};
static const struct catalog_actor alice = {"alice", false, payments_teams, 1};
static const char *const identity_teams[] = {"identity"};
static const struct catalog_actor bob = {"bob", false, identity_teams, 1};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct core_err err = {0};
    if (!f)
        return -1;
    core_buf_init(&f->last, 0);
    if (test_env_open(&f->env) || !(f->cat = catalog_new(f->env.st, &err)) ||
        catalog_demo_load(f->cat, &err) ||
        !(f->reg = registry_new(f->env.st, f->cat, f->env.dir, &err))) {
        fprintf(stderr, "setup: %s\n", err.msg);
        registry_free(f->reg);
        catalog_free(f->cat);
        if (f->env.st)
            test_env_close(&f->env);
        core_buf_release(&f->last);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    registry_free(f->reg);
    catalog_free(f->cat);
    test_env_close(&f->env);
    core_buf_release(&f->last);
    free(f);
    return 0;
}

/* ---- a tiny HTTP harness ---- */

struct hdrs {
    const char *name[6];
    const char *value[6];
    int n;
};

static const char *hget(void *arg, const char *name)
{
    struct hdrs *h = arg;
    for (int i = 0; h && i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0)
            return h->value[i];
    return NULL;
}

/* Runs one request; a file body is read into rs->body so tests can look at it.
 */
static int call(struct fx *f, const struct catalog_actor *who, const char *method, const char *path,
                const char *query, const char *body, size_t len, struct hdrs *h,
                struct registry_response *rs)
{
    struct registry_request rq = {
        .method = method,
        .path = path,
        .query = query,
        .header = hget,
        .header_arg = h,
        .actor = who,
        .body = body,
        .body_len = len,
    };
    memset(rs, 0, sizeof(*rs));
    core_buf_release(&f->last);
    core_buf_init(&rs->body, 0);
    int rc = registry_handle(f->reg, &rq, rs);
    if (rs->has_file) {
        char *buf = malloc(rs->file_len + 1);
        ssize_t r = buf ? pread(rs->file_fd, buf, rs->file_len, (off_t)rs->file_offset) : -1;
        if (r >= 0)
            core_buf_add(&rs->body, buf, (size_t)r);
        free(buf);
        close(rs->file_fd);
        rs->has_file = false;
    }
    /* the fixture owns the body from here on (done() is then a no-op) */
    f->last = rs->body;
    assert_int_equal(rc, 0);
    return rs->status;
}

static const char *rh(const struct registry_response *rs, const char *name)
{
    for (int i = 0; i < rs->nheaders; i++)
        if (strcasecmp(rs->headers[i].name, name) == 0)
            return rs->headers[i].value;
    return NULL;
}

static void done(struct registry_response *rs)
{
    (void)rs; /* the fixture releases the body at the next call or in teardown */
}

static void digest_of(const void *data, size_t len, char out[72])
{
    memcpy(out, "sha256:", 7);
    core_sha256_hex(data, len, out + 7);
}

/* Pushes a blob with a monolithic POST; asserts 201. */
static void push_blob(struct fx *f, const char *repo, const char *data, char digest[72])
{
    struct registry_response rs;
    char path[300], q[100];
    digest_of(data, strlen(data), digest);
    snprintf(path, sizeof(path), "/%s/blobs/uploads/", repo);
    snprintf(q, sizeof(q), "digest=%s", digest);
    assert_int_equal(call(f, &alice, "POST", path, q, data, strlen(data), NULL, &rs), 201);
    assert_string_equal(rh(&rs, "Docker-Content-Digest"), digest);
    done(&rs);
}

static char *image_manifest(const char *cfg, const char *layer, const char *subject,
                            const char *artifact_type)
{
    static char buf[2048];
    char subj[300] = "", at[200] = "";
    if (subject)
        snprintf(subj, sizeof(subj),
                 ",\"subject\":{\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST
                 "\",\"digest\":\"%s\",\"size\":1}",
                 subject);
    if (artifact_type)
        snprintf(at, sizeof(at), ",\"artifactType\":\"%s\"", artifact_type);
    snprintf(buf, sizeof(buf),
             "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\"%s,"
             "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
             "\"digest\":\"%s\",\"size\":2},\"layers\":[{\"mediaType\":"
             "\"application/"
             "vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":5}]%s,"
             "\"annotations\":{\"org.example\":\"yes\"}}",
             at, cfg, layer, subj);
    return buf;
}

/* Pushes config + layer + manifest to repo:tag; returns the manifest digest. */
static void push_image(struct fx *f, const char *repo, const char *tag, const char *seed,
                       const char *subject, const char *artifact_type, char mdigest[72])
{
    char cfg[72], layer[72], path[300], cbuf[64], lbuf[64];
    snprintf(cbuf, sizeof(cbuf), "{\"c\":\"%s\"}", seed);
    snprintf(lbuf, sizeof(lbuf), "layer-%s", seed);
    push_blob(f, repo, cbuf, cfg);
    push_blob(f, repo, lbuf, layer);
    const char *m = image_manifest(cfg, layer, subject, artifact_type);
    struct hdrs h = {{"Content-Type"}, {REGISTRY_MT_OCI_MANIFEST}, 1};
    struct registry_response rs;
    digest_of(m, strlen(m), mdigest);
    snprintf(path, sizeof(path), "/%s/manifests/%s", repo, tag ? tag : mdigest);
    assert_int_equal(call(f, &alice, "PUT", path, NULL, m, strlen(m), &h, &rs), 201);
    assert_string_equal(rh(&rs, "Docker-Content-Digest"), mdigest);
    if (subject)
        assert_string_equal(rh(&rs, "OCI-Subject"), subject);
    done(&rs);
}

static int count_files(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "find '%s' -type f | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

/* ---- tests ---- */

static void base_requires_a_token(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    assert_int_equal(call(f, NULL, "GET", "/", NULL, NULL, 0, NULL, &rs), 401);
    assert_string_equal(rh(&rs, "WWW-Authenticate"), "Basic realm=\"pave\"");
    assert_non_null(strstr(rs.body.data, "\"UNAUTHORIZED\""));
    done(&rs);
    assert_int_equal(call(f, &alice, "GET", "/", NULL, NULL, 0, NULL, &rs), 200);
    assert_string_equal(rh(&rs, "Docker-Distribution-API-Version"), "registry/2.0");
    done(&rs);
    assert_int_equal(call(f, NULL, "GET", "/payments-api/tags/list", NULL, NULL, 0, NULL, &rs),
                     401);
    done(&rs);
}

static void monolithic_upload_serves_ranges(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    char d[72], path[200];
    push_blob(f, "payments-api", "0123456789", d);
    snprintf(path, sizeof(path), "/payments-api/blobs/%s", d);
    assert_int_equal(call(f, &bob, "HEAD", path, NULL, NULL, 0, NULL, &rs), 200);
    assert_int_equal(rs.body.len, 10);
    assert_string_equal(rh(&rs, "Docker-Content-Digest"), d);
    done(&rs);
    struct hdrs h = {{"Range"}, {"bytes=2-4"}, 1};
    assert_int_equal(call(f, &alice, "GET", path, NULL, NULL, 0, &h, &rs), 206);
    assert_string_equal(rs.body.data, "234");
    assert_string_equal(rh(&rs, "Content-Range"), "bytes 2-4/10");
    done(&rs);
    h.value[0] = "bytes=-3";
    assert_int_equal(call(f, &alice, "GET", path, NULL, NULL, 0, &h, &rs), 206);
    assert_string_equal(rs.body.data, "789");
    done(&rs);
    h.value[0] = "bytes=10-";
    assert_int_equal(call(f, &alice, "GET", path, NULL, NULL, 0, &h, &rs), 416);
    assert_string_equal(rh(&rs, "Content-Range"), "bytes */10");
    done(&rs);
    /* the same blob in another repository is not readable there until linked */
    snprintf(path, sizeof(path), "/ledger/blobs/%s", d);
    assert_int_equal(call(f, &alice, "GET", path, NULL, NULL, 0, NULL, &rs), 404);
    assert_non_null(strstr(rs.body.data, "BLOB_UNKNOWN"));
    done(&rs);
}

static void chunked_upload_in_order_and_out_of_order(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    char loc[300], q[100], d[72];
    assert_int_equal(
        call(f, &alice, "POST", "/payments-api/blobs/uploads/", NULL, NULL, 0, NULL, &rs), 202);
    assert_string_equal(rh(&rs, "Range"), "0-0");
    assert_non_null(rh(&rs, "Docker-Upload-UUID"));
    snprintf(loc, sizeof(loc), "%s", rh(&rs, "Location") + 3); /* strip /v2 */
    done(&rs);
    struct hdrs h = {{"Content-Range"}, {"0-4"}, 1};
    assert_int_equal(call(f, &alice, "PATCH", loc, NULL, "hello", 5, &h, &rs), 202);
    assert_string_equal(rh(&rs, "Range"), "0-4");
    done(&rs);
    h.value[0] = "10-12";
    assert_int_equal(call(f, &alice, "PATCH", loc, NULL, "abc", 3, &h, &rs), 416);
    assert_string_equal(rh(&rs, "Range"), "0-4");
    assert_non_null(strstr(rs.body.data, "BLOB_UPLOAD_INVALID"));
    done(&rs);
    h.value[0] = "5-10";
    assert_int_equal(call(f, &alice, "PATCH", loc, NULL, " world", 6, &h, &rs), 202);
    done(&rs);
    assert_int_equal(call(f, &alice, "GET", loc, NULL, NULL, 0, NULL, &rs), 204);
    assert_string_equal(rh(&rs, "Range"), "0-10");
    done(&rs);
    /* another team cannot touch the upload */
    assert_int_equal(call(f, &bob, "PATCH", loc, NULL, "x", 1, NULL, &rs), 403);
    done(&rs);
    digest_of("hello world", 11, d);
    snprintf(q, sizeof(q), "digest=%s", d);
    assert_int_equal(call(f, &alice, "PUT", loc, q, NULL, 0, NULL, &rs), 201);
    assert_string_equal(rh(&rs, "Docker-Content-Digest"), d);
    done(&rs);
    char path[200];
    snprintf(path, sizeof(path), "/payments-api/blobs/%s", d);
    assert_int_equal(call(f, &alice, "GET", path, NULL, NULL, 0, NULL, &rs), 200);
    assert_string_equal(rs.body.data, "hello world");
    done(&rs);
    /* the upload is gone */
    assert_int_equal(call(f, &alice, "GET", loc, NULL, NULL, 0, NULL, &rs), 404);
    assert_non_null(strstr(rs.body.data, "BLOB_UPLOAD_UNKNOWN"));
    done(&rs);
}

static void digest_mismatch_keeps_nothing(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    char d[72], q[100], blobs[400], uploads[400], loc[300];
    digest_of("something else", 14, d);
    snprintf(q, sizeof(q), "digest=%s", d);
    assert_int_equal(
        call(f, &alice, "POST", "/payments-api/blobs/uploads/", q, "data", 4, NULL, &rs), 400);
    assert_non_null(strstr(rs.body.data, "DIGEST_INVALID"));
    done(&rs);
    /* the chunked way too */
    assert_int_equal(
        call(f, &alice, "POST", "/payments-api/blobs/uploads/", NULL, NULL, 0, NULL, &rs), 202);
    snprintf(loc, sizeof(loc), "%s", rh(&rs, "Location") + 3);
    done(&rs);
    assert_int_equal(call(f, &alice, "PUT", loc, q, "data", 4, NULL, &rs), 400);
    done(&rs);
    snprintf(blobs, sizeof(blobs), "%s/registry/blobs", f->env.dir);
    snprintf(uploads, sizeof(uploads), "%s/registry/uploads", f->env.dir);
    assert_int_equal(count_files(blobs), 0);
    assert_int_equal(count_files(uploads), 0);
    int64_t n = -1;
    store_query_int(f->env.st, "SELECT COUNT(*) FROM registry_blobs", NULL, 0, &n, NULL);
    assert_int_equal(n, 0);
    store_query_int(f->env.st, "SELECT COUNT(*) FROM registry_uploads", NULL, 0, &n, NULL);
    assert_int_equal(n, 0);
}

static void manifest_round_trip_and_validation(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    char md[72], cfg[72], path[300];
    push_image(f, "payments-api", "v1", "a", NULL, NULL, md);
    assert_int_equal(call(f, &bob, "GET", "/payments-api/manifests/v1", NULL, NULL, 0, NULL, &rs),
                     200);
    assert_string_equal(rh(&rs, "Content-Type"), REGISTRY_MT_OCI_MANIFEST);
    assert_string_equal(rh(&rs, "Docker-Content-Digest"), md);
    char got[72];
    digest_of(rs.body.data, rs.body.len, got);
    assert_string_equal(got, md); /* exactly the bytes pushed */
    done(&rs);
    snprintf(path, sizeof(path), "/payments-api/manifests/%s", md);
    assert_int_equal(call(f, &alice, "HEAD", path, NULL, NULL, 0, NULL, &rs), 200);
    done(&rs);
    /* a wrong media type */
    push_blob(f, "payments-api", "{}", cfg);
    const char *m = image_manifest(cfg, cfg, NULL, NULL);
    struct hdrs h = {{"Content-Type"}, {"application/json"}, 1};
    assert_int_equal(
        call(f, &alice, "PUT", "/payments-api/manifests/x", NULL, m, strlen(m), &h, &rs), 400);
    assert_non_null(strstr(rs.body.data, "MANIFEST_INVALID"));
    done(&rs);
    /* a missing blob */
    char missing[72];
    digest_of("not pushed", 10, missing);
    m = image_manifest(cfg, missing, NULL, NULL);
    h.value[0] = REGISTRY_MT_OCI_MANIFEST;
    assert_int_equal(
        call(f, &alice, "PUT", "/payments-api/manifests/x", NULL, m, strlen(m), &h, &rs), 400);
    assert_non_null(strstr(rs.body.data, "MANIFEST_BLOB_UNKNOWN"));
    assert_non_null(strstr(rs.body.data, missing));
    done(&rs);
    /* a digest reference that is not the content's */
    m = image_manifest(cfg, cfg, NULL, NULL);
    snprintf(path, sizeof(path), "/payments-api/manifests/%s", missing);
    assert_int_equal(call(f, &alice, "PUT", path, NULL, m, strlen(m), &h, &rs), 400);
    assert_non_null(strstr(rs.body.data, "DIGEST_INVALID"));
    done(&rs);
    /* not JSON, wrong schemaVersion */
    assert_int_equal(call(f, &alice, "PUT", "/payments-api/manifests/x", NULL, "{", 1, &h, &rs),
                     400);
    done(&rs);
    const char *v1 = "{\"schemaVersion\":1,\"config\":{},\"layers\":[]}";
    assert_int_equal(
        call(f, &alice, "PUT", "/payments-api/manifests/x", NULL, v1, strlen(v1), &h, &rs), 400);
    done(&rs);
    /* an index referencing a manifest of the repository, then one that is not there */
    char idx[600];
    snprintf(idx, sizeof(idx),
             "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_INDEX "\",\"manifests\":"
             "[{\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\",\"digest\":\"%s\",\"size\":9}]}",
             md);
    h.value[0] = REGISTRY_MT_OCI_INDEX;
    assert_int_equal(
        call(f, &alice, "PUT", "/payments-api/manifests/multi", NULL, idx, strlen(idx), &h, &rs),
        201);
    done(&rs);
    assert_int_equal(
        call(f, &alice, "PUT", "/ledger/manifests/multi", NULL, idx, strlen(idx), &h, &rs), 400);
    assert_non_null(strstr(rs.body.data, "MANIFEST_BLOB_UNKNOWN"));
    done(&rs);
    assert_int_equal(
        call(f, &alice, "GET", "/payments-api/manifests/nope", NULL, NULL, 0, NULL, &rs), 404);
    assert_non_null(strstr(rs.body.data, "MANIFEST_UNKNOWN"));
    done(&rs);
}

static void bad_names_are_refused(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    static const char *const bad[] = {
        "/Payments-api/tags/list",
        "/payments-api//x/tags/list",
        "/payments-api/../x/tags/list",
        "/payments_api/tags/list",
        "/-x/tags/list",
        "/tags/list",
        "/a..b/manifests/v1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(call(f, &alice, "GET", bad[i], NULL, NULL, 0, NULL, &rs), 400);
        assert_non_null(strstr(rs.body.data, "NAME_INVALID"));
        done(&rs);
    }
    assert_int_equal(call(f, &alice, "POST", "/nosuch/blobs/uploads/", NULL, NULL, 0, NULL, &rs),
                     404);
    assert_non_null(strstr(rs.body.data, "NAME_UNKNOWN"));
    done(&rs);
    assert_int_equal(call(f, &alice, "GET", "/whatever", NULL, NULL, 0, NULL, &rs), 404);
    done(&rs);
    assert_int_equal(call(f, &alice, "POST", "/payments-api/tags/list", NULL, NULL, 0, NULL, &rs),
                     405);
    done(&rs);
}

static void tags_paginate_with_link(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    char md[72];
    assert_int_equal(call(f, &alice, "GET", "/payments-api/tags/list", NULL, NULL, 0, NULL, &rs),
                     404);
    done(&rs);
    static const char *const tags[] = {"t5", "t1", "t3", "t2", "t4"};
    for (int i = 0; i < 5; i++)
        push_image(f, "payments-api/web", tags[i], "same", NULL, NULL, md);
    assert_int_equal(
        call(f, &alice, "GET", "/payments-api/web/tags/list", "n=2", NULL, 0, NULL, &rs), 200);
    assert_string_equal(rs.body.data, "{\"name\":\"payments-api/web\",\"tags\":[\"t1\",\"t2\"]}");
    assert_string_equal(rh(&rs, "Link"),
                        "</v2/payments-api/web/tags/list?n=2&last=t2>; rel=\"next\"");
    done(&rs);
    assert_int_equal(
        call(f, &alice, "GET", "/payments-api/web/tags/list", "n=2&last=t2", NULL, 0, NULL, &rs),
        200);
    assert_non_null(strstr(rs.body.data, "[\"t3\",\"t4\"]"));
    done(&rs);
    assert_int_equal(
        call(f, &alice, "GET", "/payments-api/web/tags/list", "n=2&last=t4", NULL, 0, NULL, &rs),
        200);
    assert_non_null(strstr(rs.body.data, "[\"t5\"]"));
    assert_null(rh(&rs, "Link"));
    done(&rs);
    assert_int_equal(
        call(f, &alice, "GET", "/payments-api/web/tags/list", NULL, NULL, 0, NULL, &rs), 200);
    assert_non_null(strstr(rs.body.data, "[\"t1\",\"t2\",\"t3\",\"t4\",\"t5\"]"));
    done(&rs);
}

static void referrers_filter_by_artifact_type(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    char subject[72], sig[72], sbom[72], path[300];
    push_image(f, "payments-api", "v1", "base", NULL, NULL, subject);
    push_image(f, "payments-api", NULL, "sig", subject, "application/vnd.example.sig", sig);
    push_image(f, "payments-api", NULL, "sbom", subject, "application/spdx+json", sbom);
    snprintf(path, sizeof(path), "/payments-api/referrers/%s", subject);
    assert_int_equal(call(f, &bob, "GET", path, NULL, NULL, 0, NULL, &rs), 200);
    assert_string_equal(rh(&rs, "Content-Type"), REGISTRY_MT_OCI_INDEX);
    assert_non_null(strstr(rs.body.data, sig));
    assert_non_null(strstr(rs.body.data, sbom));
    assert_non_null(strstr(rs.body.data, "\"annotations\":{\"org.example\":\"yes\"}"));
    assert_null(rh(&rs, "OCI-Filters-Applied"));
    done(&rs);
    assert_int_equal(
        call(f, &bob, "GET", path, "artifactType=application%2Fspdx%2Bjson", NULL, 0, NULL, &rs),
        200);
    assert_null(strstr(rs.body.data, sig));
    assert_non_null(strstr(rs.body.data, sbom));
    assert_string_equal(rh(&rs, "OCI-Filters-Applied"), "artifactType");
    done(&rs);
    /* nothing refers to the signature */
    snprintf(path, sizeof(path), "/payments-api/referrers/%s", sig);
    assert_int_equal(call(f, &bob, "GET", path, NULL, NULL, 0, NULL, &rs), 200);
    assert_non_null(strstr(rs.body.data, "\"manifests\":[]"));
    done(&rs);
    assert_int_equal(
        call(f, &bob, "GET", "/payments-api/referrers/sha256:zz", NULL, NULL, 0, NULL, &rs), 400);
    done(&rs);
}

static void cross_repository_mount(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    char d[72], q[300], path[300], other[72];
    push_blob(f, "payments-api", "shared layer", d);
    snprintf(q, sizeof(q), "mount=%s&from=payments-api", d);
    assert_int_equal(call(f, &alice, "POST", "/ledger/blobs/uploads/", q, NULL, 0, NULL, &rs), 201);
    snprintf(path, sizeof(path), "/v2/ledger/blobs/%s", d);
    assert_string_equal(rh(&rs, "Location"), path);
    done(&rs);
    assert_int_equal(call(f, &alice, "HEAD", path + 3, NULL, NULL, 0, NULL, &rs), 200);
    done(&rs);
    /* one copy on disk */
    char blobs[400];
    snprintf(blobs, sizeof(blobs), "%s/registry/blobs", f->env.dir);
    assert_int_equal(count_files(blobs), 1);
    /* unknown blob: falls back to an upload session */
    digest_of("unknown", 7, other);
    snprintf(q, sizeof(q), "mount=%s&from=payments-api", other);
    assert_int_equal(call(f, &alice, "POST", "/ledger/blobs/uploads/", q, NULL, 0, NULL, &rs), 202);
    assert_non_null(rh(&rs, "Docker-Upload-UUID"));
    done(&rs);
    /* mounting into another team's repository is refused before anything */
    assert_int_equal(call(f, &alice, "POST", "/auth-service/blobs/uploads/", q, NULL, 0, NULL, &rs),
                     403);
    done(&rs);
}

static void deletes(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    char md[72], d[72], path[300], loc[300];
    push_image(f, "payments-api", "v1", "del", NULL, NULL, md);
    assert_int_equal(
        call(f, &bob, "DELETE", "/payments-api/manifests/v1", NULL, NULL, 0, NULL, &rs), 403);
    assert_non_null(strstr(rs.body.data, "DENIED"));
    done(&rs);
    /* deleting the tag keeps the manifest */
    assert_int_equal(
        call(f, &alice, "DELETE", "/payments-api/manifests/v1", NULL, NULL, 0, NULL, &rs), 202);
    done(&rs);
    assert_int_equal(call(f, &alice, "GET", "/payments-api/manifests/v1", NULL, NULL, 0, NULL, &rs),
                     404);
    done(&rs);
    snprintf(path, sizeof(path), "/payments-api/manifests/%s", md);
    assert_int_equal(call(f, &alice, "GET", path, NULL, NULL, 0, NULL, &rs), 200);
    done(&rs);
    assert_int_equal(call(f, &alice, "DELETE", path, NULL, NULL, 0, NULL, &rs), 202);
    done(&rs);
    assert_int_equal(call(f, &alice, "GET", path, NULL, NULL, 0, NULL, &rs), 404);
    done(&rs);
    assert_int_equal(call(f, &alice, "DELETE", path, NULL, NULL, 0, NULL, &rs), 404);
    done(&rs);
    push_blob(f, "payments-api", "to delete", d);
    snprintf(path, sizeof(path), "/payments-api/blobs/%s", d);
    assert_int_equal(call(f, &alice, "DELETE", path, NULL, NULL, 0, NULL, &rs), 202);
    done(&rs);
    assert_int_equal(call(f, &alice, "HEAD", path, NULL, NULL, 0, NULL, &rs), 404);
    done(&rs);
    /* cancel an upload */
    assert_int_equal(
        call(f, &alice, "POST", "/payments-api/blobs/uploads/", NULL, NULL, 0, NULL, &rs), 202);
    snprintf(loc, sizeof(loc), "%s", rh(&rs, "Location") + 3);
    done(&rs);
    assert_int_equal(call(f, &alice, "DELETE", loc, NULL, NULL, 0, NULL, &rs), 204);
    done(&rs);
    assert_int_equal(call(f, &alice, "GET", loc, NULL, NULL, 0, NULL, &rs), 404);
    done(&rs);
}

static void rights_follow_the_catalog(void **state)
{
    struct fx *f = *state;
    struct registry_response rs;
    char md[72], q[100], d[72];
    digest_of("x", 1, d);
    snprintf(q, sizeof(q), "digest=%s", d);
    assert_int_equal(call(f, &bob, "POST", "/payments-api/blobs/uploads/", q, "x", 1, NULL, &rs),
                     403);
    assert_non_null(strstr(rs.body.data, "\"DENIED\""));
    done(&rs);
    assert_int_equal(call(f, NULL, "POST", "/payments-api/blobs/uploads/", q, "x", 1, NULL, &rs),
                     401);
    assert_non_null(rh(&rs, "WWW-Authenticate"));
    done(&rs);
    push_image(f, "payments-api", "v1", "r", NULL, NULL, md);
    /* anyone with a token pulls */
    assert_int_equal(call(f, &bob, "GET", "/payments-api/manifests/v1", NULL, NULL, 0, NULL, &rs),
                     200);
    done(&rs);
    assert_int_equal(call(f, NULL, "GET", "/payments-api/manifests/v1", NULL, NULL, 0, NULL, &rs),
                     401);
    done(&rs);
    /* admins push anywhere */
    assert_int_equal(call(f, &catalog_actor_system, "POST", "/auth-service/blobs/uploads/", q, "x",
                          1, NULL, &rs),
                     201);
    done(&rs);
}

static void gc_keeps_referenced_blobs(void **state)
{
    struct fx *f = *state;
    char md[72], loose[72], cfg[72], layer[72], path[600];
    struct core_err err = {0};
    push_image(f, "payments-api", "v1", "gc", NULL, NULL, md);
    digest_of("{\"c\":\"gc\"}", 10, cfg);
    digest_of("layer-gc", 8, layer);
    push_blob(f, "payments-api", "loose blob", loose);
    int64_t freed = -1;
    /* with the default grace period nothing young goes */
    assert_int_equal(registry_gc(f->reg, &freed, &err), 0);
    assert_int_equal(freed, 0);
    registry_set_gc_grace(f->reg, -1000, 24 * 3600 * 1000);
    assert_int_equal(registry_gc(f->reg, &freed, &err), 0);
    assert_int_equal(freed, 10);
    snprintf(path, sizeof(path), "%s/registry/blobs/sha256/%.2s/%s", f->env.dir, loose + 7,
             loose + 7);
    assert_int_not_equal(access(path, F_OK), 0);
    const char *keep[] = {md, cfg, layer};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/registry/blobs/sha256/%.2s/%s", f->env.dir, keep[i] + 7,
                 keep[i] + 7);
        assert_int_equal(access(path, F_OK), 0);
    }
    /* once the manifest is deleted, its blobs go too */
    struct registry_response rs;
    snprintf(path, sizeof(path), "/payments-api/manifests/%s", md);
    assert_int_equal(call(f, &alice, "DELETE", path, NULL, NULL, 0, NULL, &rs), 202);
    done(&rs);
    assert_int_equal(registry_gc(f->reg, &freed, &err), 0);
    assert_true(freed > 10);
    snprintf(path, sizeof(path), "%s/registry/blobs", f->env.dir);
    assert_int_equal(count_files(path), 0);
}

struct seen {
    int n;
    int tagged;
    char digest[72];
};

static int seen_cb(void *arg, const struct registry_image *img)
{
    struct seen *s = arg;
    s->n++;
    if (img->tag)
        s->tagged++;
    snprintf(s->digest, sizeof(s->digest), "%s", img->digest);
    return 0;
}

static void in_process_api(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    char cfg[72], layer[72], md[72], sig[72], got_d[72], mt[128];
    assert_int_equal(registry_put_blob(f->reg, &alice, "ledger", "{}", 2, cfg, &err), 0);
    assert_int_equal(registry_put_blob(f->reg, &alice, "ledger", "data", 4, layer, &err), 0);
    assert_int_equal(registry_put_blob(f->reg, &bob, "ledger", "data", 4, layer, &err),
                     CORE_E_PERM);
    assert_int_equal(registry_put_blob(f->reg, NULL, "ledger", "data", 4, layer, &err),
                     CORE_E_AUTH);
    /* from a file, with a wrong digest, then the right one */
    char file[400];
    snprintf(file, sizeof(file), "%s/blob.bin", f->env.dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fputs("file blob", fp);
    fclose(fp);
    assert_int_equal(registry_put_blob_file(f->reg, &alice, "ledger", file, cfg, &err),
                     CORE_E_INVAL);
    char fd_[72];
    digest_of("file blob", 9, fd_);
    assert_int_equal(registry_put_blob_file(f->reg, &alice, "ledger", file, fd_, &err), 0);
    const char *m = image_manifest(cfg, layer, NULL, NULL);
    assert_int_equal(registry_put_manifest(f->reg, &alice, "ledger", REGISTRY_MT_OCI_MANIFEST, m,
                                           strlen(m), "latest", md, &err),
                     0);
    assert_int_equal(
        registry_put_manifest(f->reg, &alice, "ledger", "text/plain", m, strlen(m), NULL, md, &err),
        CORE_E_UNSUPPORTED);
    assert_int_equal(registry_put_manifest(f->reg, &alice, "ledger", REGISTRY_MT_OCI_MANIFEST, m,
                                           strlen(m), "bad tag", md, &err),
                     CORE_E_INVAL);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(registry_get_manifest(f->reg, "ledger", "latest", &out, &len, mt, got_d, &err),
                     0);
    assert_int_equal(len, strlen(m));
    assert_memory_equal(out, m, len);
    assert_string_equal(mt, REGISTRY_MT_OCI_MANIFEST);
    assert_string_equal(got_d, md);
    core_free(out);
    out = NULL;
    assert_int_equal(registry_get_manifest(f->reg, "ledger", "nope", &out, &len, mt, got_d, &err),
                     CORE_E_NOTFOUND);
    assert_null(out);
    const char *s = image_manifest(cfg, layer, md, "application/vnd.example.sig");
    assert_int_equal(registry_put_manifest(f->reg, &alice, "ledger", REGISTRY_MT_OCI_MANIFEST, s,
                                           strlen(s), NULL, sig, &err),
                     0);
    struct seen seen = {0};
    assert_int_equal(registry_list(f->reg, "ledger", seen_cb, &seen, &err), 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.tagged, 1);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(registry_referrers(f->reg, "ledger", md, seen_cb, &seen, &err), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.digest, sig);
    assert_int_equal(registry_referrers(f->reg, "ledger", "bad", seen_cb, &seen, &err),
                     CORE_E_INVAL);
}

static void header_parsers(void **state)
{
    (void)state;
    uint64_t a = 0, b = 0;
    assert_int_equal(registry_content_range_parse("0-99", &a, &b), 0);
    assert_true(a == 0 && b == 99);
    assert_int_equal(registry_content_range_parse("bytes 5-9/10", &a, &b), 0);
    assert_true(a == 5 && b == 9);
    assert_int_equal(registry_content_range_parse("bytes=5-9", &a, &b), 0);
    assert_int_equal(registry_content_range_parse("9-5", &a, &b), CORE_E_INVAL);
    assert_int_equal(registry_content_range_parse("5-9/9", &a, &b), CORE_E_INVAL);
    assert_int_equal(registry_content_range_parse("-5", &a, &b), CORE_E_INVAL);
    assert_int_equal(registry_content_range_parse("99999999999999999999-1", &a, &b), CORE_E_INVAL);
    assert_int_equal(registry_content_range_parse("", &a, &b), CORE_E_INVAL);
    assert_int_equal(registry_range_parse("bytes=0-", 10, &a, &b), 0);
    assert_true(a == 0 && b == 10);
    assert_int_equal(registry_range_parse("bytes=5-100", 10, &a, &b), 0);
    assert_true(a == 5 && b == 5);
    assert_int_equal(registry_range_parse("bytes=-100", 10, &a, &b), 0);
    assert_true(a == 0 && b == 10);
    assert_int_equal(registry_range_parse("bytes=0-1,3-4", 10, &a, &b), CORE_E_INVAL);
    assert_int_equal(registry_range_parse("bytes=10-", 10, &a, &b), CORE_E_TOO_BIG);
    assert_int_equal(registry_range_parse("bytes=-0", 10, &a, &b), CORE_E_TOO_BIG);
    assert_int_equal(registry_range_parse("items=0-1", 10, &a, &b), CORE_E_INVAL);
    assert_true(registry_name_valid("payments-api/web/x"));
    assert_false(registry_name_valid("payments-api/"));
    assert_false(registry_name_valid("a/../b"));
    assert_true(registry_tag_valid("v1.0_rc-1"));
    assert_false(registry_tag_valid(".hidden"));
    assert_false(registry_digest_valid("sha256:ABC"));
    struct registry_manifest_info info;
    struct core_err err = {0};
    const char *dup = "{\"schemaVersion\":2,\"schemaVersion\":2}";
    assert_int_equal(registry_manifest_parse(REGISTRY_MT_OCI_INDEX, dup, strlen(dup), &info, &err),
                     CORE_E_INVAL);
    const char *idx = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":"
                      "\"sha256:1\",\"size\":1}]}";
    assert_int_equal(registry_manifest_parse(REGISTRY_MT_OCI_INDEX, idx, strlen(idx), &info, &err),
                     CORE_E_INVAL);
    const char *big_neg = "{\"schemaVersion\":2,\"manifests\":[]}";
    assert_int_equal(
        registry_manifest_parse(REGISTRY_MT_DOCKER_LIST, big_neg, strlen(big_neg), &info, &err), 0);
    assert_true(info.is_index);
    assert_int_equal(info.nmanifests, 0);
    registry_manifest_info_release(&info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(base_requires_a_token, setup, teardown),
        cmocka_unit_test_setup_teardown(monolithic_upload_serves_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(chunked_upload_in_order_and_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(digest_mismatch_keeps_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(manifest_round_trip_and_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_names_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(tags_paginate_with_link, setup, teardown),
        cmocka_unit_test_setup_teardown(referrers_filter_by_artifact_type, setup, teardown),
        cmocka_unit_test_setup_teardown(cross_repository_mount, setup, teardown),
        cmocka_unit_test_setup_teardown(deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(rights_follow_the_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(gc_keeps_referenced_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(in_process_api, setup, teardown),
        cmocka_unit_test(header_parsers),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
