/*
 * Policy documents: parsing and compiling `kind: Policy` YAML into a `struct policy_set`.
 *
 * The walk is by hand (rule maps have kind-specific keys and a condition's `value` may be of any
 * type, which the schema tables do not express) but reports through the schema module's
 * diagnostics, so policy problems look exactly like manifest problems: file:line:col, the path
 * of the key, a message and a hint ("did you mean 'severity'?"). The walk never stops at the
 * first problem; after all documents, the rules are checked against each other for
 * contradictions (see docs/policy.md, "Contradictions"). A set with any problem is freed and
 * nothing is returned, so callers never see half a set.
 *
 * Everything the set keeps is copied into its arena; regexes are compiled once here (with JIT
 * when available) and freed with the set.
 */
#include "policy/policy_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

#define API_VERSION "pave/v1"

static const char *const doc_keys[] = {"apiVersion", "kind", "metadata", "rules", NULL};
static const char *const meta_keys[] = {"name", "description", NULL};
static const char *const scope_keys[] = {"teams", "envs", "tiers", "subjects", "gates", NULL};
static const char *const common_keys[] = {"id",        "kind",        "description", "severity",
                                          "mode",      "rationale",   "remediation", "scope",
                                          NULL};
static const char *const severity_names[] = {"low", "medium", "high", "critical", NULL};
static const char *const mode_names[] = {"audit", "warn", "enforce", NULL};
static const char *const subject_names[] = {"service", "image", "resource", NULL};
static const char *const gate_names[] = {"check", "catalog", "pipeline", "registry", "deploy",
                                         NULL};
static const char *const tag_keys[] = {"required", "pattern", "values", NULL};
static const char *const bound_keys[] = {"replicas", "cpu", "memory", NULL};
static const char *const minmax_keys[] = {"min", "max", NULL};
static const char *const cond_keys[] = {"path", "op", "value", NULL};

struct kind_def {
    const char *name;
    enum pol_kind kind;
    const char *const keys[6]; /* kind-specific keys */
    unsigned subjects;         /* default (and allowed) subjects */
};

#define SUBJ(s) (1u << (s))
static const struct kind_def kind_defs[] = {
    {"required-tags", POL_REQUIRED_TAGS, {"tags"},
     SUBJ(POLICY_SUBJECT_SERVICE) | SUBJ(POLICY_SUBJECT_RESOURCE)},
    {"approved-technologies", POL_APPROVED_TECH, {"technologies"},
     SUBJ(POLICY_SUBJECT_SERVICE) | SUBJ(POLICY_SUBJECT_RESOURCE)},
    {"resource-bounds", POL_RESOURCE_BOUNDS, {"tiers"}, SUBJ(POLICY_SUBJECT_SERVICE)},
    {"exposure", POL_EXPOSURE, {"internal_domains", "require_tls", "max_tier"},
     SUBJ(POLICY_SUBJECT_SERVICE)},
    {"data-classification", POL_DATA_CLASS, {"tag", "confidential_values", "internal_domains"},
     SUBJ(POLICY_SUBJECT_SERVICE) | SUBJ(POLICY_SUBJECT_RESOURCE)},
    {"provenance", POL_PROVENANCE, {"builders"}, SUBJ(POLICY_SUBJECT_IMAGE)},
    {"field", POL_FIELD, {"all", "any", "none"},
     SUBJ(POLICY_SUBJECT_SERVICE) | SUBJ(POLICY_SUBJECT_IMAGE) | SUBJ(POLICY_SUBJECT_RESOURCE)},
};
#define NKINDS (sizeof(kind_defs) / sizeof(*kind_defs))

static const char *const default_domains[] = {"localhost", "internal", "local", NULL};

struct op_def {
    const char *name;
    enum pol_op op;
};
static const struct op_def op_defs[] = {
    {"==", POL_OP_EQ},       {"!=", POL_OP_NE},          {"<", POL_OP_LT},
    {"<=", POL_OP_LE},       {">", POL_OP_GT},           {">=", POL_OP_GE},
    {"in", POL_OP_IN},       {"not_in", POL_OP_NOT_IN},  {"matches", POL_OP_MATCHES},
    {"exists", POL_OP_EXISTS}, {"absent", POL_OP_ABSENT}, {"contains", POL_OP_CONTAINS},
    /* spelled-out aliases: '!' and '>' need quotes in YAML, these do not */
    {"eq", POL_OP_EQ},       {"ne", POL_OP_NE},          {"lt", POL_OP_LT},
    {"le", POL_OP_LE},       {"gt", POL_OP_GT},          {"ge", POL_OP_GE},
};
#define NOPS (sizeof(op_defs) / sizeof(*op_defs))

unsigned policy_kind_default_subjects(enum pol_kind k)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (kind_defs[i].kind == k)
            return kind_defs[i].subjects;
    return 0;
}

const char *policy_op_name(enum pol_op op)
{
    for (size_t i = 0; i < NOPS; i++)
        if (op_defs[i].op == op)
            return op_defs[i].name;
    return "?";
}

/* ---- quantities ------------------------------------------------------------------------ */

bool policy_quantity(const char *s, double *out)
{
    static const struct {
        const char *sfx;
        double mul;
    } sfx[] = {
        {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
        {"Pi", 1125899906842624.0}, {"m", 1e-3}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6},
        {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"", 1.0},
    };
    if (!s || !*s)
        return false;
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (!((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')))
        return false;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v))
        return false;
    /* strtod accepts hex, inf and nan; quantities are decimal */
    for (const char *q = s; q < end; q++)
        if (!((*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == '+' || *q == 'e' ||
              *q == 'E'))
            return false;
    for (size_t i = 0; i < sizeof(sfx) / sizeof(*sfx); i++)
        if (strcmp(end, sfx[i].sfx) == 0) {
            if (out)
                *out = v * sfx[i].mul;
            return true;
        }
    return false;
}

/* ---- the parser ------------------------------------------------------------------------ */

struct parser {
    struct policy_set *set;
    struct schema_ctx sc;
    const char *file;   /* arena copy of the current document's name */
    const char *policy; /* current metadata.name (arena) */
    json_t *warnings;
    int rc; /* CORE_E_NOMEM once anything could not be allocated */
};

#define REPORT(p, at, path, hint, ...) schema_report(&(p)->sc, (at), (path), (hint), __VA_ARGS__)

static void *palloc(struct parser *p, size_t n)
{
    void *m = core_arena_alloc(&p->set->arena, n ? n : 1);
    if (!m)
        p->rc = CORE_E_NOMEM;
    else
        memset(m, 0, n ? n : 1);
    return m;
}

static const char *pstr(struct parser *p, const char *s)
{
    char *c = core_arena_strdup(&p->set->arena, s ? s : "");
    if (!c)
        p->rc = CORE_E_NOMEM;
    return c;
}

static void warn(struct parser *p, const struct core_node *at, const char *fmt, ...)
    CORE_PRINTF(3, 4);
static void warn(struct parser *p, const struct core_node *at, const char *fmt, ...)
{
    char msg[512], line[700];
    va_list ap;
    if (!p->warnings)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "%s:%d:%d: %s", p->file, at ? at->line : 0, at ? at->col : 0,
             msg);
    if (json_array_append_new(p->warnings, json_string(line)))
        p->rc = CORE_E_NOMEM;
}

static void join(char *out, size_t outsz, const char *parent, const char *key)
{
    schema_join_path(out, outsz, parent, key);
}

/* parent[i]; long paths are cut (they only name positions in messages) */
static void idx_path(char *out, size_t outsz, const char *parent, size_t i)
{
    int w = snprintf(out, outsz, "%s[%zu]", parent, i);
    if (w < 0)
        out[0] = 0;
}

static const char *describe(const struct core_node *n)
{
    if (!n)
        return "nothing";
    if (n->kind == CORE_NODE_MAP)
        return "a map";
    if (n->kind == CORE_NODE_SEQ)
        return "a list";
    if (schema_is_string(n))
        return "a string";
    if (core_scalar_is_null(n))
        return "null";
    if (core_scalar_is_bool(n, NULL))
        return "a boolean";
    return "a number";
}

/* Reports unknown keys of map (allowed: NULL-terminated lists, up to two). */
static void check_keys(struct parser *p, const struct core_node *map, const char *path,
                       const char *const *a, const char *const *b)
{
    const char *choices[32];
    size_t n = 0;
    for (size_t i = 0; a && a[i] && n < 31; i++)
        choices[n++] = a[i];
    for (size_t i = 0; b && b[i] && n < 31; i++)
        choices[n++] = b[i];
    choices[n] = NULL;
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;
        for (size_t j = 0; j < n && !ok; j++)
            ok = strcmp(choices[j], map->keys[i]) == 0;
        if (ok)
            continue;
        char kpath[SCHEMA_PATH_BUF], hint[SCHEMA_HINT_BUF], s[SCHEMA_SHOW_BUF];
        size_t o = 0;
        join(kpath, sizeof(kpath), path, map->keys[i]);
        const char *best = core_did_you_mean(map->keys[i], choices);
        if (best) {
            snprintf(hint, sizeof(hint), "did you mean '%s'?", best);
        } else {
            o = (size_t)snprintf(hint, sizeof(hint), "allowed keys here:");
            for (size_t j = 0; j < n && o < sizeof(hint); j++)
                o += (size_t)snprintf(hint + o, sizeof(hint) - o, "%s %s", j ? "," : "",
                                      choices[j]);
        }
        REPORT(p, map->key_nodes[i], kpath, hint, "unknown key '%s'",
               schema_show(s, sizeof(s), map->keys[i]));
    }
}

static bool expect(struct parser *p, const struct core_node *n, enum core_node_kind kind,
                   const char *path, const char *what)
{
    if (n->kind == kind)
        return true;
    REPORT(p, n, path, NULL, "expected %s, got %s", what, describe(n));
    return false;
}

/* A string value, or NULL (reported). */
static const char *get_string(struct parser *p, const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF];
    if (schema_is_string(n))
        return n->value;
    if (n->kind == CORE_NODE_SCALAR && !core_scalar_is_null(n)) {
        snprintf(hint, sizeof(hint), "put it in quotes: \"%s\"", schema_show(s, sizeof(s), n->value));
        REPORT(p, n, path, hint, "expected a string, got %s", describe(n));
    } else {
        REPORT(p, n, path, NULL, "expected a string, got %s", describe(n));
    }
    return NULL;
}

/* An optional string key of map copied into the arena; *out untouched when absent. */
static void opt_string(struct parser *p, const struct core_node *map, const char *key,
                       const char *path, const char **out)
{
    char kpath[SCHEMA_PATH_BUF];
    const struct core_node *n = core_node_get(map, key);
    if (!n)
        return;
    join(kpath, sizeof(kpath), path, key);
    const char *s = get_string(p, n, kpath);
    if (s)
        *out = pstr(p, s);
}

/* One of choices; returns its index or -1 (reported with a hint). */
static int choice(struct parser *p, const struct core_node *n, const char *path,
                  const char *const *choices, const char *what)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF];
    const char *v = get_string(p, n, path);
    if (!v)
        return -1;
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], v) == 0)
            return i;
    const char *best = core_did_you_mean(v, choices);
    if (best) {
        snprintf(hint, sizeof(hint), "did you mean '%s'?", best);
    } else {
        size_t o = (size_t)snprintf(hint, sizeof(hint), "use one of");
        for (size_t j = 0; choices[j] && o < sizeof(hint); j++)
            o += (size_t)snprintf(hint + o, sizeof(hint) - o, "%s %s", j ? "," : "", choices[j]);
    }
    REPORT(p, n, path, hint, "unknown %s '%s'", what, schema_show(s, sizeof(s), v));
    return -1;
}

/* A list of scalars as text (numbers as written: versions like 3.10 stay "3.10"). */
static void string_list(struct parser *p, const struct core_node *n, const char *path,
                        bool any_scalar, const char ***out, size_t *nout)
{
    char ipath[SCHEMA_PATH_BUF];
    *out = NULL;
    *nout = 0;
    if (!expect(p, n, CORE_NODE_SEQ, path, "a list"))
        return;
    const char **v = palloc(p, (n->n + 1) * sizeof(*v));
    if (!v)
        return;
    for (size_t i = 0; i < n->n; i++) {
        const struct core_node *it = n->items[i];
        idx_path(ipath, sizeof(ipath), path, i);
        const char *s = NULL;
        if (any_scalar && it->kind == CORE_NODE_SCALAR && !core_scalar_is_null(it))
            s = it->value;
        else
            s = get_string(p, it, ipath);
        if (!s)
            continue;
        bool dup = false;
        for (size_t j = 0; j < *nout && !dup; j++)
            dup = strcmp(v[j], s) == 0;
        if (dup) {
            char sh[SCHEMA_SHOW_BUF];
            REPORT(p, it, ipath, "remove the repeated item", "duplicate item '%s'",
                   schema_show(sh, sizeof(sh), s));
            continue;
        }
        v[(*nout)++] = pstr(p, s);
    }
    *out = v;
}

static bool get_bool(struct parser *p, const struct core_node *n, const char *path, bool *out)
{
    if (core_scalar_is_bool(n, out))
        return true;
    REPORT(p, n, path, "write true or false", "expected true or false, got %s", describe(n));
    return false;
}

static bool get_int(struct parser *p, const struct core_node *n, const char *path, int64_t min,
                    int64_t max, int64_t *out)
{
    char s[SCHEMA_SHOW_BUF];
    if (!core_scalar_is_int(n, out)) {
        REPORT(p, n, path, NULL, "expected an integer, got %s", describe(n));
        return false;
    }
    if (*out < min || *out > max) {
        REPORT(p, n, path, NULL, "must be between %lld and %lld, got %s", (long long)min,
               (long long)max, schema_show(s, sizeof(s), n->value));
        return false;
    }
    return true;
}

static pcre2_code *compile_regex(struct parser *p, const struct core_node *n, const char *path,
                                 const char *pattern)
{
    int errcode;
    PCRE2_SIZE off;
    char msg[256], s[SCHEMA_SHOW_BUF];
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C, &errcode, &off, NULL);
    if (!re) {
        pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof(msg));
        REPORT(p, n, path, "regular expressions are PCRE2 (Perl syntax)",
               "invalid regular expression '%s' at offset %zu: %s",
               schema_show(s, sizeof(s), pattern), (size_t)off, msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: the interpreter works too */
    struct policy_set *set = p->set;
    if (set->ncodes == set->capcodes) {
        size_t cap = set->capcodes ? set->capcodes * 2 : 16;
        pcre2_code **c = core_realloc(set->codes, cap * sizeof(*c));
        if (!c) {
            pcre2_code_free(re);
            p->rc = CORE_E_NOMEM;
            return NULL;
        }
        set->codes = c;
        set->capcodes = cap;
    }
    set->codes[set->ncodes++] = re;
    uint32_t cap = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &cap);
    if (cap + 1 > set->max_ovector)
        set->max_ovector = cap + 1;
    return re;
}

/* ---- paths and values ------------------------------------------------------------------ */

/* Compiles "spec.dependencies[*].resource", "tags[\"cost.center\"]", "items[0]".
 * returns: whether the path is valid (reported otherwise). */
static bool compile_path(struct parser *p, const struct core_node *n, const char *path,
                         const char *text, struct pol_path *out)
{
    struct pol_seg segs[POLICY_MAX_PATH_SEGS];
    size_t ns = 0;
    const char *s = text;
    const char *why = NULL;
    char key[256];
    memset(out, 0, sizeof(*out));
    if (!*s)
        why = "path is empty";
    while (!why && *s) {
        if (ns == POLICY_MAX_PATH_SEGS) {
            why = "path has too many segments (at most 32)";
            break;
        }
        if (*s == '[') {
            s++;
            if (*s == '*' && s[1] == ']') {
                segs[ns++] = (struct pol_seg){.kind = POL_SEG_ANY};
                s += 2;
            } else if (*s == '"') {
                size_t k = 0;
                s++;
                while (*s && *s != '"' && k + 1 < sizeof(key))
                    key[k++] = *s++;
                key[k] = 0;
                if (*s != '"' || s[1] != ']' || k == 0) {
                    why = "unterminated [\"key\"] segment";
                    break;
                }
                s += 2;
                segs[ns++] = (struct pol_seg){.kind = POL_SEG_KEY, .key = pstr(p, key)};
            } else if (*s >= '0' && *s <= '9') {
                size_t idx = 0;
                while (*s >= '0' && *s <= '9' && idx < 1000000)
                    idx = idx * 10 + (size_t)(*s++ - '0');
                if (*s != ']') {
                    why = "index must be a number below 1000000 or *";
                    break;
                }
                s++;
                segs[ns++] = (struct pol_seg){.kind = POL_SEG_INDEX, .index = idx};
            } else {
                why = "expected [N], [*] or [\"key\"]";
                break;
            }
        } else {
            size_t k = 0;
            while (*s && *s != '.' && *s != '[' && k + 1 < sizeof(key))
                key[k++] = *s++;
            key[k] = 0;
            if (k == 0) {
                why = "empty segment";
                break;
            }
            if (*s && *s != '.' && *s != '[') {
                why = "segment too long";
                break;
            }
            segs[ns++] = (struct pol_seg){.kind = POL_SEG_KEY, .key = pstr(p, key)};
        }
        if (*s == '.') {
            s++;
            if (!*s)
                why = "path ends with '.'";
        } else if (*s && *s != '[') {
            why = "expected '.' or '[' after ']'";
        }
    }
    if (why) {
        char sh[SCHEMA_SHOW_BUF];
        REPORT(p, n, path, "write dotted keys with [N] or [*] for list items, e.g. "
                           "spec.dependencies[*].resource",
               "invalid path '%s': %s", schema_show(sh, sizeof(sh), text), why);
        return false;
    }
    out->text = pstr(p, text);
    out->segs = palloc(p, ns * sizeof(*segs));
    if (!out->segs)
        return false;
    memcpy(out->segs, segs, ns * sizeof(*segs));
    out->n = ns;
    for (size_t i = 0; i < ns; i++)
        out->has_any |= segs[i].kind == POL_SEG_ANY;
    return true;
}

static bool compile_value(struct parser *p, const struct core_node *n, const char *path,
                          bool allow_list, struct pol_value *out)
{
    memset(out, 0, sizeof(*out));
    if (n->kind == CORE_NODE_MAP) {
        REPORT(p, n, path, "compare against a string, number, boolean or a list",
               "a condition value cannot be a map");
        return false;
    }
    if (n->kind == CORE_NODE_SEQ) {
        if (!allow_list) {
            REPORT(p, n, path, "lists go with the 'in' and 'not_in' operators",
                   "expected a single value, got a list");
            return false;
        }
        out->type = POL_V_LIST;
        out->n = n->n;
        out->items = palloc(p, (n->n ? n->n : 1) * sizeof(*out->items));
        if (!out->items)
            return false;
        bool ok = true;
        for (size_t i = 0; i < n->n; i++) {
            char ipath[SCHEMA_PATH_BUF];
            idx_path(ipath, sizeof(ipath), path, i);
            ok &= compile_value(p, n->items[i], ipath, false, &out->items[i]);
        }
        return ok;
    }
    out->s = pstr(p, n->value);
    if (!out->s)
        return false;
    if (n->is_quoted) {
        out->type = POL_V_STR;
        out->is_num = policy_quantity(n->value, &out->num);
    } else if (core_scalar_is_null(n)) {
        out->type = POL_V_NULL;
    } else if (core_scalar_is_bool(n, &out->b)) {
        out->type = POL_V_BOOL;
    } else if (core_scalar_is_number(n, &out->num)) {
        out->type = POL_V_NUM;
        out->is_num = true;
    } else {
        out->type = POL_V_STR;
        out->is_num = policy_quantity(n->value, &out->num);
    }
    return true;
}

static bool op_takes_value(enum pol_op op)
{
    return op != POL_OP_EXISTS && op != POL_OP_ABSENT;
}

static bool op_numeric(enum pol_op op)
{
    return op == POL_OP_LT || op == POL_OP_LE || op == POL_OP_GT || op == POL_OP_GE;
}

static bool compile_cond(struct parser *p, const struct core_node *n, const char *path,
                         struct pol_cond *c)
{
    char kpath[SCHEMA_PATH_BUF], s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF];
    bool ok = true;
    memset(c, 0, sizeof(*c));
    c->line = n->line;
    c->col = n->col;
    if (!expect(p, n, CORE_NODE_MAP, path, "a condition map {path, op, value}"))
        return false;
    size_t before = p->sc.problems;
    check_keys(p, n, path, cond_keys, NULL);
    const struct core_node *pn = core_node_get(n, "path");
    const struct core_node *on = core_node_get(n, "op");
    const struct core_node *vn = core_node_get(n, "value");
    if (!pn)
        REPORT(p, n, path, "add it, e.g. 'path: spec.replicas'", "missing required key 'path'");
    if (!on)
        REPORT(p, n, path, "add it, e.g. 'op: \">=\"'", "missing required key 'op'");
    if (pn) {
        join(kpath, sizeof(kpath), path, "path");
        const char *t = get_string(p, pn, kpath);
        if (t)
            ok &= compile_path(p, pn, kpath, t, &c->path);
    }
    if (on) {
        join(kpath, sizeof(kpath), path, "op");
        const char *t = get_string(p, on, kpath);
        size_t i = 0;
        for (; t && i < NOPS; i++)
            if (strcmp(op_defs[i].name, t) == 0)
                break;
        if (t && i < NOPS) {
            c->op = op_defs[i].op;
        } else if (t) {
            const char *names[NOPS + 1];
            for (size_t j = 0; j < NOPS; j++)
                names[j] = op_defs[j].name;
            names[NOPS] = NULL;
            const char *best = core_did_you_mean(t, names);
            if (best)
                snprintf(hint, sizeof(hint), "did you mean '%s'?", best);
            else
                snprintf(hint, sizeof(hint), "use one of ==, !=, <, <=, >, >=, in, not_in, "
                                             "matches, exists, absent, contains (quote them)");
            REPORT(p, on, kpath, hint, "unknown operator '%s'", schema_show(s, sizeof(s), t));
        }
    }
    if (c->op && op_takes_value(c->op) && !vn) {
        REPORT(p, on, path, "add 'value: ...'", "operator '%s' needs a value",
               policy_op_name(c->op));
    } else if (c->op && !op_takes_value(c->op) && vn) {
        join(kpath, sizeof(kpath), path, "value");
        REPORT(p, vn, kpath, "remove the value", "operator '%s' takes no value",
               policy_op_name(c->op));
    } else if (c->op && vn) {
        join(kpath, sizeof(kpath), path, "value");
        bool list = c->op == POL_OP_IN || c->op == POL_OP_NOT_IN;
        if (list && vn->kind != CORE_NODE_SEQ) {
            REPORT(p, vn, kpath, "write a list: [a, b]", "operator '%s' needs a list value",
                   policy_op_name(c->op));
        } else if (compile_value(p, vn, kpath, list, &c->val)) {
            if (op_numeric(c->op) && !c->val.is_num)
                REPORT(p, vn, kpath, "use a number or a quantity such as 500m or 1Gi",
                       "operator '%s' needs a number, got '%s'", policy_op_name(c->op),
                       schema_show(s, sizeof(s), vn->value));
            else if (c->op == POL_OP_MATCHES && c->val.type != POL_V_STR)
                REPORT(p, vn, kpath, "quote the pattern", "operator 'matches' needs a string "
                                                          "pattern");
            else if (c->op == POL_OP_MATCHES)
                c->re = compile_regex(p, vn, kpath, vn->value);
        }
    }
    if (ok && p->sc.problems == before) {
        char want[512];
        size_t o;
        if (c->op == POL_OP_EXISTS) {
            snprintf(want, sizeof(want), "expected it to be set");
        } else if (c->op == POL_OP_ABSENT) {
            snprintf(want, sizeof(want), "expected it to be absent");
        } else if (c->val.type == POL_V_LIST) {
            o = (size_t)snprintf(want, sizeof(want), "expected %s [", policy_op_name(c->op));
            for (size_t i = 0; i < c->val.n && o < sizeof(want); i++)
                o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%s", i ? ", " : "",
                                      c->val.items[i].s);
            if (o < sizeof(want))
                snprintf(want + o, sizeof(want) - o, "]");
        } else {
            int w = snprintf(want, sizeof(want), "expected %s %s", policy_op_name(c->op),
                             c->val.s);
            (void)w;
        }
        c->want = pstr(p, want);
    }
    return ok && p->sc.problems == before;
}

static void compile_conds(struct parser *p, const struct core_node *rule, const char *key,
                          const char *path, struct pol_cond **out, size_t *nout)
{
    char kpath[SCHEMA_PATH_BUF], ipath[SCHEMA_PATH_BUF];
    const struct core_node *n = core_node_get(rule, key);
    *out = NULL;
    *nout = 0;
    if (!n)
        return;
    join(kpath, sizeof(kpath), path, key);
    if (!expect(p, n, CORE_NODE_SEQ, kpath, "a list of conditions"))
        return;
    if (n->n == 0) {
        REPORT(p, n, kpath, "add conditions or remove the key", "%s must not be empty", key);
        return;
    }
    *out = palloc(p, n->n * sizeof(**out));
    if (!*out)
        return;
    for (size_t i = 0; i < n->n; i++) {
        idx_path(ipath, sizeof(ipath), kpath, i);
        compile_cond(p, n->items[i], ipath, &(*out)[i]);
    }
    *nout = n->n;
}

/* ---- scopes ---------------------------------------------------------------------------- */

static void compile_scope(struct parser *p, const struct core_node *n, const char *path,
                          struct pol_rule *r, unsigned kind_subjects)
{
    char kpath[SCHEMA_PATH_BUF], ipath[SCHEMA_PATH_BUF];
    if (!expect(p, n, CORE_NODE_MAP, path, "a map"))
        return;
    check_keys(p, n, path, scope_keys, NULL);
    const struct core_node *v;
    if ((v = core_node_get(n, "teams"))) {
        join(kpath, sizeof(kpath), path, "teams");
        string_list(p, v, kpath, false, &r->scope.teams, &r->scope.nteams);
    }
    if ((v = core_node_get(n, "envs"))) {
        join(kpath, sizeof(kpath), path, "envs");
        string_list(p, v, kpath, false, &r->scope.envs, &r->scope.nenvs);
    }
    if ((v = core_node_get(n, "tiers"))) {
        join(kpath, sizeof(kpath), path, "tiers");
        if (expect(p, v, CORE_NODE_SEQ, kpath, "a list of tiers (1-4)"))
            for (size_t i = 0; i < v->n; i++) {
                int64_t t;
                idx_path(ipath, sizeof(ipath), kpath, i);
                if (get_int(p, v->items[i], ipath, 1, 4, &t))
                    r->scope.tiers |= 1u << t;
            }
    }
    const char *const *lists[] = {subject_names, gate_names};
    const char *keys[] = {"subjects", "gates"};
    const char *what[] = {"subject", "gate"};
    unsigned *masks[] = {&r->scope.subjects, &r->scope.gates};
    for (size_t k = 0; k < 2; k++) {
        if (!(v = core_node_get(n, keys[k])))
            continue;
        join(kpath, sizeof(kpath), path, keys[k]);
        if (!expect(p, v, CORE_NODE_SEQ, kpath, "a list"))
            continue;
        for (size_t i = 0; i < v->n; i++) {
            idx_path(ipath, sizeof(ipath), kpath, i);
            int c = choice(p, v->items[i], ipath, lists[k], what[k]);
            if (c < 0)
                continue;
            unsigned bit = 1u << (c + 1); /* enums start at 1 */
            if (k == 0 && !(kind_subjects & bit)) {
                char hint[SCHEMA_HINT_BUF];
                size_t o = (size_t)snprintf(hint, sizeof(hint), "kind '%s' checks", r->kind_name);
                for (int s = 1; s <= 3 && o < sizeof(hint); s++)
                    if (kind_subjects & (1u << s))
                        o += (size_t)snprintf(hint + o, sizeof(hint) - o, " %s",
                                              subject_names[s - 1]);
                REPORT(p, v->items[i], ipath, hint, "kind '%s' does not apply to subject '%s'",
                       r->kind_name, subject_names[c]);
                continue;
            }
            *masks[k] |= bit;
        }
    }
}

/* ---- kind-specific parts --------------------------------------------------------------- */

static const struct core_node *required(struct parser *p, const struct core_node *rule,
                                        const char *key, const char *path, const char *example)
{
    const struct core_node *n = core_node_get(rule, key);
    if (!n) {
        char kpath[SCHEMA_PATH_BUF], hint[SCHEMA_HINT_BUF];
        join(kpath, sizeof(kpath), path, key);
        snprintf(hint, sizeof(hint), "add it, e.g. '%s'", example);
        REPORT(p, rule, kpath, hint, "missing required key '%s' for kind '%s'", key,
               core_node_get(rule, "kind")->value);
    }
    return n;
}

static void compile_tags(struct parser *p, const struct core_node *rule, const char *path,
                         struct pol_rule *r)
{
    char kpath[SCHEMA_PATH_BUF], tpath[SCHEMA_PATH_BUF], fpath[SCHEMA_PATH_BUF];
    const struct core_node *n =
        required(p, rule, "tags", path, "tags: {team: {required: true}}");
    if (!n)
        return;
    join(kpath, sizeof(kpath), path, "tags");
    if (!expect(p, n, CORE_NODE_MAP, kpath, "a map of tag keys"))
        return;
    if (n->n == 0)
        REPORT(p, n, kpath, "name at least one tag", "tags must not be empty");
    r->tags = palloc(p, (n->n ? n->n : 1) * sizeof(*r->tags));
    if (!r->tags)
        return;
    for (size_t i = 0; i < n->n; i++) {
        const struct core_node *t = n->items[i];
        struct pol_tag_req *tr = &r->tags[r->ntags++];
        tr->key = pstr(p, n->keys[i]);
        tr->line = n->key_nodes[i]->line;
        tr->col = n->key_nodes[i]->col;
        join(tpath, sizeof(tpath), kpath, n->keys[i]);
        if (core_scalar_is_null(t) && t->kind == CORE_NODE_SCALAR) {
            tr->required = true; /* "team:" alone means required */
            continue;
        }
        if (!expect(p, t, CORE_NODE_MAP, tpath, "a map {required, pattern, values}"))
            continue;
        check_keys(p, t, tpath, tag_keys, NULL);
        const struct core_node *v;
        if ((v = core_node_get(t, "required"))) {
            join(fpath, sizeof(fpath), tpath, "required");
            get_bool(p, v, fpath, &tr->required);
        }
        if ((v = core_node_get(t, "pattern"))) {
            join(fpath, sizeof(fpath), tpath, "pattern");
            const char *pat = get_string(p, v, fpath);
            if (pat) {
                tr->pattern = pstr(p, pat);
                tr->re = compile_regex(p, v, fpath, pat);
            }
        }
        if ((v = core_node_get(t, "values"))) {
            join(fpath, sizeof(fpath), tpath, "values");
            string_list(p, v, fpath, true, &tr->values, &tr->nvalues);
            if (v->kind == CORE_NODE_SEQ && v->n == 0)
                REPORT(p, v, fpath, "list the allowed values or remove the key",
                       "values must not be empty");
        }
        /* a pattern that none of the allowed values matches leaves nothing allowed */
        if (tr->re && tr->nvalues) {
            pcre2_match_data *md = pcre2_match_data_create(1, NULL);
            size_t okv = 0;
            for (size_t j = 0; md && j < tr->nvalues; j++)
                okv += pcre2_match(tr->re, (PCRE2_SPTR)tr->values[j], PCRE2_ZERO_TERMINATED, 0,
                                   0, md, p->set->mctx) >= 0;
            if (!md)
                p->rc = CORE_E_NOMEM;
            else if (okv == 0)
                REPORT(p, v, fpath, "fix the pattern or the values",
                       "no allowed value of tag '%s' matches its pattern, so no value can pass",
                       tr->key);
            pcre2_match_data_free(md);
        }
    }
}

static void compile_techs(struct parser *p, const struct core_node *rule, const char *path,
                          struct pol_rule *r)
{
    char kpath[SCHEMA_PATH_BUF], tpath[SCHEMA_PATH_BUF];
    const struct core_node *n =
        required(p, rule, "technologies", path, "technologies: {postgres: [\"16\"]}");
    if (!n)
        return;
    join(kpath, sizeof(kpath), path, "technologies");
    if (!expect(p, n, CORE_NODE_MAP, kpath, "a map of technology: [versions]"))
        return;
    if (n->n == 0)
        REPORT(p, n, kpath, "list the approved technologies", "technologies must not be empty");
    r->techs = palloc(p, (n->n ? n->n : 1) * sizeof(*r->techs));
    if (!r->techs)
        return;
    for (size_t i = 0; i < n->n; i++) {
        struct pol_tech *t = &r->techs[r->ntechs++];
        t->name = pstr(p, n->keys[i]);
        join(tpath, sizeof(tpath), kpath, n->keys[i]);
        if (n->items[i]->kind == CORE_NODE_SCALAR && core_scalar_is_null(n->items[i]))
            continue; /* any version */
        string_list(p, n->items[i], tpath, true, &t->versions, &t->n);
    }
}

static void compile_bound(struct parser *p, const struct core_node *n, const char *path,
                          int what, struct pol_bound *b)
{
    char kpath[SCHEMA_PATH_BUF], s[SCHEMA_SHOW_BUF];
    if (!expect(p, n, CORE_NODE_MAP, path, "a map {min, max}"))
        return;
    check_keys(p, n, path, minmax_keys, NULL);
    for (int k = 0; k < 2; k++) {
        const struct core_node *v = core_node_get(n, minmax_keys[k]);
        if (!v)
            continue;
        join(kpath, sizeof(kpath), path, minmax_keys[k]);
        int64_t x = 0;
        bool ok;
        if (what == 0) {
            ok = get_int(p, v, kpath, 0, 1000, &x);
        } else if (v->kind != CORE_NODE_SCALAR || core_scalar_is_null(v) ||
                   core_scalar_is_bool(v, NULL)) {
            ok = false;
            REPORT(p, v, kpath, NULL, "expected a %s quantity, got %s",
                   what == 1 ? "CPU" : "memory", describe(v));
        } else {
            ok = (what == 1 ? core_parse_millicores(v->value, &x)
                            : core_parse_bytes(v->value, &x)) == 0;
            if (!ok)
                REPORT(p, v, kpath,
                       what == 1 ? "use cores (0.5, 2) or millicores (\"500m\")"
                                 : "use a number with an optional unit, e.g. \"256Mi\", \"8Gi\"",
                       "invalid %s quantity '%s'", what == 1 ? "CPU" : "memory",
                       schema_show(s, sizeof(s), v->value));
        }
        if (!ok)
            continue;
        if (k == 0) {
            b->has_min = true;
            b->min = x;
            b->min_line = v->line;
            b->min_col = v->col;
        } else {
            b->has_max = true;
            b->max = x;
            b->max_line = v->line;
            b->max_col = v->col;
        }
    }
    if (b->has_min && b->has_max && b->min > b->max) {
        const struct core_node *v = core_node_get(n, "min");
        join(kpath, sizeof(kpath), path, "min");
        REPORT(p, v, kpath, "lower min or raise max", "min is greater than max: no value fits");
    }
}

static void compile_bounds(struct parser *p, const struct core_node *rule, const char *path,
                           struct pol_rule *r)
{
    char kpath[SCHEMA_PATH_BUF], tpath[SCHEMA_PATH_BUF], bpath[SCHEMA_PATH_BUF];
    const struct core_node *n =
        required(p, rule, "tiers", path, "tiers: {\"1\": {replicas: {min: 2}}}");
    if (!n)
        return;
    join(kpath, sizeof(kpath), path, "tiers");
    if (!expect(p, n, CORE_NODE_MAP, kpath, "a map of tier: bounds"))
        return;
    if (n->n == 0)
        REPORT(p, n, kpath, "add bounds for at least one tier", "tiers must not be empty");
    r->tiers = palloc(p, (n->n ? n->n : 1) * sizeof(*r->tiers));
    if (!r->tiers)
        return;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i];
        join(tpath, sizeof(tpath), kpath, k);
        if (!(k[0] >= '1' && k[0] <= '4' && k[1] == 0)) {
            char s[SCHEMA_SHOW_BUF];
            REPORT(p, n->key_nodes[i], tpath, "tiers are \"1\" to \"4\"", "unknown tier '%s'",
                   schema_show(s, sizeof(s), k));
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < r->ntiers; j++)
            dup |= r->tiers[j].tier == k[0] - '0';
        if (dup) {
            REPORT(p, n->key_nodes[i], tpath, NULL, "tier %s is listed twice", k);
            continue;
        }
        struct pol_tier_bounds *tb = &r->tiers[r->ntiers++];
        tb->tier = k[0] - '0';
        const struct core_node *t = n->items[i];
        if (!expect(p, t, CORE_NODE_MAP, tpath, "a map {replicas, cpu, memory}"))
            continue;
        check_keys(p, t, tpath, bound_keys, NULL);
        struct pol_bound *bs[] = {&tb->replicas, &tb->cpu, &tb->memory};
        for (int b = 0; b < 3; b++) {
            const struct core_node *v = core_node_get(t, bound_keys[b]);
            if (!v)
                continue;
            join(bpath, sizeof(bpath), tpath, bound_keys[b]);
            compile_bound(p, v, bpath, b, bs[b]);
        }
    }
}

static void compile_domains(struct parser *p, const struct core_node *rule, const char *path,
                            struct pol_rule *r)
{
    char kpath[SCHEMA_PATH_BUF];
    const struct core_node *n = core_node_get(rule, "internal_domains");
    if (n) {
        join(kpath, sizeof(kpath), path, "internal_domains");
        string_list(p, n, kpath, false, &r->domains, &r->ndomains);
        return;
    }
    r->domains = (const char **)default_domains;
    r->ndomains = 3;
}

static void compile_exposure(struct parser *p, const struct core_node *rule, const char *path,
                             struct pol_rule *r)
{
    char kpath[SCHEMA_PATH_BUF];
    const struct core_node *n;
    compile_domains(p, rule, path, r);
    r->require_tls = true;
    if ((n = core_node_get(rule, "require_tls"))) {
        join(kpath, sizeof(kpath), path, "require_tls");
        get_bool(p, n, kpath, &r->require_tls);
    }
    if ((n = core_node_get(rule, "max_tier"))) {
        int64_t t;
        join(kpath, sizeof(kpath), path, "max_tier");
        if (get_int(p, n, kpath, 1, 4, &t))
            r->max_tier = (int)t;
    }
}

static void compile_class(struct parser *p, const struct core_node *rule, const char *path,
                          struct pol_rule *r)
{
    char kpath[SCHEMA_PATH_BUF];
    r->class_tag = "data-classification";
    opt_string(p, rule, "tag", path, &r->class_tag);
    compile_domains(p, rule, path, r);
    const struct core_node *n = required(p, rule, "confidential_values", path,
                                         "confidential_values: [confidential, restricted]");
    if (n) {
        join(kpath, sizeof(kpath), path, "confidential_values");
        string_list(p, n, kpath, false, &r->conf_values, &r->nconf);
        if (n->kind == CORE_NODE_SEQ && n->n == 0)
            REPORT(p, n, kpath, NULL, "confidential_values must not be empty");
    }
}

static void compile_provenance(struct parser *p, const struct core_node *rule, const char *path,
                               struct pol_rule *r)
{
    char kpath[SCHEMA_PATH_BUF];
    const struct core_node *n =
        required(p, rule, "builders", path, "builders: [pave-pipeline]");
    if (!n)
        return;
    join(kpath, sizeof(kpath), path, "builders");
    string_list(p, n, kpath, false, &r->builders, &r->nbuilders);
    if (n->kind == CORE_NODE_SEQ && n->n == 0)
        REPORT(p, n, kpath, NULL, "builders must not be empty");
}

static void compile_field(struct parser *p, const struct core_node *rule, const char *path,
                          struct pol_rule *r)
{
    compile_conds(p, rule, "all", path, &r->all, &r->nall);
    compile_conds(p, rule, "any", path, &r->any, &r->nany);
    compile_conds(p, rule, "none", path, &r->none, &r->nnone);
    if (!core_node_get(rule, "all") && !core_node_get(rule, "any") &&
        !core_node_get(rule, "none"))
        REPORT(p, rule, path, "add e.g. 'all: [{path: spec.replicas, op: \">=\", value: 2}]'",
               "a field rule needs conditions under 'all', 'any' or 'none'");
}

/* ---- rules and documents --------------------------------------------------------------- */

static struct pol_rule *new_rule(struct parser *p)
{
    struct policy_set *set = p->set;
    if (set->nrules == set->caprules) {
        size_t cap = set->caprules ? set->caprules * 2 : 32;
        struct pol_rule *v = core_realloc(set->rules, cap * sizeof(*v));
        if (!v) {
            p->rc = CORE_E_NOMEM;
            return NULL;
        }
        set->rules = v;
        set->caprules = cap;
    }
    struct pol_rule *r = &set->rules[set->nrules++];
    memset(r, 0, sizeof(*r));
    return r;
}

static void compile_rule(struct parser *p, const struct core_node *n, const char *path)
{
    char kpath[SCHEMA_PATH_BUF], s[SCHEMA_SHOW_BUF];
    if (!expect(p, n, CORE_NODE_MAP, path, "a rule map"))
        return;
    const struct core_node *idn = core_node_get(n, "id");
    const struct core_node *kn = core_node_get(n, "kind");
    const struct kind_def *kd = NULL;
    if (!idn)
        REPORT(p, n, path, "add it, e.g. 'id: tags-required'", "missing required key 'id'");
    if (!kn) {
        REPORT(p, n, path, "add it, e.g. 'kind: required-tags'", "missing required key 'kind'");
    } else {
        const char *names[NKINDS + 1];
        for (size_t i = 0; i < NKINDS; i++)
            names[i] = kind_defs[i].name;
        names[NKINDS] = NULL;
        join(kpath, sizeof(kpath), path, "kind");
        int k = choice(p, kn, kpath, names, "rule kind");
        if (k >= 0)
            kd = &kind_defs[k];
    }
    /* without a known kind only the common keys can be checked */
    check_keys(p, n, path, common_keys, kd ? kd->keys : NULL);
    if (!kd || p->set->nrules >= POLICY_MAX_RULES) {
        if (kd)
            REPORT(p, n, path, "split the policy set", "too many rules (at most %d)",
                   POLICY_MAX_RULES);
        return;
    }
    struct pol_rule *r = new_rule(p);
    if (!r)
        return;
    r->kind = kd->kind;
    r->kind_name = kd->name;
    r->policy = p->policy;
    r->file = p->file;
    r->line = n->line;
    r->col = n->col;
    r->severity = POLICY_MEDIUM;
    r->mode = POLICY_WARN;
    if (idn) {
        join(kpath, sizeof(kpath), path, "id");
        const char *id = get_string(p, idn, kpath);
        if (id && !core_is_dns_label(id)) {
            REPORT(p, idn, kpath, "1-63 of a-z, 0-9 and '-', e.g. 'tags-required'",
                   "invalid rule id '%s'", schema_show(s, sizeof(s), id));
        } else if (id) {
            r->id = pstr(p, id);
            r->line = idn->line;
            r->col = idn->col;
            for (size_t i = 0; i + 1 < p->set->nrules; i++) {
                const struct pol_rule *o = &p->set->rules[i];
                if (o->id && strcmp(o->id, id) == 0) {
                    char hint[SCHEMA_HINT_BUF];
                    snprintf(hint, sizeof(hint), "ids are unique across the set; first defined "
                                                 "at %s:%d:%d",
                             o->file, o->line, o->col);
                    REPORT(p, idn, kpath, hint, "duplicate rule id '%s'", id);
                    break;
                }
            }
        }
    }
    if (!r->id)
        r->id = "";
    opt_string(p, n, "description", path, &r->description);
    opt_string(p, n, "rationale", path, &r->rationale);
    opt_string(p, n, "remediation", path, &r->remediation);
    const struct core_node *v;
    if ((v = core_node_get(n, "severity"))) {
        join(kpath, sizeof(kpath), path, "severity");
        int c = choice(p, v, kpath, severity_names, "severity");
        if (c >= 0)
            r->severity = (enum policy_severity)(c + 1);
    }
    if ((v = core_node_get(n, "mode"))) {
        join(kpath, sizeof(kpath), path, "mode");
        int c = choice(p, v, kpath, mode_names, "mode");
        if (c >= 0)
            r->mode = (enum policy_mode)(c + 1);
    }
    if ((v = core_node_get(n, "scope"))) {
        join(kpath, sizeof(kpath), path, "scope");
        compile_scope(p, v, kpath, r, kd->subjects);
    }
    switch (kd->kind) {
    case POL_REQUIRED_TAGS: compile_tags(p, n, path, r); break;
    case POL_APPROVED_TECH: compile_techs(p, n, path, r); break;
    case POL_RESOURCE_BOUNDS: compile_bounds(p, n, path, r); break;
    case POL_EXPOSURE: compile_exposure(p, n, path, r); break;
    case POL_DATA_CLASS: compile_class(p, n, path, r); break;
    case POL_PROVENANCE: compile_provenance(p, n, path, r); break;
    case POL_FIELD: compile_field(p, n, path, r); break;
    }
    if (!r->remediation && r->id[0])
        warn(p, idn, "rule '%s' has no remediation: people who fail it will not know the fix",
             r->id);
}

static int compile_doc(void *arg, struct core_node *root, struct core_err *err)
{
    struct parser *p = arg;
    char kpath[SCHEMA_PATH_BUF], s[SCHEMA_SHOW_BUF];
    static const struct core_node start = {.line = 1, .col = 1};
    (void)err;
    if (!root)
        return 0; /* an empty document between '---' lines */
    if (!expect(p, root, CORE_NODE_MAP, "", "a Policy document (a map)"))
        return p->rc;
    check_keys(p, root, "", doc_keys, NULL);
    const char *names[] = {"apiVersion", "kind", "metadata", "rules"};
    const char *examples[] = {"apiVersion: " API_VERSION, "kind: Policy",
                              "metadata: {name: org-baseline}", "rules: [...]"};
    for (int i = 0; i < 4; i++)
        if (!core_node_get(root, names[i])) {
            char hint[SCHEMA_HINT_BUF];
            snprintf(hint, sizeof(hint), "add it, e.g. '%s'", examples[i]);
            REPORT(p, root->n ? root : &start, names[i], hint, "missing required key '%s'",
                   names[i]);
        }
    const struct core_node *v;
    if ((v = core_node_get(root, "apiVersion"))) {
        const char *t = get_string(p, v, "apiVersion");
        if (t && strcmp(t, API_VERSION) != 0)
            REPORT(p, v, "apiVersion", "use 'apiVersion: " API_VERSION "'",
                   "unsupported apiVersion '%s'", schema_show(s, sizeof(s), t));
    }
    if ((v = core_node_get(root, "kind"))) {
        const char *t = get_string(p, v, "kind");
        if (t && strcmp(t, "Policy") != 0)
            REPORT(p, v, "kind", "policy files hold 'kind: Policy' documents",
                   "unexpected kind '%s'", schema_show(s, sizeof(s), t));
    }
    p->policy = "";
    if ((v = core_node_get(root, "metadata")) && expect(p, v, CORE_NODE_MAP, "metadata", "a map")) {
        check_keys(p, v, "metadata", meta_keys, NULL);
        const struct core_node *nn = core_node_get(v, "name");
        if (!nn) {
            REPORT(p, v, "metadata.name", "add it, e.g. 'name: org-baseline'",
                   "missing required key 'name'");
        } else {
            const char *t = get_string(p, nn, "metadata.name");
            if (t && !core_is_dns_label(t))
                REPORT(p, nn, "metadata.name", "1-63 of a-z, 0-9 and '-'",
                       "invalid policy name '%s'", schema_show(s, sizeof(s), t));
            else if (t)
                p->policy = pstr(p, t);
        }
        const struct core_node *dn = core_node_get(v, "description");
        if (dn)
            get_string(p, dn, "metadata.description");
    }
    if ((v = core_node_get(root, "rules")) &&
        expect(p, v, CORE_NODE_SEQ, "rules", "a list of rules")) {
        if (v->n == 0)
            REPORT(p, v, "rules", "add at least one rule", "rules must not be empty");
        for (size_t i = 0; i < v->n && !schema_stopped(&p->sc) && !p->rc; i++) {
            idx_path(kpath, sizeof(kpath), "rules", i);
            compile_rule(p, v->items[i], kpath);
        }
    }
    return p->rc;
}

/* ---- contradictions -------------------------------------------------------------------- */

static bool lists_meet(const char **a, size_t na, const char **b, size_t nb)
{
    if (!na || !nb)
        return true;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (strcmp(a[i], b[j]) == 0)
                return true;
    return false;
}

static unsigned eff_subjects(const struct pol_rule *r)
{
    return r->scope.subjects ? r->scope.subjects : policy_kind_default_subjects(r->kind);
}

static bool scopes_overlap(const struct pol_rule *a, const struct pol_rule *b)
{
    const struct pol_scope *x = &a->scope, *y = &b->scope;
    return lists_meet(x->teams, x->nteams, y->teams, y->nteams) &&
           lists_meet(x->envs, x->nenvs, y->envs, y->nenvs) &&
           (!x->tiers || !y->tiers || (x->tiers & y->tiers)) &&
           (eff_subjects(a) & eff_subjects(b)) &&
           (!x->gates || !y->gates || (x->gates & y->gates));
}

static void at_report(struct parser *p, const char *file, int line, int col, const char *path,
                      const char *hint, const char *fmt, ...) CORE_PRINTF(7, 8);
static void at_report(struct parser *p, const char *file, int line, int col, const char *path,
                      const char *hint, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct core_node at = {.line = line, .col = col};
    const char *saved = p->sc.file;
    p->sc.file = file;
    REPORT(p, &at, path, hint, "%s", msg);
    p->sc.file = saved;
}

static void values_text(char *out, size_t outsz, const char **v, size_t n)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && o < outsz; i++)
        o += (size_t)snprintf(out + o, outsz - o, "%s%s", i ? ", " : "", v[i]);
}

static void contradict_tags(struct parser *p, const struct pol_rule *a, const struct pol_rule *b)
{
    char va[256], vb[256], hint[SCHEMA_HINT_BUF];
    for (size_t i = 0; i < a->ntags; i++) {
        const struct pol_tag_req *ta = &a->tags[i];
        for (size_t j = 0; j < b->ntags; j++) {
            const struct pol_tag_req *tb = &b->tags[j];
            if (!ta->nvalues || !tb->nvalues || strcmp(ta->key, tb->key) ||
                lists_meet(ta->values, ta->nvalues, tb->values, tb->nvalues))
                continue;
            values_text(va, sizeof(va), ta->values, ta->nvalues);
            values_text(vb, sizeof(vb), tb->values, tb->nvalues);
            snprintf(hint, sizeof(hint), "rule '%s' at %s:%d:%d allows only %s; make the value "
                                         "lists overlap or the scopes disjoint",
                     a->id, a->file, ta->line, ta->col, va);
            at_report(p, b->file, tb->line, tb->col, b->id, hint,
                      "rules '%s' and '%s' contradict: tag '%s' must be one of (%s) and one of "
                      "(%s)",
                      a->id, b->id, ta->key, va, vb);
        }
    }
}

static void contradict_bounds(struct parser *p, const struct pol_rule *a,
                              const struct pol_rule *b)
{
    static const char *names[] = {"replicas", "cpu", "memory"};
    char hint[SCHEMA_HINT_BUF];
    for (size_t i = 0; i < a->ntiers; i++)
        for (size_t j = 0; j < b->ntiers; j++) {
            if (a->tiers[i].tier != b->tiers[j].tier)
                continue;
            const struct pol_bound *ba[] = {&a->tiers[i].replicas, &a->tiers[i].cpu,
                                            &a->tiers[i].memory};
            const struct pol_bound *bb[] = {&b->tiers[j].replicas, &b->tiers[j].cpu,
                                            &b->tiers[j].memory};
            for (int k = 0; k < 3; k++) {
                const struct pol_bound *lo = NULL, *hi = NULL;
                const struct pol_rule *lr = NULL, *hr = NULL;
                if (ba[k]->has_min && bb[k]->has_max && ba[k]->min > bb[k]->max)
                    lo = ba[k], lr = a, hi = bb[k], hr = b;
                else if (bb[k]->has_min && ba[k]->has_max && bb[k]->min > ba[k]->max)
                    lo = bb[k], lr = b, hi = ba[k], hr = a;
                if (!lo)
                    continue;
                snprintf(hint, sizeof(hint), "the other bound is at %s:%d:%d", hr->file,
                         hi->max_line, hi->max_col);
                at_report(p, lr->file, lo->min_line, lo->min_col, lr->id, hint,
                          "rules '%s' and '%s' contradict: tier %d %s min (rule '%s') is above "
                          "max (rule '%s')",
                          a->id, b->id, a->tiers[i].tier, names[k], lr->id, hr->id);
            }
        }
}

static bool value_eq(const struct pol_value *x, const struct pol_value *y)
{
    if (x->is_num && y->is_num)
        return x->num == y->num;
    if (x->type != y->type)
        return false;
    switch (x->type) {
    case POL_V_NULL: return true;
    case POL_V_BOOL: return x->b == y->b;
    case POL_V_STR:
    case POL_V_NUM: return strcmp(x->s, y->s) == 0;
    case POL_V_LIST: return false;
    }
    return false;
}

static bool in_list(const struct pol_value *v, const struct pol_value *list)
{
    for (size_t i = 0; i < list->n; i++)
        if (value_eq(v, &list->items[i]))
            return true;
    return false;
}

/* The numeric interval a condition allows: [lo, hi] with open ends. */
static bool cond_range(const struct pol_cond *c, double *lo, bool *lo_open, double *hi,
                       bool *hi_open)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    *lo_open = *hi_open = false;
    if (!c->val.is_num)
        return false;
    switch (c->op) {
    case POL_OP_EQ: *lo = *hi = c->val.num; return true;
    case POL_OP_GT: *lo = c->val.num; *lo_open = true; return true;
    case POL_OP_GE: *lo = c->val.num; return true;
    case POL_OP_LT: *hi = c->val.num; *hi_open = true; return true;
    case POL_OP_LE: *hi = c->val.num; return true;
    default: return false;
    }
}

static bool paths_equal(const struct pol_path *a, const struct pol_path *b)
{
    if (a->n != b->n || !a->segs || !b->segs)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (a->segs[i].kind != b->segs[i].kind)
            return false;
        if (a->segs[i].kind == POL_SEG_KEY && strcmp(a->segs[i].key, b->segs[i].key))
            return false;
        if (a->segs[i].kind == POL_SEG_INDEX && a->segs[i].index != b->segs[i].index)
            return false;
    }
    return true;
}

/* Whether a document can satisfy both conditions (on the same path, no [*]). */
static bool conds_compatible(const struct pol_cond *x, const struct pol_cond *y)
{
    if (x->op == POL_OP_ABSENT || y->op == POL_OP_ABSENT)
        return x->op == y->op;
    if (x->op == POL_OP_EQ && y->op == POL_OP_EQ)
        return value_eq(&x->val, &y->val);
    for (int k = 0; k < 2; k++) {
        const struct pol_cond *e = k ? y : x, *o = k ? x : y;
        if (e->op != POL_OP_EQ)
            continue;
        if (o->op == POL_OP_NE && value_eq(&e->val, &o->val))
            return false;
        if (o->op == POL_OP_IN && !in_list(&e->val, &o->val))
            return false;
        if (o->op == POL_OP_NOT_IN && in_list(&e->val, &o->val))
            return false;
    }
    if (x->op == POL_OP_IN && y->op == POL_OP_IN) {
        bool meet = false;
        for (size_t i = 0; i < x->val.n && !meet; i++)
            meet = in_list(&x->val.items[i], &y->val);
        if (!meet)
            return false;
    }
    double l1, h1, l2, h2;
    bool lo1, ho1, lo2, ho2;
    if (cond_range(x, &l1, &lo1, &h1, &ho1) && cond_range(y, &l2, &lo2, &h2, &ho2)) {
        double lo = l1 > l2 ? l1 : l2, hi = h1 < h2 ? h1 : h2;
        bool lopen = l1 > l2 ? lo1 : l2 > l1 ? lo2 : (lo1 || lo2);
        bool hopen = h1 < h2 ? ho1 : h2 < h1 ? ho2 : (ho1 || ho2);
        if (lo > hi || (lo == hi && (lopen || hopen)))
            return false;
    }
    return true;
}

static void cond_text(char *out, size_t outsz, const struct pol_cond *c)
{
    if (!op_takes_value(c->op))
        snprintf(out, outsz, "%s %s", c->path.text, policy_op_name(c->op));
    else if (c->val.type == POL_V_LIST)
        snprintf(out, outsz, "%s %s [...]", c->path.text, policy_op_name(c->op));
    else
        snprintf(out, outsz, "%s %s %s", c->path.text, policy_op_name(c->op), c->val.s);
}

static void contradict_fields(struct parser *p, const struct pol_rule *a, const struct pol_rule *b)
{
    char ta[300], tb[300], hint[SCHEMA_HINT_BUF];
    for (size_t i = 0; i < a->nall; i++) {
        const struct pol_cond *x = &a->all[i];
        if (!x->op || !x->path.text || x->path.has_any)
            continue;
        for (size_t j = a == b ? i + 1 : 0; j < b->nall; j++) {
            const struct pol_cond *y = &b->all[j];
            if (!y->op || !y->path.text || y->path.has_any || !paths_equal(&x->path, &y->path) ||
                conds_compatible(x, y))
                continue;
            cond_text(ta, sizeof(ta), x);
            cond_text(tb, sizeof(tb), y);
            snprintf(hint, sizeof(hint), "the other condition is at %s:%d:%d; fix the values or "
                                         "make the scopes disjoint",
                     a->file, x->line, x->col);
            if (a == b)
                at_report(p, b->file, y->line, y->col, b->id, hint,
                          "rule '%s' can never pass: '%s' and '%s' cannot both hold", a->id, ta,
                          tb);
            else
                at_report(p, b->file, y->line, y->col, b->id, hint,
                          "rules '%s' and '%s' contradict: '%s' and '%s' cannot both hold", a->id,
                          b->id, ta, tb);
        }
    }
}

static void find_contradictions(struct parser *p)
{
    struct policy_set *set = p->set;
    for (size_t i = 0; i < set->nrules && !schema_stopped(&p->sc); i++) {
        const struct pol_rule *a = &set->rules[i];
        if (a->kind == POL_FIELD)
            contradict_fields(p, a, a);
        for (size_t j = i + 1; j < set->nrules; j++) {
            const struct pol_rule *b = &set->rules[j];
            if (a->kind != b->kind || !scopes_overlap(a, b))
                continue;
            if (a->kind == POL_REQUIRED_TAGS)
                contradict_tags(p, a, b);
            else if (a->kind == POL_RESOURCE_BOUNDS)
                contradict_bounds(p, a, b);
            else if (a->kind == POL_FIELD)
                contradict_fields(p, a, b);
        }
    }
}

/* ---- entry points ---------------------------------------------------------------------- */

void policy_set_free(struct policy_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->ncodes; i++)
        pcre2_code_free(set->codes[i]);
    core_free(set->codes);
    core_free(set->rules);
    pcre2_match_context_free(set->mctx);
    core_arena_release(&set->arena);
    core_free(set);
}

/* "file:3:5: message" from the document parser: position into a diagnostic. */
static void syntax_problem(struct parser *p, const char *file, const struct core_err *perr)
{
    int line = 0, col = 0, off = 0;
    const char *msg = perr->msg;
    size_t fl = strlen(file);
    if (strncmp(msg, file, fl) == 0 && sscanf(msg + fl, ":%d:%d: %n", &line, &col, &off) == 2 &&
        off > 0)
        msg += fl + (size_t)off;
    struct core_node at = {.line = line, .col = col};
    REPORT(p, line ? &at : NULL, "", "check the YAML syntax", "%s", msg);
}

struct policy_set *policy_set_parse_diags(const struct policy_doc *docs, size_t ndocs,
                                          json_t **warnings, struct schema_diags *diags,
                                          struct core_err *err)
{
    struct schema_diags local;
    struct parser p = {0};
    struct core_buf all;
    int rc = 0;

    schema_diags_init(&local);
    core_buf_init(&all, 0);
    if (warnings)
        *warnings = NULL;
    if (!diags)
        diags = &local;
    size_t first = diags->n;
    p.set = core_calloc(1, sizeof(*p.set));
    if (!p.set)
        return core_err_set(err, CORE_E_NOMEM, "policy: out of memory"), NULL;
    core_arena_init(&p.set->arena, POLICY_ARENA_CAP);
    p.sc.diags = diags;
    p.set->mctx = pcre2_match_context_create(NULL);
    if (!p.set->mctx || (warnings && !(p.warnings = json_array()))) {
        rc = CORE_E_NOMEM;
        goto out;
    }
    pcre2_set_match_limit(p.set->mctx, POLICY_MATCH_LIMIT);
    pcre2_set_depth_limit(p.set->mctx, POLICY_DEPTH_LIMIT);
    p.set->max_ovector = 1;
    if (ndocs == 0)
        REPORT(&p, NULL, "", "give at least one policy file", "no policy documents");
    for (size_t i = 0; i < ndocs && !p.rc && !schema_stopped(&p.sc); i++) {
        const char *name = docs[i].name ? docs[i].name : "<input>";
        struct core_err perr = {0};
        p.file = pstr(&p, name);
        if (!p.file)
            break;
        p.sc.file = p.file;
        if (docs[i].len > POLICY_MAX_DOC) {
            REPORT(&p, NULL, "", "split it into several files",
                   "policy file is too large (%zu bytes, at most %u)", docs[i].len,
                   POLICY_MAX_DOC);
            continue;
        }
        int drc = core_doc_parse_stream(name, docs[i].text ? docs[i].text : "", docs[i].len,
                                        compile_doc, &p, &perr);
        if (drc == CORE_E_NOMEM || p.rc)
            p.rc = CORE_E_NOMEM;
        else if (drc)
            syntax_problem(&p, name, &perr);
        if (!docs[i].len || !docs[i].text)
            REPORT(&p, NULL, "", "start with 'apiVersion: " API_VERSION "'",
                   "policy file is empty");
        rc = core_buf_add(&all, docs[i].text ? docs[i].text : "", docs[i].len);
        if (!rc)
            rc = core_buf_addc(&all, '\0');
        if (rc) {
            p.rc = rc;
            break;
        }
    }
    if (!p.rc && p.sc.problems == 0)
        find_contradictions(&p);
    if (p.rc || p.sc.rc) {
        rc = CORE_E_NOMEM;
        goto out;
    }
    if (p.sc.problems) {
        struct core_buf txt;
        core_buf_init(&txt, 0);
        struct schema_diags view = {.items = diags->items + first, .n = diags->n - first};
        schema_diags_format(&view, &txt);
        if (txt.len && txt.data[txt.len - 1] == '\n')
            txt.data[--txt.len] = 0;
        rc = core_err_set(err, CORE_E_INVAL, "%zu policy problem%s:\n%s", p.sc.problems,
                          p.sc.problems == 1 ? "" : "s", txt.data);
        core_buf_release(&txt);
        goto out;
    }
    core_sha256_hex(all.data, all.len, p.set->digest);
out:
    if (rc == CORE_E_NOMEM)
        core_err_set(err, rc, "policy: out of memory");
    core_buf_release(&all);
    schema_diags_release(&local);
    if (rc) {
        json_decref(p.warnings);
        policy_set_free(p.set);
        return NULL;
    }
    if (warnings)
        *warnings = p.warnings;
    return p.set;
}

struct policy_set *policy_set_parse(const struct policy_doc *docs, size_t ndocs,
                                    json_t **warnings, struct core_err *err)
{
    return policy_set_parse_diags(docs, ndocs, warnings, NULL, err);
}

const char *policy_set_digest(const struct policy_set *set)
{
    return set->digest;
}

static json_t *strs_json(const char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *mask_json(unsigned mask, const char *const *names, size_t nnames)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < nnames; i++)
        if (mask & (1u << (i + 1)))
            json_array_append_new(a, json_string(names[i]));
    return a;
}

json_t *policy_set_rules(const struct policy_set *set)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < set->nrules; i++) {
        const struct pol_rule *r = &set->rules[i];
        json_t *tiers = json_array();
        for (int t = 1; tiers && t <= 4; t++)
            if (r->scope.tiers & (1u << t))
                json_array_append_new(tiers, json_integer(t));
        json_t *scope = json_pack(
            "{s:o, s:o, s:o, s:o, s:o}", "teams", strs_json(r->scope.teams, r->scope.nteams),
            "envs", strs_json(r->scope.envs, r->scope.nenvs), "tiers", tiers, "subjects",
            mask_json(eff_subjects(r), subject_names, 3), "gates",
            mask_json(r->scope.gates, gate_names, 5));
        json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s?, s:o?}", "id", r->id,
                              "policy", r->policy, "kind", r->kind_name, "description",
                              r->description, "severity", policy_severity_name(r->severity),
                              "mode", policy_mode_name(r->mode), "rationale", r->rationale,
                              "remediation", r->remediation, "scope", scope);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}
