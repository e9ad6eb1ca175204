/* IAM / SCP policy documents: the JSON grammar compiled into statements, the
 * matching of one request against a statement (actions, resources, conditions)
 * and the SCP decision along the path from the root to an account. Pure: no
 * store, no globals (docs/org.md). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloud/cloud.h"

#define ARENA_CAP (4u << 20)
#define VALUES_MAX 1000 /* values in one Action, Resource or condition key */

enum cond_base {
    COND_STR_EQ = 1,
    COND_STR_EQ_IC,
    COND_STR_LIKE,
    COND_NUM_EQ,
    COND_NUM_LT,
    COND_NUM_LE,
    COND_NUM_GT,
    COND_NUM_GE,
    COND_BOOL,
    COND_ARN,
    COND_NULL,
};

enum cond_set { SET_NONE = 0, SET_ANY, SET_ALL };

struct op_def {
    const char *name;
    enum cond_base base;
    bool negate;
};

static const struct op_def op_defs[] = {
    {"StringEquals", COND_STR_EQ, false},
    {"StringNotEquals", COND_STR_EQ, true},
    {"StringEqualsIgnoreCase", COND_STR_EQ_IC, false},
    {"StringNotEqualsIgnoreCase", COND_STR_EQ_IC, true},
    {"StringLike", COND_STR_LIKE, false},
    {"StringNotLike", COND_STR_LIKE, true},
    {"NumericEquals", COND_NUM_EQ, false},
    {"NumericNotEquals", COND_NUM_EQ, true},
    {"NumericLessThan", COND_NUM_LT, false},
    {"NumericLessThanEquals", COND_NUM_LE, false},
    {"NumericGreaterThan", COND_NUM_GT, false},
    {"NumericGreaterThanEquals", COND_NUM_GE, false},
    {"Bool", COND_BOOL, false},
    {"ArnEquals", COND_ARN, false},
    {"ArnLike", COND_ARN, false},
    {"ArnNotEquals", COND_ARN, true},
    {"ArnNotLike", COND_ARN, true},
    {"Null", COND_NULL, false},
};
#define NOPS (sizeof(op_defs) / sizeof(op_defs[0]))

static const char *const op_names[] = {
    "StringEquals",      "StringNotEquals",          "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase", "StringLike",       "StringNotLike",
    "NumericEquals",     "NumericNotEquals",         "NumericLessThan",
    "NumericLessThanEquals", "NumericGreaterThan",   "NumericGreaterThanEquals",
    "Bool",              "ArnEquals",                "ArnLike",
    "ArnNotEquals",      "ArnNotLike",               "Null",
    NULL,
};

/* IAM operators Paved knows of but does not evaluate: refused with their own
 * message rather than "unknown". */
static const char *const unsupported_ops[] = {
    "DateEquals",   "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
    "DateGreaterThanEquals", "IpAddress", "NotIpAddress", "BinaryEquals", NULL,
};

struct cond {
    enum cond_base base;
    bool negate;
    bool if_exists;
    enum cond_set set;
    const char *op; /* as written, for messages */
    const char *key;
    const char **values;
    double *nums; /* numeric operators */
    size_t nvalues;
};

struct stmt {
    const char *sid;
    enum org_effect effect;
    bool not_action;
    const char **actions;
    size_t nactions;
    bool not_resource;
    const char **resources; /* NULL with nresources 0: "*" */
    size_t nresources;
    struct cond *conds;
    size_t nconds;
};

struct org_policy {
    struct core_arena arena;
    struct stmt *st;
    size_t n;
};

struct parse {
    struct org_policy *p;
    struct core_err *err;
};

static bool parse_number(const char *s, double *out)
{
    if (!*s)
        return false;
    char *end = NULL;
    double v = strtod(s, &end);
    if (*end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* A scalar as text into the arena: strings as they are, numbers and bools
 * written out. NULL for anything else. */
static const char *scalar_text(struct parse *ps, json_t *v)
{
    char tmp[64];
    if (json_is_string(v))
        return core_arena_strdup(&ps->p->arena, json_string_value(v));
    if (json_is_integer(v))
        snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(tmp, sizeof(tmp), "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(tmp, sizeof(tmp), "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return core_arena_strdup(&ps->p->arena, tmp);
}

static int nomem(struct parse *ps)
{
    return core_err_set(ps->err, CORE_E_NOMEM, "out of memory compiling the policy");
}

/* A string or a non-empty list of strings (scalars when any_scalar). */
static int string_list(struct parse *ps, json_t *v, const char *path, bool any_scalar,
                       const char ***out, size_t *n)
{
    size_t cnt = json_is_array(v) ? json_array_size(v) : 1;
    if (json_is_array(v) && cnt == 0)
        return core_err_set(ps->err, CORE_E_INVAL, "%s: empty list", path);
    if (cnt > VALUES_MAX)
        return core_err_set(ps->err, CORE_E_TOO_BIG, "%s: more than %d values", path,
                            VALUES_MAX);
    const char **vals = core_arena_alloc(&ps->p->arena, cnt * sizeof(*vals));
    if (!vals)
        return nomem(ps);
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        char epath[300];
        if (json_is_array(v))
            snprintf(epath, sizeof(epath), "%s[%zu]", path, i);
        else
            snprintf(epath, sizeof(epath), "%s", path);
        if (!json_is_string(e) && !(any_scalar && (json_is_number(e) || json_is_boolean(e))))
            return core_err_set(ps->err, CORE_E_INVAL, "%s: expected %s", epath,
                                any_scalar ? "a string, number or boolean, or a list of them"
                                           : "a string or a list of strings");
        if (!(vals[i] = scalar_text(ps, e)))
            return nomem(ps);
    }
    *out = vals;
    *n = cnt;
    return 0;
}

static int parse_actions(struct parse *ps, struct stmt *s, json_t *v, const char *path)
{
    int rc = string_list(ps, v, path, false, &s->actions, &s->nactions);
    if (rc)
        return rc;
    for (size_t i = 0; i < s->nactions; i++) {
        const char *a = s->actions[i];
        const char *colon = strchr(a, ':');
        bool all_stars = strspn(a, "*") == strlen(a) && *a;
        if (!all_stars && (!colon || colon == a || !colon[1] || strchr(colon + 1, ':')))
            return core_err_set(ps->err, CORE_E_INVAL,
                                "%s: action '%s' is not 'service:action' (e.g. 's3:GetObject', "
                                "'ec2:*' or '*')",
                                path, a);
    }
    return 0;
}

static const struct op_def *find_op(const char *name)
{
    for (size_t i = 0; i < NOPS; i++)
        if (strcmp(op_defs[i].name, name) == 0)
            return &op_defs[i];
    return NULL;
}

static int parse_condition_op(struct parse *ps, struct stmt *s, const char *opname, json_t *keys,
                              const char *path)
{
    char base[128];
    enum cond_set set = SET_NONE;
    const char *p = opname;
    if (strncmp(p, "ForAnyValue:", 12) == 0) {
        set = SET_ANY;
        p += 12;
    } else if (strncmp(p, "ForAllValues:", 13) == 0) {
        set = SET_ALL;
        p += 13;
    }
    size_t len = strlen(p);
    bool if_exists = len > 8 && strcmp(p + len - 8, "IfExists") == 0;
    if (if_exists)
        len -= 8;
    if (len >= sizeof(base))
        return core_err_set(ps->err, CORE_E_INVAL, "%s: unknown condition operator", path);
    memcpy(base, p, len);
    base[len] = 0;
    const struct op_def *def = find_op(base);
    if (!def) {
        for (size_t i = 0; unsupported_ops[i]; i++)
            if (strcmp(unsupported_ops[i], base) == 0)
                return core_err_set(ps->err, CORE_E_INVAL,
                                    "%s: condition operator '%s' is not supported by Paved "
                                    "(see docs/org.md for the supported ones)",
                                    path, base);
        const char *dym = core_did_you_mean(base, op_names);
        if (dym)
            return core_err_set(ps->err, CORE_E_INVAL,
                                "%s: unknown condition operator '%s' (did you mean '%s'?)", path,
                                opname, dym);
        return core_err_set(ps->err, CORE_E_INVAL,
                            "%s: unknown condition operator '%s' (see docs/org.md for the "
                            "supported ones)",
                            path, opname);
    }
    if (def->base == COND_NULL && (if_exists || set != SET_NONE))
        return core_err_set(ps->err, CORE_E_INVAL,
                            "%s: 'Null' takes neither an IfExists suffix nor a set prefix", path);
    if (!json_is_object(keys) || json_object_size(keys) == 0)
        return core_err_set(ps->err, CORE_E_INVAL,
                            "%s: expected a non-empty object of condition keys to values", path);
    size_t nk = json_object_size(keys);
    struct cond *nc = core_arena_alloc(&ps->p->arena, (s->nconds + nk) * sizeof(*nc));
    if (!nc)
        return nomem(ps);
    if (s->nconds)
        memcpy(nc, s->conds, s->nconds * sizeof(*nc));
    s->conds = nc;
    const char *key;
    json_t *val;
    json_object_foreach(keys, key, val)
    {
        char kpath[300];
        snprintf(kpath, sizeof(kpath), "%.150s.%.140s", path, key); /* for messages only */
        if (!*key)
            return core_err_set(ps->err, CORE_E_INVAL, "%s: empty condition key", path);
        struct cond *c = &s->conds[s->nconds];
        memset(c, 0, sizeof(*c));
        c->base = def->base;
        c->negate = def->negate;
        c->if_exists = if_exists;
        c->set = set;
        c->op = core_arena_strdup(&ps->p->arena, opname);
        c->key = core_arena_strdup(&ps->p->arena, key);
        if (!c->op || !c->key)
            return nomem(ps);
        int rc = string_list(ps, val, kpath, true, &c->values, &c->nvalues);
        if (rc)
            return rc;
        if (def->base >= COND_NUM_EQ && def->base <= COND_NUM_GE) {
            if (!(c->nums = core_arena_alloc(&ps->p->arena, c->nvalues * sizeof(double))))
                return nomem(ps);
            for (size_t i = 0; i < c->nvalues; i++)
                if (!parse_number(c->values[i], &c->nums[i]))
                    return core_err_set(ps->err, CORE_E_INVAL,
                                        "%s: '%s' is not a number (operator %s)", kpath,
                                        c->values[i], base);
        }
        if (def->base == COND_BOOL || def->base == COND_NULL)
            for (size_t i = 0; i < c->nvalues; i++)
                if (strcasecmp(c->values[i], "true") && strcasecmp(c->values[i], "false"))
                    return core_err_set(ps->err, CORE_E_INVAL,
                                        "%s: '%s' is not true or false (operator %s)", kpath,
                                        c->values[i], base);
        s->nconds++;
    }
    return 0;
}

static const char *const stmt_keys[] = {"Sid",      "Effect",      "Action", "NotAction",
                                        "Resource", "NotResource", "Condition", NULL};

static int parse_statement(struct parse *ps, json_t *o, struct stmt *s, const char *path)
{
    char kpath[300];
    memset(s, 0, sizeof(*s));
    if (!json_is_object(o))
        return core_err_set(ps->err, CORE_E_INVAL, "%s: a statement must be an object", path);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        bool known = false;
        for (size_t i = 0; stmt_keys[i]; i++)
            known = known || strcmp(stmt_keys[i], key) == 0;
        if (known)
            continue;
        if (strcmp(key, "Principal") == 0 || strcmp(key, "NotPrincipal") == 0)
            return core_err_set(ps->err, CORE_E_INVAL,
                                "%s.%s: organization policies apply to accounts and take no "
                                "principal; remove it",
                                path, key);
        const char *dym = core_did_you_mean(key, stmt_keys);
        return core_err_set(ps->err, CORE_E_INVAL, "%s: unknown key '%s'%s%s%s", path, key,
                            dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
    }
    if ((v = json_object_get(o, "Sid"))) {
        if (!json_is_string(v))
            return core_err_set(ps->err, CORE_E_INVAL, "%s.Sid: expected a string", path);
        if (!(s->sid = core_arena_strdup(&ps->p->arena, json_string_value(v))))
            return nomem(ps);
    }
    v = json_object_get(o, "Effect");
    if (!v)
        return core_err_set(ps->err, CORE_E_INVAL,
                            "%s: missing 'Effect' (add \"Effect\": \"Allow\" or \"Deny\")", path);
    if (json_is_string(v) && strcmp(json_string_value(v), "Allow") == 0)
        s->effect = ORG_ALLOW;
    else if (json_is_string(v) && strcmp(json_string_value(v), "Deny") == 0)
        s->effect = ORG_DENY;
    else
        return core_err_set(ps->err, CORE_E_INVAL, "%s.Effect: expected \"Allow\" or \"Deny\"",
                            path);
    json_t *a = json_object_get(o, "Action"), *na = json_object_get(o, "NotAction");
    if ((a && na) || (!a && !na))
        return core_err_set(ps->err, CORE_E_INVAL,
                            "%s: needs exactly one of 'Action' and 'NotAction'", path);
    s->not_action = na != NULL;
    snprintf(kpath, sizeof(kpath), "%s.%s", path, a ? "Action" : "NotAction");
    int rc = parse_actions(ps, s, a ? a : na, kpath);
    if (rc)
        return rc;
    json_t *r = json_object_get(o, "Resource"), *nr = json_object_get(o, "NotResource");
    if (r && nr)
        return core_err_set(ps->err, CORE_E_INVAL,
                            "%s: give either 'Resource' or 'NotResource', not both", path);
    if (r || nr) {
        s->not_resource = nr != NULL;
        snprintf(kpath, sizeof(kpath), "%s.%s", path, r ? "Resource" : "NotResource");
        if ((rc = string_list(ps, r ? r : nr, kpath, false, &s->resources, &s->nresources)))
            return rc;
    }
    if ((v = json_object_get(o, "Condition"))) {
        if (!json_is_object(v))
            return core_err_set(ps->err, CORE_E_INVAL,
                                "%s.Condition: expected an object of operators", path);
        const char *opname;
        json_t *keys;
        json_object_foreach(v, opname, keys)
        {
            snprintf(kpath, sizeof(kpath), "%s.Condition.%s", path, opname);
            if ((rc = parse_condition_op(ps, s, opname, keys, kpath)))
                return rc;
        }
    }
    return 0;
}

struct org_policy *org_policy_parse(const char *text, size_t len, struct core_err *err)
{
    if (len > ORG_POLICY_MAX) {
        core_err_set(err, CORE_E_TOO_BIG, "policy document of %zu bytes is over the limit of %u",
                     len, ORG_POLICY_MAX);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        core_err_set(err, CORE_E_INVAL, "policy document is not valid JSON: line %d column %d: %s",
                     je.line, je.column, je.text);
        return NULL;
    }
    struct org_policy *p = core_calloc(1, sizeof(*p));
    struct parse ps = {p, err};
    int rc = 0;
    if (!p) {
        core_err_set(err, CORE_E_NOMEM, "out of memory compiling the policy");
        goto out;
    }
    core_arena_init(&p->arena, ARENA_CAP);
    if (!json_is_object(root)) {
        rc = core_err_set(err, CORE_E_INVAL, "policy document must be a JSON object");
        goto out;
    }
    const char *key;
    json_t *v;
    static const char *const top_keys[] = {"Version", "Id", "Statement", NULL};
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "Version") && strcmp(key, "Id") && strcmp(key, "Statement")) {
            const char *dym = core_did_you_mean(key, top_keys);
            rc = core_err_set(err, CORE_E_INVAL, "unknown key '%s' at the top level%s%s%s", key,
                              dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
            goto out;
        }
    }
    if ((v = json_object_get(root, "Version")) &&
        (!json_is_string(v) || (strcmp(json_string_value(v), "2012-10-17") &&
                                strcmp(json_string_value(v), "2008-10-17")))) {
        rc = core_err_set(err, CORE_E_INVAL, "Version: expected \"2012-10-17\" (or \"2008-10-17\")");
        goto out;
    }
    if ((v = json_object_get(root, "Id")) && !json_is_string(v)) {
        rc = core_err_set(err, CORE_E_INVAL, "Id: expected a string");
        goto out;
    }
    v = json_object_get(root, "Statement");
    if (!v) {
        rc = core_err_set(err, CORE_E_INVAL, "missing 'Statement' (an object or a list of them)");
        goto out;
    }
    if (json_is_array(v) && json_array_size(v) == 0) {
        rc = core_err_set(err, CORE_E_INVAL, "Statement: empty list");
        goto out;
    }
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n > ORG_STATEMENTS_MAX) {
        rc = core_err_set(err, CORE_E_TOO_BIG, "Statement: more than %d statements",
                          ORG_STATEMENTS_MAX);
        goto out;
    }
    if (!(p->st = core_arena_alloc(&p->arena, n * sizeof(*p->st)))) {
        rc = nomem(&ps);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char path[64];
        if (json_is_array(v))
            snprintf(path, sizeof(path), "Statement[%zu]", i);
        else
            snprintf(path, sizeof(path), "Statement");
        if ((rc = parse_statement(&ps, json_is_array(v) ? json_array_get(v, i) : v, &p->st[i],
                                  path)))
            goto out;
        p->n++;
    }
out:
    json_decref(root);
    if (rc) {
        org_policy_free(p);
        return NULL;
    }
    return p;
}

void org_policy_free(struct org_policy *p)
{
    if (!p)
        return;
    core_arena_release(&p->arena);
    core_free(p);
}

size_t org_policy_nstatements(const struct org_policy *p)
{
    return p->n;
}

const char *org_policy_sid(const struct org_policy *p, size_t i)
{
    return i < p->n ? p->st[i].sid : NULL;
}

enum org_effect org_policy_effect(const struct org_policy *p, size_t i)
{
    return i < p->n ? p->st[i].effect : ORG_DENY;
}

/* ---- matching ---- */

static int fold(int c, bool icase)
{
    return icase && c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Matches pattern[0..plen) against s[0..slen). Iterative with one backtrack
 * point (the last '*'), so the cost is O(plen * slen) at worst, never
 * exponential. */
static bool glob_n(const char *p, size_t plen, const char *s, size_t slen, bool icase)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < plen &&
                   (p[pi] == '?' || fold((unsigned char)p[pi], icase) ==
                                        fold((unsigned char)s[si], icase))) {
            pi++;
            si++;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}

bool org_glob_match(const char *pattern, const char *s, bool icase)
{
    return glob_n(pattern, strlen(pattern), s, strlen(s), icase);
}

/* Splits an ARN into its 6 segments (the last keeps any further ':').
 * returns: false when there are fewer than 6. */
static bool arn_split(const char *a, const char *seg[6], size_t len[6])
{
    const char *p = a;
    for (int i = 0; i < 5; i++) {
        const char *c = strchr(p, ':');
        if (!c)
            return false;
        seg[i] = p;
        len[i] = (size_t)(c - p);
        p = c + 1;
    }
    seg[5] = p;
    len[5] = strlen(p);
    return true;
}

bool org_arn_match(const char *pattern, const char *arn)
{
    const char *ps[6], *as[6];
    size_t pl[6], al[6];
    if (!arn_split(pattern, ps, pl) || !arn_split(arn, as, al))
        return org_glob_match(pattern, arn, false);
    for (int i = 0; i < 6; i++)
        if (!glob_n(ps[i], pl[i], as[i], al[i], false))
            return false;
    return true;
}

static bool truthy(const char *s)
{
    return strcasecmp(s, "true") == 0;
}

/* Does one request value match one of the condition's values (the positive
 * sense of the operator)? */
static bool value_matches(const struct cond *c, const char *v)
{
    double x = 0;
    bool num = false;
    if (c->base >= COND_NUM_EQ && c->base <= COND_NUM_GE && !(num = parse_number(v, &x)))
        return false;
    for (size_t i = 0; i < c->nvalues; i++) {
        const char *pv = c->values[i];
        switch (c->base) {
        case COND_STR_EQ:
            if (strcmp(pv, v) == 0)
                return true;
            break;
        case COND_STR_EQ_IC:
            if (strcasecmp(pv, v) == 0)
                return true;
            break;
        case COND_STR_LIKE:
            if (org_glob_match(pv, v, false))
                return true;
            break;
        case COND_NUM_EQ:
            if (num && x == c->nums[i])
                return true;
            break;
        case COND_NUM_LT:
            if (num && x < c->nums[i])
                return true;
            break;
        case COND_NUM_LE:
            if (num && x <= c->nums[i])
                return true;
            break;
        case COND_NUM_GT:
            if (num && x > c->nums[i])
                return true;
            break;
        case COND_NUM_GE:
            if (num && x >= c->nums[i])
                return true;
            break;
        case COND_BOOL:
            if (truthy(pv) == truthy(v) && (truthy(v) || strcasecmp(v, "false") == 0))
                return true;
            break;
        case COND_ARN:
            if (org_arn_match(pv, v))
                return true;
            break;
        case COND_NULL:
            break;
        }
    }
    return false;
}

static bool cond_holds(const struct cond *c, const struct org_request *req)
{
    size_t present = 0;
    for (size_t i = 0; i < req->ncontext; i++)
        present += strcasecmp(req->context[i].key, c->key) == 0;
    if (c->base == COND_NULL) {
        /* "true" asks for the key to be absent, "false" for it to be present;
         * several values are ORed like any other. */
        for (size_t i = 0; i < c->nvalues; i++)
            if (truthy(c->values[i]) == (present == 0))
                return true;
        return false;
    }
    if (!present) {
        if (c->if_exists)
            return true;
        if (c->set == SET_ALL)
            return true; /* vacuously: every one of no values matches */
        if (c->set == SET_ANY)
            return false;
        return c->negate; /* a negated operator holds for an absent key */
    }
    if (c->set == SET_NONE) {
        bool any = false;
        for (size_t i = 0; i < req->ncontext && !any; i++)
            if (strcasecmp(req->context[i].key, c->key) == 0)
                any = value_matches(c, req->context[i].value);
        return c->negate ? !any : any;
    }
    for (size_t i = 0; i < req->ncontext; i++) {
        if (strcasecmp(req->context[i].key, c->key))
            continue;
        bool m = value_matches(c, req->context[i].value);
        if (c->negate)
            m = !m;
        if (c->set == SET_ANY && m)
            return true;
        if (c->set == SET_ALL && !m)
            return false;
    }
    return c->set == SET_ALL;
}

bool org_statement_matches(const struct org_policy *p, size_t i, const struct org_request *req)
{
    if (i >= p->n)
        return false;
    const struct stmt *s = &p->st[i];
    bool hit = false;
    for (size_t k = 0; k < s->nactions && !hit; k++)
        hit = org_glob_match(s->actions[k], req->action, true);
    if (hit == s->not_action)
        return false;
    if (s->nresources) {
        const char *res = req->resource ? req->resource : "*";
        hit = false;
        for (size_t k = 0; k < s->nresources && !hit; k++)
            hit = org_glob_match(s->resources[k], res, false);
        if (hit == s->not_resource)
            return false;
    }
    for (size_t k = 0; k < s->nconds; k++)
        if (!cond_holds(&s->conds[k], req))
            return false;
    return true;
}

/* ---- SCP decision ---- */

static bool find_statement(const struct org_level *lv, const struct org_request *req,
                           enum org_effect effect, struct org_hit *hit)
{
    for (size_t p = 0; p < lv->npolicies; p++) {
        const struct org_policy *pol = lv->policies[p].policy;
        if (!pol)
            continue;
        for (size_t s = 0; s < pol->n; s++) {
            if (pol->st[s].effect != effect || !org_statement_matches(pol, s, req))
                continue;
            hit->policy = p;
            hit->statement = s;
            return true;
        }
    }
    return false;
}

void org_scp_decide(const struct org_level *levels, size_t n, const struct org_request *req,
                    struct org_decision *out)
{
    memset(out, 0, sizeof(*out));
    out->deny.level = -1;
    out->missing_level = -1;
    if (n > ORG_DEPTH_MAX)
        n = ORG_DEPTH_MAX;
    for (size_t l = 0; l < n; l++) {
        out->allow[l].level = -1;
        if (out->deny.level < 0 && find_statement(&levels[l], req, ORG_DENY, &out->deny))
            out->deny.level = (int)l;
        if (find_statement(&levels[l], req, ORG_ALLOW, &out->allow[l]))
            out->allow[l].level = (int)l;
        else if (out->missing_level < 0)
            out->missing_level = (int)l;
    }
    out->allowed = n > 0 && out->deny.level < 0 && out->missing_level < 0;
}
