/* Signed OCI images with provenance from pipeline runs (see artifact.h). */
#include "artifact/artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "artifact/artifact_int.h"
#include "catalog/catalog.h"
#include "registry/registry.h"

#define KEY_FILE_MAX (64 * 1024)
#define JSON_CANON (JSON_COMPACT | JSON_SORT_KEYS)
/* sha256 of "{}", the OCI empty descriptor */
#define EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define BUILD_TYPE "https://paved.dev/pipeline/v1"

struct artifact_signer {
    EVP_PKEY *key;
    char *public_pem;
    char key_id[80];
};

/* ---- small helpers ---- */

static void hex_of(const unsigned char *md, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[2 * n] = 0;
}

static int b64_encode(const void *data, size_t len, struct core_buf *out)
{
    size_t need = 4 * ((len + 2) / 3) + 1;
    char *tmp = core_malloc(need);
    if (!tmp)
        return CORE_E_NOMEM;
    int n = EVP_EncodeBlock((unsigned char *)tmp, data, (int)len);
    int rc = core_buf_add(out, tmp, (size_t)n);
    core_free(tmp);
    return rc;
}

/* Decodes standard base64 (with padding). returns: owned by caller, NULL when
 * invalid. */
static unsigned char *b64_decode(const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    if (n == 0 || n % 4 || n > (size_t)INT32_MAX)
        return NULL;
    unsigned char *out = core_malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    int m = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (m < 0) {
        core_free(out);
        return NULL;
    }
    size_t pad = (s[n - 1] == '=') + (s[n - 2] == '=');
    *outlen = (size_t)m - pad;
    return out;
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Serializes v canonically (compact, sorted keys) into out and releases v. */
static int dump_canon(json_t *v, struct core_buf *out, struct core_err *err)
{
    if (!v)
        return core_err_set(err, CORE_E_NOMEM, "out of memory building a document");
    char *s = json_dumps(v, JSON_CANON);
    json_decref(v);
    if (!s)
        return core_err_set(err, CORE_E_NOMEM, "out of memory serializing a document");
    int rc = core_buf_adds(out, s);
    free(s); /* jansson allocates with malloc */
    return rc ? core_err_set(err, rc, "document too large") : 0;
}

/* ---- the signing key ---- */

static int signer_finish(struct artifact_signer *s, struct core_err *err)
{
    char group[64] = "";
    size_t glen = 0;
    if (!EVP_PKEY_is_a(s->key, "EC") ||
        !EVP_PKEY_get_utf8_string_param(s->key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        &glen) ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0))
        return core_err_set(err, CORE_E_INVAL, "the signing key is not an EC P-256 key");
    int rc = 0;
    unsigned char *der = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    int dlen = i2d_PUBKEY(s->key, &der);
    if (!bio || dlen <= 0 || !PEM_write_bio_PUBKEY(bio, s->key)) {
        rc = core_err_set(err, CORE_E_NOMEM, "cannot encode the public key");
        goto out;
    }
    char *pem = NULL;
    long plen = BIO_get_mem_data(bio, &pem);
    if (!(s->public_pem = core_strndup(pem, (size_t)plen))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    char hex[65];
    core_sha256_hex(der, (size_t)dlen, hex);
    snprintf(s->key_id, sizeof(s->key_id), "sha256:%s", hex);
out:
    OPENSSL_free(der);
    BIO_free(bio);
    return rc;
}

static int signer_create(struct artifact_signer *s, const char *path, struct core_err *err)
{
    int rc = 0, fd = -1;
    BIO *bio = NULL;
    if (!(s->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")))
        return core_err_set(err, CORE_E_INTERNAL, "cannot generate the signing key");
    if (!(bio = BIO_new(BIO_s_mem())) ||
        !PEM_write_bio_PrivateKey(bio, s->key, NULL, NULL, 0, NULL, NULL)) {
        rc = core_err_set(err, CORE_E_NOMEM, "cannot encode the signing key");
        goto out;
    }
    char *pem = NULL;
    long plen = BIO_get_mem_data(bio, &pem);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = core_err_set(err, errno == EEXIST ? CORE_E_CONFLICT : CORE_E_IO,
                          "cannot create the signing key '%s': %s", path, strerror(errno));
        goto out;
    }
    if (write(fd, pem, (size_t)plen) != (ssize_t)plen || fsync(fd) != 0) {
        rc = core_err_set(err, CORE_E_IO, "cannot write the signing key '%s': %s", path,
                          strerror(errno));
        unlink(path);
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    BIO_free(bio);
    return rc;
}

static int signer_load(struct artifact_signer *s, int fd, const char *path, struct core_err *err)
{
    int rc = 0;
    char *text = NULL;
    BIO *bio = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = core_err_set(err, CORE_E_IO, "signing key '%s' is not a regular file", path);
        goto out;
    }
    if (sb.st_mode & 077) {
        rc = core_err_set(err, CORE_E_PERM,
                          "signing key '%s' is accessible by others (mode %03o); run 'chmod 600 "
                          "%s'",
                          path, (unsigned)(sb.st_mode & 0777), path);
        goto out;
    }
    if (sb.st_size <= 0 || sb.st_size > KEY_FILE_MAX) {
        rc = core_err_set(err, CORE_E_INVAL, "signing key '%s' has an unexpected size", path);
        goto out;
    }
    if (!(text = core_malloc((size_t)sb.st_size))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    ssize_t n = read(fd, text, (size_t)sb.st_size);
    if (n != (ssize_t)sb.st_size) {
        rc = core_err_set(err, CORE_E_IO, "cannot read the signing key '%s'", path);
        goto out;
    }
    if (!(bio = BIO_new_mem_buf(text, (int)n)) ||
        !(s->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL))) {
        rc = core_err_set(err, CORE_E_INVAL, "signing key '%s' holds no PEM private key", path);
        goto out;
    }
out:
    BIO_free(bio);
    if (text)
        OPENSSL_cleanse(text, (size_t)sb.st_size);
    core_free(text);
    return rc;
}

struct artifact_signer *artifact_signer_open(const char *path, struct core_err *err)
{
    struct artifact_signer *s = core_calloc(1, sizeof(*s));
    if (!s) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    int rc = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        rc = signer_create(s, path, err);
        if (rc == CORE_E_CONFLICT) /* another process created it first: use theirs */
            fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        else if (rc)
            goto out;
    }
    if (!s->key) {
        if (fd < 0) {
            rc = core_err_set(err, CORE_E_IO, "cannot open the signing key '%s': %s", path,
                              strerror(errno));
            goto out;
        }
        if ((rc = signer_load(s, fd, path, err)))
            goto out;
    }
    rc = signer_finish(s, err);
out:
    if (fd >= 0)
        close(fd);
    if (rc) {
        artifact_signer_free(s);
        return NULL;
    }
    return s;
}

void artifact_signer_free(struct artifact_signer *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->key);
    core_free(s->public_pem);
    core_free(s);
}

const char *artifact_signer_public_pem(const struct artifact_signer *s)
{
    return s->public_pem;
}

const char *artifact_signer_key_id(const struct artifact_signer *s)
{
    return s->key_id;
}

int artifact_sign(const struct artifact_signer *s, const void *data, size_t len,
                  struct core_buf *out, struct core_err *err)
{
    int rc = 0;
    unsigned char sig[160];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->key) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, data, len) != 1) {
        rc = core_err_set(err, CORE_E_INTERNAL, "cannot sign");
        goto out;
    }
    if ((rc = b64_encode(sig, siglen, out)))
        core_err_set(err, rc, "out of memory");
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

bool artifact_signature_ok(const struct artifact_signer *s, const void *data, size_t len,
                           const char *sig_b64)
{
    size_t siglen = 0;
    unsigned char *sig = sig_b64 ? b64_decode(sig_b64, &siglen) : NULL;
    if (!sig)
        return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, s->key) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    core_free(sig);
    return ok;
}

/* ---- documents ---- */

int artifact_layer_digests(const char *path, int64_t *size, char layer_digest[72], char diff_id[72],
                           struct core_err *err)
{
    int rc = 0, zret = Z_OK;
    bool z_ready = false;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    unsigned char *in = NULL, *outb = NULL;
    EVP_MD_CTX *cz = EVP_MD_CTX_new(), *cu = EVP_MD_CTX_new();
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *size = 0;
    if (fd < 0) {
        rc = core_err_set(err, errno == ENOENT ? CORE_E_NOTFOUND : CORE_E_IO,
                          "cannot open the artifact '%s': %s", path, strerror(errno));
        goto out;
    }
    const size_t chunk = 256 * 1024;
    if (!cz || !cu || !(in = core_malloc(chunk)) || !(outb = core_malloc(chunk)) ||
        EVP_DigestInit_ex(cz, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(cu, EVP_sha256(), NULL) != 1) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        rc = core_err_set(err, CORE_E_NOMEM, "cannot start zlib");
        goto out;
    }
    z_ready = true;
    for (;;) {
        ssize_t n = read(fd, in, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = core_err_set(err, CORE_E_IO, "cannot read '%s': %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        *size += n;
        EVP_DigestUpdate(cz, in, (size_t)n);
        zs.next_in = in;
        zs.avail_in = (uInt)n;
        while (zs.avail_in > 0) {
            if (zret == Z_STREAM_END) {
                /* gzip allows several members back to back (`cat a.gz b.gz`) */
                inflateReset(&zs);
            }
            zs.next_out = outb;
            zs.avail_out = (uInt)chunk;
            zret = inflate(&zs, Z_NO_FLUSH);
            if (zret != Z_OK && zret != Z_STREAM_END && zret != Z_BUF_ERROR) {
                rc = core_err_set(err, CORE_E_INVAL, "the artifact '%s' is not valid gzip: %s",
                                  path, zs.msg ? zs.msg : "bad data");
                goto out;
            }
            EVP_DigestUpdate(cu, outb, chunk - zs.avail_out);
            if (zret == Z_BUF_ERROR && zs.avail_out == chunk)
                break;
        }
    }
    /* drain output that inflate holds back until asked again */
    while (zret == Z_OK) {
        zs.next_out = outb;
        zs.avail_out = (uInt)chunk;
        zret = inflate(&zs, Z_NO_FLUSH);
        EVP_DigestUpdate(cu, outb, chunk - zs.avail_out);
        if (zs.avail_out == chunk)
            break;
    }
    if (zret != Z_STREAM_END) {
        rc = core_err_set(err, CORE_E_INVAL, "the artifact '%s' is not a complete gzip stream",
                          path);
        goto out;
    }
    unsigned char md[32];
    unsigned mdlen = 0;
    char hex[65];
    EVP_DigestFinal_ex(cz, md, &mdlen);
    hex_of(md, 32, hex);
    snprintf(layer_digest, 72, "sha256:%s", hex);
    EVP_DigestFinal_ex(cu, md, &mdlen);
    hex_of(md, 32, hex);
    snprintf(diff_id, 72, "sha256:%s", hex);
out:
    if (z_ready)
        inflateEnd(&zs);
    if (fd >= 0)
        close(fd);
    core_free(in);
    core_free(outb);
    EVP_MD_CTX_free(cz);
    EVP_MD_CTX_free(cu);
    return rc;
}

static void scalar_text(const json_t *v, char *out, size_t outsz)
{
    if (json_is_string(v))
        snprintf(out, outsz, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, outsz, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, outsz, "%g", json_real_value(v));
    else if (json_is_true(v))
        snprintf(out, outsz, "true");
    else if (json_is_false(v))
        snprintf(out, outsz, "false");
    else
        out[0] = 0;
}

/* spec.run of the service manifest → the config's Entrypoint/Cmd, Env and
 * ExposedPorts. */
static int config_from_run(const json_t *run, json_t *cfg)
{
    const json_t *cmd = json_object_get(run, "command");
    if (json_is_string(cmd)) {
        json_object_set_new(cfg, "Entrypoint", json_pack("[s,s]", "/bin/sh", "-c"));
        json_object_set_new(cfg, "Cmd", json_pack("[s]", json_string_value(cmd)));
    } else if (json_is_array(cmd) && json_array_size(cmd) > 0) {
        json_t *ep = json_array(), *args = json_array();
        size_t i;
        const json_t *a;
        json_array_foreach (cmd, i, a) {
            char text[4096];
            scalar_text(a, text, sizeof(text));
            json_array_append_new(i == 0 ? ep : args, json_string(text));
        }
        json_object_set_new(cfg, "Entrypoint", ep);
        json_object_set_new(cfg, "Cmd", args);
    }
    const json_t *env = json_object_get(run, "env");
    if (json_is_object(env) && json_object_size(env) > 0) {
        json_t *arr = json_array();
        const char *k;
        const json_t *v;
        json_object_foreach ((json_t *)env, k, v) {
            char text[4096];
            scalar_text(v, text, sizeof(text));
            size_t n = strlen(k) + strlen(text) + 2;
            char *kv = core_malloc(n);
            if (!kv) {
                json_decref(arr);
                return CORE_E_NOMEM;
            }
            snprintf(kv, n, "%s=%s", k, text);
            json_array_append_new(arr, json_string(kv));
            core_free(kv);
        }
        json_object_set_new(cfg, "Env", arr);
    }
    const json_t *ports = json_object_get(run, "ports");
    if (json_is_array(ports) && json_array_size(ports) > 0) {
        json_t *exp = json_object();
        size_t i;
        const json_t *p;
        json_array_foreach (ports, i, p) {
            json_int_t num = json_integer_value(json_object_get(p, "port"));
            const char *proto = jstr(p, "protocol");
            if (num <= 0 || num > 65535)
                continue;
            char key[32];
            snprintf(key, sizeof(key), "%lld/%s", (long long)num,
                     proto && strcmp(proto, "udp") == 0 ? "udp" : "tcp");
            json_object_set_new(exp, key, json_object());
        }
        json_object_set_new(cfg, "ExposedPorts", exp);
    }
    return 0;
}

static const char *builder_of(const struct artifact_input *in)
{
    return in->builder ? in->builder : "pave/" PAVE_VERSION;
}

/* "sha256:<hex>" or "<hex>" → the hex part. */
static const char *hex_part(const char *digest)
{
    return strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
}

int artifact_config_build(const struct artifact_input *in, const char *diff_id, const char *created,
                          struct core_buf *out, struct core_err *err)
{
    json_error_t jerr;
    json_t *m = json_loads(in->manifest_json ? in->manifest_json : "{}", 0, &jerr);
    if (!json_is_object(m)) {
        json_decref(m);
        return core_err_set(err, CORE_E_INVAL, "the service manifest is not a JSON object");
    }
    json_t *cfg = json_object();
    const json_t *run = json_object_get(json_object_get(m, "spec"), "run");
    if (cfg && json_is_object(run) && config_from_run(run, cfg)) {
        json_decref(cfg);
        json_decref(m);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    json_decref(m);
    char runid[32];
    snprintf(runid, sizeof(runid), "%lld", (long long)in->run_id);
    json_t *labels = json_pack("{s:s,s:s,s:s}", "dev.pave.team", in->team ? in->team : "",
                               "dev.pave.service", in->service, "dev.pave.run", runid);
    if (labels && in->commit && in->commit[0])
        json_object_set_new(labels, "org.opencontainers.image.revision", json_string(in->commit));
    if (labels && in->pipeline_digest && in->pipeline_digest[0])
        json_object_set_new(labels, "dev.pave.pipeline", json_string(in->pipeline_digest));
    if (cfg && labels)
        json_object_set_new(cfg, "Labels", labels);
    else
        json_decref(labels);
    char by[128];
    snprintf(by, sizeof(by), "%s run %lld", builder_of(in), (long long)in->run_id);
    json_t *doc = cfg ? json_pack("{s:s,s:s,s:s,s:o,s:{s:s,s:[s]},s:[{s:s,s:s}]}", "created",
                                  created, "architecture", "amd64", "os", "linux", "config", cfg,
                                  "rootfs", "type", "layers", "diff_ids", diff_id, "history",
                                  "created", created, "created_by", by)
                      : NULL;
    return dump_canon(doc, out, err);
}

int artifact_provenance_build(const struct artifact_input *in, const char *repo,
                              const char *image_digest, struct core_buf *out, struct core_err *err)
{
    char now[40], invocation[40];
    core_time_format(core_now_ms(), now, sizeof(now));
    snprintf(invocation, sizeof(invocation), "run-%lld", (long long)in->run_id);
    json_t *deps = json_array();
    json_t *src_digest = json_object();
    if (in->commit && in->commit[0])
        json_object_set_new(src_digest, "gitCommit", json_string(in->commit));
    struct core_buf uri;
    core_buf_init(&uri, 4096);
    if (in->source_uri && in->source_uri[0]) {
        if (strncmp(in->source_uri, "git+", 4) != 0)
            core_buf_adds(&uri, "git+");
        core_buf_adds(&uri, in->source_uri);
    } else {
        core_buf_adds(&uri, "upload");
    }
    json_array_append_new(deps, json_pack("{s:s,s:o}", "uri", uri.data, "digest", src_digest));
    core_buf_release(&uri);
    if (in->pipeline_digest && in->pipeline_digest[0])
        json_array_append_new(deps, json_pack("{s:s,s:{s:s}}", "uri", "pipeline:.pave/pipeline.yml",
                                              "digest", "sha256", hex_part(in->pipeline_digest)));
    json_t *doc = json_pack(
        "{s:s,s:[{s:s,s:{s:s}}],s:s,s:{s:{s:s,s:{s:s,s:s?,s:s?},s:{s:s?,s:s?},s:"
        "o},"
        "s:{s:{s:s},s:{s:s,s:s?,s:s}}}}",
        "_type", "https://in-toto.io/Statement/v1", "subject", "name", repo, "digest", "sha256",
        hex_part(image_digest), "predicateType", "https://slsa.dev/provenance/v1", "predicate",
        "buildDefinition", "buildType", BUILD_TYPE, "externalParameters", "service", in->service,
        "branch", in->branch, "commit", in->commit, "internalParameters", "team", in->team,
        "pipeline", in->pipeline_digest, "resolvedDependencies", deps, "runDetails", "builder",
        "id", builder_of(in), "metadata", "invocationId", invocation, "startedOn", in->started_at,
        "finishedOn", in->finished_at ? in->finished_at : now);
    return dump_canon(doc, out, err);
}

int artifact_payload_build(const char *manifest_digest, const char *provenance_digest,
                           const char *service, int64_t run_id, struct core_buf *out)
{
    json_t *p =
        json_pack("{s:s,s:s,s:s,s:I}", "manifest_digest", manifest_digest, "provenance_digest",
                  provenance_digest, "service", service, "run", (json_int_t)run_id);
    return dump_canon(p, out, NULL);
}

int artifact_signature_doc_build(const struct artifact_signer *s, const char *manifest_digest,
                                 const char *provenance_digest, const char *service, int64_t run_id,
                                 struct core_buf *out, struct core_err *err)
{
    struct core_buf payload, sig;
    core_buf_init(&payload, 0);
    core_buf_init(&sig, 0);
    int rc = artifact_payload_build(manifest_digest, provenance_digest, service, run_id, &payload);
    if (rc) {
        core_err_set(err, rc, "cannot build the signature payload");
        goto out;
    }
    if ((rc = artifact_sign(s, payload.data, payload.len, &sig, err)))
        goto out;
    json_error_t jerr;
    json_t *p = json_loads(payload.data, 0, &jerr);
    json_t *doc =
        p ? json_pack("{s:o,s:s,s:s}", "payload", p, "signature", sig.data, "key_id", s->key_id)
          : NULL;
    rc = dump_canon(doc, out, err);
out:
    core_buf_release(&payload);
    core_buf_release(&sig);
    return rc;
}

bool artifact_signature_doc_check(const struct artifact_signer *s, const char *doc, size_t len,
                                  const char *manifest_digest, char *key_id, size_t key_idsz,
                                  char *prov, size_t provsz, char *why, size_t whysz)
{
    bool ok = false;
    char *canon = NULL;
    json_error_t jerr;
    json_t *d = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
    const json_t *payload = json_object_get(d, "payload");
    const char *sig = jstr(d, "signature"), *kid = jstr(d, "key_id");
    if (!json_is_object(payload) || !sig || !kid) {
        snprintf(why, whysz, "the signature document is malformed");
        goto out;
    }
    snprintf(key_id, key_idsz, "%s", kid);
    if (strcmp(kid, s->key_id) != 0) {
        snprintf(why, whysz, "signed with an unknown key '%.100s'", kid);
        goto out;
    }
    if (!(canon = json_dumps(payload, JSON_CANON))) {
        snprintf(why, whysz, "out of memory");
        goto out;
    }
    if (!artifact_signature_ok(s, canon, strlen(canon), sig)) {
        snprintf(why, whysz, "the signature does not verify with the server's key");
        goto out;
    }
    const char *md = jstr(payload, "manifest_digest");
    if (!md || strcmp(md, manifest_digest) != 0) {
        snprintf(why, whysz, "the signature is for another image (%.80s)", md ? md : "none");
        goto out;
    }
    const char *pd = jstr(payload, "provenance_digest");
    snprintf(prov, provsz, "%s", pd ? pd : "");
    ok = true;
out:
    free(canon); /* from json_dumps */
    json_decref(d);
    return ok;
}

bool artifact_tag_sanitize(const char *branch, char *out, size_t outsz)
{
    size_t n = 0;
    if (outsz == 0)
        return false;
    for (const char *p = branch; p && *p && n < ARTIFACT_TAG_MAX && n + 1 < outsz; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        out[n++] = ok ? c : '-';
    }
    out[n] = 0;
    if (n == 0)
        return false;
    if (out[0] == '.' || out[0] == '-')
        out[0] = '_';
    return true;
}

const char *artifact_sig_status_name(enum artifact_sig_status s)
{
    switch (s) {
    case ARTIFACT_SIG_VERIFIED:
        return "verified";
    case ARTIFACT_SIG_INVALID:
        return "invalid";
    case ARTIFACT_SIG_MISSING:
        break;
    }
    return "missing";
}

/* ---- publishing ---- */

/* Pushes an OCI 1.1 referrer: an artifact manifest with an empty config, one
 * layer `blob` (also inlined as descriptor data) and `subject` = the image. */
static int put_referrer(struct registry *reg, const struct catalog_actor *actor, const char *repo,
                        const char *type, const struct core_buf *blob, const char *subject,
                        size_t subject_size, const char *created, char digest_out[72],
                        struct core_err *err)
{
    char blob_digest[72];
    int rc = registry_put_blob(reg, actor, repo, blob->data, blob->len, blob_digest, err);
    if (rc)
        return rc;
    struct core_buf data, man;
    core_buf_init(&data, 0);
    core_buf_init(&man, REGISTRY_MANIFEST_MAX);
    if ((rc = b64_encode(blob->data, blob->len, &data))) {
        core_err_set(err, rc, "out of memory");
        goto out;
    }
    json_t *doc =
        json_pack("{s:i,s:s,s:s,s:{s:s,s:s,s:i,s:s},s:[{s:s,s:s,s:I,s:s}],"
                  "s:{s:s,s:s,s:I},s:{s:s}}",
                  "schemaVersion", 2, "mediaType", ARTIFACT_MEDIA_MANIFEST, "artifactType", type,
                  "config", "mediaType", ARTIFACT_MEDIA_EMPTY, "digest", EMPTY_DIGEST, "size", 2,
                  "data", "e30=", "layers", "mediaType", type, "digest", blob_digest, "size",
                  (json_int_t)blob->len, "data", data.data, "subject", "mediaType",
                  ARTIFACT_MEDIA_MANIFEST, "digest", subject, "size", (json_int_t)subject_size,
                  "annotations", "org.opencontainers.image.created", created);
    if ((rc = dump_canon(doc, &man, err)))
        goto out;
    rc = registry_put_manifest(reg, actor, repo, ARTIFACT_MEDIA_MANIFEST, man.data, man.len, NULL,
                               digest_out, err);
out:
    core_buf_release(&data);
    core_buf_release(&man);
    return rc;
}

int artifact_publish(struct registry *reg, struct artifact_signer *signer,
                     const struct catalog_actor *actor, const struct artifact_input *in,
                     struct artifact_result *out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!reg || !signer || !in || !in->service || !core_is_dns_label(in->service) ||
        in->run_id <= 0 || !in->tarball_path || !in->manifest_json)
        return core_err_set(err, CORE_E_INVAL,
                            "publishing needs a registry, a signer, a service, a run id, the "
                            "artifact and the service manifest");
    const char *repo = in->service;
    struct core_buf cfg, man, prov, sig, data;
    core_buf_init(&cfg, REGISTRY_MANIFEST_MAX);
    core_buf_init(&man, REGISTRY_MANIFEST_MAX);
    core_buf_init(&prov, REGISTRY_MANIFEST_MAX);
    core_buf_init(&sig, REGISTRY_MANIFEST_MAX);
    core_buf_init(&data, 0);
    char diff_id[72], created[40], empty_digest[72];
    int64_t layer_size = 0;
    int rc = artifact_layer_digests(in->tarball_path, &layer_size, out->layer_digest, diff_id, err);
    if (rc)
        goto out;
    if ((rc = registry_put_blob_file(reg, actor, repo, in->tarball_path, out->layer_digest, err)))
        goto out;
    if (in->finished_at)
        snprintf(created, sizeof(created), "%s", in->finished_at);
    else
        core_time_format(core_now_ms(), created, sizeof(created));
    if ((rc = artifact_config_build(in, diff_id, created, &cfg, err)) ||
        (rc = registry_put_blob(reg, actor, repo, cfg.data, cfg.len, out->config_digest, err)))
        goto out;
    /* The config is small: inline it (descriptor `data`) so readers need no blob
     * fetch. */
    if ((rc = b64_encode(cfg.data, cfg.len, &data))) {
        core_err_set(err, rc, "out of memory");
        goto out;
    }
    json_t *ann = json_pack("{s:s}", "org.opencontainers.image.created", created);
    if (ann && in->commit && in->commit[0])
        json_object_set_new(ann, "org.opencontainers.image.revision", json_string(in->commit));
    json_t *doc =
        ann ? json_pack("{s:i,s:s,s:{s:s,s:s,s:I,s:s},s:[{s:s,s:s,s:I}],s:o}", "schemaVersion", 2,
                        "mediaType", ARTIFACT_MEDIA_MANIFEST, "config", "mediaType",
                        ARTIFACT_MEDIA_CONFIG, "digest", out->config_digest, "size",
                        (json_int_t)cfg.len, "data", data.data, "layers", "mediaType",
                        ARTIFACT_MEDIA_LAYER, "digest", out->layer_digest, "size",
                        (json_int_t)layer_size, "annotations", ann)
            : NULL;
    if ((rc = dump_canon(doc, &man, err)))
        goto out;
    /* Untagged until signed: a tag never names an image without its signature. */
    if ((rc = registry_put_manifest(reg, actor, repo, ARTIFACT_MEDIA_MANIFEST, man.data, man.len,
                                    NULL, out->image_digest, err)))
        goto out;
    if ((rc = registry_put_blob(reg, actor, repo, "{}", 2, empty_digest, err)))
        goto out;
    if ((rc = artifact_provenance_build(in, repo, out->image_digest, &prov, err)) ||
        (rc = put_referrer(reg, actor, repo, ARTIFACT_TYPE_PROVENANCE, &prov, out->image_digest,
                           man.len, created, out->provenance_digest, err)))
        goto out;
    if ((rc = artifact_signature_doc_build(signer, out->image_digest, out->provenance_digest,
                                           in->service, in->run_id, &sig, err)) ||
        (rc = put_referrer(reg, actor, repo, ARTIFACT_TYPE_SIGNATURE, &sig, out->image_digest,
                           man.len, created, out->signature_digest, err)))
        goto out;
    snprintf(out->tags[0], sizeof(out->tags[0]), "run-%lld", (long long)in->run_id);
    out->ntags = 1;
    if (in->branch && artifact_tag_sanitize(in->branch, out->tags[1], sizeof(out->tags[1])) &&
        strcmp(out->tags[1], out->tags[0]) != 0)
        out->ntags = 2;
    else
        out->tags[1][0] = 0;
    for (int i = 0; i < out->ntags; i++) {
        char d[72];
        if ((rc = registry_put_manifest(reg, actor, repo, ARTIFACT_MEDIA_MANIFEST, man.data,
                                        man.len, out->tags[i], d, err)))
            goto out;
    }
    out->size = (int64_t)cfg.len + layer_size + (int64_t)man.len;
    log_info("artifact", "image published", LOG_STR("repo", repo),
             LOG_STR("digest", out->image_digest), LOG_STR("tag", out->tags[0]),
             LOG_INT("run", in->run_id), LOG_INT("bytes", out->size));
out:
    if (rc)
        core_err_wrap(err, "publishing run %lld of '%s'", (long long)in->run_id, in->service);
    core_buf_release(&cfg);
    core_buf_release(&man);
    core_buf_release(&prov);
    core_buf_release(&sig);
    core_buf_release(&data);
    return rc;
}

/* ---- verification ---- */

struct digest_list {
    char (*items)[72];
    size_t n, cap;
    int rc;
};

static int collect_digest(void *arg, const struct registry_image *img)
{
    struct digest_list *l = arg;
    if (!img->digest)
        return 0;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i], img->digest) == 0)
            return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        void *p = core_realloc(l->items, cap * sizeof(*l->items));
        if (!p)
            return l->rc = CORE_E_NOMEM;
        l->items = p;
        l->cap = cap;
    }
    snprintf(l->items[l->n++], 72, "%s", img->digest);
    return 0;
}

/* Decodes the inline data of the manifest's first layer and checks it against
 * its digest. returns: owned by caller (NUL-terminated), NULL with why. */
static char *layer_data(const json_t *man, size_t *len, char *why, size_t whysz)
{
    const json_t *layer = json_array_get(json_object_get(man, "layers"), 0);
    const char *data = jstr(layer, "data"), *digest = jstr(layer, "digest");
    if (!data || !digest) {
        snprintf(why, whysz, "the referrer does not carry its content inline");
        return NULL;
    }
    size_t n = 0;
    unsigned char *raw = b64_decode(data, &n);
    if (!raw) {
        snprintf(why, whysz, "the referrer's inline content is not base64");
        return NULL;
    }
    char hex[65], want[72];
    core_sha256_hex(raw, n, hex);
    snprintf(want, sizeof(want), "sha256:%s", hex);
    if (strcmp(want, digest) != 0) {
        snprintf(why, whysz, "the referrer's inline content does not match its digest");
        core_free(raw);
        return NULL;
    }
    raw[n] = 0; /* b64_decode leaves room for it */
    *len = n;
    return (char *)raw;
}

static void provenance_facts(const char *text, size_t len, struct artifact_verification *v)
{
    json_error_t jerr;
    json_t *st = json_loadb(text, len, 0, &jerr);
    const json_t *pred = json_object_get(st, "predicate");
    const json_t *ext =
        json_object_get(json_object_get(pred, "buildDefinition"), "externalParameters");
    const json_t *rd = json_object_get(pred, "runDetails");
    const char *commit = jstr(ext, "commit");
    const char *inv = jstr(json_object_get(rd, "metadata"), "invocationId");
    const char *builder = jstr(json_object_get(rd, "builder"), "id");
    snprintf(v->commit, sizeof(v->commit), "%s", commit ? commit : "");
    snprintf(v->run, sizeof(v->run), "%s", inv ? inv : "");
    snprintf(v->builder, sizeof(v->builder), "%s", builder ? builder : "");
    json_decref(st);
}

static int64_t manifest_size(const json_t *man, size_t len)
{
    int64_t size = (int64_t)len;
    size += json_integer_value(json_object_get(json_object_get(man, "config"), "size"));
    size_t i;
    const json_t *l;
    json_array_foreach (json_object_get(man, "layers"), i, l)
        size += json_integer_value(json_object_get(l, "size"));
    return size;
}

static void set_invalid(struct artifact_verification *v, const char *sig_digest, const char *why)
{
    if (v->status != ARTIFACT_SIG_INVALID) /* keep the first reason */
        snprintf(v->reason, sizeof(v->reason), "%s: %s", sig_digest, why);
    v->status = ARTIFACT_SIG_INVALID;
}

int artifact_verify(struct registry *reg, const struct artifact_signer *signer, const char *repo,
                    const char *ref, struct artifact_verification *v, struct core_err *err)
{
    memset(v, 0, sizeof(*v));
    if (!reg || !signer || !repo || !ref)
        return core_err_set(err, CORE_E_INVAL, "verification needs a registry, a key and a ref");
    char *text = NULL, mt[128], digest[72];
    size_t len = 0;
    json_t *man = NULL;
    struct digest_list refs = {0};
    char signed_prov[72] = "";
    int rc = registry_get_manifest(reg, repo, ref, &text, &len, mt, digest, err);
    if (rc)
        goto out;
    snprintf(v->digest, sizeof(v->digest), "%s", digest);
    json_error_t jerr;
    if (!(man = json_loadb(text, len, 0, &jerr))) {
        rc = core_err_set(err, CORE_E_INVAL, "manifest '%s' of '%s' is not JSON", ref, repo);
        goto out;
    }
    v->size = manifest_size(man, len);
    const char *created =
        jstr(json_object_get(man, "annotations"), "org.opencontainers.image.created");
    snprintf(v->created, sizeof(v->created), "%s", created ? created : "");
    if ((rc = registry_referrers(reg, repo, digest, collect_digest, &refs, err)))
        goto out;
    if (refs.rc) {
        rc = core_err_set(err, refs.rc, "out of memory");
        goto out;
    }
    v->status = ARTIFACT_SIG_MISSING;
    bool prov_from_signed = false;
    for (size_t i = 0; i < refs.n; i++) {
        char *rtext = NULL, rmt[128], rdigest[72], why[200] = "";
        size_t rlen = 0;
        struct core_err rerr = {0};
        if (registry_get_manifest(reg, repo, refs.items[i], &rtext, &rlen, rmt, rdigest, &rerr))
            continue; /* deleted meanwhile */
        json_t *r = json_loadb(rtext, rlen, 0, &jerr);
        core_free(rtext);
        const char *type = jstr(r, "artifactType");
        const char *subject = jstr(json_object_get(r, "subject"), "digest");
        bool is_sig = type && strcmp(type, ARTIFACT_TYPE_SIGNATURE) == 0;
        bool is_prov = type && strcmp(type, ARTIFACT_TYPE_PROVENANCE) == 0;
        if (is_sig) {
            v->nsignatures++;
            v->is_signed = true;
            snprintf(v->signature_digest, sizeof(v->signature_digest), "%s", rdigest);
            size_t dlen = 0;
            char *doc = layer_data(r, &dlen, why, sizeof(why));
            char prov[72] = "";
            if (!subject || strcmp(subject, digest) != 0)
                set_invalid(v, rdigest, "the signature's subject is another image");
            else if (!doc)
                set_invalid(v, rdigest, why);
            else if (!artifact_signature_doc_check(signer, doc, dlen, digest, v->key_id,
                                                   sizeof(v->key_id), prov, sizeof(prov), why,
                                                   sizeof(why)))
                set_invalid(v, rdigest, why);
            else if (v->status == ARTIFACT_SIG_MISSING)
                v->status = ARTIFACT_SIG_VERIFIED;
            if (prov[0])
                snprintf(signed_prov, sizeof(signed_prov), "%s", prov);
            core_free(doc);
        } else if (is_prov && !prov_from_signed) {
            size_t dlen = 0;
            char *doc = layer_data(r, &dlen, why, sizeof(why));
            if (doc) {
                v->has_provenance = true;
                snprintf(v->provenance_digest, sizeof(v->provenance_digest), "%s", rdigest);
                provenance_facts(doc, dlen, v);
                /* once the signed statement is found, unsigned ones cannot replace it
                 */
                prov_from_signed = signed_prov[0] && strcmp(signed_prov, rdigest) == 0;
            }
            core_free(doc);
        }
        json_decref(r);
    }
    /* The signature may have been walked after an unsigned statement: prefer the
     * signed one. */
    if (signed_prov[0] && strcmp(signed_prov, v->provenance_digest) != 0) {
        char *ptext = NULL, pmt[128], pdigest[72], why[200];
        size_t plen = 0;
        if (registry_get_manifest(reg, repo, signed_prov, &ptext, &plen, pmt, pdigest, NULL) == 0) {
            json_t *p = json_loadb(ptext, plen, 0, &jerr);
            size_t dlen = 0;
            char *doc = p ? layer_data(p, &dlen, why, sizeof(why)) : NULL;
            if (doc) {
                v->has_provenance = true;
                snprintf(v->provenance_digest, sizeof(v->provenance_digest), "%s", pdigest);
                provenance_facts(doc, dlen, v);
            }
            core_free(doc);
            json_decref(p);
        }
        core_free(ptext);
    }
    if (v->status == ARTIFACT_SIG_MISSING)
        snprintf(v->reason, sizeof(v->reason), "no signature is attached to this image");
    v->is_valid = v->status == ARTIFACT_SIG_VERIFIED;
out:
    core_free(text);
    core_free(refs.items);
    json_decref(man);
    return rc;
}

/* ---- listing ---- */

struct image_row {
    char digest[72];
    struct core_buf tags;
    char created[40];
};

struct image_rows {
    struct image_row *items;
    size_t n, cap;
    int limit;
    int rc;
};

/* Signatures and provenance are listed with their image, not as images. (The
 * registry reports a plain image's config media type as its artifact type, so
 * only ours are excluded.) */
static bool is_referrer(const struct registry_image *img)
{
    const char *t = img->artifact_type;
    return (img->subject && img->subject[0]) || (t && (strcmp(t, ARTIFACT_TYPE_SIGNATURE) == 0 ||
                                                       strcmp(t, ARTIFACT_TYPE_PROVENANCE) == 0));
}

static int collect_image(void *arg, const struct registry_image *img)
{
    struct image_rows *l = arg;
    if (!img->digest || is_referrer(img))
        return 0;
    struct image_row *row = NULL;
    for (size_t i = 0; i < l->n && !row; i++)
        if (strcmp(l->items[i].digest, img->digest) == 0)
            row = &l->items[i];
    if (!row) {
        if ((int)l->n >= l->limit)
            return 0;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 16;
            void *p = core_realloc(l->items, cap * sizeof(*l->items));
            if (!p)
                return l->rc = CORE_E_NOMEM;
            l->items = p;
            l->cap = cap;
        }
        row = &l->items[l->n++];
        snprintf(row->digest, sizeof(row->digest), "%s", img->digest);
        snprintf(row->created, sizeof(row->created), "%s", img->created_at ? img->created_at : "");
        core_buf_init(&row->tags, 4096);
    }
    if (img->tag && img->tag[0]) {
        if (row->tags.len)
            core_buf_addc(&row->tags, ',');
        core_buf_adds(&row->tags, img->tag);
    }
    return 0;
}

int artifact_list(struct registry *reg, const struct artifact_signer *signer, const char *repo,
                  int limit, artifact_image_fn fn, void *arg, struct core_err *err)
{
    struct image_rows rows = {.limit = limit > 0 ? limit : 100};
    int rc = registry_list(reg, repo, collect_image, &rows, err);
    if (!rc && rows.rc)
        rc = core_err_set(err, rows.rc, "out of memory");
    for (size_t i = 0; !rc && i < rows.n; i++) {
        struct artifact_verification v;
        struct core_err verr = {0};
        if (artifact_verify(reg, signer, repo, rows.items[i].digest, &v, &verr)) {
            if (verr.code == CORE_E_NOTFOUND)
                continue; /* deleted while listing */
            rc = core_err_set(err, verr.code, "%s", verr.msg);
            break;
        }
        struct artifact_image img = {.repo = repo,
                                     .digest = rows.items[i].digest,
                                     .tags = rows.items[i].tags.data,
                                     .size = v.size,
                                     .created_at = v.created[0] ? v.created : rows.items[i].created,
                                     .v = &v};
        rc = fn(arg, &img);
    }
    for (size_t i = 0; i < rows.n; i++)
        core_buf_release(&rows.items[i].tags);
    core_free(rows.items);
    return rc;
}

/* ---- describing ---- */

static json_t *verification_obj(const struct artifact_verification *v)
{
    return json_pack("{s:s,s:s,s:b,s:b,s:b,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "digest", v->digest,
                     "status", artifact_sig_status_name(v->status), "signed", v->is_signed, "valid",
                     v->is_valid, "provenance", v->has_provenance, "signatures", v->nsignatures,
                     "reason", v->reason, "key_id", v->key_id, "signature_digest",
                     v->signature_digest, "provenance_digest", v->provenance_digest, "commit",
                     v->commit, "run", v->run, "builder", v->builder);
}

int artifact_verification_json(const struct artifact_verification *v, struct core_buf *out)
{
    return dump_canon(verification_obj(v), out, NULL);
}

struct show_ctx {
    const char *digest;
    json_t *list;
};

static int tag_of(void *arg, const struct registry_image *img)
{
    struct show_ctx *c = arg;
    if (img->digest && img->tag && img->tag[0] && strcmp(img->digest, c->digest) == 0)
        return json_array_append_new(c->list, json_string(img->tag)) ? CORE_E_NOMEM : 0;
    return 0;
}

static int referrer_of(void *arg, const struct registry_image *img)
{
    struct show_ctx *c = arg;
    return json_array_append_new(c->list,
                                 json_pack("{s:s?,s:s?,s:I,s:s?}", "digest", img->digest,
                                           "artifact_type", img->artifact_type, "size",
                                           (json_int_t)img->size, "created_at", img->created_at))
               ? CORE_E_NOMEM
               : 0;
}

int artifact_show(struct registry *reg, const struct artifact_signer *signer, const char *repo,
                  const char *ref, struct core_buf *out, struct core_err *err)
{
    char *text = NULL, mt[128], digest[72];
    size_t len = 0;
    json_t *man = NULL, *cfg = NULL, *tags = json_array(), *refs = json_array();
    struct artifact_verification v;
    int rc = registry_get_manifest(reg, repo, ref, &text, &len, mt, digest, err);
    if (rc)
        goto out;
    json_error_t jerr;
    if (!(man = json_loadb(text, len, 0, &jerr))) {
        rc = core_err_set(err, CORE_E_INVAL, "manifest '%s' of '%s' is not JSON", ref, repo);
        goto out;
    }
    const char *cdata = jstr(json_object_get(man, "config"), "data");
    size_t clen = 0;
    unsigned char *craw = cdata ? b64_decode(cdata, &clen) : NULL;
    if (craw) {
        cfg = json_loadb((const char *)craw, clen, 0, &jerr);
        core_free(craw);
    }
    struct show_ctx tc = {.digest = digest, .list = tags};
    struct show_ctx rcx = {.digest = digest, .list = refs};
    if ((rc = registry_list(reg, repo, tag_of, &tc, err)) ||
        (rc = registry_referrers(reg, repo, digest, referrer_of, &rcx, err)) ||
        (rc = artifact_verify(reg, signer, repo, digest, &v, err)))
        goto out;
    json_t *labels = json_object_get(json_object_get(cfg, "config"), "Labels");
    labels = labels ? json_incref(labels) : json_object();
    json_t *doc =
        json_pack("{s:s,s:s,s:s,s:O,s:I,s:s,s:O,s:O,s:o,s:O,s:o}", "repo", repo, "digest", digest,
                  "media_type", mt, "tags", tags, "size", (json_int_t)v.size, "created", v.created,
                  "manifest", man, "config", cfg ? cfg : json_null(), "labels", labels, "referrers",
                  refs, "verification", verification_obj(&v));
    rc = dump_canon(doc, out, err);
out:
    core_free(text);
    json_decref(man);
    json_decref(cfg);
    json_decref(tags);
    json_decref(refs);
    return rc;
}
