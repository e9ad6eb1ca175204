/*
 * Fuzz target for organization policy documents (src/cloud/org_policy.c): parses arbitrary
 * bytes as an IAM/SCP JSON document and, when it compiles, evaluates every statement against a
 * few fixed requests (with and without a resource and a context) and runs the SCP decision over
 * a three-level path that uses the document at each level. Contract checks: a refusal returns
 * NULL with a code and a message; a decision is allowed only when nothing denies and every level
 * allows.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct org_kv ctx[] = {
    {"aws:RequestedRegion", "eu-west-1"},
    {"aws:PrincipalArn", "arn:aws:iam::123456789012:role/OrgAdmin"},
    {"aws:SecureTransport", "true"},
    {"aws:MultiFactorAuthAge", "300"},
    {"aws:TagKeys", "team"},
    {"aws:TagKeys", "env"},
};

static const struct org_request reqs[] = {
    {"s3:GetObject", "arn:aws:s3:::logs-2024/a:b", ctx, sizeof(ctx) / sizeof(ctx[0])},
    {"ec2:RunInstances", NULL, NULL, 0},
    {"IAM:CreateUser", "arn:aws:iam::123456789012:user/x", ctx, 2},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct core_err err = {0};
    struct org_policy *p = org_policy_parse((const char *)data, size, &err);
    if (!p) {
        if (err.code == 0 || err.msg[0] == 0)
            abort();
        return 0;
    }
    size_t n = org_policy_nstatements(p);
    if (n == 0)
        abort();
    for (size_t r = 0; r < sizeof(reqs) / sizeof(reqs[0]); r++) {
        for (size_t i = 0; i < n; i++)
            (void)org_statement_matches(p, i, &reqs[r]);
        struct org_attached att[1] = {{"p-fuzz", "fuzz", p}};
        struct org_level lv[3] = {{"root", "r-1", "Root", att, 1},
                                  {"ou", "ou-1", "OU", att, 1},
                                  {"account", "111", "acct", att, 1}};
        struct org_decision d;
        org_scp_decide(lv, 3, &reqs[r], &d);
        if (d.allowed && (d.deny.level >= 0 || d.missing_level >= 0))
            abort();
        if (!d.allowed && d.deny.level < 0 && d.missing_level < 0)
            abort();
    }
    org_policy_free(p);
    return 0;
}
