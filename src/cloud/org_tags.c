/* Tag policies: AWS tag-policy documents validated at import, merged down the
 * tree into an account's effective tag policy, translated into guard-rails
 * rules (field rules for the key's capitalization, required-tags rules for the
 * allowed values) and evaluated with the policy engine against the resources
 * of the billing data or of a resources file (docs/org.md). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloud/cloud.h"
#include "policy/policy.h"
#include "store/store.h"

#define TAG_KEYS_MAX 200 /* keys in one effective tag policy */

/* ---- validation ---- */

static int assign_of(json_t *o, const char *path, json_t **out, struct core_err *err)
{
    const char *k;
    json_t *v;
    *out = NULL;
    if (!json_is_object(o))
        return core_err_set(err, CORE_E_INVAL, "%s: expected an object {\"@@assign\": ...}", path);
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "@@assign") == 0)
            *out = v;
        else if (strcmp(k, "@@append") == 0 || strcmp(k, "@@remove") == 0)
            return core_err_set(err, CORE_E_INVAL,
                                "%s.%s: only @@assign is supported (a lower level replaces the "
                                "inherited value; see docs/org.md)",
                                path, k);
        else if (strcmp(k, "@@operators_allowed_for_child_policies"))
            return core_err_set(err, CORE_E_INVAL, "%s: unknown key '%s' (expected @@assign)",
                                path, k);
    }
    if (!*out)
        return core_err_set(err, CORE_E_INVAL, "%s: missing \"@@assign\"", path);
    return 0;
}

static int string_or_list(json_t *v, const char *path, struct core_err *err)
{
    if (json_is_string(v))
        return 0;
    if (!json_is_array(v))
        return core_err_set(err, CORE_E_INVAL, "%s: expected a string or a list of strings", path);
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i)))
            return core_err_set(err, CORE_E_INVAL, "%s[%zu]: expected a string", path, i);
    return 0;
}

static int check_tags(json_t *tags, struct core_err *err)
{
    const char *key, *k;
    json_t *spec, *v;
    char path[400];
    if (!json_is_object(tags))
        return core_err_set(err, CORE_E_INVAL, "tags: expected an object of tag keys");
    if (json_object_size(tags) > TAG_KEYS_MAX)
        return core_err_set(err, CORE_E_TOO_BIG, "tags: more than %d keys", TAG_KEYS_MAX);
    json_object_foreach(tags, key, spec)
    {
        if (!*key || !json_is_object(spec))
            return core_err_set(err, CORE_E_INVAL,
                                "tags.%s: expected an object {tag_key, tag_value, enforced_for}",
                                key);
        json_object_foreach(spec, k, v)
        {
            json_t *a;
            int rc;
            snprintf(path, sizeof(path), "tags.%s.%s", key, k);
            if (strcmp(k, "@@operators_allowed_for_child_policies") == 0)
                continue;
            if (strcmp(k, "tag_key") && strcmp(k, "tag_value") && strcmp(k, "enforced_for"))
                return core_err_set(err, CORE_E_INVAL,
                                    "%s: unknown key (expected tag_key, tag_value or "
                                    "enforced_for)",
                                    path);
            if ((rc = assign_of(v, path, &a, err)))
                return rc;
            strncat(path, ".@@assign", sizeof(path) - strlen(path) - 1);
            if (strcmp(k, "tag_key") == 0) {
                if (!json_is_string(a))
                    return core_err_set(err, CORE_E_INVAL, "%s: expected a string", path);
                if (strcasecmp(json_string_value(a), key))
                    return core_err_set(err, CORE_E_INVAL,
                                        "%s: '%s' must be the key '%s' with another "
                                        "capitalization",
                                        path, json_string_value(a), key);
                continue;
            }
            if ((rc = string_or_list(a, path, err)))
                return rc;
            for (size_t i = 0; i < (json_is_array(a) ? json_array_size(a) : 1); i++) {
                const char *s = json_string_value(json_is_array(a) ? json_array_get(a, i) : a);
                const char *star = strchr(s, '*');
                if (strcmp(k, "tag_value") == 0 && star && star[1])
                    return core_err_set(err, CORE_E_INVAL,
                                        "%s: '%s': a '*' wildcard may only end a value", path, s);
                if (strcmp(k, "enforced_for") == 0 && !strchr(s, ':'))
                    return core_err_set(err, CORE_E_INVAL,
                                        "%s: '%s' is not 'service:resource-type' (e.g. "
                                        "'ec2:instance' or 's3:*')",
                                        path, s);
            }
        }
    }
    return 0;
}

int org_tag_policy_check(const char *text, size_t len, struct core_err *err)
{
    json_error_t je;
    if (len > ORG_POLICY_MAX)
        return core_err_set(err, CORE_E_TOO_BIG, "tag policy of %zu bytes is over the limit of %u",
                            len, ORG_POLICY_MAX);
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return core_err_set(err, CORE_E_INVAL, "tag policy is not valid JSON: line %d column %d: %s",
                            je.line, je.column, je.text);
    int rc = 0;
    const char *k;
    json_t *v;
    if (!json_is_object(root)) {
        rc = core_err_set(err, CORE_E_INVAL, "a tag policy must be an object {\"tags\": {...}}");
        goto out;
    }
    json_object_foreach(root, k, v)
    {
        if (strcmp(k, "tags")) {
            rc = core_err_set(err, CORE_E_INVAL,
                              "unknown key '%s' at the top level (a tag policy holds \"tags\")",
                              k);
            goto out;
        }
    }
    if (!(v = json_object_get(root, "tags")))
        rc = core_err_set(err, CORE_E_INVAL, "missing \"tags\"");
    else
        rc = check_tags(v, err);
out:
    json_decref(root);
    return rc;
}

/* ---- effective policy ---- */

static json_t *as_list(json_t *v)
{
    if (json_is_array(v))
        return json_incref(v);
    json_t *a = json_array();
    json_array_append(a, v);
    return a;
}

static void merge_policy(json_t *eff, json_t *tags, const char *pname)
{
    const char *key;
    json_t *spec;
    json_object_foreach(tags, key, spec)
    {
        char low[256];
        size_t n = strlen(key);
        if (n >= sizeof(low))
            n = sizeof(low) - 1;
        for (size_t i = 0; i < n; i++)
            low[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
        low[n] = 0;
        json_t *e = json_object_get(eff, low);
        if (!e) {
            e = json_pack("{s:s, s:n, s:n, s:[]}", "tag_key", key, "tag_value", "enforced_for",
                          "from");
            json_object_set_new(eff, low, e);
        }
        json_t *a;
        if ((a = json_object_get(json_object_get(spec, "tag_key"), "@@assign")))
            json_object_set(e, "tag_key", a);
        if ((a = json_object_get(json_object_get(spec, "tag_value"), "@@assign")))
            json_object_set_new(e, "tag_value", as_list(a));
        if ((a = json_object_get(json_object_get(spec, "enforced_for"), "@@assign")))
            json_object_set_new(e, "enforced_for", as_list(a));
        json_array_append_new(json_object_get(e, "from"), json_string(pname));
    }
}

int org_tags_effective(const struct org_data *d, const struct org_node *n, json_t **out,
                       struct core_err *err)
{
    const struct org_node *path[ORG_DEPTH_MAX];
    size_t np;
    *out = NULL;
    int rc = org_node_path(d, n, path, &np, err);
    if (rc)
        return rc;
    json_t *eff = json_object();
    for (size_t l = 0; l < np; l++)
        for (size_t p = 0; p < d->npolicies; p++) {
            const struct org_policy_rec *pr = &d->policies[p];
            bool attached = false;
            if (strcmp(pr->type, "tag"))
                continue;
            for (size_t a = 0; a < d->natt && !attached; a++)
                attached = strcmp(d->att[a].policy_id, pr->id) == 0 &&
                           strcmp(d->att[a].target_id, path[l]->id) == 0;
            if (!attached)
                continue;
            json_t *doc = json_loads(pr->document, JSON_REJECT_DUPLICATES, NULL);
            struct core_err e = {0};
            if (!doc || org_tag_policy_check(pr->document, strlen(pr->document), &e)) {
                json_decref(doc);
                json_decref(eff);
                return core_err_set(err, CORE_E_INVAL,
                                    "stored tag policy '%s' (%s) is invalid: %s; import it again",
                                    pr->name, pr->id, e.msg);
            }
            merge_policy(eff, json_object_get(doc, "tags"), pr->name);
            json_decref(doc);
        }
    *out = eff;
    return 0;
}

/* ---- translation into guard-rails rules ---- */

static void regex_escape(struct core_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}/", s[i]))
            core_buf_addc(b, '\\');
        core_buf_addc(b, s[i]);
    }
}

int org_tags_to_rules(json_t *effective, char **out, struct core_err *err)
{
    *out = NULL;
    json_t *rules = json_array();
    const char *low;
    json_t *e;
    size_t i = 0;
    json_object_foreach(effective, low, e)
    {
        const char *key = json_string_value(json_object_get(e, "tag_key"));
        char id[64], desc[400];
        snprintf(id, sizeof(id), "tag-%zu-key", i);
        snprintf(desc, sizeof(desc), "tag key '%s' is spelled '%s'", low, key);
        /* org_tags[i].key is the resource's own spelling of the key, absent
         * when the resource does not carry it (org_tags_check builds it) */
        char kpath[64];
        snprintf(kpath, sizeof(kpath), "org_tags[%zu].key", i);
        json_array_append_new(
            rules, json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:[s]}, s:[{s:s, s:s, s:[s]}]}", "id",
                             id, "kind", "field", "description", desc, "mode", "enforce",
                             "remediation", "rename the tag key with the capitalization shown",
                             "scope", "subjects", "resource", "none", "path", kpath, "op",
                             "not_in", "value", key));
        json_t *vals = json_object_get(e, "tag_value");
        if (json_is_array(vals) && json_array_size(vals)) {
            bool wild = false;
            for (size_t k = 0; k < json_array_size(vals); k++) {
                const char *v = json_string_value(json_array_get(vals, k));
                wild = wild || (v && *v && v[strlen(v) - 1] == '*');
            }
            json_t *spec = json_object();
            if (wild) {
                struct core_buf re;
                core_buf_init(&re, 0);
                core_buf_adds(&re, "^(?:");
                for (size_t k = 0; k < json_array_size(vals); k++) {
                    const char *v = json_string_value(json_array_get(vals, k));
                    size_t n = strlen(v);
                    bool star = n && v[n - 1] == '*';
                    if (k)
                        core_buf_addc(&re, '|');
                    regex_escape(&re, v, star ? n - 1 : n);
                    if (star)
                        core_buf_adds(&re, ".*");
                }
                core_buf_adds(&re, ")$");
                json_object_set_new(spec, "pattern", json_string(re.data));
                core_buf_release(&re);
            } else {
                json_object_set(spec, "values", vals);
            }
            snprintf(id, sizeof(id), "tag-%zu-value", i);
            snprintf(desc, sizeof(desc), "tag '%s' takes an allowed value", key);
            json_array_append_new(
                rules, json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:[s]}, s:{s:o}}", "id", id, "kind",
                                 "required-tags", "description", desc, "mode", "enforce",
                                 "remediation", "set the tag to a value the tag policy allows",
                                 "scope", "subjects", "resource", "tags", key, spec));
        }
        i++;
    }
    json_t *doc = json_pack("{s:s, s:s, s:{s:s}, s:o}", "apiVersion", "pave/v1", "kind",
                            "Policy", "metadata", "name", "org-tag-policy", "rules", rules);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return core_err_set(err, CORE_E_NOMEM, "out of memory translating the tag policy");
    *out = core_strdup(text);
    free(text);
    return *out ? 0 : core_err_set(err, CORE_E_NOMEM, "out of memory");
}

/* ---- resources ---- */

static const struct {
    const char *name;
    const char *svc;
} services[] = {
    {"Amazon Elastic Compute Cloud", "ec2"},
    {"Amazon Virtual Private Cloud", "ec2"},
    {"Amazon Simple Storage Service", "s3"},
    {"Amazon Relational Database Service", "rds"},
    {"AWS Lambda", "lambda"},
    {"Amazon DynamoDB", "dynamodb"},
    {"Amazon Simple Queue Service", "sqs"},
    {"Amazon Simple Notification Service", "sns"},
    {"Elastic Load Balancing", "elasticloadbalancing"},
    {"Amazon Elastic Load Balancing", "elasticloadbalancing"},
    {"Amazon ElastiCache", "elasticache"},
    {"Amazon Elastic Container Service", "ecs"},
    {"Amazon Elastic Kubernetes Service", "eks"},
    {"Amazon CloudWatch", "cloudwatch"},
    {"AWS Key Management Service", "kms"},
    {"Amazon Elastic File System", "elasticfilesystem"},
};

static const struct {
    const char *prefix;
    const char *type;
} ec2_ids[] = {
    {"i-", "ec2:instance"},        {"vol-", "ec2:volume"},   {"snap-", "ec2:snapshot"},
    {"eni-", "ec2:network-interface"}, {"ami-", "ec2:image"}, {"sg-", "ec2:security-group"},
    {"subnet-", "ec2:subnet"},     {"vpc-", "ec2:vpc"},      {"nat-", "ec2:natgateway"},
    {"eipalloc-", "ec2:elastic-ip"},
};

/* "service:type" of a resource: from its ARN, else from the id's prefix and
 * the billing service name; "" when unknown. */
static void resource_type(const char *id, const char *service, char *out, size_t sz)
{
    out[0] = 0;
    if (strncmp(id, "arn:", 4) == 0) {
        const char *seg[6];
        const char *p = id;
        int n = 0;
        for (; n < 5; n++) {
            seg[n] = p;
            const char *c = strchr(p, ':');
            if (!c)
                break;
            p = c + 1;
        }
        if (n == 5) {
            seg[5] = p;
            size_t sl = (size_t)(strchr(seg[2], ':') - seg[2]);
            size_t rl = strcspn(seg[5], "/:");
            if (seg[5][rl] == 0 && sl == 2 && strncmp(seg[2], "s3", 2) == 0)
                snprintf(out, sz, "s3:bucket");
            else
                snprintf(out, sz, "%.*s:%.*s", (int)sl, seg[2], (int)rl, seg[5]);
            return;
        }
    }
    for (size_t i = 0; i < sizeof(ec2_ids) / sizeof(ec2_ids[0]); i++)
        if (strncmp(id, ec2_ids[i].prefix, strlen(ec2_ids[i].prefix)) == 0) {
            snprintf(out, sz, "%s", ec2_ids[i].type);
            return;
        }
    for (size_t i = 0; service && i < sizeof(services) / sizeof(services[0]); i++)
        if (strcmp(services[i].name, service) == 0) {
            snprintf(out, sz, "%s:unknown", services[i].svc);
            return;
        }
}

struct acct_cache {
    char *account;
    json_t *eff;            /* NULL: no tag policy applies */
    struct policy_set *set; /* compiled from eff */
};

struct check {
    const struct org_data *d;
    const char *only; /* account id filter */
    struct acct_cache *cache;
    size_t ncache;
    json_t *items;
    int64_t total, compliant, non_compliant, not_enforced, enforced;
    struct core_err *err;
};

static struct acct_cache *cache_get(struct check *c, const char *account)
{
    for (size_t i = 0; i < c->ncache; i++)
        if (strcmp(c->cache[i].account, account) == 0)
            return &c->cache[i];
    struct acct_cache *nc = core_realloc(c->cache, (c->ncache + 1) * sizeof(*nc));
    if (!nc) {
        core_err_set(c->err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    c->cache = nc;
    struct acct_cache *e = &nc[c->ncache];
    memset(e, 0, sizeof(*e));
    if (!(e->account = core_strdup(account))) {
        core_err_set(c->err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    c->ncache++;
    const struct org_node *n = NULL;
    for (size_t i = 0; i < c->d->nnodes && !n; i++)
        if (strcmp(c->d->nodes[i].id, account) == 0 && strcmp(c->d->nodes[i].kind, "account") == 0)
            n = &c->d->nodes[i];
    if (!n)
        return e; /* not in the organization: no tag policy */
    json_t *eff = NULL;
    if (org_tags_effective(c->d, n, &eff, c->err))
        return NULL;
    if (json_object_size(eff) == 0) {
        json_decref(eff);
        return e;
    }
    e->eff = eff;
    char *text = NULL;
    if (org_tags_to_rules(eff, &text, c->err))
        return NULL;
    struct policy_doc pd = {"tag policy", text, strlen(text)};
    struct core_err pe = {0};
    e->set = policy_set_parse(&pd, 1, NULL, &pe);
    core_free(text);
    if (!e->set) {
        core_err_set(c->err, pe.code ? pe.code : CORE_E_INVAL,
                     "the effective tag policy of account '%s' does not translate into rules: %s",
                     account, pe.msg);
        return NULL;
    }
    return e;
}

static bool type_enforced(json_t *enforced_for, const char *type)
{
    for (size_t i = 0; i < json_array_size(enforced_for); i++) {
        const char *p = json_string_value(json_array_get(enforced_for, i));
        if (p && *type && org_glob_match(p, type, true))
            return true;
    }
    return false;
}

/* "tag 'K' is 'v', allowed: a, b, c*" (the engine decided; this names the
 * values as the tag policy wrote them, wildcards included). */
static void allowed_text(char *out, size_t sz, const char *key, const char *value, json_t *vals)
{
    int n = snprintf(out, sz, "tag '%s' is '%s', allowed: ", key ? key : "?", value);
    for (size_t k = 0; k < json_array_size(vals) && n > 0 && (size_t)n < sz; k++)
        n += snprintf(out + n, sz - (size_t)n, "%s%s", k ? ", " : "",
                      json_string_value(json_array_get(vals, k)));
}

/* Checks one resource. tags: borrowed JSON object (may be NULL). */
static int check_resource(struct check *c, const char *id, const char *account,
                          const char *service, const char *type_in, json_t *tags)
{
    if (c->only && strcmp(c->only, account))
        return 0;
    char type[160];
    if (type_in && *type_in)
        snprintf(type, sizeof(type), "%s", type_in);
    else
        resource_type(id, service, type, sizeof(type));
    struct acct_cache *ac = cache_get(c, account);
    if (!ac)
        return c->err && c->err->code ? c->err->code : CORE_E_NOMEM;
    c->total++;
    if (!ac->set) {
        c->not_enforced++;
        return 0;
    }
    /* the subject: tags renamed to the policy's spelling, and per policy key
     * the resource's own spelling and value (org_tags[i]) */
    json_t *ntags = json_object(), *otags = json_array();
    const char *low, *tk;
    json_t *e, *tv;
    json_object_foreach(tags, tk, tv) json_object_set(ntags, tk, tv);
    json_object_foreach(ac->eff, low, e)
    {
        json_t *slot = json_object();
        json_object_foreach(tags, tk, tv)
        {
            if (strcasecmp(tk, low))
                continue;
            json_object_set_new(slot, "key", json_string(tk));
            json_object_set(slot, "value", tv);
            json_object_del(ntags, tk);
            json_object_set(ntags, json_string_value(json_object_get(e, "tag_key")), tv);
            break;
        }
        json_array_append_new(otags, slot);
    }
    json_t *doc = json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", id, "type", type, "account",
                            account, "tags", ntags, "org_tags", otags);
    struct policy_input in = {.subject = POLICY_SUBJECT_RESOURCE,
                              .gate = POLICY_GATE_CHECK,
                              .name = id,
                              .doc = doc};
    struct policy_results res = {0};
    int rc = policy_evaluate(ac->set, &in, &res, c->err);
    if (rc) {
        json_decref(doc);
        return rc;
    }
    json_t *reasons = json_array();
    bool enforced = false;
    for (size_t i = 0; i < res.n; i++) {
        if (res.v[i].outcome != POLICY_FAIL)
            continue;
        /* rule ids are tag-N-key / tag-N-value: N indexes the effective keys */
        size_t k = (size_t)strtoul(res.v[i].rule + 4, NULL, 10);
        json_t *slot = json_array_get(otags, k);
        size_t j = 0;
        const char *kk = NULL;
        json_object_foreach(ac->eff, low, e)
        {
            if (j++ == k) {
                kk = low;
                break;
            }
        }
        json_t *ke = kk ? json_object_get(ac->eff, kk) : NULL;
        const char *want = json_string_value(json_object_get(ke, "tag_key"));
        char why[700];
        if (strstr(res.v[i].rule, "-key"))
            snprintf(why, sizeof(why), "tag key '%s' must be spelled '%s'",
                     json_string_value(json_object_get(slot, "key")), want ? want : "?");
        else if (json_is_string(json_object_get(slot, "value")))
            allowed_text(why, sizeof(why), want, json_string_value(json_object_get(slot, "value")),
                         json_object_get(ke, "tag_value"));
        else
            snprintf(why, sizeof(why), "%s", res.v[i].message ? res.v[i].message : res.v[i].rule);
        json_array_append_new(reasons, json_string(why));
        enforced = enforced || type_enforced(json_object_get(ke, "enforced_for"), type);
    }
    if (json_array_size(reasons)) {
        c->non_compliant++;
        c->enforced += enforced;
        json_array_append_new(c->items,
                              json_pack("{s:s, s:s, s:s, s:s, s:b, s:o}", "resource", id,
                                        "account", account, "type", type, "status",
                                        "non-compliant", "enforced", enforced, "reasons",
                                        reasons));
    } else {
        c->compliant++;
        json_decref(reasons);
    }
    policy_results_free(&res);
    json_decref(doc);
    return 0;
}

static int billing_row(void *arg, const struct store_row *row)
{
    struct check *c = arg;
    const char *tags = store_row_text(row, "tags");
    json_t *t = tags ? json_loads(tags, 0, NULL) : NULL;
    int rc = check_resource(c, store_row_text(row, "resource_id"), store_row_text(row, "account"),
                            store_row_text(row, "service_name"), NULL,
                            json_is_object(t) ? t : NULL);
    json_decref(t);
    return rc;
}

static int check_file(struct check *c, const char *text, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    int rc = 0;
    if (!root)
        return core_err_set(c->err, CORE_E_INVAL,
                            "resources file is not valid JSON: line %d column %d: %s", je.line,
                            je.column, je.text);
    json_t *list = json_is_array(root) ? root : json_object_get(root, "resources");
    if (!json_is_array(list)) {
        rc = core_err_set(c->err, CORE_E_INVAL,
                          "resources file: expected a list or {\"resources\": [...]}");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(list) && !rc; i++) {
        json_t *r = json_array_get(list, i);
        const char *id = json_string_value(json_object_get(r, "id"));
        if (!id)
            id = json_string_value(json_object_get(r, "arn"));
        const char *acct = json_string_value(json_object_get(r, "account"));
        json_t *tags = json_object_get(r, "tags");
        if (!json_is_object(r) || !id || !acct) {
            rc = core_err_set(c->err, CORE_E_INVAL,
                              "resources[%zu]: needs \"id\" (or \"arn\") and \"account\"", i);
            break;
        }
        if (tags && !json_is_object(tags)) {
            rc = core_err_set(c->err, CORE_E_INVAL, "resources[%zu].tags: expected an object", i);
            break;
        }
        rc = check_resource(c, id, acct, NULL, json_string_value(json_object_get(r, "type")),
                            tags);
    }
out:
    json_decref(root);
    return rc;
}

int org_tags_check(struct store *st, const struct org_data *d, const char *account,
                   const char *resources, size_t len, json_t **out, struct core_err *err)
{
    struct check c = {.d = d, .err = err, .items = json_array()};
    *out = NULL;
    if (account) {
        const struct org_node *n = org_node_find(d, account);
        c.only = n ? n->id : account;
    }
    int rc;
    if (resources)
        rc = check_file(&c, resources, len);
    else
        rc = store_query(st,
                         "SELECT COALESCE(NULLIF(sub_account, ''), billing_account) AS account, "
                         "resource_id, MAX(service_name) AS service_name, MAX(tags) AS tags "
                         "FROM cost_lines WHERE resource_id IS NOT NULL AND resource_id <> '' "
                         "GROUP BY COALESCE(NULLIF(sub_account, ''), billing_account), "
                         "resource_id ORDER BY 1, 2",
                         NULL, 0, billing_row, &c, err);
    if (!rc)
        *out = json_pack("{s:{s:I, s:I, s:I, s:I, s:I}, s:O}", "summary", "resources",
                         (json_int_t)c.total, "compliant", (json_int_t)c.compliant,
                         "non_compliant", (json_int_t)c.non_compliant, "not_enforced",
                         (json_int_t)c.not_enforced, "enforced_violations", (json_int_t)c.enforced,
                         "items", c.items);
    else if (err && !err->msg[0])
        core_err_set(err, rc, "checking tag policies failed");
    for (size_t i = 0; i < c.ncache; i++) {
        core_free(c.cache[i].account);
        json_decref(c.cache[i].eff);
        policy_set_free(c.cache[i].set);
    }
    core_free(c.cache);
    json_decref(c.items);
    return rc;
}
