/* Unit tests for the organization (src/cloud/org*.c): the IAM/SCP grammar and
 * its refusals (with the path in the document), wildcards, every condition
 * operator family with IfExists and the set prefixes, the SCP decision from
 * the root down (allow at every level, implicit deny naming the level, explicit
 * deny wins), import of both shapes into the store, and tag policies
 * translated into guard-rails rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>

#include "../testutil.h"
#include "cloud/cloud.h"

/* Compiled policies still alive, freed by free_live() when a failed assertion
 * (or an injected allocation failure, CORE_FAILMALLOC) ends a test early. */
static struct org_policy *live[16];

static struct org_policy *compile(const char *json)
{
    struct core_err err = {0};
    struct org_policy *p = org_policy_parse(json, strlen(json), &err);
    if (!p)
        fprintf(stderr, "compile: %s\n", err.msg);
    assert_non_null(p);
    for (size_t i = 0; i < 16; i++)
        if (!live[i]) {
            live[i] = p;
            break;
        }
    return p;
}

static void release(struct org_policy *p)
{
    for (size_t i = 0; i < 16; i++)
        if (live[i] == p)
            live[i] = NULL;
    org_policy_free(p);
}

static int free_live(void **state)
{
    (void)state;
    for (size_t i = 0; i < 16; i++) {
        org_policy_free(live[i]);
        live[i] = NULL;
    }
    return 0;
}

/* The message of a refused document. */
static const char *refuse(const char *json)
{
    static struct core_err err;
    memset(&err, 0, sizeof(err));
    struct org_policy *p = org_policy_parse(json, strlen(json), &err);
    assert_null(p);
    assert_int_not_equal(err.code, 0);
    return err.msg;
}

static bool matches(const struct org_policy *p, const char *action, const char *resource,
                    const struct org_kv *kv, size_t n)
{
    struct org_request req = {action, resource, kv, n};
    return org_statement_matches(p, 0, &req);
}

static void test_grammar_and_refusals(void **state)
{
    (void)state;
    struct org_policy *p = compile("{\"Version\":\"2012-10-17\",\"Statement\":{\"Sid\":\"One\","
                                   "\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\"}}");
    assert_int_equal(org_policy_nstatements(p), 1);
    assert_string_equal(org_policy_sid(p, 0), "One");
    assert_int_equal(org_policy_effect(p, 0), ORG_ALLOW);
    release(p);
    p = compile("{\"Statement\":[{\"Effect\":\"Deny\",\"Action\":[\"ec2:*\",\"s3:Put*\"],"
                "\"Resource\":[\"*\"]},{\"Effect\":\"Allow\",\"NotAction\":\"iam:*\"}]}");
    assert_int_equal(org_policy_nstatements(p), 2);
    assert_null(org_policy_sid(p, 1));
    release(p);

    assert_non_null(strstr(refuse("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
                                  "\"Condition\":{\"StringEqualz\":{\"k\":\"v\"}}}]}"),
                           "Statement[0].Condition.StringEqualz: unknown condition operator "
                           "'StringEqualz' (did you mean 'StringEquals'?)"));
    assert_non_null(strstr(refuse("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\"},"
                                  "{\"Effect\":\"Allow\",\"Action\":[\"s3:*\",7]}]}"),
                           "Statement[1].Action[1]: expected a string"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"allow\",\"Action\":\"s3:*\"}}"),
                           "Statement.Effect"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
                                  "\"NotAction\":\"ec2:*\"}}"),
                           "exactly one of 'Action' and 'NotAction'"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3\"}}"),
                           "Statement.Action: action 's3' is not 'service:action'"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
                                  "\"Principal\":\"*\"}}"),
                           "Statement.Principal"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
                                  "\"Resorce\":\"*\"}}"),
                           "did you mean 'Resource'"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
                                  "\"Condition\":{\"NumericLessThan\":{\"n\":\"ten\"}}}}"),
                           "Statement.Condition.NumericLessThan.n: 'ten' is not a number"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
                                  "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"yes\"}}}}"),
                           "is not true or false"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
                                  "\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}}}"),
                           "'IpAddress' is not supported"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
                                  "\"Condition\":{\"NullIfExists\":{\"k\":\"true\"}}}}"),
                           "'Null' takes neither"));
    assert_non_null(strstr(refuse("{\"Version\":\"2020-01-01\",\"Statement\":[]}"), "Version"));
    assert_non_null(strstr(refuse("{\"Statement\":[]}"), "Statement: empty list"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\"}"),
                           "not valid JSON"));
    assert_non_null(strstr(refuse("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:*\","
                                  "\"Action\":\"ec2:*\"}}"),
                           "not valid JSON"));
    assert_non_null(strstr(refuse("[1]"), "must be a JSON object"));
}

static void test_wildcards(void **state)
{
    (void)state;
    assert_true(org_glob_match("s3:Get*", "s3:GetObject", false));
    assert_true(org_glob_match("S3:get*", "s3:GetObject", true));
    assert_false(org_glob_match("S3:get*", "s3:GetObject", false));
    assert_true(org_glob_match("ec2:?escribe*", "ec2:DescribeInstances", true));
    assert_false(org_glob_match("ec2:?escribe", "ec2:DescribeInstances", true));
    assert_true(org_glob_match("*", "", false));
    assert_true(org_glob_match("a*b*c", "aXXbYYc", false));
    assert_false(org_glob_match("a*b*c", "aXXbYY", false));
    /* pathological pattern stays linear-ish (no exponential backtracking) */
    assert_false(org_glob_match("*a*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                false));
    assert_true(org_arn_match("arn:aws:iam::*:role/Admin*", "arn:aws:iam::123:role/AdminX"));
    assert_false(org_arn_match("arn:aws:iam::*:role/Admin*", "arn:aws:iam::123:user/AdminX"));
    /* '*' in one ARN segment does not run into the next */
    assert_false(org_arn_match("arn:aws:s3*:::b", "arn:aws:s3:x:y:b"));
    assert_true(org_arn_match("arn:aws:s3:::my-bucket/*", "arn:aws:s3:::my-bucket/a:b/c"));

    struct org_policy *p =
        compile("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[\"s3:Get*\",\"EC2:Describe?\"],"
                "\"Resource\":\"arn:aws:s3:::logs-*\"}}");
    assert_true(matches(p, "s3:GetObject", "arn:aws:s3:::logs-2024", NULL, 0));
    assert_true(matches(p, "S3:GETOBJECT", "arn:aws:s3:::logs-2024", NULL, 0));
    assert_false(matches(p, "s3:GetObject", "arn:aws:s3:::LOGS-2024", NULL, 0));
    assert_false(matches(p, "s3:PutObject", "arn:aws:s3:::logs-2024", NULL, 0));
    assert_true(matches(p, "ec2:describex", "arn:aws:s3:::logs-1", NULL, 0));
    /* no resource in the request means "*": only a "*" pattern covers it */
    assert_false(matches(p, "s3:GetObject", NULL, NULL, 0));
    release(p);
}

static void test_not_action_not_resource(void **state)
{
    (void)state;
    struct org_policy *p = compile("{\"Statement\":{\"Effect\":\"Deny\",\"NotAction\":[\"iam:*\","
                                   "\"sts:*\"],\"NotResource\":\"arn:aws:s3:::keep/*\"}}");
    assert_true(matches(p, "ec2:RunInstances", "arn:aws:ec2:::x", NULL, 0));
    assert_false(matches(p, "iam:CreateUser", "arn:aws:ec2:::x", NULL, 0));
    assert_false(matches(p, "ec2:RunInstances", "arn:aws:s3:::keep/a", NULL, 0));
    assert_true(matches(p, "s3:DeleteObject", "arn:aws:s3:::other/a", NULL, 0));
    release(p);
}

/* One statement with one condition; checks it against a context. */
static bool cond(const char *op, const char *vals, const struct org_kv *kv, size_t n)
{
    char doc[600];
    snprintf(doc, sizeof(doc),
             "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Condition\":{\"%s\":{"
             "\"k\":%s}}}}",
             op, vals);
    struct org_policy *p = compile(doc);
    bool r = matches(p, "s3:GetObject", NULL, kv, n);
    release(p);
    return r;
}

static void test_condition_operators(void **state)
{
    (void)state;
    const struct org_kv a[] = {{"k", "Alpha"}};
    const struct org_kv upper_key[] = {{"K", "Alpha"}};
    const struct org_kv num[] = {{"k", "10"}};
    const struct org_kv t[] = {{"k", "true"}};
    const struct org_kv arn[] = {{"k", "arn:aws:iam::123456789012:role/OrgAdmin"}};
    const struct org_kv multi[] = {{"k", "a"}, {"k", "b"}};

    /* strings; several values are ORed; key names are case-insensitive */
    assert_true(cond("StringEquals", "[\"x\",\"Alpha\"]", a, 1));
    assert_true(cond("StringEquals", "\"Alpha\"", upper_key, 1));
    assert_false(cond("StringEquals", "\"alpha\"", a, 1));
    assert_true(cond("StringNotEquals", "[\"x\",\"y\"]", a, 1));
    assert_false(cond("StringNotEquals", "[\"x\",\"Alpha\"]", a, 1));
    assert_true(cond("StringEqualsIgnoreCase", "\"ALPHA\"", a, 1));
    assert_false(cond("StringNotEqualsIgnoreCase", "\"alpha\"", a, 1));
    assert_true(cond("StringLike", "\"Al?h*\"", a, 1));
    assert_false(cond("StringLike", "\"al*\"", a, 1));
    assert_true(cond("StringNotLike", "\"B*\"", a, 1));
    /* numbers */
    assert_true(cond("NumericEquals", "10", num, 1));
    assert_true(cond("NumericEquals", "\"10.0\"", num, 1));
    assert_true(cond("NumericNotEquals", "[1,2]", num, 1));
    assert_true(cond("NumericLessThan", "11", num, 1));
    assert_false(cond("NumericLessThan", "10", num, 1));
    assert_true(cond("NumericLessThanEquals", "10", num, 1));
    assert_true(cond("NumericGreaterThan", "9.5", num, 1));
    assert_false(cond("NumericGreaterThanEquals", "11", num, 1));
    assert_false(cond("NumericEquals", "10", a, 1)); /* not a number: no match */
    /* bool, ARN */
    assert_true(cond("Bool", "true", t, 1));
    assert_true(cond("Bool", "\"TRUE\"", t, 1));
    assert_false(cond("Bool", "false", t, 1));
    assert_true(cond("ArnLike", "\"arn:aws:iam::*:role/Org*\"", arn, 1));
    assert_true(cond("ArnEquals", "\"arn:aws:iam::123456789012:role/OrgAdmin\"", arn, 1));
    assert_false(cond("ArnNotLike", "\"arn:aws:iam::*:role/OrgAdmin\"", arn, 1));
    assert_true(cond("ArnNotEquals", "\"arn:aws:iam::*:role/Other\"", arn, 1));
    /* absent key: positive operators fail, negated ones hold, IfExists holds */
    assert_false(cond("StringEquals", "\"Alpha\"", NULL, 0));
    assert_true(cond("StringNotEquals", "\"Alpha\"", NULL, 0));
    assert_true(cond("StringEqualsIfExists", "\"Alpha\"", NULL, 0));
    assert_false(cond("StringEqualsIfExists", "\"Beta\"", a, 1));
    assert_true(cond("NumericLessThanIfExists", "5", NULL, 0));
    /* Null */
    assert_true(cond("Null", "\"true\"", NULL, 0));
    assert_false(cond("Null", "\"true\"", a, 1));
    assert_true(cond("Null", "\"false\"", a, 1));
    /* set operators over a multi-valued key */
    assert_true(cond("ForAnyValue:StringEquals", "[\"b\",\"z\"]", multi, 2));
    assert_false(cond("ForAnyValue:StringEquals", "[\"z\"]", multi, 2));
    assert_false(cond("ForAnyValue:StringEquals", "[\"a\"]", NULL, 0));
    assert_true(cond("ForAllValues:StringEquals", "[\"a\",\"b\",\"c\"]", multi, 2));
    assert_false(cond("ForAllValues:StringEquals", "[\"a\"]", multi, 2));
    assert_true(cond("ForAllValues:StringEquals", "[\"a\"]", NULL, 0)); /* vacuous */
    assert_true(cond("ForAnyValue:StringNotEquals", "[\"a\"]", multi, 2));
    assert_false(cond("ForAllValues:StringNotEquals", "[\"a\"]", multi, 2));
    assert_true(cond("ForAnyValue:StringLikeIfExists", "[\"q*\"]", NULL, 0));
}

static void test_conditions_anded(void **state)
{
    (void)state;
    struct org_policy *p = compile(
        "{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"*\",\"Condition\":{"
        "\"StringEquals\":{\"aws:RequestedRegion\":\"eu-west-1\",\"team\":\"a\"},"
        "\"Bool\":{\"aws:SecureTransport\":\"false\"}}}}");
    const struct org_kv all[] = {
        {"aws:RequestedRegion", "eu-west-1"}, {"team", "a"}, {"aws:SecureTransport", "false"}};
    const struct org_kv two[] = {{"aws:RequestedRegion", "eu-west-1"}, {"team", "a"}};
    assert_true(matches(p, "x:y", NULL, all, 3));
    assert_false(matches(p, "x:y", NULL, two, 2));
    release(p);
}

/* ---- SCP decision ---- */

static const char full[] = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\","
                           "\"Resource\":\"*\"}}";

static void test_scp_inheritance(void **state)
{
    (void)state;
    struct org_policy *fa = compile(full);
    struct org_policy *s3only = compile("{\"Statement\":{\"Sid\":\"S3\",\"Effect\":\"Allow\","
                                        "\"Action\":\"s3:*\"}}");
    struct org_policy *deny = compile("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\"},"
                                      "{\"Sid\":\"NoLeave\",\"Effect\":\"Deny\",\"Action\":"
                                      "\"organizations:LeaveOrganization\"}]}");
    struct org_attached root_p[] = {{"p-full", "FullAWSAccess", fa}};
    struct org_attached ou_p[] = {{"p-s3", "S3Only", s3only}};
    struct org_attached acct_p[] = {{"p-full", "FullAWSAccess", fa}, {"p-deny", "NoLeave", deny}};
    struct org_level lv[] = {{"root", "r-1", "Root", root_p, 1},
                             {"ou", "ou-1", "Sandbox", ou_p, 1},
                             {"account", "111", "dev", acct_p, 2}};
    struct org_request req = {"s3:GetObject", NULL, NULL, 0};
    struct org_decision d;

    /* allowed at root, OU and account */
    org_scp_decide(lv, 3, &req, &d);
    assert_true(d.allowed);
    assert_int_equal(d.allow[1].level, 1);
    assert_int_equal(d.allow[1].policy, 0);
    assert_int_equal(d.allow[2].policy, 0);

    /* the OU allows only s3: ec2 is implicitly denied there */
    req.action = "ec2:RunInstances";
    org_scp_decide(lv, 3, &req, &d);
    assert_false(d.allowed);
    assert_int_equal(d.deny.level, -1);
    assert_int_equal(d.missing_level, 1);

    /* explicit deny at the account wins over every allow, and is named */
    lv[1].policies = root_p;
    req.action = "organizations:LeaveOrganization";
    org_scp_decide(lv, 3, &req, &d);
    assert_false(d.allowed);
    assert_int_equal(d.deny.level, 2);
    assert_int_equal(d.deny.policy, 1);
    assert_int_equal(d.deny.statement, 1);
    assert_int_equal(d.missing_level, -1);

    /* a level with nothing attached allows nothing */
    lv[0].npolicies = 0;
    req.action = "s3:GetObject";
    org_scp_decide(lv, 3, &req, &d);
    assert_false(d.allowed);
    assert_int_equal(d.missing_level, 0);
    release(fa);
    release(s3only);
    release(deny);
}

/* ---- import, store, can, tags ---- */

static const char org_yaml[] =
    "kind: Organization\n"
    "root: {id: r-t, name: Root}\n"
    "ous:\n"
    "  - name: Workloads\n"
    "    id: ou-work\n"
    "    ous:\n"
    "      - name: Sandbox\n"
    "        accounts: [{id: \"222\", name: sandbox}]\n"
    "    accounts: [{id: \"111\", name: prod, email: p@example.com}]\n"
    "policies:\n"
    "  - name: FullAWSAccess\n"
    "    type: scp\n"
    "    document: {Statement: [{Effect: Allow, Action: \"*\", Resource: \"*\"}]}\n"
    "    targets: [Root, Workloads, prod, sandbox]\n"
    "  - name: DenyLeave\n"
    "    type: scp\n"
    "    document: '{\"Statement\":{\"Sid\":\"NoLeave\",\"Effect\":\"Deny\","
    "\"Action\":\"organizations:Leave*\"}}'\n"
    "    targets: [Root]\n"
    "  - name: Tags\n"
    "    type: tag\n"
    "    document: {tags: {costcenter: {tag_key: {\"@@assign\": CostCenter},"
    " tag_value: {\"@@assign\": [\"100\", \"3*\"]}}}}\n"
    "    targets: [Root]\n"
    "  - name: WorkTags\n"
    "    type: tag\n"
    "    document: {tags: {costcenter: {tag_value: {\"@@assign\": [\"200\"]},"
    " enforced_for: {\"@@assign\": [\"ec2:*\"]}}}}\n"
    "    targets: [Workloads]\n";

struct fx {
    struct test_env env;
    struct org_data d; /* released by teardown, also after a failed assertion */
    json_t *out;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f || test_env_open(&f->env)) {
        if (f)
            test_env_close(&f->env);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    org_data_release(&f->d);
    json_decref(f->out);
    test_env_close(&f->env);
    free(f);
    return 0;
}

static void import_text(struct store *st, const char *name, const char *text,
                        const struct org_import_opts *o)
{
    struct org_data d = {0};
    struct core_err err = {0};
    int rc = org_import_parse(&d, name, text, strlen(text), o, &err);
    if (!rc)
        rc = org_store_save(st, &d, &err);
    org_data_release(&d);
    if (rc)
        fprintf(stderr, "import: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

static void test_import_and_can(void **state)
{
    struct fx *f = *state;
    import_text(f->env.st, "org.yaml", org_yaml, NULL);
    import_text(f->env.st, "org.yaml", org_yaml, NULL); /* idempotent */
    struct org_data *d = &f->d;
    struct core_err err = {0};
    assert_int_equal(org_store_load(f->env.st, d, &err), 0);
    assert_int_equal(d->nnodes, 5);
    assert_int_equal(d->npolicies, 4);
    assert_int_equal(d->natt, 7);
    const struct org_node *sb = org_node_find(d, "sandbox");
    assert_non_null(sb);
    assert_string_equal(sb->parent_id, "ou-Sandbox");

    json_t *out = NULL;
    struct org_request req = {"ec2:RunInstances", NULL, NULL, 0};
    assert_int_equal(org_can(d, "prod", &req, &f->out, &err), 0);
    out = f->out;
    assert_string_equal(json_string_value(json_object_get(out, "decision")), "allow");
    json_decref(out);
    f->out = out = NULL;
    /* Sandbox has no SCP attached: implicit deny names it */
    assert_int_equal(org_can(d, "222", &req, &f->out, &err), 0);
    out = f->out;
    assert_string_equal(json_string_value(json_object_get(out, "decision")), "deny");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(out, "missing_level"), "name")),
        "Sandbox");
    json_decref(out);
    f->out = out = NULL;
    req.action = "organizations:LeaveOrganization";
    assert_int_equal(org_can(d, "prod", &req, &f->out, &err), 0);
    out = f->out;
    json_t *s = json_object_get(out, "statement");
    assert_string_equal(json_string_value(json_object_get(s, "sid")), "NoLeave");
    assert_string_equal(json_string_value(json_object_get(s, "policy")), "DenyLeave");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "level"), "kind")), "root");
    json_decref(out);
    f->out = out = NULL;
    assert_int_equal(org_can(d, "nobody", &req, &f->out, &err), CORE_E_NOTFOUND);
    out = f->out;

    /* effective tag policy: the OU's tag_value replaces the root's, tag_key is
     * inherited */
    json_t *eff = NULL;
    assert_int_equal(org_tags_effective(d, org_node_find(d, "prod"), &f->out, &err), 0);
    eff = f->out;
    json_t *cc = json_object_get(eff, "costcenter");
    assert_string_equal(json_string_value(json_object_get(cc, "tag_key")), "CostCenter");
    assert_int_equal(json_array_size(json_object_get(cc, "tag_value")), 1);
    char *rules = NULL;
    assert_int_equal(org_tags_to_rules(eff, &rules, &err), 0);
    assert_non_null(strstr(rules, "required-tags"));
    assert_non_null(strstr(rules, "org_tags[0].key"));
    core_free(rules);
    json_decref(eff);
    f->out = NULL;

    const char resources[] =
        "[{\"id\":\"arn:aws:ec2:eu-west-1:111:instance/i-1\",\"account\":\"111\","
        "\"tags\":{\"costcenter\":\"200\"}},"
        "{\"id\":\"arn:aws:ec2:eu-west-1:111:instance/i-2\",\"account\":\"111\","
        "\"tags\":{\"CostCenter\":\"300\"}},"
        "{\"id\":\"arn:aws:s3:::ok\",\"account\":\"111\",\"tags\":{\"CostCenter\":\"200\"}},"
        "{\"id\":\"i-9\",\"account\":\"999\",\"tags\":{}}]";
    assert_int_equal(
        org_tags_check(f->env.st, d, NULL, resources, strlen(resources), &f->out, &err), 0);
    out = f->out;
    json_t *sum = json_object_get(out, "summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "resources")), 4);
    assert_int_equal(json_integer_value(json_object_get(sum, "compliant")), 1);
    assert_int_equal(json_integer_value(json_object_get(sum, "non_compliant")), 2);
    assert_int_equal(json_integer_value(json_object_get(sum, "not_enforced")), 1);
    json_t *items = json_object_get(out, "items");
    const char *r0 = json_string_value(json_array_get(
        json_object_get(json_array_get(items, 0), "reasons"), 0));
    assert_string_equal(r0, "tag key 'costcenter' must be spelled 'CostCenter'");
    assert_true(json_is_true(json_object_get(json_array_get(items, 1), "enforced")));
    json_decref(out);
    f->out = out = NULL;
    org_data_release(d);
}

static void test_import_aws_shapes(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    import_text(f->env.st, "roots.json",
                "{\"Roots\":[{\"Id\":\"r-ab12\",\"Arn\":\"arn\",\"Name\":\"Root\","
                "\"PolicyTypes\":[]}]}",
                NULL);
    /* no ParentId: the only root */
    import_text(f->env.st, "ous.json",
                "{\"OrganizationalUnits\":[{\"Id\":\"ou-ab12-11111111\",\"Name\":\"Prod\"}]}",
                NULL);
    struct org_import_opts o = {"ou-ab12-11111111", NULL};
    import_text(f->env.st, "accounts.json",
                "{\"Accounts\":[{\"Id\":\"333\",\"Name\":\"web\",\"Email\":\"w@x\","
                "\"Status\":\"ACTIVE\",\"JoinedMethod\":\"CREATED\"}]}",
                &o);
    import_text(f->env.st, "policy.json",
                "{\"Policy\":{\"PolicySummary\":{\"Id\":\"p-1\",\"Name\":\"All\",\"Type\":"
                "\"SERVICE_CONTROL_POLICY\"},\"Content\":\"{\\\"Statement\\\":{\\\"Effect\\\":"
                "\\\"Allow\\\",\\\"Action\\\":\\\"*\\\"}}\"}}",
                NULL);
    import_text(f->env.st, "targets.json",
                "{\"PolicyId\":\"p-1\",\"Targets\":[{\"TargetId\":\"r-ab12\",\"Type\":\"ROOT\"},"
                "{\"TargetId\":\"ou-ab12-11111111\"},{\"TargetId\":\"333\"}]}",
                NULL);
    /* re-importing the targets replaces them */
    import_text(f->env.st, "targets.json",
                "{\"PolicyId\":\"p-1\",\"Targets\":[{\"TargetId\":\"r-ab12\"},"
                "{\"TargetId\":\"ou-ab12-11111111\"},{\"TargetId\":\"333\"}]}",
                NULL);
    struct org_data *d = &f->d;
    assert_int_equal(org_store_load(f->env.st, d, &err), 0);
    assert_int_equal(d->nnodes, 3);
    assert_int_equal(d->natt, 3);
    assert_string_equal(org_node_find(d, "web")->parent_id, "ou-ab12-11111111");
    assert_string_equal(org_node_find(d, "Prod")->parent_id, "r-ab12");
    json_t *out = NULL;
    struct org_request req = {"ec2:RunInstances", "arn:aws:ec2:::x", NULL, 0};
    assert_int_equal(org_can(d, "333", &req, &f->out, &err), 0);
    out = f->out;
    assert_string_equal(json_string_value(json_object_get(out, "decision")), "allow");
    json_decref(out);
    f->out = out = NULL;
    org_data_release(d);

    /* refusals, with file:line:col and the path in the document */
    struct org_data *bad = &f->d;
    const char *t = "{\"Targets\":[{\"TargetId\":\"r-ab12\"}]}";
    assert_int_equal(org_import_parse(bad, "t.json", t, strlen(t), NULL, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "PolicyId"));
    org_data_release(bad);
    t = "{\"Policy\":{\"PolicySummary\":{\"Id\":\"p-2\",\"Name\":\"Bad\",\"Type\":"
        "\"SERVICE_CONTROL_POLICY\"},\"Content\":\"{\\\"Statement\\\":{\\\"Effect\\\":"
        "\\\"Allow\\\",\\\"Action\\\":\\\"*\\\",\\\"Condition\\\":{\\\"Foo\\\":{}}}}\"}}";
    assert_int_equal(org_import_parse(bad, "p.json", t, strlen(t), NULL, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "p.json:1:"));
    assert_non_null(strstr(err.msg, "Statement.Condition.Foo"));
    org_data_release(bad);
    t = "{\"Policies\":[{\"Id\":\"p-3\",\"Name\":\"X\",\"Type\":\"SERVICE_CONTROL_POLICY\"}]}";
    assert_int_equal(org_import_parse(bad, "l.json", t, strlen(t), NULL, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "describe-policy"));
    org_data_release(bad);
    t = "accounts:\n  - {id: \"1\", name: a, parent: Nowhere}\n";
    assert_int_equal(org_import_parse(bad, "o.yaml", t, strlen(t), NULL, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "o.yaml:2:"));
    assert_non_null(strstr(err.msg, "Nowhere"));
    org_data_release(bad);
    t = "policies:\n  - name: T\n    type: tag\n    document: {tags: {cc: {tag_value: "
        "{\"@@assign\": [\"a*b\"]}}}}\n";
    assert_int_equal(org_import_parse(bad, "o.yaml", t, strlen(t), NULL, &err), CORE_E_INVAL);
    assert_non_null(strstr(err.msg, "tags.cc.tag_value.@@assign"));
    org_data_release(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_grammar_and_refusals, free_live),
        cmocka_unit_test_teardown(test_wildcards, free_live),
        cmocka_unit_test_teardown(test_not_action_not_resource, free_live),
        cmocka_unit_test_teardown(test_condition_operators, free_live),
        cmocka_unit_test_teardown(test_conditions_anded, free_live),
        cmocka_unit_test_teardown(test_scp_inheritance, free_live),
        cmocka_unit_test_setup_teardown(test_import_and_can, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_aws_shapes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
