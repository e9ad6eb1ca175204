/* Unit tests for the pure policy engine: parsing (errors with positions, contradictions), every
 * rule kind, scopes, exceptions, inventories and the explanation text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "schema/schema.h"

#define HDR "apiVersion: pave/v1\nkind: Policy\nmetadata: {name: t}\nrules:\n"

/* Reads a file next to this source, whether the test runs from the build dir (meson test) or
 * from the repository root. returns: owned by caller (core_free). */
static char *fixture(const char *rel)
{
    char path[1024];
    const char *f = __FILE__;
    const char *slash = strrchr(f, '/');
    char *text = NULL;
    size_t len = 0;
    struct core_err err = {0};
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *dir = f;
        int n = (int)(slash ? slash - f : 1);
        if (attempt == 1 && strncmp(f, "../", 3) == 0) {
            dir += 3;
            n -= 3;
        }
        snprintf(path, sizeof(path), "%.*s/%s", n, slash ? dir : ".", rel);
        if (core_file_read(path, 1 << 22, &text, &len, &err) == 0)
            return text;
    }
    fail_msg("cannot read %s: %s", path, err.msg);
    return NULL;
}

static struct policy_set *parse(const char *yaml, struct core_err *err)
{
    struct policy_doc d = {.name = "p.yaml", .text = yaml, .len = strlen(yaml)};
    return policy_set_parse(&d, 1, NULL, err);
}

static struct policy_set *must_parse(const char *yaml)
{
    struct core_err err = {0};
    struct policy_set *s = parse(yaml, &err);
    if (!s)
        fail_msg("parse failed: %s", err.msg);
    return s;
}

/* The parse fails and the error names `want` (e.g. "p.yaml:5:11: unknown key"). */
static void parse_fails(const char *yaml, const char *want)
{
    struct core_err err = {0};
    struct policy_set *s = parse(yaml, &err);
    if (s) {
        policy_set_free(s);
        fail_msg("expected an error containing '%s'", want);
    }
    assert_int_equal(err.code, CORE_E_INVAL);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

struct run {
    struct policy_results r;
    json_t *doc;
};

static void eval_json(struct policy_set *set, enum policy_subject subj, const char *json,
                      const char *env, struct run *run)
{
    json_error_t jerr;
    run->doc = json_loads(json, 0, &jerr);
    if (!run->doc)
        fail_msg("bad test json: %s", jerr.text);
    struct policy_input in = {.subject = subj, .gate = POLICY_GATE_CHECK, .name = "svc",
                              .env = env, .doc = run->doc, .now_ms = 1000};
    struct core_err err = {0};
    assert_int_equal(policy_evaluate(set, &in, &run->r, &err), 0);
}

static void run_free(struct run *run)
{
    policy_results_free(&run->r);
    json_decref(run->doc);
}

static const struct policy_result *result(const struct run *run, const char *rule)
{
    for (size_t i = 0; i < run->r.n; i++)
        if (strcmp(run->r.v[i].rule, rule) == 0)
            return &run->r.v[i];
    return NULL;
}

static void expect_outcome(const struct run *run, const char *rule, enum policy_outcome o,
                           const char *msg_part)
{
    const struct policy_result *r = result(run, rule);
    if (!r)
        fail_msg("rule %s not in results", rule);
    if (r->outcome != o)
        fail_msg("rule %s: outcome %s (message: %s), want %s", rule,
                 policy_outcome_name(r->outcome), r->message ? r->message : "-",
                 policy_outcome_name(o));
    if (msg_part && (!r->message || !strstr(r->message, msg_part)))
        fail_msg("rule %s: message '%s' lacks '%s'", rule, r->message ? r->message : "",
                 msg_part);
}

/* Evaluates one service manifest JSON against one rule set and checks one rule. */
static void check_one(const char *rules, enum policy_subject subj, const char *json,
                      const char *rule, enum policy_outcome o, const char *msg_part)
{
    struct policy_set *set = must_parse(rules);
    struct run run;
    eval_json(set, subj, json, NULL, &run);
    expect_outcome(&run, rule, o, msg_part);
    run_free(&run);
    policy_set_free(set);
}

/* ---- parsing ---------------------------------------------------------------------------- */

static void test_default_policy_parses(void **state)
{
    char *text = fixture("../../../policies/default.yaml");
    struct policy_doc d = {.name = "default.yaml", .text = text, .len = strlen(text)};
    struct core_err err = {0};
    json_t *warnings = NULL;
    struct policy_set *s = policy_set_parse(&d, 1, &warnings, &err);
    if (!s)
        fail_msg("%s", err.msg);
    assert_int_equal(json_array_size(warnings), 0);
    json_t *rules = policy_set_rules(s);
    assert_int_equal(json_array_size(rules), 7);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 0), "policy")),
                        "org-baseline");
    assert_int_equal(strlen(policy_set_digest(s)), 64);
    json_decref(rules);
    json_decref(warnings);
    policy_set_free(s);
    core_free(text);
}

static void test_parse_unknown_key(void **state)
{
    parse_fails(HDR "  - id: a\n    kind: field\n    severty: high\n"
                    "    all: [{path: x, op: exists}]\n",
                "p.yaml:7:5: unknown key 'severty' (did you mean 'severity'?)");
    /* kind-specific keys of another kind are unknown too */
    parse_fails(HDR "  - id: a\n    kind: field\n    tags: {team: {required: true}}\n"
                    "    all: [{path: x, op: exists}]\n",
                "p.yaml:7:5: unknown key 'tags'");
    parse_fails("apiVersion: pave/v1\nkind: Policy\nmetadata: {name: t, owner: x}\nrules: []\n",
                "p.yaml:3:21: unknown key 'owner'");
}

static void test_parse_unknown_kind(void **state)
{
    parse_fails(HDR "  - id: a\n    kind: required-tag\n    tags: {team: }\n",
                "p.yaml:6:11: unknown rule kind 'required-tag' (did you mean 'required-tags'?)");
}

static void test_parse_unknown_operator(void **state)
{
    parse_fails(HDR "  - id: a\n    kind: field\n    all:\n      - {path: spec.replicas, op: '=>', "
                    "value: 2}\n",
                "p.yaml:8:35: unknown operator '=>'");
    parse_fails(HDR "  - id: a\n    kind: field\n    all: [{path: a, op: between, value: 2}]\n",
                "unknown operator 'between'");
}

static void test_parse_bad_enums(void **state)
{
    parse_fails(HDR "  - id: a\n    kind: field\n    severity: urgent\n"
                    "    all: [{path: x, op: exists}]\n",
                "p.yaml:7:15: unknown severity 'urgent'");
    parse_fails(HDR "  - id: a\n    kind: field\n    mode: enforcing\n"
                    "    all: [{path: x, op: exists}]\n",
                "p.yaml:7:11: unknown mode 'enforcing' (did you mean 'enforce'?)");
    parse_fails(HDR "  - id: a\n    kind: field\n    scope: {gates: [deploy, merge]}\n"
                    "    all: [{path: x, op: exists}]\n",
                "p.yaml:7:29: unknown gate 'merge'");
    parse_fails(HDR "  - id: a\n    kind: provenance\n    scope: {subjects: [service]}\n"
                    "    builders: [pave-pipeline]\n",
                "kind 'provenance' does not apply to subject 'service'");
    parse_fails(HDR "  - id: a\n    kind: field\n    scope: {tiers: [0, 2]}\n"
                    "    all: [{path: x, op: exists}]\n",
                "p.yaml:7:21: must be between 1 and 4");
}

static void test_parse_bad_regex(void **state)
{
    parse_fails(HDR "  - id: a\n    kind: required-tags\n    tags:\n"
                    "      cost-center: {pattern: \"^cc-[0-9\"}\n",
                "p.yaml:8:30: invalid regular expression");
    parse_fails(HDR "  - id: a\n    kind: field\n    all: [{path: x, op: matches, value: \"(a\"}]\n",
                "invalid regular expression '(a'");
}

static void test_parse_duplicate_ids(void **state)
{
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: x, op: exists}]}\n"
                    "  - {id: a, kind: field, all: [{path: y, op: exists}]}\n",
                "p.yaml:6:10: duplicate rule id 'a' (ids are unique across the set; first "
                "defined at p.yaml:5:10)");
    /* across documents and files */
    const char *one = HDR "  - {id: a, kind: field, all: [{path: x, op: exists}]}\n";
    const char *two = "---\n" HDR "  - {id: b, kind: field, all: [{path: x, op: exists}]}\n"
                      "---\napiVersion: pave/v1\nkind: Policy\nmetadata: {name: u}\nrules:\n"
                      "  - {id: a, kind: field, all: [{path: y, op: exists}]}\n";
    struct policy_doc d[] = {{"one.yaml", one, strlen(one)}, {"two.yaml", two, strlen(two)}};
    struct core_err err = {0};
    struct schema_diags diags;
    schema_diags_init(&diags);
    assert_null(policy_set_parse_diags(d, 2, NULL, &diags, &err));
    assert_int_equal(diags.n, 1);
    assert_string_equal(diags.items[0].file, "two.yaml");
    assert_int_equal(diags.items[0].line, 12);
    schema_diags_release(&diags);
}

static void test_parse_structure_errors(void **state)
{
    parse_fails("apiVersion: pave/v2\nkind: Policy\nmetadata: {name: t}\nrules: []\n",
                "p.yaml:1:13: unsupported apiVersion 'pave/v2'");
    parse_fails("kind: Policy\nrules: []\n", "missing required key 'apiVersion'");
    parse_fails(HDR "  - {kind: field, all: [{path: x, op: exists}]}\n",
                "p.yaml:5:5: missing required key 'id'");
    parse_fails(HDR "  - {id: Bad_Id, kind: field, all: [{path: x, op: exists}]}\n",
                "invalid rule id 'Bad_Id'");
    parse_fails(HDR "  - {id: a, kind: field}\n", "needs conditions under 'all', 'any' or 'none'");
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: x, op: '>=', value: big}]}\n",
                "operator '>=' needs a number");
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: x, op: exists, value: 1}]}\n",
                "operator 'exists' takes no value");
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: x, op: in, value: a}]}\n",
                "operator 'in' needs a list value");
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: 'a..b', op: exists}]}\n",
                "invalid path 'a..b': empty segment");
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: 'a[x]', op: exists}]}\n",
                "invalid path 'a[x]'");
    parse_fails(HDR "  - {id: a, kind: approved-technologies}\n",
                "missing required key 'technologies' for kind 'approved-technologies'");
    parse_fails(HDR "  - {id: a, kind: resource-bounds, tiers: {\"5\": {replicas: {min: 1}}}}\n",
                "unknown tier '5'");
    parse_fails(HDR "  - {id: a, kind: resource-bounds, tiers: {\"1\": {cpu: {min: lots}}}}\n",
                "invalid CPU quantity 'lots'");
    parse_fails(HDR "  - {id: a: b}\n", "p.yaml:5");
    parse_fails("", "policy file is empty");
}

static void test_parse_every_problem_at_once(void **state)
{
    const char *y = HDR "  - {id: a, kind: field, mode: strict, all: [{path: x, op: '~'}]}\n"
                        "  - {id: b, kind: nope}\n";
    struct policy_doc d = {"p.yaml", y, strlen(y)};
    struct schema_diags diags;
    struct core_err err = {0};
    schema_diags_init(&diags);
    assert_null(policy_set_parse_diags(&d, 1, NULL, &diags, &err));
    assert_int_equal(diags.n, 3);
    assert_non_null(strstr(err.msg, "3 policy problems"));
    schema_diags_release(&diags);
}

static void test_contradiction_tags(void **state)
{
    parse_fails(HDR "  - {id: a, kind: required-tags, tags: {env: {values: [dev, prod]}}}\n"
                    "  - {id: b, kind: required-tags, tags: {env: {values: [qa, staging]}}}\n",
                "p.yaml:6:41: rules 'a' and 'b' contradict: tag 'env' must be one of (dev, "
                "prod) and one of (qa, staging)");
    /* overlapping values, or disjoint scopes: fine */
    policy_set_free(must_parse(
        HDR "  - {id: a, kind: required-tags, tags: {env: {values: [dev, prod]}}}\n"
            "  - {id: b, kind: required-tags, tags: {env: {values: [prod, staging]}}}\n"));
    policy_set_free(must_parse(
        HDR "  - {id: a, kind: required-tags, scope: {teams: [x]}, tags: {env: {values: [dev]}}}\n"
            "  - {id: b, kind: required-tags, scope: {teams: [y]}, tags: {env: {values: [qa]}}}\n"));
    /* a pattern that no allowed value matches */
    parse_fails(HDR "  - {id: a, kind: required-tags, tags: {env: {pattern: '^p', values: [dev]}}}\n",
                "no allowed value of tag 'env' matches its pattern");
}

static void test_contradiction_bounds(void **state)
{
    parse_fails(HDR "  - {id: a, kind: resource-bounds, tiers: {\"1\": {memory: {min: 2Gi, max: 1Gi}}}}\n",
                "p.yaml:5:64: min is greater than max");
    parse_fails(HDR "  - {id: a, kind: resource-bounds, tiers: {\"1\": {replicas: {min: 4}}}}\n"
                    "  - {id: b, kind: resource-bounds, tiers: {\"1\": {replicas: {max: 2}}}}\n",
                "rules 'a' and 'b' contradict: tier 1 replicas min (rule 'a') is above max");
    policy_set_free(must_parse(
        HDR "  - {id: a, kind: resource-bounds, tiers: {\"1\": {replicas: {min: 4}}}}\n"
            "  - {id: b, kind: resource-bounds, tiers: {\"2\": {replicas: {max: 2}}}}\n"));
}

static void test_contradiction_fields(void **state)
{
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: spec.x, op: ==, value: 1}]}\n"
                    "  - {id: b, kind: field, all: [{path: spec.x, op: ==, value: 2}]}\n",
                "rules 'a' and 'b' contradict: 'spec.x == 1' and 'spec.x == 2' cannot both hold");
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: r, op: '>', value: 5}, "
                    "{path: r, op: '<', value: 3}]}\n",
                "rule 'a' can never pass: 'r > 5' and 'r < 3' cannot both hold");
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: r, op: '>=', value: 2Gi}]}\n"
                    "  - {id: b, kind: field, all: [{path: r, op: '<', value: 2Gi}]}\n",
                "cannot both hold");
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: spec.x, op: exists}]}\n"
                    "  - {id: b, kind: field, all: [{path: spec.x, op: absent}]}\n",
                "'spec.x exists' and 'spec.x absent' cannot both hold");
    parse_fails(HDR "  - {id: a, kind: field, all: [{path: e, op: ==, value: prod}, "
                    "{path: e, op: not_in, value: [prod, dev]}]}\n",
                "cannot both hold");
    /* compatible: touching closed ranges, different paths, [*] paths, disjoint scopes */
    policy_set_free(must_parse(
        HDR "  - {id: a, kind: field, all: [{path: r, op: '>=', value: 2}, {path: r, op: '<=', "
            "value: 2}, {path: q, op: absent}, {path: 'l[*].v', op: ==, value: 1}, "
            "{path: 'l[*].v', op: ==, value: 2}]}\n"
            "  - {id: b, kind: field, scope: {envs: [dev]}, all: [{path: x, op: ==, value: 1}]}\n"
            "  - {id: c, kind: field, scope: {envs: [prod]}, all: [{path: x, op: ==, value: 2}]}\n"));
}

static void test_warnings(void **state)
{
    const char *y = HDR "  - {id: a, kind: field, all: [{path: x, op: exists}]}\n";
    struct policy_doc d = {"p.yaml", y, strlen(y)};
    json_t *w = NULL;
    struct policy_set *s = policy_set_parse(&d, 1, &w, NULL);
    assert_non_null(s);
    assert_int_equal(json_array_size(w), 1);
    assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "has no remediation"));
    json_decref(w);
    policy_set_free(s);
}

/* ---- rule kinds ------------------------------------------------------------------------- */

static const char *const TAGS =
    HDR "  - id: tags\n    kind: required-tags\n    tags:\n      team: {required: true}\n"
        "      cost-center: {required: true, pattern: \"^cc-[0-9]{4}$\"}\n"
        "      env: {values: [dev, staging, prod]}\n";

static void test_kind_required_tags(void **state)
{
    check_one(TAGS, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tags\":{\"team\":\"a\",\"cost-center\":\"cc-1234\",\"env\":\"dev\"}}}",
              "tags", POLICY_PASS, NULL);
    check_one(TAGS, POLICY_SUBJECT_SERVICE, "{\"metadata\":{\"tags\":{\"team\":\"a\"}}}", "tags",
              POLICY_FAIL, "tag 'cost-center' is missing");
    check_one(TAGS, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tags\":{\"team\":\"a\",\"cost-center\":\"42\"}}}", "tags",
              POLICY_FAIL, "tag 'cost-center' is '42', which does not match ^cc-[0-9]{4}$");
    check_one(TAGS, POLICY_SUBJECT_RESOURCE,
              "{\"tags\":{\"team\":\"a\",\"cost-center\":\"cc-0001\",\"env\":\"qa\"}}", "tags",
              POLICY_FAIL, "tag 'env' is 'qa', allowed: dev, staging, prod");
}

static void test_kind_approved_technologies(void **state)
{
    const char *rules = HDR "  - {id: tech, kind: approved-technologies, technologies: "
                            "{postgres: [\"15\", \"16\"], redis: [\"7\"], nats: }}\n";
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"spec\":{\"dependencies\":[{\"resource\":\"postgres\",\"name\":\"db\","
              "\"version\":\"16.2\"},{\"service\":\"x\"},{\"resource\":\"nats\",\"name\":\"n\","
              "\"version\":\"2.9\"}]}}",
              "tech", POLICY_PASS, NULL);
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"spec\":{\"dependencies\":[{\"resource\":\"postgres\",\"name\":\"db\","
              "\"version\":\"14\"}]}}",
              "tech", POLICY_FAIL,
              "dependency 'db' uses postgres 14, which is not an approved version (approved: "
              "15, 16)");
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"spec\":{\"dependencies\":[{\"resource\":\"mongodb\",\"name\":\"m\"}]}}", "tech",
              POLICY_FAIL, "uses mongodb, which is not an approved technology");
    check_one(rules, POLICY_SUBJECT_RESOURCE,
              "{\"type\":\"aws_db_instance\",\"engine\":\"postgres\",\"engine_version\":\"14.11\"}",
              "tech", POLICY_FAIL, "postgres 14.11");
    check_one(rules, POLICY_SUBJECT_RESOURCE,
              "{\"type\":\"aws_elasticache_cluster\",\"engine\":\"redis\","
              "\"engine_version\":\"7.1\"}",
              "tech", POLICY_PASS, NULL);
    /* "1" does not approve "16" */
    check_one(HDR "  - {id: tech, kind: approved-technologies, technologies: {postgres: [\"1\"]}}\n",
              POLICY_SUBJECT_RESOURCE,
              "{\"type\":\"google_sql_database_instance\",\"database_version\":\"POSTGRES_16\"}",
              "tech", POLICY_FAIL, "postgres 16,");
    /* a resource that is no technology passes */
    check_one(rules, POLICY_SUBJECT_RESOURCE, "{\"type\":\"aws_s3_bucket\"}", "tech", POLICY_PASS,
              NULL);
}

static void test_kind_resource_bounds(void **state)
{
    const char *rules = HDR "  - id: b\n    kind: resource-bounds\n    tiers:\n"
                            "      \"1\": {replicas: {min: 2}, cpu: {min: 250m, max: \"4\"}, "
                            "memory: {max: 8Gi}}\n";
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tier\":1},\"spec\":{\"replicas\":3,\"run\":{\"resources\":"
              "{\"cpu\":\"500m\",\"memory\":\"1Gi\"}}}}",
              "b", POLICY_PASS, NULL);
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tier\":1},\"spec\":{\"run\":{\"resources\":{\"cpu\":8,"
              "\"memory\":\"16Gi\"}}}}",
              "b", POLICY_FAIL,
              "spec.replicas is 1; tier 1 requires at least 2; spec.run.resources.cpu is 8; "
              "tier 1 allows at most 4; spec.run.resources.memory is 16Gi; tier 1 allows at "
              "most 8Gi");
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tier\":1},\"spec\":{\"autoscale\":{\"min\":1,\"max\":5},"
              "\"run\":{\"resources\":{\"memory\":\"1Gi\"}}}}",
              "b", POLICY_FAIL,
              "spec.autoscale.min is 1; tier 1 requires at least 2; spec.run.resources.cpu is "
              "not set; tier 1 requires at least 250m");
    /* other tiers are not bounded by this rule */
    check_one(rules, POLICY_SUBJECT_SERVICE, "{\"metadata\":{\"tier\":3}}", "b", POLICY_PASS,
              NULL);
}

static void test_kind_exposure(void **state)
{
    const char *rules = HDR "  - {id: x, kind: exposure, internal_domains: [internal, localhost], "
                            "require_tls: true, max_tier: 2}\n";
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tier\":3},\"spec\":{\"expose\":{\"host\":\"a.internal\"}}}", "x",
              POLICY_PASS, NULL);
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tier\":1},\"spec\":{\"expose\":{\"host\":\"pay.example.com\","
              "\"tls\":true}}}",
              "x", POLICY_PASS, NULL);
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tier\":3},\"spec\":{\"expose\":{\"host\":\"pay.example.com\"}}}",
              "x", POLICY_FAIL,
              "public host 'pay.example.com' is served without TLS; public host "
              "'pay.example.com' belongs to a tier 3 service");
    /* "notinternal" is not under "internal" */
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tier\":1},\"spec\":{\"expose\":{\"host\":\"notinternal\"}}}", "x",
              POLICY_FAIL, "without TLS");
}

static void test_kind_data_classification(void **state)
{
    const char *rules = HDR "  - {id: c, kind: data-classification, tag: data-classification, "
                            "confidential_values: [confidential, restricted]}\n";
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tags\":{\"data-classification\":\"confidential\"}},\"spec\":"
              "{\"expose\":{\"host\":\"a.internal\"}}}",
              "c", POLICY_PASS, NULL);
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tags\":{\"data-classification\":\"restricted\"}},\"spec\":"
              "{\"expose\":{\"host\":\"a.example.com\"},\"logs\":{\"redact\":false}}}",
              "c", POLICY_FAIL,
              "data classified 'restricted' is exposed on public host 'a.example.com'; data "
              "classified 'restricted' but log redaction is turned off");
    check_one(rules, POLICY_SUBJECT_SERVICE,
              "{\"metadata\":{\"tags\":{\"data-classification\":\"public\"}},\"spec\":"
              "{\"expose\":{\"host\":\"a.example.com\"}}}",
              "c", POLICY_PASS, NULL);
    check_one(rules, POLICY_SUBJECT_RESOURCE,
              "{\"acl\":\"public-read\",\"tags\":{\"data-classification\":\"confidential\"}}", "c",
              POLICY_FAIL, "with acl 'public-read'");
}

static void test_kind_provenance(void **state)
{
    const char *rules = HDR "  - {id: p, kind: provenance, builders: [pave-pipeline]}\n";
    check_one(rules, POLICY_SUBJECT_IMAGE,
              "{\"signature\":\"verified\",\"provenance\":true,\"builder\":\"pave-pipeline\"}", "p",
              POLICY_PASS, NULL);
    check_one(rules, POLICY_SUBJECT_IMAGE,
              "{\"signature\":\"invalid\",\"provenance\":false,\"builder\":\"laptop\"}", "p",
              POLICY_FAIL,
              "image signature is 'invalid', expected verified; image has no provenance "
              "attestation; image was built by 'laptop', not by an approved builder "
              "(pave-pipeline)");
    check_one(rules, POLICY_SUBJECT_IMAGE, "{}", "p", POLICY_FAIL,
              "image signature is missing");
}

static void test_kind_field_operators(void **state)
{
    const char *doc =
        "{\"spec\":{\"replicas\":2,\"run\":{\"resources\":{\"memory\":\"512Mi\",\"cpu\":\"500m\"}},"
        "\"expose\":{\"host\":\"a.internal\",\"paths\":[\"/api\",\"/\"]},"
        "\"dependencies\":[{\"service\":\"ledger\"},{\"resource\":\"postgres\",\"version\":\"16\"}]},"
        "\"metadata\":{\"name\":\"pay\",\"tags\":{\"cost.center\":\"cc-1\"}}}";
    struct {
        const char *cond;
        bool holds;
    } cases[] = {
        {"{path: spec.replicas, op: '>=', value: 2}", true},
        {"{path: spec.replicas, op: '>', value: 2}", false},
        {"{path: spec.replicas, op: ==, value: 2}", true},
        {"{path: spec.replicas, op: ==, value: \"2\"}", true},
        {"{path: spec.replicas, op: ne, value: 3}", true},
        {"{path: spec.run.resources.memory, op: '<', value: 1Gi}", true},
        {"{path: spec.run.resources.memory, op: '<=', value: 256Mi}", false},
        {"{path: spec.run.resources.cpu, op: '<', value: 1}", true},
        {"{path: spec.run.resources.cpu, op: '>=', value: 500m}", true},
        {"{path: metadata.name, op: in, value: [pay, bill]}", true},
        {"{path: metadata.name, op: not_in, value: [pay, bill]}", false},
        {"{path: metadata.name, op: matches, value: '^p[a-z]+$'}", true},
        {"{path: metadata.name, op: matches, value: '^q'}", false},
        {"{path: metadata.owner, op: exists}", false},
        {"{path: metadata.owner, op: absent}", true},
        {"{path: metadata.name, op: contains, value: ay}", true},
        {"{path: spec.expose.paths, op: contains, value: /api}", true},
        {"{path: spec.expose.paths, op: contains, value: /x}", false},
        {"{path: 'spec.expose.paths[1]', op: ==, value: /}", true},
        {"{path: 'spec.expose.paths[5]', op: exists}", false},
        {"{path: 'spec.dependencies[*].resource', op: ==, value: postgres}", true},
        {"{path: 'spec.dependencies[*].version', op: ==, value: \"15\"}", false},
        {"{path: 'metadata.tags[\"cost.center\"]', op: ==, value: cc-1}", true},
        {"{path: spec.replicas, op: matches, value: '^2$'}", true},
        {"{path: spec.expose, op: '>', value: 1}", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char rules[1024];
        snprintf(rules, sizeof(rules), HDR "  - {id: f, kind: field, all: [%s]}\n", cases[i].cond);
        struct policy_set *set = must_parse(rules);
        struct run run;
        eval_json(set, POLICY_SUBJECT_SERVICE, doc, NULL, &run);
        const struct policy_result *r = result(&run, "f");
        assert_non_null(r);
        if ((r->outcome == POLICY_PASS) != cases[i].holds)
            fail_msg("case %zu (%s): got %s (%s)", i, cases[i].cond,
                     policy_outcome_name(r->outcome), r->message ? r->message : "");
        run_free(&run);
        policy_set_free(set);
    }
}

static void test_kind_field_combinators_and_messages(void **state)
{
    const char *doc = "{\"spec\":{\"replicas\":1}}";
    check_one(HDR "  - {id: f, kind: field, all: [{path: spec.replicas, op: '>=', value: 2}]}\n",
              POLICY_SUBJECT_SERVICE, doc, "f", POLICY_FAIL, "spec.replicas is 1, expected >= 2");
    check_one(HDR "  - {id: f, kind: field, all: [{path: spec.autoscale.min, op: '>=', value: 2}]}\n",
              POLICY_SUBJECT_SERVICE, doc, "f", POLICY_FAIL,
              "spec.autoscale.min is absent, expected >= 2");
    check_one(HDR "  - {id: f, kind: field, any: [{path: spec.replicas, op: '>=', value: 2}, "
                  "{path: spec.autoscale.min, op: '>=', value: 2}]}\n",
              POLICY_SUBJECT_SERVICE, doc, "f", POLICY_FAIL, "none of the alternatives holds");
    check_one(HDR "  - {id: f, kind: field, any: [{path: spec.replicas, op: '>=', value: 2}, "
                  "{path: spec.replicas, op: ==, value: 1}]}\n",
              POLICY_SUBJECT_SERVICE, doc, "f", POLICY_PASS, NULL);
    check_one(HDR "  - {id: f, kind: field, none: [{path: spec.replicas, op: ==, value: 1}]}\n",
              POLICY_SUBJECT_SERVICE, doc, "f", POLICY_FAIL,
              "spec.replicas == 1 must not hold (found 1)");
    /* a rule on resources reads any attribute */
    check_one(HDR "  - {id: f, kind: field, all: [{path: storage_encrypted, op: ==, value: true}]}\n",
              POLICY_SUBJECT_RESOURCE, "{\"storage_encrypted\":false}", "f", POLICY_FAIL,
              "storage_encrypted is false, expected == true");
}

/* ---- scopes and exceptions --------------------------------------------------------------- */

static const char *const SCOPED =
    HDR "  - {id: prod-only, kind: field, scope: {envs: [prod]}, all: [{path: x, op: exists}]}\n"
        "  - {id: team-a, kind: field, scope: {teams: [a]}, all: [{path: x, op: exists}]}\n"
        "  - {id: tier1, kind: field, scope: {tiers: [1]}, all: [{path: x, op: exists}]}\n"
        "  - {id: deploy, kind: field, scope: {gates: [deploy]}, all: [{path: x, op: exists}]}\n"
        "  - {id: images, kind: field, scope: {subjects: [image]}, all: [{path: x, op: exists}]}\n"
        "  - {id: prov, kind: provenance, builders: [b]}\n"
        "  - {id: enforce, kind: field, mode: enforce, all: [{path: x, op: exists}]}\n";

static bool in_results(const struct policy_results *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].rule, id))
            return true;
    return false;
}

static void test_scope_matching(void **state)
{
    struct policy_set *set = must_parse(SCOPED);
    json_t *doc = json_pack("{s:{s:i}}", "metadata", "tier", 2);
    struct policy_input in = {.subject = POLICY_SUBJECT_SERVICE, .gate = POLICY_GATE_CATALOG,
                              .name = "svc", .team = "b", .env = "dev", .doc = doc};
    struct policy_results r;
    assert_int_equal(policy_evaluate(set, &in, &r, NULL), 0);
    assert_false(in_results(&r, "prod-only"));
    assert_false(in_results(&r, "team-a"));
    assert_false(in_results(&r, "tier1"));
    assert_false(in_results(&r, "deploy"));
    assert_false(in_results(&r, "images"));
    assert_false(in_results(&r, "prov"));
    assert_true(in_results(&r, "enforce"));
    assert_true(r.blocked);
    assert_int_equal(r.failed, 1);
    policy_results_free(&r);

    /* unknown env and team: scoped rules apply (checks report the strictest) */
    in.env = NULL;
    in.team = NULL;
    in.tier = 1;
    in.gate = POLICY_GATE_DEPLOY;
    assert_int_equal(policy_evaluate(set, &in, &r, NULL), 0);
    assert_true(in_results(&r, "prod-only"));
    assert_true(in_results(&r, "team-a"));
    assert_true(in_results(&r, "tier1"));
    assert_true(in_results(&r, "deploy"));
    assert_int_equal(r.failed, 5);
    assert_int_equal(r.warned, 4);
    policy_results_free(&r);

    in.subject = POLICY_SUBJECT_IMAGE;
    assert_int_equal(policy_evaluate(set, &in, &r, NULL), 0);
    assert_true(in_results(&r, "images"));
    assert_true(in_results(&r, "prov"));
    policy_results_free(&r);
    json_decref(doc);
    policy_set_free(set);
}

static void test_exceptions(void **state)
{
    struct policy_set *set = must_parse(SCOPED);
    json_t *doc = json_object();
    struct policy_exception ex[] = {
        {.id = 7, .subject = "svc", .rule = "enforce", .expires_ms = 5000},
        {.id = 8, .subject = "*", .rule = "team-a", .expires_ms = 500}, /* expired */
        {.id = 9, .subject = "other", .rule = "tier1", .expires_ms = 5000},
        {.id = 10, .subject = "*", .rule = "deploy", .expires_ms = 5000},
    };
    struct policy_input in = {.subject = POLICY_SUBJECT_SERVICE, .gate = POLICY_GATE_DEPLOY,
                              .name = "svc", .tier = 1, .doc = doc, .exceptions = ex,
                              .nexceptions = 4, .now_ms = 1000};
    struct run run = {.doc = NULL};
    assert_int_equal(policy_evaluate(set, &in, &run.r, NULL), 0);
    expect_outcome(&run, "enforce", POLICY_EXCEPTED, "x is absent");
    assert_int_equal(result(&run, "enforce")->exception_id, 7);
    expect_outcome(&run, "team-a", POLICY_FAIL, NULL);
    expect_outcome(&run, "tier1", POLICY_FAIL, NULL);
    expect_outcome(&run, "deploy", POLICY_EXCEPTED, NULL);
    assert_false(run.r.blocked);
    assert_int_equal(run.r.failed, 3);
    json_t *j = policy_results_json(&run.r);
    assert_false(json_is_true(json_object_get(j, "blocked")));
    json_t *first = json_array_get(json_object_get(j, "results"), 0);
    assert_non_null(json_object_get(first, "exception"));
    json_decref(j);
    policy_results_free(&run.r);

    /* the exception expires at its instant */
    in.now_ms = 5000;
    assert_int_equal(policy_evaluate(set, &in, &run.r, NULL), 0);
    expect_outcome(&run, "enforce", POLICY_FAIL, NULL);
    assert_true(run.r.blocked);
    policy_results_free(&run.r);
    json_decref(doc);
    policy_set_free(set);
}

static void test_explain(void **state)
{
    const char *rules =
        HDR "  - {id: replicas, kind: field, mode: enforce, severity: high, remediation: 'Set "
            "spec.replicas to 2.', all: [{path: spec.replicas, op: '>=', value: 2}]}\n"
            "  - {id: fine, kind: field, all: [{path: spec.replicas, op: exists}]}\n";
    struct policy_set *set = must_parse(rules);
    struct run run;
    eval_json(set, POLICY_SUBJECT_SERVICE, "{\"spec\":{\"replicas\":1}}", NULL, &run);
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(policy_results_explain(&run.r, "payments-api", &b), 0);
    assert_string_equal(b.data,
                        "payments-api: 1 rule failed (blocked)\n"
                        "\nreplicas (enforce, high): spec.replicas is 1, expected >= 2. Fix: Set "
                        "spec.replicas to 2.\n"
                        "  To ask for an exception: pave policy exceptions request --subject "
                        "payments-api --rule replicas --expires 30d --justification '...'\n");
    core_buf_release(&b);
    run_free(&run);
    eval_json(set, POLICY_SUBJECT_SERVICE, "{\"spec\":{\"replicas\":3}}", NULL, &run);
    core_buf_init(&b, 0);
    assert_int_equal(policy_results_explain(&run.r, "payments-api", &b), 0);
    assert_string_equal(b.data, "payments-api: all 2 rules in scope pass\n");
    core_buf_release(&b);
    run_free(&run);
    policy_set_free(set);
}

/* ---- inventories ------------------------------------------------------------------------ */

struct collected {
    char names[16][128];
    char teams[16][32];
    char envs[16][32];
    json_t *docs[16];
    enum policy_subject subj[16];
    int tier[16];
    size_t n;
    struct policy_set *set;
    int failed[16];
};

static int collect(void *arg, struct policy_input *in)
{
    struct collected *c = arg;
    if (c->n == 16)
        return -1;
    snprintf(c->names[c->n], sizeof(c->names[0]), "%s", in->name ? in->name : "");
    snprintf(c->teams[c->n], sizeof(c->teams[0]), "%s", in->team ? in->team : "");
    snprintf(c->envs[c->n], sizeof(c->envs[0]), "%s", in->env ? in->env : "");
    c->docs[c->n] = json_incref(in->doc);
    c->subj[c->n] = in->subject;
    c->tier[c->n] = in->tier;
    if (c->set) {
        struct policy_results r;
        if (policy_evaluate(c->set, in, &r, NULL))
            return -1;
        c->failed[c->n] = r.failed;
        policy_results_free(&r);
    }
    c->n++;
    return 0;
}

static void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        json_decref(c->docs[i]);
}

static void test_inventory_terraform(void **state)
{
    char *text = fixture("fixtures/plan.json");
    struct collected c = {0};
    struct core_err err = {0};
    c.set = must_parse(HDR "  - {id: tech, kind: approved-technologies, technologies: "
                           "{postgres: [\"15\", \"16\"], redis: [\"7\"]}}\n");
    assert_int_equal(policy_inventory_each("plan.json", text, strlen(text), POLICY_INV_AUTO,
                                           collect, &c, &err),
                     0);
    assert_int_equal(c.n, 4); /* the data source is not a resource */
    assert_string_equal(c.names[0], "aws_s3_bucket.invoices");
    assert_string_equal(c.names[1], "aws_db_instance.ledger");
    assert_string_equal(c.names[2], "module.cache.aws_elasticache_cluster.this");
    assert_string_equal(c.names[3], "module.cache.module.alarms.aws_cloudwatch_metric_alarm.cpu");
    assert_int_equal(c.subj[0], POLICY_SUBJECT_RESOURCE);
    /* tags_all (provider defaults) merged with tags */
    json_t *tags = json_object_get(c.docs[0], "tags");
    assert_string_equal(json_string_value(json_object_get(tags, "cost-center")), "cc-1234");
    assert_string_equal(c.teams[0], "payments");
    assert_string_equal(c.envs[0], "prod");
    assert_string_equal(c.teams[2], "identity");
    assert_string_equal(c.envs[2], "staging");
    assert_string_equal(json_string_value(json_object_get(c.docs[1], "type")), "aws_db_instance");
    assert_string_equal(json_string_value(json_object_get(c.docs[1], "engine_version")), "14.11");
    assert_string_equal(json_string_value(json_object_get(c.docs[2], "module")), "module.cache");
    /* postgres 14 fails, redis 7.1 passes */
    assert_int_equal(c.failed[0], 0);
    assert_int_equal(c.failed[1], 1);
    assert_int_equal(c.failed[2], 0);
    collected_free(&c);
    policy_set_free(c.set);
    core_free(text);
}

static void test_inventory_export_and_manifest(void **state)
{
    char *text = fixture("fixtures/export.json");
    struct collected c = {0};
    struct core_err err = {0};
    assert_int_equal(policy_inventory_each("export.json", text, strlen(text), POLICY_INV_AUTO,
                                           collect, &c, &err),
                     0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.names[0], "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc123");
    assert_string_equal(c.names[2], "legacy-queue");
    assert_string_equal(c.teams[1], "orders");
    /* RabbitMQ brokers map to the technology rabbitmq */
    struct policy_set *set = must_parse(
        HDR "  - {id: tech, kind: approved-technologies, technologies: {rabbitmq: [\"3.12\"]}}\n");
    struct policy_input in = {.subject = POLICY_SUBJECT_RESOURCE, .name = c.names[2],
                              .gate = POLICY_GATE_CHECK, .doc = c.docs[2]};
    struct run run = {.doc = NULL};
    assert_int_equal(policy_evaluate(set, &in, &run.r, NULL), 0);
    expect_outcome(&run, "tech", POLICY_FAIL, "legacy-queue uses rabbitmq 3.11.28");
    policy_results_free(&run.r);
    policy_set_free(set);
    collected_free(&c);
    core_free(text);

    /* a bare array works too */
    const char *arr = "[{\"id\": \"x\", \"type\": \"t\", \"tags\": {\"tier\": \"1\"}}]";
    memset(&c, 0, sizeof(c));
    assert_int_equal(policy_inventory_each("a.json", arr, strlen(arr), POLICY_INV_AUTO, collect,
                                           &c, &err),
                     0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.tier[0], 1);
    collected_free(&c);

    text = fixture("fixtures/pave.yaml");
    memset(&c, 0, sizeof(c));
    c.set = must_parse(TAGS);
    assert_int_equal(policy_inventory_each("pave.yaml", text, strlen(text), POLICY_INV_AUTO,
                                           collect, &c, &err),
                     0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.subj[0], POLICY_SUBJECT_SERVICE);
    assert_string_equal(c.names[0], "payments-api");
    assert_string_equal(c.teams[0], "payments");
    assert_string_equal(c.envs[0], "prod");
    assert_int_equal(c.tier[0], 1);
    assert_int_equal(c.failed[0], 1); /* no team tag */
    collected_free(&c);
    policy_set_free(c.set);
    core_free(text);

    /* errors name the file */
    assert_int_equal(policy_inventory_each("bad.json", "{\"x\": 1}", 8, POLICY_INV_AUTO, collect,
                                           &c, &err),
                     CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "bad.json: not a manifest"));
    assert_int_equal(policy_inventory_each("bad.json", "[{\"a\":", 6, POLICY_INV_AUTO, collect,
                                           &c, &err),
                     CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "bad.json: byte"));
    assert_int_equal(policy_inventory_each("bad.json", "[1]", 3, POLICY_INV_AUTO, collect, &c,
                                           &err),
                     CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "resources[0]: expected an object"));
    assert_int_equal(policy_inventory_each("bad.json", "{\"x\": [1", 8, POLICY_INV_TERRAFORM,
                                           collect, &c, &err),
                     CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "bad.json:1:"));
}

struct counter {
    size_t n, stop_at;
    bool ordered;
};

static int count_rows(void *arg, struct policy_input *in)
{
    struct counter *c = arg;
    char want[32];
    snprintf(want, sizeof(want), "r-%zu", c->n);
    c->ordered &= in->name && strcmp(in->name, want) == 0;
    if (++c->n == c->stop_at)
        return 42;
    return 0;
}

/* A big export is streamed row by row: every row, in order; fn can stop it; errors after the
 * last good row come after that row was checked. */
static void test_inventory_big_export(void **state)
{
    struct core_buf b;
    struct core_err err = {0};
    core_buf_init(&b, 0);
    core_buf_adds(&b, "{\"generated\": {\"by\": \"test\"}, \"resources\": [");
    for (int i = 0; i < 5000; i++)
        core_buf_addf(&b, "%s{\"id\": \"r-%d\", \"type\": \"aws_s3_bucket\", \"acl\": "
                          "\"private\", \"tags\": {\"team\": \"t%d\", \"env\": \"prod\"}}",
                      i ? ",\n" : "", i, i % 7);
    size_t good = b.len;
    core_buf_adds(&b, "], \"count\": 5000}");
    assert_true(b.len > 256 * 1024);
    struct counter c = {.ordered = true};
    assert_int_equal(policy_inventory_each("big.json", b.data, b.len, POLICY_INV_AUTO, count_rows,
                                           &c, &err),
                     0);
    assert_int_equal(c.n, 5000);
    assert_true(c.ordered);
    /* fn stops the walk: its code comes back, the rest is freed */
    c = (struct counter){.ordered = true, .stop_at = 100};
    assert_int_equal(policy_inventory_each("big.json", b.data, b.len, POLICY_INV_AUTO, count_rows,
                                           &c, &err),
                     42);
    assert_int_equal(c.n, 100);
    /* a broken separator after row 4999: every row before it was checked, then the error */
    b.data[good] = ';';
    c = (struct counter){.ordered = true};
    assert_int_equal(policy_inventory_each("big.json", b.data, b.len, POLICY_INV_AUTO, count_rows,
                                           &c, &err),
                     CORE_E_INVAL);
    assert_int_equal(c.n, 5000);
    assert_non_null(strstr(err.msg, "expected ',' or ']' after a resource"));
    core_buf_release(&b);
}

static void test_default_policy_on_fixture_manifest(void **state)
{
    char *pol = fixture("../../../policies/default.yaml");
    char *text = fixture("fixtures/pave.yaml");
    struct policy_doc d = {"default.yaml", pol, strlen(pol)};
    struct policy_set *set = policy_set_parse(&d, 1, NULL, NULL);
    assert_non_null(set);
    struct collected c = {.set = set};
    assert_int_equal(policy_inventory_each("pave.yaml", text, strlen(text), POLICY_INV_AUTO,
                                           collect, &c, NULL),
                     0);
    /* approved-tech (postgres 14), tier-resources (1 replica), public-tls, confidential-data,
     * min-replicas-prod */
    assert_int_equal(c.failed[0], 5);
    collected_free(&c);
    policy_set_free(set);
    core_free(text);
    core_free(pol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_policy_parses),
        cmocka_unit_test(test_parse_unknown_key),
        cmocka_unit_test(test_parse_unknown_kind),
        cmocka_unit_test(test_parse_unknown_operator),
        cmocka_unit_test(test_parse_bad_enums),
        cmocka_unit_test(test_parse_bad_regex),
        cmocka_unit_test(test_parse_duplicate_ids),
        cmocka_unit_test(test_parse_structure_errors),
        cmocka_unit_test(test_parse_every_problem_at_once),
        cmocka_unit_test(test_contradiction_tags),
        cmocka_unit_test(test_contradiction_bounds),
        cmocka_unit_test(test_contradiction_fields),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_kind_required_tags),
        cmocka_unit_test(test_kind_approved_technologies),
        cmocka_unit_test(test_kind_resource_bounds),
        cmocka_unit_test(test_kind_exposure),
        cmocka_unit_test(test_kind_data_classification),
        cmocka_unit_test(test_kind_provenance),
        cmocka_unit_test(test_kind_field_operators),
        cmocka_unit_test(test_kind_field_combinators_and_messages),
        cmocka_unit_test(test_scope_matching),
        cmocka_unit_test(test_exceptions),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_inventory_terraform),
        cmocka_unit_test(test_inventory_export_and_manifest),
        cmocka_unit_test(test_inventory_big_export),
        cmocka_unit_test(test_default_policy_on_fixture_manifest),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
