/* /api/v1 routes for published images: list, show, verify, and the signing
 * public key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "artifact/artifact.h"
#include "registry/registry.h"
#include "store/store.h"

static bool need_registry(struct api_req *r)
{
    if (api_ctx(r)->registry && api_ctx(r)->signer)
        return true;
    api_reply_error(r, CORE_E_NOMEM, "the registry is not enabled on this server", NULL);
    return false;
}

/* A tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}) or a digest ("sha256:" + 64 hex).
 */
static bool ref_ok(const char *ref)
{
    if (strncmp(ref, "sha256:", 7) == 0) {
        const char *h = ref + 7;
        size_t n = strspn(h, "0123456789abcdef");
        return n == 64 && !h[n];
    }
    size_t n = strlen(ref);
    if (n == 0 || n > ARTIFACT_TAG_MAX || ref[0] == '.' || ref[0] == '-')
        return false;
    return strspn(ref, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
                       "56789_.-") == n;
}

static bool check_names(struct api_req *r, const char *service, const char *ref)
{
    if (!service || !core_is_dns_label(service)) {
        api_reply_error(r, CORE_E_INVAL, "invalid service name", NULL);
        return false;
    }
    if (ref && !ref_ok(ref)) {
        api_reply_error(r, CORE_E_INVAL, "ref must be a tag or a digest 'sha256:<64 hex>'", NULL);
        return false;
    }
    return true;
}

/* Parses JSON text produced by the artifact module; NULL on NOMEM. */
static json_t *parse_doc(const struct core_buf *b)
{
    json_error_t jerr;
    return json_loadb(b->data, b->len, 0, &jerr);
}

static int image_item(void *arg, const struct artifact_image *img)
{
    struct core_buf vb;
    core_buf_init(&vb, 0);
    json_t *v = artifact_verification_json(img->v, &vb) ? NULL : parse_doc(&vb);
    core_buf_release(&vb);
    json_t *tags = json_array();
    char *list = core_strdup(img->tags ? img->tags : "");
    for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t;
         t = strtok_r(NULL, ",", &save))
        json_array_append_new(tags, json_string(t));
    core_free(list);
    char short_digest[20];
    snprintf(short_digest, sizeof(short_digest), "%.19s", img->digest);
    json_t *item = v ? json_pack("{s:s,s:s,s:s,s:o,s:I,s:s,s:s,s:b,s:s,s:s,s:o}", "repo", img->repo,
                                 "digest", img->digest, "digest_short", short_digest, "tags", tags,
                                 "size", (json_int_t)img->size, "created_at", img->created_at,
                                 "signature", artifact_sig_status_name(img->v->status),
                                 "provenance", img->v->has_provenance, "commit", img->v->commit,
                                 "run", img->v->run, "verification", v)
                     : NULL;
    if (!item) {
        json_decref(tags);
        json_decref(v);
        return CORE_E_NOMEM;
    }
    return json_array_append_new(arg, item) ? CORE_E_NOMEM : 0;
}

static void h_artifacts_list(struct api_req *r)
{
    char svc[128], lim[16];
    const char *service = api_query(r, "service", svc, sizeof(svc));
    const char *l = api_query(r, "limit", lim, sizeof(lim));
    long limit = l ? strtol(l, NULL, 10) : 50;
    if (!need_registry(r))
        return;
    if (!service) {
        api_reply_error(r, CORE_E_INVAL, "give the repository as ?service=NAME", NULL);
        return;
    }
    if (limit < 1 || limit > 500) {
        api_reply_error(r, CORE_E_INVAL, "limit must be 1 to 500", NULL);
        return;
    }
    if (!check_names(r, service, NULL))
        return;
    json_t *items = json_array();
    struct core_err err = {0};
    if (artifact_list(api_ctx(r)->registry, api_ctx(r)->signer, service, (int)limit, image_item,
                      items, &err)) {
        json_decref(items);
        if (!err.code)
            core_err_set(&err, CORE_E_NOMEM, "out of memory");
        api_reply_err(r, &err);
        return;
    }
    api_reply_json(r, 200,
                   json_pack("{s:s,s:o,s:I}", "service", service, "items", items, "total",
                             (json_int_t)json_array_size(items)));
}

static void h_artifact_get(struct api_req *r)
{
    if (!need_registry(r) || !check_names(r, r->params[0], r->params[1]))
        return;
    struct core_buf out;
    core_buf_init(&out, 0);
    struct core_err err = {0};
    if (artifact_show(api_ctx(r)->registry, api_ctx(r)->signer, r->params[0], r->params[1], &out,
                      &err)) {
        api_reply_err(r, &err);
    } else {
        json_t *doc = parse_doc(&out);
        if (doc)
            api_reply_json(r, 200, doc);
        else
            api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
    }
    core_buf_release(&out);
}

static void h_artifact_verify(struct api_req *r)
{
    if (!need_registry(r) || !check_names(r, r->params[0], r->params[1]))
        return;
    struct artifact_verification v;
    struct core_err err = {0};
    if (artifact_verify(api_ctx(r)->registry, api_ctx(r)->signer, r->params[0], r->params[1], &v,
                        &err)) {
        api_reply_err(r, &err);
        return;
    }
    struct core_buf out;
    core_buf_init(&out, 0);
    json_t *doc = artifact_verification_json(&v, &out) ? NULL : parse_doc(&out);
    core_buf_release(&out);
    if (!doc) {
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    json_object_set_new(doc, "repo", json_string(r->params[0]));
    json_object_set_new(doc, "ref", json_string(r->params[1]));
    /* The answer is 200 whatever the verdict: "invalid" is a finding, not a
     * failed request. */
    api_reply_json(r, 200, doc);
}

static void h_signing_key(struct api_req *r)
{
    if (!api_ctx(r)->signer) {
        api_reply_error(r, CORE_E_NOMEM, "image signing is not enabled on this server", NULL);
        return;
    }
    core_buf_clear(&r->out);
    if (core_buf_adds(&r->out, artifact_signer_public_pem(api_ctx(r)->signer))) {
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    r->out_type = "text/plain; charset=utf-8";
    r->status = 200;
}

/* POST /api/v1/registry/gc {"keep": N, "service": S, "grace": "1h"}: retention, then GC. */
static void h_registry_gc(struct api_req *r)
{
    if (!need_registry(r))
        return;
    if (!r->who.is_admin) {
        api_reply_error(r, CORE_E_PERM, "only an admin may collect garbage in the registry", NULL);
        return;
    }
    json_error_t jerr;
    json_t *j = r->body.len ? json_loadb(r->body.data, r->body.len, 0, &jerr) : json_object();
    if (!json_is_object(j)) {
        json_decref(j);
        api_reply_error(r, CORE_E_INVAL, "body must be a JSON object: {\"keep\", \"service\", "
                                         "\"grace\"}",
                        NULL);
        return;
    }
    json_t *jk = json_object_get(j, "keep");
    const char *service = json_string_value(json_object_get(j, "service"));
    const char *grace = json_string_value(json_object_get(j, "grace"));
    int64_t grace_ms = 3600 * 1000;
    long keep = jk ? (long)json_integer_value(jk) : 10;
    if ((jk && (!json_is_integer(jk) || keep < 0 || keep > 100000)) ||
        (service && !core_is_dns_label(service)) ||
        (grace && core_parse_duration_ms(grace, &grace_ms) && strcmp(grace, "0") != 0)) {
        json_decref(j);
        api_reply_error(r, CORE_E_INVAL,
                        "keep must be 0..100000, service a service name, grace a duration (\"1h\", "
                        "\"0s\")",
                        NULL);
        return;
    }
    if (grace && strcmp(grace, "0") == 0)
        grace_ms = 0;
    struct core_err err = {0};
    int64_t removed = 0, freed = 0;
    registry_gc_grace_set(api_ctx(r)->registry, grace_ms);
    int rc = registry_retain(api_ctx(r)->registry, service, (int)keep, &removed, &err);
    if (!rc)
        rc = registry_gc(api_ctx(r)->registry, &freed, &err);
    registry_gc_grace_set(api_ctx(r)->registry, 3600 * 1000);
    if (rc) {
        api_reply_err(r, &err);
    } else {
        struct store_audit_event ev = {.actor = r->who.user, .action = "registry.gc",
                                       .kind = "registry", .object = service ? service : "*"};
        store_audit_append(api_ctx(r)->st, &ev, NULL);
        api_reply_json(r, 200,
                       json_pack("{s:I,s:I,s:i}", "images_removed", (json_int_t)removed,
                                 "bytes_freed", (json_int_t)freed, "kept_per_repository",
                                 (int)keep));
    }
    json_decref(j);
}

const struct api_route api_artifact_routes[] = {
    {"POST", "/api/v1/registry/gc", h_registry_gc, true, false},
    {"GET", "/api/v1/artifacts", h_artifacts_list, true, false},
    {"GET", "/api/v1/artifacts/{service}/{ref}", h_artifact_get, true, false},
    {"GET", "/api/v1/artifacts/{service}/{ref}/verify", h_artifact_verify, true, false},
    {"GET", "/api/v1/signing-key", h_signing_key, true, false},
};
const size_t api_artifact_nroutes = sizeof(api_artifact_routes) / sizeof(api_artifact_routes[0]);
