/* The gates: callbacks the catalog (apply), the pipeline runner (packaging), the registry (pushes
 * over /v2) and the deploy controller (deploy) call before they act. Each builds the subject for
 * the policy engine, asks policy_gate_check() (which records the decision) and turns a block into
 * CORE_E_PERM with every failing enforce rule, its remediation, the decision number and how to
 * ask for an exception. Warnings pass and are recorded. */
#include <stdio.h>
#include <string.h>

#include "artifact/artifact.h"
#include "catalog/catalog.h"
#include "policy/policy.h"

/* Fills err from a blocking result: the explanation, cut to fit, and the decision's page. */
static int refuse(const struct policy_results *r, const char *subject, struct core_err *err)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    policy_results_explain(r, subject, &b);
    char why[300];
    snprintf(why, sizeof(why), "%.*s", b.data ? (int)(b.len < 280 ? b.len : 280) : 0,
             b.data ? b.data : "");
    for (char *p = why; *p; p++)
        if (*p == '\n')
            *p = ' ';
    core_buf_release(&b);
    int rc = core_err_set(err, CORE_E_PERM,
                          "blocked by policy (decision #%lld, %d failing rule%s): %s%s See "
                          "/policy/decisions/%lld or 'pave policy decisions show %lld'",
                          (long long)r->decision_id, r->failed, r->failed == 1 ? "" : "s", why,
                          b.len > 280 ? "..." : "", (long long)r->decision_id,
                          (long long)r->decision_id);
    return rc;
}

static int ask(struct policy_gates *g, struct policy_input *in, struct core_err *err)
{
    struct policy_results r = {0};
    int rc = policy_gate_check(g->pe, in, &r, err);
    if (rc) {
        /* the engine could not judge: fail closed for enforce-capable gates */
        core_err_wrap(err, "the policy engine could not check '%s'", in->name);
        return rc;
    }
    if (r.blocked)
        rc = refuse(&r, in->name, err);
    policy_results_free(&r);
    return rc;
}

int policy_gate_catalog_cb(void *gates, const struct catalog_actor *actor,
                           const struct catalog_manifest *m, struct core_err *err)
{
    struct policy_gates *g = gates;
    json_error_t jerr;
    json_t *doc = json_loads(m->json, 0, &jerr);
    if (!doc)
        return core_err_set(err, CORE_E_INVAL, "unreadable manifest of '%s'", m->name);
    struct policy_input in = {
        .subject = POLICY_SUBJECT_SERVICE,
        .gate = POLICY_GATE_CATALOG,
        .name = m->name,
        .team = m->team,
        .tier = m->tier,
        .doc = doc,
    };
    (void)actor;
    int rc = ask(g, &in, err);
    json_decref(doc);
    return rc;
}

int policy_gate_pipeline_cb(void *gates, const char *service, const char *team, int64_t run_id,
                            struct core_err *err)
{
    struct policy_gates *g = gates;
    struct catalog_service s = {0};
    int rc = catalog_service_get(g->cat, service, &s, err);
    if (rc)
        return rc;
    json_error_t jerr;
    json_t *doc = json_loads(s.manifest, 0, &jerr);
    struct policy_input in = {
        .subject = POLICY_SUBJECT_SERVICE,
        .gate = POLICY_GATE_PIPELINE,
        .name = service,
        .team = team ? team : s.team,
        .tier = s.tier,
        .doc = doc,
    };
    (void)run_id;
    rc = doc ? ask(g, &in, err) : core_err_set(err, CORE_E_INVAL, "unreadable manifest");
    json_decref(doc);
    catalog_service_release(&s);
    return rc;
}

/* The image facts rules see (policy.h: POLICY_SUBJECT_IMAGE). */
static json_t *image_facts(struct policy_gates *g, const char *repo, const char *digest,
                           bool pushed_from_outside)
{
    json_t *o = json_pack("{s:s,s:s}", "repository", repo, "digest", digest);
    struct artifact_verification v;
    memset(&v, 0, sizeof(v));
    struct core_err err = {0};
    bool have = !pushed_from_outside && g->reg && g->signer &&
                artifact_verify(g->reg, g->signer, repo, digest, &v, &err) == 0;
    json_object_set_new(o, "signed", json_boolean(have && v.is_valid));
    json_object_set_new(o, "signature",
                        json_string(have ? artifact_sig_status_name(v.status) : "missing"));
    json_object_set_new(o, "provenance", json_boolean(have && v.has_provenance));
    json_object_set_new(o, "builder", json_string(have ? v.builder : ""));
    json_object_set_new(o, "run", json_string(have ? v.run : ""));
    return o;
}

int policy_gate_registry_cb(void *gates, const struct catalog_actor *actor, const char *repo,
                            const char *digest, const char *manifest, size_t len,
                            struct core_err *err)
{
    struct policy_gates *g = gates;
    struct catalog_service s = {0};
    bool have = catalog_service_get(g->cat, repo, &s, NULL) == 0;
    /* an image pushed over /v2 is not yet signed by anyone: its signature comes after it */
    json_t *doc = image_facts(g, repo, digest, true);
    json_error_t jerr;
    json_t *m = json_loadb(manifest, len, 0, &jerr);
    json_object_set_new(doc, "labels",
                        json_deep_copy(json_object_get(m, "annotations")));
    json_decref(m);
    struct policy_input in = {
        .subject = POLICY_SUBJECT_IMAGE,
        .gate = POLICY_GATE_REGISTRY,
        .name = repo,
        .team = have ? s.team : NULL,
        .tier = have ? s.tier : 0,
        .doc = doc,
    };
    (void)actor;
    int rc = ask(g, &in, err);
    json_decref(doc);
    if (have)
        catalog_service_release(&s);
    return rc;
}

int policy_gate_deploy_cb(void *gates, const struct catalog_actor *actor, const char *service,
                          const char *env, const char *team, int tier, const char *manifest_json,
                          const char *repo, const char *digest, struct core_err *err)
{
    struct policy_gates *g = gates;
    json_error_t jerr;
    json_t *doc = json_loads(manifest_json, 0, &jerr);
    if (!doc)
        return core_err_set(err, CORE_E_INVAL, "unreadable manifest of '%s'", service);
    struct policy_input in = {
        .subject = POLICY_SUBJECT_SERVICE,
        .gate = POLICY_GATE_DEPLOY,
        .name = service,
        .team = team,
        .env = env,
        .tier = tier,
        .doc = doc,
    };
    (void)actor;
    int rc = ask(g, &in, err);
    json_decref(doc);
    if (rc)
        return rc;
    /* the image it would run: provenance rules */
    json_t *img = image_facts(g, repo, digest, false);
    struct policy_input ii = {
        .subject = POLICY_SUBJECT_IMAGE,
        .gate = POLICY_GATE_DEPLOY,
        .name = service,
        .team = team,
        .env = env,
        .tier = tier,
        .doc = img,
    };
    rc = ask(g, &ii, err);
    json_decref(img);
    return rc;
}
