/*
 * Signed images from pipeline runs (src/artifact): the signing key file
 * (created 0600, refused when others can read it), signatures, tag sanitizing,
 * layer digests and diff_ids computed through zlib, the image config and
 * provenance documents, and publish + verify end to end against a real store,
 * catalog (demo organization) and registry in a temp dir, including tampered
 * and foreign signatures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "artifact/artifact.h"
#include "artifact/artifact_int.h"
#include "catalog/catalog.h"
#include "core/core.h"
#include "registry/registry.h"
#include "store/store.h"

struct fx {
    char dir[64];
    char key[128];
    char tgz[128];
    struct store *st;
    struct catalog *cat;
    struct registry *reg;
    struct artifact_signer *signer;
    char *manifest;   /* payments-api's canonical manifest JSON */
    char raw_sha[72]; /* sha256 of the uncompressed tar */
};

/* A one-file ustar archive ("hello.txt") in out (3 * 512 + 512 bytes). */
static size_t make_tar(unsigned char *out, size_t outsz)
{
    static const char body[] = "hello from a pipeline\n";
    assert_true(outsz >= 2048);
    memset(out, 0, 2048);
    unsigned char *h = out;
    strcpy((char *)h, "hello.txt");
    strcpy((char *)h + 100, "0000644");
    strcpy((char *)h + 108, "0000000");
    strcpy((char *)h + 116, "0000000");
    snprintf((char *)h + 124, 12, "%011o", (unsigned)strlen(body));
    strcpy((char *)h + 136, "00000000000");
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    memcpy(out + 512, body, strlen(body));
    return 2048; /* header, data block, two zero blocks */
}

static void write_gzip(const char *path, const void *data, size_t len, bool append)
{
    gzFile g = gzopen(path, append ? "ab" : "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pave-artifact-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->key, sizeof(f->key), "%s/signing.key", f->dir);
    snprintf(f->tgz, sizeof(f->tgz), "%s/artifact.tar.gz", f->dir);
    char url[128];
    snprintf(url, sizeof(url), "sqlite:%s/pave.db", f->dir);
    struct core_err err = {0};
    assert_int_equal(store_open(&f->st, url, &err), 0);
    assert_non_null(f->cat = catalog_new(f->st, &err));
    assert_int_equal(catalog_demo_load(f->cat, &err), 0);
    f->reg = registry_new(f->st, f->cat, f->dir, &err);
    assert_non_null(f->reg);
    f->signer = artifact_signer_open(f->key, &err);
    assert_non_null(f->signer);
    struct catalog_service s = {0};
    assert_int_equal(catalog_service_get(f->cat, "payments-api", &s, &err), 0);
    f->manifest = strdup(s.manifest);
    catalog_service_release(&s);
    unsigned char tar[2048];
    size_t n = make_tar(tar, sizeof(tar));
    char hex[65];
    core_sha256_hex(tar, n, hex);
    snprintf(f->raw_sha, sizeof(f->raw_sha), "sha256:%s", hex);
    write_gzip(f->tgz, tar, n, false);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    artifact_signer_free(f->signer);
    registry_free(f->reg);
    catalog_free(f->cat);
    store_close(f->st);
    free(f->manifest);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct artifact_input input_for(struct fx *f, int64_t run)
{
    return (struct artifact_input){.service = "payments-api",
                                   .team = "payments",
                                   .commit = "0123456789abcdef0123456789abcdef01234567",
                                   .branch = "feature/fast-refunds",
                                   .run_id = run,
                                   .pipeline_digest =
                                       "sha256:"
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                       "aaaaaaaaaaaaaaaaa",
                                   .tarball_path = f->tgz,
                                   .manifest_json = f->manifest,
                                   .source_uri = "http://127.0.0.1:7070/git/payments-api.git",
                                   .started_at = "2024-05-01T10:00:00.000Z",
                                   .finished_at = "2024-05-01T10:01:00.000Z"};
}

/* ---- the key ---- */

static void key_file_is_created_0600_and_reloaded(void **state)
{
    struct fx *f = *state;
    struct stat sb;
    assert_int_equal(stat(f->key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    const char *pem = artifact_signer_public_pem(f->signer);
    assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
    assert_null(strstr(pem, "PRIVATE"));
    assert_int_equal(strncmp(artifact_signer_key_id(f->signer), "sha256:", 7), 0);
    assert_int_equal(strlen(artifact_signer_key_id(f->signer)), 71);
    struct core_err err = {0};
    struct artifact_signer *again = artifact_signer_open(f->key, &err);
    assert_non_null(again);
    assert_string_equal(artifact_signer_key_id(again), artifact_signer_key_id(f->signer));
    artifact_signer_free(again);
}

static void key_readable_by_others_is_refused(void **state)
{
    struct fx *f = *state;
    assert_int_equal(chmod(f->key, 0644), 0);
    struct core_err err = {0};
    assert_null(artifact_signer_open(f->key, &err));
    assert_int_equal(err.code, CORE_E_PERM);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_int_equal(chmod(f->key, 0600), 0);
}

static void key_file_without_a_key_is_refused(void **state)
{
    struct fx *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/bad.key", f->dir);
    struct core_err err = {0};
    assert_int_equal(core_file_write_atomic(path, "not a key\n", 10, 0600, &err), 0);
    assert_null(artifact_signer_open(path, &err));
    assert_int_equal(err.code, CORE_E_INVAL);
}

static void signatures_verify_and_tampering_is_caught(void **state)
{
    struct fx *f = *state;
    struct core_buf sig;
    core_buf_init(&sig, 0);
    assert_int_equal(artifact_sign(f->signer, "payload", 7, &sig, NULL), 0);
    assert_true(artifact_signature_ok(f->signer, "payload", 7, sig.data));
    assert_false(artifact_signature_ok(f->signer, "payloaD", 7, sig.data));
    sig.data[10] = sig.data[10] == 'A' ? 'B' : 'A';
    assert_false(artifact_signature_ok(f->signer, "payload", 7, sig.data));
    assert_false(artifact_signature_ok(f->signer, "payload", 7, "not base64!"));
    assert_false(artifact_signature_ok(f->signer, "payload", 7, ""));
    core_buf_release(&sig);
}

static void branch_names_become_valid_tags(void **state)
{
    char tag[ARTIFACT_TAG_MAX + 1];
    assert_true(artifact_tag_sanitize("main", tag, sizeof(tag)));
    assert_string_equal(tag, "main");
    assert_true(artifact_tag_sanitize("feature/fast refunds", tag, sizeof(tag)));
    assert_string_equal(tag, "feature-fast-refunds");
    assert_true(artifact_tag_sanitize(".hidden", tag, sizeof(tag)));
    assert_string_equal(tag, "_hidden");
    assert_true(artifact_tag_sanitize("-x", tag, sizeof(tag)));
    assert_string_equal(tag, "_x");
    assert_false(artifact_tag_sanitize("", tag, sizeof(tag)));
    char longb[300];
    memset(longb, 'b', sizeof(longb) - 1);
    longb[sizeof(longb) - 1] = 0;
    assert_true(artifact_tag_sanitize(longb, tag, sizeof(tag)));
    assert_int_equal(strlen(tag), ARTIFACT_TAG_MAX);
}

/* ---- documents ---- */

static void layer_digest_and_diff_id(void **state)
{
    struct fx *f = *state;
    int64_t size = 0;
    char layer[72], diff[72];
    struct core_err err = {0};
    assert_int_equal(artifact_layer_digests(f->tgz, &size, layer, diff, &err), 0);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(core_file_read(f->tgz, 1 << 20, &data, &len, &err), 0);
    char hex[65];
    core_sha256_hex(data, len, hex);
    assert_string_equal(layer + 7, hex);
    assert_int_equal(size, (int64_t)len);
    assert_string_equal(diff, f->raw_sha);

    /* a truncated stream is refused */
    char cut[160];
    snprintf(cut, sizeof(cut), "%s/cut.tar.gz", f->dir);
    assert_int_equal(core_file_write_atomic(cut, data, len - 6, 0600, &err), 0);
    assert_int_equal(artifact_layer_digests(cut, &size, layer, diff, &err), CORE_E_INVAL);
    /* so is something that is not gzip */
    assert_int_equal(core_file_write_atomic(cut, "plain text", 10, 0600, &err), 0);
    assert_int_equal(artifact_layer_digests(cut, &size, layer, diff, &err), CORE_E_INVAL);
    core_free(data);

    /* two gzip members back to back decompress to the concatenation */
    unsigned char tar[2048];
    size_t n = make_tar(tar, sizeof(tar));
    write_gzip(cut, tar, n, false);
    write_gzip(cut, tar, n, true);
    unsigned char both[4096];
    memcpy(both, tar, n);
    memcpy(both + n, tar, n);
    core_sha256_hex(both, 2 * n, hex);
    assert_int_equal(artifact_layer_digests(cut, &size, layer, diff, &err), 0);
    assert_string_equal(diff + 7, hex);
}

static void config_has_run_spec_and_labels(void **state)
{
    struct fx *f = *state;
    struct artifact_input in = input_for(f, 7);
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(artifact_config_build(&in, f->raw_sha, "2024-05-01T10:01:00.000Z", &b, NULL),
                     0);
    json_error_t jerr;
    json_t *c = json_loads(b.data, 0, &jerr);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "architecture")), "amd64");
    assert_string_equal(json_string_value(json_object_get(c, "os")), "linux");
    json_t *rootfs = json_object_get(c, "rootfs");
    assert_string_equal(json_string_value(json_object_get(rootfs, "type")), "layers");
    assert_string_equal(json_string_value(json_array_get(json_object_get(rootfs, "diff_ids"), 0)),
                        f->raw_sha);
    json_t *cfg = json_object_get(c, "config");
    assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Entrypoint"), 0)),
                        "./bin/payments-api");
    assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Env"), 0)),
                        "LOG_LEVEL=info");
    assert_non_null(json_object_get(json_object_get(cfg, "ExposedPorts"), "8080/tcp"));
    json_t *labels = json_object_get(cfg, "Labels");
    assert_string_equal(
        json_string_value(json_object_get(labels, "org.opencontainers.image.revision")), in.commit);
    assert_string_equal(json_string_value(json_object_get(labels, "dev.pave.team")), "payments");
    assert_string_equal(json_string_value(json_object_get(labels, "dev.pave.service")),
                        "payments-api");
    assert_string_equal(json_string_value(json_object_get(labels, "dev.pave.run")), "7");
    assert_string_equal(json_string_value(json_object_get(labels, "dev.pave.pipeline")),
                        in.pipeline_digest);
    json_decref(c);
    core_buf_release(&b);

    /* a manifest that is not JSON is an input error, not a crash */
    in.manifest_json = "{oops";
    core_buf_init(&b, 0);
    assert_int_equal(artifact_config_build(&in, f->raw_sha, "x", &b, NULL), CORE_E_INVAL);
    core_buf_release(&b);
}

static void provenance_is_an_in_toto_statement(void **state)
{
    struct fx *f = *state;
    struct artifact_input in = input_for(f, 7);
    const char *img = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(artifact_provenance_build(&in, "payments-api", img, &b, NULL), 0);
    json_error_t jerr;
    json_t *s = json_loads(b.data, 0, &jerr);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "_type")),
                        "https://in-toto.io/Statement/v1");
    assert_string_equal(json_string_value(json_object_get(s, "predicateType")),
                        "https://slsa.dev/provenance/v1");
    json_t *subj = json_array_get(json_object_get(s, "subject"), 0);
    assert_string_equal(json_string_value(json_object_get(subj, "name")), "payments-api");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(subj, "digest"), "sha256")), img + 7);
    json_t *bd = json_object_get(json_object_get(s, "predicate"), "buildDefinition");
    json_t *ext = json_object_get(bd, "externalParameters");
    assert_string_equal(json_string_value(json_object_get(ext, "commit")), in.commit);
    assert_string_equal(json_string_value(json_object_get(ext, "branch")), in.branch);
    json_t *dep = json_array_get(json_object_get(bd, "resolvedDependencies"), 0);
    assert_string_equal(json_string_value(json_object_get(dep, "uri")),
                        "git+http://127.0.0.1:7070/git/payments-api.git");
    json_t *rd = json_object_get(json_object_get(s, "predicate"), "runDetails");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rd, "builder"), "id")),
                        "pave/" PAVE_VERSION);
    json_t *meta = json_object_get(rd, "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "invocationId")), "run-7");
    assert_string_equal(json_string_value(json_object_get(meta, "startedOn")), in.started_at);
    json_decref(s);
    core_buf_release(&b);

    in.source_uri = NULL;
    core_buf_init(&b, 0);
    assert_int_equal(artifact_provenance_build(&in, "payments-api", img, &b, NULL), 0);
    assert_non_null(strstr(b.data, "\"uri\":\"upload\""));
    core_buf_release(&b);
}

/* ---- publish and verify against the real registry ---- */

static void publish(struct fx *f, int64_t run, struct artifact_result *res)
{
    struct artifact_input in = input_for(f, run);
    struct core_err err = {0};
    int rc = artifact_publish(f->reg, f->signer, &catalog_actor_system, &in, res, &err);
    if (rc)
        print_message("publish: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

static void publish_then_verify(void **state)
{
    struct fx *f = *state;
    struct artifact_result res;
    publish(f, 7, &res);
    assert_int_equal(res.ntags, 2);
    assert_string_equal(res.tags[0], "run-7");
    assert_string_equal(res.tags[1], "feature-fast-refunds");
    assert_int_equal(strncmp(res.image_digest, "sha256:", 7), 0);
    assert_true(res.size > 0);

    /* both tags resolve to the image */
    struct core_err err = {0};
    for (int i = 0; i < 2; i++) {
        char *text = NULL, mt[128], dg[72];
        size_t len = 0;
        assert_int_equal(
            registry_get_manifest(f->reg, "payments-api", res.tags[i], &text, &len, mt, dg, &err),
            0);
        assert_string_equal(dg, res.image_digest);
        assert_string_equal(mt, ARTIFACT_MEDIA_MANIFEST);
        json_error_t jerr;
        json_t *m = json_loadb(text, len, 0, &jerr);
        json_t *layer = json_array_get(json_object_get(m, "layers"), 0);
        assert_string_equal(json_string_value(json_object_get(layer, "mediaType")),
                            ARTIFACT_MEDIA_LAYER);
        assert_string_equal(json_string_value(json_object_get(layer, "digest")), res.layer_digest);
        json_t *ann = json_object_get(m, "annotations");
        assert_string_equal(
            json_string_value(json_object_get(ann, "org.opencontainers.image.revision")),
            "0123456789abcdef0123456789abcdef01234567");
        assert_non_null(json_object_get(ann, "org.opencontainers.image.created"));
        json_decref(m);
        core_free(text);
    }

    struct artifact_verification v;
    assert_int_equal(artifact_verify(f->reg, f->signer, "payments-api", "run-7", &v, &err), 0);
    assert_int_equal(v.status, ARTIFACT_SIG_VERIFIED);
    assert_true(v.is_valid);
    assert_true(v.is_signed);
    assert_true(v.has_provenance);
    assert_int_equal(v.nsignatures, 1);
    assert_string_equal(v.digest, res.image_digest);
    assert_string_equal(v.signature_digest, res.signature_digest);
    assert_string_equal(v.provenance_digest, res.provenance_digest);
    assert_string_equal(v.commit, "0123456789abcdef0123456789abcdef01234567");
    assert_string_equal(v.run, "run-7");
    assert_string_equal(v.key_id, artifact_signer_key_id(f->signer));
    assert_string_equal(v.reason, "");

    /* by digest too */
    assert_int_equal(artifact_verify(f->reg, f->signer, "payments-api", res.image_digest, &v, &err),
                     0);
    assert_true(v.is_valid);

    /* show: config labels from the inlined config, diff_ids, referrers */
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(
        artifact_show(f->reg, f->signer, "payments-api", "feature-fast-refunds", &b, &err), 0);
    json_error_t jerr;
    json_t *doc = json_loads(b.data, 0, &jerr);
    assert_non_null(doc);
    json_t *labels = json_object_get(doc, "labels");
    assert_string_equal(json_string_value(json_object_get(labels, "dev.pave.run")), "7");
    assert_string_equal(json_string_value(json_object_get(labels, "dev.pave.team")), "payments");
    json_t *diff_ids =
        json_object_get(json_object_get(json_object_get(doc, "config"), "rootfs"), "diff_ids");
    assert_string_equal(json_string_value(json_array_get(diff_ids, 0)), f->raw_sha);
    assert_int_equal(json_array_size(json_object_get(doc, "referrers")), 2);
    assert_int_equal(json_array_size(json_object_get(doc, "tags")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(doc, "verification"), "status")),
        "verified");
    json_decref(doc);
    core_buf_release(&b);

    /* unknown refs */
    assert_int_equal(artifact_verify(f->reg, f->signer, "payments-api", "run-999", &v, &err),
                     CORE_E_NOTFOUND);
}

struct listed {
    int n;
    char tags[256];
    enum artifact_sig_status status;
    bool prov;
};

static int list_fn(void *arg, const struct artifact_image *img)
{
    struct listed *l = arg;
    l->n++;
    snprintf(l->tags, sizeof(l->tags), "%s", img->tags);
    l->status = img->v->status;
    l->prov = img->v->has_provenance;
    return 0;
}

static void list_shows_images_not_referrers(void **state)
{
    struct fx *f = *state;
    struct artifact_result res;
    publish(f, 8, &res);
    struct listed l = {0};
    struct core_err err = {0};
    assert_int_equal(artifact_list(f->reg, f->signer, "payments-api", 0, list_fn, &l, &err), 0);
    assert_int_equal(l.n, 1);
    assert_non_null(strstr(l.tags, "run-8"));
    assert_non_null(strstr(l.tags, "feature-fast-refunds"));
    assert_int_equal(l.status, ARTIFACT_SIG_VERIFIED);
    assert_true(l.prov);
}

/* Pushes a signature referrer for `subject` holding `doc` (inline), as an
 * attacker could. */
static void push_signature(struct fx *f, const char *subject, const char *doc)
{
    struct core_err err = {0};
    char blob[72], empty[72], dg[72];
    size_t len = strlen(doc);
    assert_int_equal(
        registry_put_blob(f->reg, &catalog_actor_system, "payments-api", doc, len, blob, &err), 0);
    assert_int_equal(
        registry_put_blob(f->reg, &catalog_actor_system, "payments-api", "{}", 2, empty, &err), 0);
    unsigned char b64[8192];
    assert_true(len < 6000);
    EVP_EncodeBlock(b64, (const unsigned char *)doc, (int)len);
    char *text = NULL, mt[128], sd[72];
    size_t slen = 0;
    assert_int_equal(
        registry_get_manifest(f->reg, "payments-api", subject, &text, &slen, mt, sd, &err), 0);
    core_free(text);
    json_t *m = json_pack(
        "{s:i,s:s,s:s,s:{s:s,s:s,s:i},s:[{s:s,s:s,s:I,s:s}],s:{s:s,s:s,s:I}}", "schemaVersion", 2,
        "mediaType", ARTIFACT_MEDIA_MANIFEST, "artifactType", ARTIFACT_TYPE_SIGNATURE, "config",
        "mediaType", ARTIFACT_MEDIA_EMPTY, "digest", empty, "size", 2, "layers", "mediaType",
        ARTIFACT_TYPE_SIGNATURE, "digest", blob, "size", (json_int_t)len, "data", (const char *)b64,
        "subject", "mediaType", ARTIFACT_MEDIA_MANIFEST, "digest", sd, "size", (json_int_t)slen);
    char *mtext = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    assert_int_equal(registry_put_manifest(f->reg, &catalog_actor_system, "payments-api",
                                           ARTIFACT_MEDIA_MANIFEST, mtext, strlen(mtext), NULL, dg,
                                           &err),
                     0);
    free(mtext);
}

static void verify_status(struct fx *f, const char *ref, enum artifact_sig_status want,
                          const char *reason_part)
{
    struct artifact_verification v;
    struct core_err err = {0};
    assert_int_equal(artifact_verify(f->reg, f->signer, "payments-api", ref, &v, &err), 0);
    if (v.status != want)
        print_message("status %s, reason: %s\n", artifact_sig_status_name(v.status), v.reason);
    assert_int_equal(v.status, want);
    assert_int_equal(v.is_valid, want == ARTIFACT_SIG_VERIFIED);
    if (reason_part)
        assert_non_null(strstr(v.reason, reason_part));
}

static void tampered_signature_is_invalid(void **state)
{
    struct fx *f = *state;
    struct artifact_result res;
    publish(f, 9, &res);
    verify_status(f, "run-9", ARTIFACT_SIG_VERIFIED, NULL);
    /* the genuine document with its signature bytes changed */
    struct core_buf doc;
    core_buf_init(&doc, 0);
    assert_int_equal(artifact_signature_doc_build(f->signer, res.image_digest,
                                                  res.provenance_digest, "payments-api", 9, &doc,
                                                  NULL),
                     0);
    char *sig = strstr(doc.data, "\"signature\":\"");
    assert_non_null(sig);
    sig += 13 + 8;
    *sig = *sig == 'A' ? 'B' : 'A';
    push_signature(f, "run-9", doc.data);
    verify_status(f, "run-9", ARTIFACT_SIG_INVALID, "does not verify");
    core_buf_release(&doc);
}

static void signature_over_another_digest_is_invalid(void **state)
{
    struct fx *f = *state;
    struct artifact_result a, b;
    publish(f, 10, &a);
    /* a second image from different bytes */
    unsigned char tar[2048];
    size_t n = make_tar(tar, sizeof(tar));
    tar[600] = 'X';
    write_gzip(f->tgz, tar, n, false);
    struct artifact_input in = input_for(f, 11);
    in.branch = NULL;
    struct core_err err = {0};
    assert_int_equal(artifact_publish(f->reg, f->signer, &catalog_actor_system, &in, &b, &err), 0);
    assert_int_equal(b.ntags, 1);
    assert_string_not_equal(a.image_digest, b.image_digest);
    /* a genuine signature of image a, attached to image b */
    struct core_buf doc;
    core_buf_init(&doc, 0);
    assert_int_equal(artifact_signature_doc_build(f->signer, a.image_digest, a.provenance_digest,
                                                  "payments-api", 10, &doc, NULL),
                     0);
    push_signature(f, "run-11", doc.data);
    verify_status(f, "run-11", ARTIFACT_SIG_INVALID, "another image");
    verify_status(f, "run-10", ARTIFACT_SIG_VERIFIED, NULL);
    core_buf_release(&doc);
}

static void foreign_key_and_unsigned_images(void **state)
{
    struct fx *f = *state;
    struct artifact_result res;
    publish(f, 12, &res);
    char other_path[160];
    snprintf(other_path, sizeof(other_path), "%s/other.key", f->dir);
    struct core_err err = {0};
    struct artifact_signer *other = artifact_signer_open(other_path, &err);
    assert_non_null(other);
    struct artifact_verification v;
    assert_int_equal(artifact_verify(f->reg, other, "payments-api", "run-12", &v, &err), 0);
    assert_int_equal(v.status, ARTIFACT_SIG_INVALID);
    assert_non_null(strstr(v.reason, "unknown key"));
    artifact_signer_free(other);

    /* an image pushed without referrers has no signature */
    char empty[72], dg[72];
    assert_int_equal(
        registry_put_blob(f->reg, &catalog_actor_system, "payments-api", "{}", 2, empty, &err), 0);
    char m[512];
    snprintf(m, sizeof(m),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{"
             "\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":2},\"layers\":[]}",
             ARTIFACT_MEDIA_MANIFEST, ARTIFACT_MEDIA_CONFIG, empty);
    assert_int_equal(registry_put_manifest(f->reg, &catalog_actor_system, "payments-api",
                                           ARTIFACT_MEDIA_MANIFEST, m, strlen(m), "bare", dg, &err),
                     0);
    verify_status(f, "bare", ARTIFACT_SIG_MISSING, "no signature");
}

static void publish_refuses_bad_input(void **state)
{
    struct fx *f = *state;
    struct artifact_result res;
    struct core_err err = {0};
    struct artifact_input in = input_for(f, 0);
    assert_int_equal(artifact_publish(f->reg, f->signer, &catalog_actor_system, &in, &res, &err),
                     CORE_E_INVAL);
    in = input_for(f, 13);
    in.service = "Not A Label";
    assert_int_equal(artifact_publish(f->reg, f->signer, &catalog_actor_system, &in, &res, &err),
                     CORE_E_INVAL);
    in = input_for(f, 13);
    in.service = "no-such-service";
    assert_int_not_equal(
        artifact_publish(f->reg, f->signer, &catalog_actor_system, &in, &res, &err), 0);
    /* a member of another team may not push */
    in = input_for(f, 13);
    const char *teams[] = {"identity"};
    struct catalog_actor outsider = {"mallory", false, teams, 1};
    assert_int_equal(artifact_publish(f->reg, f->signer, &outsider, &in, &res, &err), CORE_E_PERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(key_file_is_created_0600_and_reloaded, setup, teardown),
        cmocka_unit_test_setup_teardown(key_readable_by_others_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(key_file_without_a_key_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(signatures_verify_and_tampering_is_caught, setup, teardown),
        cmocka_unit_test(branch_names_become_valid_tags),
        cmocka_unit_test_setup_teardown(layer_digest_and_diff_id, setup, teardown),
        cmocka_unit_test_setup_teardown(config_has_run_spec_and_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(provenance_is_an_in_toto_statement, setup, teardown),
        cmocka_unit_test_setup_teardown(publish_then_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(list_shows_images_not_referrers, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_signature_is_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(signature_over_another_digest_is_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(foreign_key_and_unsigned_images, setup, teardown),
        cmocka_unit_test_setup_teardown(publish_refuses_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests_name("artifact", tests, NULL, NULL);
}
