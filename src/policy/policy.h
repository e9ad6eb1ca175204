/*
 * policy: the organization's guard rails as one engine every gate asks. Policies are YAML
 * documents (kind: Policy) holding rules; each rule has an id, a description, a severity, a
 * rationale, remediation text, a mode (audit: record only; warn: pass and record; enforce: block)
 * and a scope (teams, envs, tiers, subjects). Rule kinds (docs/policy.md):
 *
 *   required-tags          tag policies: required keys, allowed values, patterns
 *   approved-technologies  spec.dependencies resources must be approved types and versions
 *   resource-bounds        cpu / memory / replicas bounds by tier
 *   exposure               a public host needs TLS and a tier at most N
 *   data-classification    confidential => no public exposure, redaction not turned off
 *   provenance             only images built and signed by the platform pipeline
 *   field                  general conditions: path, operator, value (no C code needed)
 *
 * The engine is pure: policy_set_parse() turns documents into a compiled set (every problem at
 * once, file:line:col, never half-applied; contradictions between rules reported), and
 * policy_evaluate() checks one subject — a JSON document with its context — against it and
 * returns one result per rule in scope: pass, fail (with messages and the remediation), or
 * excepted (an approved, unexpired exception covers it; the expiry is checked against the `now`
 * given, so an expired exception stops applying everywhere at once).
 *
 * Storage, exceptions, reports and gates live in policy_store.c / gates (see policy_* below
 * "platform"): the active set is versioned in the store and every decision is audited.
 *
 * Ownership: results and sets belong to the caller (policy_results_free, policy_set_free).
 * Threading: a compiled set is immutable and may be shared by threads.
 */
#ifndef PAVE_POLICY_H
#define PAVE_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct store;
struct catalog;
struct catalog_actor;

enum policy_mode { POLICY_AUDIT = 1, POLICY_WARN, POLICY_ENFORCE };
enum policy_severity { POLICY_LOW = 1, POLICY_MEDIUM, POLICY_HIGH, POLICY_CRITICAL };
enum policy_outcome { POLICY_PASS = 1, POLICY_FAIL, POLICY_EXCEPTED, POLICY_SKIPPED };

/* What is being checked. */
enum policy_subject {
    POLICY_SUBJECT_SERVICE = 1, /* a service manifest (canonical JSON of pave.yaml) */
    POLICY_SUBJECT_IMAGE,       /* an image about to be pushed or deployed (see below) */
    POLICY_SUBJECT_RESOURCE,    /* an inventory item: Terraform plan resource, cloud export row */
};

/* The gate asking (rules may be scoped to gates). */
enum policy_gate {
    POLICY_GATE_CHECK = 1, /* pave policy check, background scans */
    POLICY_GATE_CATALOG,   /* catalog apply */
    POLICY_GATE_PIPELINE,  /* pipeline packaging */
    POLICY_GATE_REGISTRY,  /* registry push */
    POLICY_GATE_DEPLOY,    /* pave deploy */
};

const char *policy_mode_name(enum policy_mode m);          /* "audit" ... */
const char *policy_severity_name(enum policy_severity s);  /* "low" ... */
const char *policy_outcome_name(enum policy_outcome o);    /* "pass" ... */
const char *policy_subject_name(enum policy_subject s);    /* "service", "image", "resource" */
const char *policy_gate_name(enum policy_gate g);          /* "check", "catalog" ... */

/* ---- compiled policy sets ------------------------------------------------------------------ */

struct policy_set;

/* One source document (a policy file). */
struct policy_doc {
    const char *name; /* for messages: file name */
    const char *text;
    size_t len;
};

/*
 * Parses and compiles documents (each may hold several '---'-separated Policy objects) into one
 * set. Every problem is reported at once in err (file:line:col: message; hint) and nothing is
 * returned: unknown keys, rule kinds or operators, bad regexes (PCRE2), duplicate rule ids,
 * invalid scopes, and rules that contradict each other (e.g. two required-tags rules whose
 * allowed values for one key do not intersect, resource bounds with min > max, field rules that
 * no document can satisfy together). warnings (may be NULL) receives non-fatal notes (JSON array
 * of strings). returns: owned by caller, or NULL with err (CORE_E_INVAL, CORE_E_NOMEM).
 */
struct policy_set *policy_set_parse(const struct policy_doc *docs, size_t ndocs,
                                    json_t **warnings, struct core_err *err);
/* As policy_set_parse(), and also appends every problem to diags (may be NULL) as structured
 * diagnostics (file, line, col, path, message, hint), for the CLI and the API, since err holds
 * only as many as fit in its message. (Added by the policy engine helper.) */
struct schema_diags;
struct policy_set *policy_set_parse_diags(const struct policy_doc *docs, size_t ndocs,
                                          json_t **warnings, struct schema_diags *diags,
                                          struct core_err *err);
void policy_set_free(struct policy_set *set);
/* Rules of the set as JSON: [{id, policy, kind, description, severity, mode, rationale,
 * remediation, scope}]. */
json_t *policy_set_rules(const struct policy_set *set);
/* SHA-256 hex of the set's source documents (what is stored as a version). */
const char *policy_set_digest(const struct policy_set *set);

/* ---- evaluation ---------------------------------------------------------------------------- */

/* An exception as the evaluator needs it: it covers (subject name, rule id) until expires_ms. */
struct policy_exception {
    int64_t id;
    const char *subject; /* service name or resource address; "*" = any */
    const char *rule;    /* rule id */
    int64_t expires_ms;  /* wall clock ms */
};

struct policy_input {
    enum policy_subject subject;
    enum policy_gate gate;
    const char *name;    /* service name or resource address (for exceptions and reports) */
    const char *team;    /* owning team (scope), may be NULL */
    const char *env;     /* target environment, may be NULL (then env-scoped rules apply to
                          * every env: checks and scans report the strictest) */
    int tier;            /* 1..4; 0 unknown */
    json_t *doc;         /* borrowed: the manifest / image facts / resource attributes */
    const struct policy_exception *exceptions; /* approved ones; expired ones are ignored */
    size_t nexceptions;
    int64_t now_ms;      /* for exception expiry */
};

/* Image facts for POLICY_SUBJECT_IMAGE docs: {"repository", "digest", "signed": bool,
 * "signature": "verified"|"missing"|"invalid", "builder": "...", "provenance": bool,
 * "labels": {...}} — the artifact module's verification result shaped for rules. */

struct policy_result {
    const char *rule;        /* rule id (borrowed from the set) */
    const char *policy;      /* policy name */
    const char *kind;
    enum policy_mode mode;
    enum policy_severity severity;
    enum policy_outcome outcome;
    char *message;           /* what failed, concretely ("tag cost-center is missing"); owned */
    const char *remediation; /* borrowed from the set */
    int64_t exception_id;    /* when excepted */
};

struct policy_results {
    struct policy_result *v;
    size_t n;
    bool blocked;   /* some enforce rule failed (and was not excepted) */
    int failed;     /* failures of any mode, not excepted */
    int warned;     /* warn-mode failures */
    int64_t decision_id; /* policy_gate_check: the recorded decision (the "why" page) */
};

/* Evaluates in against every rule of set whose scope matches (others are POLICY_SKIPPED and left
 * out). Never fails on odd documents: a field that is absent or of the wrong type fails the
 * rule with a message saying so. returns: 0 and out filled, or CORE_E_NOMEM. */
int policy_evaluate(const struct policy_set *set, const struct policy_input *in,
                    struct policy_results *out, struct core_err *err);
void policy_results_free(struct policy_results *r);
/* {"blocked", "failed", "warned", "results":[{rule, policy, kind, mode, severity, outcome,
 * message, remediation, exception}]} */
json_t *policy_results_json(const struct policy_results *r);
/* One human paragraph per failing rule: "rule (mode, severity): message. Fix: remediation.
 * To ask for an exception: pave policy exceptions request ..." into out. */
int policy_results_explain(const struct policy_results *r, const char *subject_name,
                           struct core_buf *out);

/* ---- inventories: mapping other formats onto resources ---------------------------------------- */

enum policy_inventory { POLICY_INV_AUTO = 0, POLICY_INV_MANIFEST, POLICY_INV_TERRAFORM,
                        POLICY_INV_RESOURCES };

/* Splits a document into subjects: a pave.yaml manifest (one service); a Terraform plan JSON
 * (`terraform show -json`: every resource in planned_values, modules included, with address,
 * type, provider, values and tags/tags_all as "tags"); or a flat cloud-resource export (a JSON
 * array or {"resources":[...]} of objects with id/arn/name, type, account, region, tags).
 * AUTO detects which. fn is called per subject with a ready policy_input (subject, name, team from
 * tags.team, env from tags.env, doc) that it may complete and evaluate. */
typedef int (*policy_subject_fn)(void *arg, struct policy_input *in);
int policy_inventory_each(const char *name, const char *text, size_t len,
                          enum policy_inventory kind, policy_subject_fn fn, void *arg,
                          struct core_err *err);

/* ---- the platform: stored policies, exceptions, gates, scans, reports (policy_store.c) ---- */

struct policy_engine;

/* Opens the platform side over the store (migration: policies, policy_exceptions,
 * policy_decisions, policy_scans). The active set is compiled from the stored documents and
 * swapped atomically when they change. returns: owned by caller (policy_engine_free). */
struct policy_engine *policy_engine_open(struct store *st, struct catalog *cat,
                                         struct core_err *err);
void policy_engine_free(struct policy_engine *pe);

/* Stores the default policy set shipped in policies/default.yaml (embedded in the binary) when
 * no policy is stored yet. `pave up` calls it. */
int policy_engine_load_defaults(struct policy_engine *pe, struct core_err *err);

/* Stores new versions of the policies in docs (by metadata.name; admin only). The whole new
 * active set is compiled first: any error leaves everything as it was (never half-applied).
 * *result (may be NULL): {"applied":[{name, version, change: created|updated|unchanged}],
 * "warnings":[...]}; on a compile error it receives {"problems":[{file, line, column, path,
 * message, hint}]} with every problem (err holds only what fits). Audited. */
int policy_apply(struct policy_engine *pe, const struct catalog_actor *actor,
                 const struct policy_doc *docs, size_t ndocs, json_t **result,
                 struct core_err *err);
int policy_delete(struct policy_engine *pe, const struct catalog_actor *actor, const char *name,
                  struct core_err *err);
json_t *policy_list(struct policy_engine *pe, struct core_err *err); /* {"items":[...]} */
json_t *policy_show(struct policy_engine *pe, const char *name, struct core_err *err);

/* A gate's question. Fills in->exceptions (approved, for in->name) and in->now_ms itself,
 * evaluates against the active set, records the decision (policy_decisions: gate, subject,
 * outcome, failing rules) and, when blocked, writes an audit event. out as policy_evaluate. */
int policy_gate_check(struct policy_engine *pe, struct policy_input *in,
                      struct policy_results *out, struct core_err *err);

/* Exceptions: requested by anyone in the subject's team (or an admin), with a justification and
 * an expiry (at most 1 year); approved or rejected by an admin who is not the requester; revoked
 * by an admin or the requester. Every step is audited. */
int policy_exception_request(struct policy_engine *pe, const struct catalog_actor *actor,
                             const char *subject, const char *rule, const char *justification,
                             int64_t expires_ms, int64_t *id, struct core_err *err);
int policy_exception_decide(struct policy_engine *pe, const struct catalog_actor *actor,
                            int64_t id, const char *decision /* approve|reject|revoke */,
                            const char *comment, struct core_err *err);
/* {"items":[{id, subject, rule, justification, requester, approver, state, expires_at,
 * active (approved and unexpired now), created_at, decided_at, comment}]} */
json_t *policy_exception_list(struct policy_engine *pe, const char *state, const char *subject,
                              struct core_err *err);

/* Background scan: evaluates every service of the catalog (gate check; env NULL) and stores one
 * row per (service, rule) with its outcome, under a new scan id. */
int policy_scan(struct policy_engine *pe, int64_t *scan_id, struct core_err *err);
/* Compliance from the newest scan grouped by "team", "service" or "rule" (pass, fail, excepted
 * counts and rows), plus the trend: the same totals for every earlier scan (newest 30).
 * team/service filter (NULL: all). */
json_t *policy_report(struct policy_engine *pe, const char *group_by, const char *team,
                      const char *service, struct core_err *err);
/* The newest scan's rows as CSV: scan,time,team,service,rule,severity,mode,outcome,message. */
int policy_report_csv(struct policy_engine *pe, const char *team, const char *service,
                      struct core_buf *out, struct core_err *err);
/* Recorded gate decisions, newest first (subject NULL: all; limit 1..500; before_id 0: from the
 * newest): {"items":[{id, ts, gate, subject, subject_kind, team, env, blocked, failed:[{rule,
 * policy, mode, severity, message, remediation}]}]}. policy_decision_get: one, or NULL with
 * CORE_E_NOTFOUND. */
json_t *policy_decision_list(struct policy_engine *pe, const char *subject, int limit,
                             int64_t before_id, struct core_err *err);
json_t *policy_decision_get(struct policy_engine *pe, int64_t id, struct core_err *err);

/* ---- gates: the callbacks the catalog, the registry, the pipeline runner and the deploy
 * controller call (gates.c). A refusal sets err to CORE_E_PERM with every failing enforce rule
 * and its remediation, the decision number and how to ask for an exception. ---------------- */

struct registry;
struct artifact_signer;
struct catalog_manifest;

struct policy_gates {
    struct policy_engine *pe;
    struct catalog *cat;
    struct registry *reg;          /* for image facts at deploy (may be NULL) */
    struct artifact_signer *signer; /* signature verification at deploy (may be NULL) */
};

int policy_gate_catalog_cb(void *gates, const struct catalog_actor *actor,
                           const struct catalog_manifest *m, struct core_err *err);
int policy_gate_pipeline_cb(void *gates, const char *service, const char *team, int64_t run_id,
                            struct core_err *err);
int policy_gate_registry_cb(void *gates, const struct catalog_actor *actor, const char *repo,
                            const char *digest, const char *manifest, size_t len,
                            struct core_err *err);
int policy_gate_deploy_cb(void *gates, const struct catalog_actor *actor, const char *service,
                          const char *env, const char *team, int tier, const char *manifest_json,
                          const char *repo, const char *digest, struct core_err *err);

#endif
