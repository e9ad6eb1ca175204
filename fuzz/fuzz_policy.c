/*
 * Fuzz target for the policy language: parses arbitrary bytes as a policy file (one or more
 * '---'-separated Policy documents) and, when they compile, evaluates the set against a fixed
 * service manifest, a resource and an image, with an exception in play. Any crash, sanitizer
 * report, leak or regex blow-up (match limits) is a bug. Contract checks: a failed parse returns
 * NULL with CORE_E_INVAL/NOMEM and a message; a compiled set lists its rules; every evaluation
 * result is in scope, and counts agree with outcomes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy/policy.h"
#include "schema/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const docs_json[] = {
    "{\"apiVersion\":\"pave/v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"payments-api\","
    "\"team\":\"payments\",\"tier\":1,\"tags\":{\"cost-center\":\"cc-1234\",\"env\":\"prod\","
    "\"data-classification\":\"confidential\"}},\"spec\":{\"run\":{\"command\":[\"./a\"],"
    "\"resources\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"}},\"replicas\":1,\"expose\":"
    "{\"host\":\"pay.example.com\",\"paths\":[\"/\",\"/api\"],\"tls\":false},\"dependencies\":"
    "[{\"resource\":\"postgres\",\"name\":\"db\",\"version\":\"14\"},{\"service\":\"ledger\"}]}}",
    "{\"address\":\"aws_db_instance.x\",\"type\":\"aws_db_instance\",\"engine\":\"postgres\","
    "\"engine_version\":\"16.2\",\"publicly_accessible\":true,\"tags\":{\"team\":\"a\"}}",
    "{\"repository\":\"r\",\"digest\":\"sha256:00\",\"signed\":true,\"signature\":\"verified\","
    "\"builder\":\"pave-pipeline\",\"provenance\":true,\"labels\":{}}",
};
static const enum policy_subject subjects[] = {POLICY_SUBJECT_SERVICE, POLICY_SUBJECT_RESOURCE,
                                               POLICY_SUBJECT_IMAGE};

static void evaluate_all(const struct policy_set *set)
{
    struct policy_exception ex = {.id = 1, .subject = "*", .rule = "a", .expires_ms = 2000};
    for (size_t i = 0; i < 3; i++) {
        json_t *doc = json_loads(docs_json[i], 0, NULL);
        if (!doc)
            continue; /* allocation failure */
        struct policy_input in = {.subject = subjects[i], .gate = POLICY_GATE_DEPLOY,
                                  .name = "x", .env = i ? NULL : "prod", .doc = doc,
                                  .exceptions = &ex, .nexceptions = 1, .now_ms = 1000};
        struct policy_results r;
        if (policy_evaluate(set, &in, &r, NULL) == 0) {
            int failed = 0;
            bool blocked = false;
            for (size_t k = 0; k < r.n; k++) {
                const struct policy_result *x = &r.v[k];
                if (x->outcome == POLICY_SKIPPED || (x->outcome == POLICY_PASS && x->message) ||
                    (x->outcome == POLICY_FAIL && !x->message))
                    __builtin_trap();
                failed += x->outcome == POLICY_FAIL;
                blocked |= x->outcome == POLICY_FAIL && x->mode == POLICY_ENFORCE;
            }
            if (failed != r.failed || blocked != r.blocked)
                __builtin_trap();
            struct core_buf b;
            core_buf_init(&b, 0);
            policy_results_explain(&r, in.name, &b);
            core_buf_release(&b);
            json_decref(policy_results_json(&r));
            policy_results_free(&r);
        }
        json_decref(doc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct policy_doc doc = {.name = "fuzz.yaml", .text = (const char *)data, .len = size};
    struct core_err err = {0};
    struct schema_diags diags;
    json_t *warnings = NULL;

    schema_diags_init(&diags);
    struct policy_set *set = policy_set_parse_diags(&doc, 1, &warnings, &diags, &err);
    if (!set) {
        if ((err.code != CORE_E_INVAL && err.code != CORE_E_NOMEM) || !err.msg[0] ||
            (err.code == CORE_E_INVAL && diags.n == 0))
            __builtin_trap();
    } else {
        if (diags.n)
            __builtin_trap();
        json_t *rules = policy_set_rules(set);
        json_decref(rules);
        if (strlen(policy_set_digest(set)) != 64)
            __builtin_trap();
        evaluate_all(set);
        policy_set_free(set);
    }
    json_decref(warnings);
    schema_diags_release(&diags);
    return 0;
}
