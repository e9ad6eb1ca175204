/*
 * The schema walker: diagnostics, the table-driven validator, generic validators, the parse
 * entry point and the Markdown reference. See schema.h for the contract.
 *
 * check_node() walks a document tree against a `struct schema_field` table and keeps going
 * after every problem; each problem lands at the file:line:column of the offending node (the key
 * for unknown or missing keys, the value for bad values).
 */
#include "schema/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Characters of untrusted text quoted in one message. */
#define SHOW_CHARS 60
#define MSG_BUF 1024

/* ---- diagnostics ----------------------------------------------------------------------- */

void schema_diags_init(struct schema_diags *d)
{
    d->items = NULL;
    d->n = 0;
    d->cap = 0;
}

static void diag_release(struct schema_diag *g)
{
    core_free(g->file);
    g->file = NULL;
    core_free(g->path);
    g->path = NULL;
    core_free(g->message);
    g->message = NULL;
    core_free(g->hint);
    g->hint = NULL;
}

void schema_diags_release(struct schema_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        diag_release(&d->items[i]);
    core_free(d->items);
    schema_diags_init(d);
}

int schema_diags_add(struct schema_diags *d, const char *file, int line, int col, const char *path,
                     const char *hint, const char *fmt, ...)
{
    struct schema_diag g = {.line = line, .col = col};
    int rc = CORE_E_NOMEM;
    va_list ap;

    if (!d || !fmt)
        return CORE_E_INVAL;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        rc = CORE_E_INVAL;
        goto out;
    }
    g.message = core_malloc((size_t)n + 1);
    if (!g.message)
        goto out;
    va_start(ap, fmt);
    vsnprintf(g.message, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if ((file && !(g.file = core_strdup(file))) || (path && !(g.path = core_strdup(path))) ||
        (hint && !(g.hint = core_strdup(hint))))
        goto out;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        struct schema_diag *items = core_realloc(d->items, cap * sizeof(*items));
        if (!items)
            goto out;
        d->items = items;
        d->cap = cap;
    }
    d->items[d->n++] = g;
    memset(&g, 0, sizeof(g));
    rc = 0;
out:
    diag_release(&g);
    return rc;
}

/* Appends s with control characters escaped, so each diagnostic stays on one line. */
static int add_escaped(struct core_buf *out, const char *s)
{
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        if (*p == '\n')
            rc = core_buf_adds(out, "\\n");
        else if (*p == '\t')
            rc = core_buf_adds(out, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            rc = core_buf_addf(out, "\\x%02x", *p);
        else
            rc = core_buf_addc(out, (char)*p);
    }
    return rc;
}

int schema_diags_format(const struct schema_diags *d, struct core_buf *out)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < d->n; i++) {
        const struct schema_diag *g = &d->items[i];
        rc = add_escaped(out, g->file ? g->file : "<input>");
        if (!rc && g->line > 0)
            rc = g->col > 0 ? core_buf_addf(out, ":%d:%d", g->line, g->col)
                            : core_buf_addf(out, ":%d", g->line);
        if (!rc)
            rc = core_buf_adds(out, ": ");
        if (!rc)
            rc = add_escaped(out, g->message ? g->message : "");
        if (!rc && g->hint) {
            rc = core_buf_adds(out, " (");
            if (!rc)
                rc = add_escaped(out, g->hint);
            if (!rc)
                rc = core_buf_addc(out, ')');
        }
        if (!rc)
            rc = core_buf_addc(out, '\n');
    }
    return rc;
}

/* ---- text helpers ---------------------------------------------------------------------- */

/*
 * Renders untrusted text for a message: at most SHOW_CHARS characters (then "..."), control
 * characters escaped, never splitting a UTF-8 sequence. Input is valid UTF-8 (the document
 * parser checked), but invalid bytes are escaped anyway. returns: out.
 */
const char *schema_show(char *out, size_t outsz, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, o = 0, chars = 0;
    while (i < n) {
        unsigned cp = 0;
        size_t l = core_utf8_decode((const char *)p + i, n - i, &cp);
        char piece[8];
        size_t pl;
        if (l == 0) {
            pl = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", p[i]);
            l = 1;
        } else if (cp == '\n') {
            pl = (size_t)snprintf(piece, sizeof(piece), "\\n");
        } else if (cp == '\t') {
            pl = (size_t)snprintf(piece, sizeof(piece), "\\t");
        } else if (cp < 0x20 || cp == 0x7f) {
            pl = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", cp);
        } else {
            memcpy(piece, p + i, l);
            pl = l;
        }
        if (chars == SHOW_CHARS || o + pl + 4 >= outsz) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, piece, pl);
        o += pl;
        i += l;
        chars++;
    }
    out[o] = 0;
    return out;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/*
 * First control character in s, or 0 when there is none: C0 and C1 controls, DEL, and the
 * bidirectional overrides that can make text display differently from what it is. With
 * `multiline`, tab and newline are allowed.
 */
static unsigned find_control(const char *s, bool multiline)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    while (i < n) {
        unsigned cp = 0;
        size_t l = core_utf8_decode((const char *)p + i, n - i, &cp);
        if (l == 0)
            return 0xFFFD;
        if (multiline && (cp == '\n' || cp == '\t')) {
            i += l;
            continue;
        }
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
            (cp >= 0x2066 && cp <= 0x2069))
            return cp ? cp : 0xFFFD;
        i += l;
    }
    return 0;
}

/* Appends a segment to a dotted path; keys that are not plain identifiers use ["..."]. */
void schema_join_path(char *out, size_t outsz, const char *parent, const char *key)
{
    bool plain = *key != 0;
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            plain = false;
    char shown[SCHEMA_SHOW_BUF];
    schema_show(shown, sizeof(shown), key);
    if (!plain)
        snprintf(out, outsz, "%s[\"%s\"]", parent, shown);
    else if (*parent)
        snprintf(out, outsz, "%s.%s", parent, shown);
    else
        snprintf(out, outsz, "%s", shown);
}

/* ---- validation context ---------------------------------------------------------------- */

void schema_report(struct schema_ctx *ctx, const struct core_node *at, const char *path,
                   const char *hint, const char *fmt, ...)
{
    char msg[MSG_BUF];
    va_list ap;
    if (ctx->problems > SCHEMA_MAX_DIAGS)
        return;
    ctx->problems++;
    if (ctx->rc || !ctx->diags)
        return;
    if (ctx->problems > SCHEMA_MAX_DIAGS) {
        if (schema_diags_add(ctx->diags, ctx->file, 0, 0, "", "fix these and run again",
                             "too many problems; stopping after %d", SCHEMA_MAX_DIAGS))
            ctx->rc = CORE_E_NOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (schema_diags_add(ctx->diags, ctx->file, at ? at->line : 0, at ? at->col : 0,
                         path ? path : "", hint, "%s", msg))
        ctx->rc = CORE_E_NOMEM;
}

bool schema_stopped(const struct schema_ctx *ctx)
{
    return ctx->problems > SCHEMA_MAX_DIAGS;
}

static const char *label(const struct schema_field *f)
{
    return f->key ? f->key : f->noun ? f->noun : "value";
}

/* ---- typed views of nodes -------------------------------------------------------------- */

bool schema_is_string(const struct core_node *n)
{
    if (!n || n->kind != CORE_NODE_SCALAR)
        return false;
    return n->is_quoted || !(core_scalar_is_null(n) || core_scalar_is_bool(n, NULL) ||
                             core_scalar_is_number(n, NULL));
}

/* "string \"two\"", "integer 2", "a map"... for "expected X, got Y" messages. */
static const char *describe(const struct core_node *n, char *out, size_t outsz)
{
    char s[SCHEMA_SHOW_BUF];
    if (n->kind == CORE_NODE_MAP)
        return "a map";
    if (n->kind == CORE_NODE_SEQ)
        return "a list";
    schema_show(s, sizeof(s), n->value);
    if (schema_is_string(n))
        snprintf(out, outsz, "string \"%s\"", s);
    else if (core_scalar_is_null(n))
        snprintf(out, outsz, "null");
    else if (core_scalar_is_bool(n, NULL))
        snprintf(out, outsz, "boolean %s", s);
    else if (core_scalar_is_int(n, NULL))
        snprintf(out, outsz, "integer %s", s);
    else
        snprintf(out, outsz, "number %s", s);
    return out;
}

static const char *type_name(enum schema_type t)
{
    switch (t) {
    case SCHEMA_STRING: return "a string";
    case SCHEMA_INT: return "an integer";
    case SCHEMA_NUMBER: return "a number";
    case SCHEMA_DURATION: return "a duration";
    case SCHEMA_CPU: return "a CPU quantity";
    case SCHEMA_BYTES: return "a memory quantity";
    case SCHEMA_MAP:
    case SCHEMA_DICT: return "a map";
    case SCHEMA_LIST: return "a list";
    case SCHEMA_BOOL: return "true or false";
    }
    return "a value";
}

static bool type_matches(enum schema_type t, const struct core_node *n)
{
    switch (t) {
    case SCHEMA_STRING:
    case SCHEMA_DURATION: return schema_is_string(n);
    case SCHEMA_INT: return core_scalar_is_int(n, NULL);
    case SCHEMA_NUMBER: return core_scalar_is_number(n, NULL);
    case SCHEMA_CPU:
    case SCHEMA_BYTES: return schema_is_string(n) || core_scalar_is_number(n, NULL);
    case SCHEMA_MAP:
    case SCHEMA_DICT: return n->kind == CORE_NODE_MAP;
    case SCHEMA_LIST: return n->kind == CORE_NODE_SEQ;
    case SCHEMA_BOOL: return core_scalar_is_bool(n, NULL);
    }
    return false;
}

/* Reports a type mismatch with a hint about the usual cause. returns: whether the type is right */
static bool check_type(struct schema_ctx *ctx, const struct schema_field *f,
                       const struct core_node *n, const char *path)
{
    char got[SCHEMA_SHOW_BUF + 32], hint[SCHEMA_HINT_BUF], s[SCHEMA_SHOW_BUF];
    const char *h = NULL;
    if (type_matches(f->type, n))
        return true;
    if (n->kind == CORE_NODE_SCALAR) {
        schema_show(s, sizeof(s), n->value);
        if (core_scalar_is_null(n)) {
            h = "give it a value or remove the key";
        } else if (f->type == SCHEMA_STRING && !n->is_quoted) {
            snprintf(hint, sizeof(hint), "put it in quotes: \"%s\"", s);
            h = hint;
        } else if ((f->type == SCHEMA_INT || f->type == SCHEMA_NUMBER) && n->is_quoted) {
            struct core_node plain = *n;
            plain.is_quoted = false;
            if (f->type == SCHEMA_INT ? core_scalar_is_int(&plain, NULL)
                                   : core_scalar_is_number(&plain, NULL)) {
                snprintf(hint, sizeof(hint), "remove the quotes: %s", s);
                h = hint;
            }
        } else if (f->type == SCHEMA_INT && core_scalar_is_number(n, NULL)) {
            h = "use a whole number";
        } else if (f->type == SCHEMA_DURATION && core_scalar_is_number(n, NULL)) {
            snprintf(hint, sizeof(hint), "add a unit, e.g. \"%ss\" or \"%sms\"", s, s);
            h = hint;
        } else if (f->type == SCHEMA_BOOL && n->is_quoted &&
                   (!strcmp(n->value, "true") || !strcmp(n->value, "false"))) {
            snprintf(hint, sizeof(hint), "remove the quotes: %s", s);
            h = hint;
        } else if (f->type == SCHEMA_BOOL) {
            h = "write true or false";
        } else if (f->type == SCHEMA_LIST && schema_is_string(n)) {
            snprintf(hint, sizeof(hint), "write a list: [\"%s\"]", s);
            h = hint;
        }
    }
    schema_report(ctx, n, path, h, "expected %s, got %s", type_name(f->type),
                  describe(n, got, sizeof(got)));
    return false;
}

/* ---- the walk -------------------------------------------------------------------------- */

static void check_node(struct schema_ctx *ctx, const struct schema_field *f,
                       const struct core_node *n, const struct core_node *key, const char *path);

static const struct schema_field *find_field(const struct schema_field *fields, const char *key)
{
    for (const struct schema_field *f = fields; f->key; f++)
        if (strcmp(f->key, key) == 0)
            return f;
    return NULL;
}

/* "a, b or c" from a NULL-terminated list, for hints. */
static void list_words(char *out, size_t outsz, const char *const *words, const char *last_sep)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; words[i] && o < outsz; i++) {
        const char *sep = i == 0 ? "" : words[i + 1] ? ", " : last_sep;
        int w = snprintf(out + o, outsz - o, "%s%s", sep, words[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

static void unknown_key(struct schema_ctx *ctx, const struct schema_field *fields,
                        const struct core_node *kn, const char *key, const char *path)
{
    const char *choices[32];
    size_t n = 0;
    char hint[SCHEMA_HINT_BUF], words[SCHEMA_HINT_BUF - 32], s[SCHEMA_SHOW_BUF];
    for (const struct schema_field *f = fields;
         f->key && n + 1 < sizeof(choices) / sizeof(*choices); f++)
        choices[n++] = f->key;
    choices[n] = NULL;
    const char *best = core_did_you_mean(key, choices);
    if (best) {
        snprintf(hint, sizeof(hint), "did you mean '%s'?", best);
    } else {
        list_words(words, sizeof(words), choices, ", ");
        snprintf(hint, sizeof(hint), "allowed keys here: %s", words);
    }
    schema_report(ctx, kn, path, hint, "unknown key '%s'", schema_show(s, sizeof(s), key));
}

static void check_map(struct schema_ctx *ctx, const struct schema_field *fields,
                      const struct core_node *n, const struct core_node *key, const char *path)
{
    char kpath[SCHEMA_PATH_BUF];
    for (size_t i = 0; i < n->n && !schema_stopped(ctx); i++) {
        const struct schema_field *f = find_field(fields, n->keys[i]);
        schema_join_path(kpath, sizeof(kpath), path, n->keys[i]);
        if (!f)
            unknown_key(ctx, fields, n->key_nodes[i], n->keys[i], kpath);
        else
            check_node(ctx, f, n->items[i], n->key_nodes[i], kpath);
    }
    for (const struct schema_field *f = fields; f->key && !schema_stopped(ctx); f++) {
        if (!(f->flags & SCHEMA_REQUIRED) || core_node_get(n, f->key))
            continue;
        char hint[SCHEMA_HINT_BUF];
        if (f->example)
            snprintf(hint, sizeof(hint), "add it, e.g. '%s'", f->example);
        schema_join_path(kpath, sizeof(kpath), path, f->key);
        schema_report(ctx, key ? key : n, kpath, f->example ? hint : NULL,
                      "missing required key '%s'", f->key);
    }
}

static void check_string(struct schema_ctx *ctx, const struct schema_field *f,
                         const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF], words[SCHEMA_HINT_BUF - 32];
    const char *val = n->value;
    if (f->choices) {
        for (size_t i = 0; f->choices[i]; i++)
            if (strcmp(f->choices[i], val) == 0)
                return;
        const char *best = core_did_you_mean(val, f->choices);
        list_words(words, sizeof(words), f->choices, " or ");
        if (best)
            snprintf(hint, sizeof(hint), "did you mean '%s'?", best);
        else if (f->choices[1])
            snprintf(hint, sizeof(hint), "use one of %s", words);
        else
            snprintf(hint, sizeof(hint), "use '%s'", words);
        schema_report(ctx, n, path, hint, "%s %s '%s'", f->choices[1] ? "unknown" : "unsupported",
                      label(f), schema_show(s, sizeof(s), val));
        return;
    }
    size_t chars = utf8_chars(val);
    if (f->min > 0 && chars < (size_t)f->min) {
        schema_report(ctx, n, path, NULL, "%s must not be empty", label(f));
        return;
    }
    if (f->max > 0 && chars > (size_t)f->max) {
        schema_report(ctx, n, path, NULL, "%s is too long (%zu characters, at most %lld)", label(f),
                      chars, (long long)f->max);
        return;
    }
    unsigned cp = find_control(val, f->flags & SCHEMA_MULTILINE);
    if (cp)
        schema_report(ctx, n, path, cp == '\n' || cp == '\r' ? "write it on one line" : NULL,
                      "%s must not contain control characters (found U+%04X)", label(f), cp);
}

/* A duration bound in the largest unit that divides it: "6h", "90s", "250ms". returns: out */
static const char *show_ms(char *out, size_t outsz, int64_t ms)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
        if (ms > 0 && ms % units[i].ms == 0) {
            snprintf(out, outsz, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return out;
        }
    }
    snprintf(out, outsz, "%lldms", (long long)ms);
    return out;
}

static void check_node(struct schema_ctx *ctx, const struct schema_field *f,
                       const struct core_node *n, const struct core_node *key, const char *path)
{
    char s[SCHEMA_SHOW_BUF], ipath[SCHEMA_PATH_BUF], bound[32];
    int64_t x = 0;
    size_t before = ctx->problems;
    bool container = f->type == SCHEMA_MAP || f->type == SCHEMA_DICT || f->type == SCHEMA_LIST;

    if (schema_stopped(ctx) || !check_type(ctx, f, n, path))
        return;
    if ((f->type == SCHEMA_LIST || f->type == SCHEMA_DICT) && f->max > 0 && n->n > (size_t)f->max) {
        schema_report(ctx, n, path, NULL, "%s has too many %s (%zu, at most %lld)", label(f),
                      f->type == SCHEMA_LIST ? "items" : "keys", n->n, (long long)f->max);
        return;
    }
    switch (f->type) {
    case SCHEMA_STRING:
        check_string(ctx, f, n, path);
        break;
    case SCHEMA_INT:
        core_scalar_is_int(n, &x);
        if (x < f->min || x > f->max) {
            if (f->max == SCHEMA_UNBOUNDED)
                schema_report(ctx, n, path, NULL, "%s must be at least %lld, got %lld", label(f),
                              (long long)f->min, (long long)x);
            else
                schema_report(ctx, n, path, NULL, "%s must be between %lld and %lld, got %lld",
                              label(f), (long long)f->min, (long long)f->max, (long long)x);
        }
        break;
    case SCHEMA_NUMBER:
        break;
    case SCHEMA_DURATION:
        if (core_parse_duration_ms(n->value, &x))
            schema_report(ctx, n, path,
                          "use whole numbers with a unit: ms, s, m, h or d, e.g. \"300ms\", "
                          "\"5s\", \"1m30s\"", "invalid duration '%s' for %s",
                          schema_show(s, sizeof(s), n->value), label(f));
        else if (x < f->min && f->min <= 1)
            schema_report(ctx, n, path, NULL, "%s must be longer than 0, got '%s'", label(f),
                          schema_show(s, sizeof(s), n->value));
        else if (x < f->min)
            schema_report(ctx, n, path, NULL, "%s must be at least %s, got '%s'", label(f),
                          show_ms(bound, sizeof(bound), f->min),
                          schema_show(s, sizeof(s), n->value));
        else if (f->max > 0 && x > f->max)
            schema_report(ctx, n, path, NULL, "%s must be at most %s, got '%s'", label(f),
                          show_ms(bound, sizeof(bound), f->max),
                          schema_show(s, sizeof(s), n->value));
        break;
    case SCHEMA_BOOL:
        break;
    case SCHEMA_CPU:
        if (core_parse_millicores(n->value, &x))
            schema_report(ctx, n, path, "use cores (0.5, 2) or millicores (\"500m\")",
                          "invalid CPU quantity '%s'", schema_show(s, sizeof(s), n->value));
        else if (x <= 0)
            schema_report(ctx, n, path, "use at least \"1m\"", "%s must be more than 0", label(f));
        break;
    case SCHEMA_BYTES:
        if (core_parse_bytes(n->value, &x))
            schema_report(ctx, n, path,
                          "use a number with an optional unit: Ki, Mi, Gi, Ti (powers of 1024) "
                          "or k, M, G, T, e.g. \"256Mi\"", "invalid memory quantity '%s'",
                          schema_show(s, sizeof(s), n->value));
        else if (x <= 0)
            schema_report(ctx, n, path, NULL, "%s must be more than 0", label(f));
        break;
    case SCHEMA_MAP:
        check_map(ctx, f->sub, n, key, path);
        break;
    case SCHEMA_DICT:
        for (size_t i = 0; i < n->n && !schema_stopped(ctx); i++) {
            size_t b = ctx->problems;
            schema_join_path(ipath, sizeof(ipath), path, n->keys[i]);
            if (f->key_check)
                f->key_check(ctx, f, n->key_nodes[i], ipath);
            if (ctx->problems == b)
                check_node(ctx, f->item, n->items[i], n->key_nodes[i], ipath);
        }
        break;
    case SCHEMA_LIST:
        if (n->n < (size_t)f->min && f->min == 1)
            schema_report(ctx, n, path, NULL, "%s must not be empty", label(f));
        else if (n->n < (size_t)f->min)
            schema_report(ctx, n, path, NULL, "%s needs at least %lld items, got %zu", label(f),
                          (long long)f->min, n->n);
        for (size_t i = 0; i < n->n && !schema_stopped(ctx); i++) {
            snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
            check_node(ctx, f->item, n->items[i], NULL, ipath);
        }
        break;
    }
    if (f->check && !schema_stopped(ctx) && (container || ctx->problems == before))
        f->check(ctx, f, n, path);
}

/* ---- semantic checks ------------------------------------------------------------------- */

/* Value of key in map, with its key node; NULL when absent. */
const struct core_node *schema_map_get(const struct core_node *map, const char *key,
                                       const struct core_node **key_node)
{
    if (key_node)
        *key_node = NULL;
    if (!map || map->kind != CORE_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->keys[i], key) == 0) {
            if (key_node)
                *key_node = map->key_nodes[i];
            return map->items[i];
        }
    }
    return NULL;
}

void schema_check_dns_label(struct schema_ctx *ctx, const struct schema_field *f,
                            const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF], fix[64];
    size_t o = 0;
    if (core_is_dns_label(n->value))
        return;
    /* Suggest the nearest label: lower case, runs of other characters become one '-'. */
    for (const char *p = n->value; *p && o < sizeof(fix) - 1; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            c = '-';
        if (c == '-' && (o == 0 || fix[o - 1] == '-'))
            continue;
        fix[o++] = c;
    }
    while (o > 0 && fix[o - 1] == '-')
        o--;
    fix[o] = 0;
    if (o > 0 && core_is_dns_label(fix))
        snprintf(hint, sizeof(hint), "try '%s'", fix);
    schema_report(ctx, n, path, o > 0 && core_is_dns_label(fix) ? hint : NULL,
                  "invalid %s '%s': must be a DNS label (1-63 characters of lower-case "
                  "letters, digits and '-', starting and ending with a letter or digit)", label(f),
                  schema_show(s, sizeof(s), n->value));
}

void schema_check_dns_name(struct schema_ctx *ctx, const struct schema_field *f,
                           const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF], part[64];
    const char *p = n->value;
    bool ok = *p && strlen(p) <= 253;
    while (ok) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l >= sizeof(part)) {
            ok = false;
            break;
        }
        memcpy(part, p, l);
        part[l] = 0;
        ok = core_is_dns_label(part);
        if (!dot)
            break;
        p = dot + 1;
    }
    if (!ok)
        schema_report(ctx, n, path, "e.g. 'payments.internal'",
                      "invalid %s '%s': must be a DNS name (DNS labels of a-z, 0-9 and '-' "
                      "joined by dots, at most 253 characters)", label(f),
                      schema_show(s, sizeof(s), n->value));
}

void schema_check_relpath(struct schema_ctx *ctx, const struct schema_field *f,
                          const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF];
    const char *val = n->value;
    schema_show(s, sizeof(s), val);
    if (!*val) {
        schema_report(ctx, n, path, NULL, "%s must not be empty", label(f));
        return;
    }
    if (val[0] == '/') {
        schema_report(ctx, n, path,
                      "remove the leading '/'; paths are relative to the repository root",
                      "%s must be a relative path, got '%s'", label(f), s);
        return;
    }
    if (strchr(val, '\\')) {
        schema_report(ctx, n, path, "use '/' to separate directories", "%s '%s' contains '\\'",
                      label(f), s);
        return;
    }
    for (const char *p = val; *p;) {
        size_t l = strcspn(p, "/");
        if (l == 2 && p[0] == '.' && p[1] == '.') {
            schema_report(ctx, n, path, "paths must stay inside the repository",
                          "%s '%s' must not contain '..'", label(f), s);
            return;
        }
        p += l;
        if (*p == '/')
            p++;
    }
}

void schema_check_urlpath(struct schema_ctx *ctx, const struct schema_field *f,
                          const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF];
    schema_show(s, sizeof(s), n->value);
    if (n->value[0] != '/') {
        snprintf(hint, sizeof(hint), "try '/%s'", s);
        schema_report(ctx, n, path, hint, "%s must start with '/', got '%s'", label(f), s);
    } else if (strpbrk(n->value, " #")) {
        schema_report(ctx, n, path, "percent-encode spaces as %20",
                      "%s '%s' must not contain ' ' or '#'", label(f), s);
    }
}

static bool is_env_name(const char *s)
{
    if (!*s || strlen(s) > 255 || (*s >= '0' && *s <= '9'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

/* Used for env keys (n is the key node) and secret names (n is the item). */
void schema_check_env_name(struct schema_ctx *ctx, const struct schema_field *f,
                           const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF], fix[64];
    size_t o = 0;
    if (is_env_name(n->value))
        return;
    for (const char *p = n->value; *p && o < sizeof(fix) - 1; p++) {
        char c = *p;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            c = '_';
        fix[o++] = c;
    }
    fix[o] = 0;
    bool has_fix = o > 0 && is_env_name(fix);
    if (has_fix)
        snprintf(hint, sizeof(hint), "try '%s'", fix);
    schema_report(ctx, n, path, has_fix ? hint : NULL,
                  "invalid %s '%s': use letters, digits and '_', not starting with a digit",
                  f->type == SCHEMA_DICT ? "environment variable name" : label(f),
                  schema_show(s, sizeof(s), n->value));
}

/* Duplicate strings in a list, reported at the later occurrence. */
void schema_check_unique(struct schema_ctx *ctx, const struct schema_field *f,
                         const struct core_node *n, const char *path)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF], ipath[SCHEMA_PATH_BUF];
    for (size_t i = 1; i < n->n; i++) {
        if (!schema_is_string(n->items[i]))
            continue;
        for (size_t j = 0; j < i; j++) {
            if (schema_is_string(n->items[j]) &&
                strcmp(n->items[i]->value, n->items[j]->value) == 0) {
                snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
                snprintf(hint, sizeof(hint), "already listed at line %d", n->items[j]->line);
                schema_report(ctx, n->items[i], ipath, hint, "duplicate %s '%s'", label(f->item),
                              schema_show(s, sizeof(s), n->items[i]->value));
                break;
            }
        }
    }
}

/* ---- input checks ---------------------------------------------------------------------- */

/*
 * The document parser refuses NUL bytes and invalid UTF-8 too, but without a position; find the
 * first bad byte here so the diagnostic can point at it. Columns count characters, as libyaml's do.
 */
static bool check_bytes(struct schema_ctx *ctx, const char *noun, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    struct core_node at = {.line = 1, .col = 1};
    size_t i = 0;
    while (i < len) {
        unsigned cp = 0;
        size_t l = p[i] ? core_utf8_decode((const char *)p + i, len - i, &cp) : 0;
        if (p[i] == 0) {
            schema_report(ctx, &at, "", "remove it; the file must be text", "NUL byte in the %s",
                          noun);
            return false;
        }
        if (l == 0) {
            schema_report(ctx, &at, "", "save the file as UTF-8", "invalid UTF-8 byte 0x%02x",
                          p[i]);
            return false;
        }
        if (cp == '\n') {
            at.line++;
            at.col = 1;
        } else {
            at.col++;
        }
        i += l;
    }
    return true;
}

/* The character at line:col (1-based, columns in characters), or -1. */
static int char_at(const char *text, size_t len, int line, int col)
{
    size_t i = 0;
    for (int l = 1; l < line && i < len; i++)
        if (text[i] == '\n')
            l++;
    for (int c = 1; c < col && i < len && text[i] != '\n'; c++) {
        i++;
        while (i < len && ((unsigned char)text[i] & 0xC0) == 0x80)
            i++;
    }
    return i < len ? (unsigned char)text[i] : -1;
}

/* Turns the parser's "file:line:col: message" into one diagnostic with a position. */
static void syntax_diag(struct schema_ctx *ctx, const struct core_err *perr, const char *text,
                        size_t len)
{
    const char *msg = perr->msg;
    size_t fl = strlen(ctx->file);
    struct core_node at = {0};
    int consumed = 0;
    if (strncmp(msg, ctx->file, fl) == 0 && msg[fl] == ':') {
        msg += fl + 1;
        if (sscanf(msg, "%d:%d: %n", &at.line, &at.col, &consumed) == 2 && consumed > 0)
            msg += consumed;
        else
            at.line = at.col = 0;
        msg += strspn(msg, " ");
    }
    const char *hint = NULL;
    if (at.line > 0 && char_at(text, len, at.line, at.col) == '\t')
        hint = "indent with spaces; YAML does not allow tabs";
    else if (strstr(msg, "mapping values are not allowed"))
        hint = "check the indentation, or quote values that contain ': '";
    schema_report(ctx, at.line > 0 ? &at : NULL, "", hint, "invalid YAML: %s", msg);
}

/* Orders diagnostics [from, to) by position (stable: the walk order breaks ties), so a long
 * report reads top to bottom. */
static void sort_diags(struct schema_diags *d, size_t from, size_t to)
{
    for (size_t i = from + 1; i < to; i++) {
        struct schema_diag g = d->items[i];
        size_t j = i;
        while (j > from && (d->items[j - 1].line > g.line ||
                            (d->items[j - 1].line == g.line && d->items[j - 1].col > g.col))) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = g;
    }
}

/* ---- the reference --------------------------------------------------------------------- */

static const char *doc_type(const struct schema_field *f)
{
    switch (f->type) {
    case SCHEMA_STRING: return f->choices ? "enum" : "string";
    case SCHEMA_INT: return "integer";
    case SCHEMA_NUMBER: return "number";
    case SCHEMA_DURATION: return "duration";
    case SCHEMA_CPU: return "cpu";
    case SCHEMA_BYTES: return "bytes";
    case SCHEMA_MAP: return "map";
    case SCHEMA_DICT: return "map of string";
    case SCHEMA_BOOL: return "boolean";
    case SCHEMA_LIST:
        return f->item && f->item->type == SCHEMA_MAP ? "list of maps" : "list of strings";
    }
    return "";
}

static int md_rows(struct core_buf *out, const struct schema_field *f, const char *path)
{
    char p[SCHEMA_PATH_BUF], words[SCHEMA_HINT_BUF];
    int rc = 0;
    if (f->key)
        snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", f->key);
    else
        snprintf(p, sizeof(p), "%s", path);
    if (f->key) {
        rc = core_buf_addf(out, "| `%s` | %s | %s | %s | %s", p, doc_type(f),
                           f->flags & SCHEMA_REQUIRED ? "yes" : "", f->dflt ? f->dflt : "", f->doc);
        if (!rc && f->type == SCHEMA_INT) {
            if (f->max == SCHEMA_UNBOUNDED)
                rc = core_buf_addf(out, " (>= %lld)", (long long)f->min);
            else
                rc = core_buf_addf(out, " (%lld..%lld)", (long long)f->min, (long long)f->max);
        }
        if (!rc && (f->type == SCHEMA_LIST || f->type == SCHEMA_DICT) && f->max > 0)
            rc = core_buf_addf(out, " (at most %lld %s)", (long long)f->max,
                               f->type == SCHEMA_LIST ? "items" : "keys");
        if (!rc && f->choices) {
            list_words(words, sizeof(words), f->choices, ", ");
            rc = core_buf_addf(out, " (one of: %s)", words);
        }
        if (!rc)
            rc = core_buf_adds(out, " |\n");
    }
    if (!rc && f->type == SCHEMA_MAP)
        for (const struct schema_field *c = f->sub; !rc && c->key; c++)
            rc = md_rows(out, c, p);
    if (!rc && f->type == SCHEMA_LIST && f->item && f->item->type == SCHEMA_MAP) {
        strncat(p, "[]", sizeof(p) - strlen(p) - 1);
        rc = md_rows(out, f->item, p);
    }
    if (!rc && f->type == SCHEMA_DICT) {
        strncat(p, ".<key>", sizeof(p) - strlen(p) - 1);
        rc = core_buf_addf(out, "| `%s` | %s |  |  | %s |\n", p, doc_type(f->item), f->item->doc);
    }
    return rc;
}

/* ---- entry points ---------------------------------------------------------------------- */

/* The terminating entry of a root table: describes the document itself (see schema.h). */
static const struct schema_field *doc_entry(const struct schema_field *root_fields)
{
    const struct schema_field *f = root_fields;
    while (f->key)
        f++;
    return f;
}

int schema_parse(const char *file, const char *text, size_t len, size_t max_len,
                 const struct schema_field *root_fields, struct core_doc *doc,
                 struct schema_diags *diags, struct core_err *err)
{
    static const struct core_node doc_start = {.line = 1, .col = 1};
    const struct schema_field *self = doc_entry(root_fields);
    const char *noun = self->noun ? self->noun : "document";
    struct schema_field root = {
        .noun = noun, .type = SCHEMA_MAP, .sub = root_fields, .check = self->check,
    };
    struct schema_ctx ctx = {.file = file ? file : "<input>", .diags = diags};
    struct core_err perr = {0};
    size_t first = diags ? diags->n : 0;
    char hint[SCHEMA_HINT_BUF];
    int rc = 0;

    memset(doc, 0, sizeof(*doc));
    if (!text)
        text = "";
    if (len > max_len) {
        schema_report(&ctx, NULL, "", self->doc, "%s is too large (%zu bytes, at most %zu)", noun,
                      len, max_len);
        rc = ctx.rc ? ctx.rc
                    : core_err_set(err, CORE_E_TOO_BIG, "%s '%s' is too large (%zu bytes)", noun,
                                   ctx.file, len);
        goto out;
    }
    if (check_bytes(&ctx, noun, text, len)) {
        rc = core_doc_parse(doc, ctx.file, text, len, &perr);
        if (rc && rc != CORE_E_INVAL) {
            core_err_set(err, rc, "%s", perr.msg);
            goto out;
        }
        if (self->example)
            snprintf(hint, sizeof(hint), "start with '%s'", self->example);
        if (rc)
            syntax_diag(&ctx, &perr, text, len);
        else if (!doc->root)
            schema_report(&ctx, &doc_start, "", self->example ? hint : NULL, "%s is empty", noun);
        else
            check_node(&ctx, &root, doc->root, NULL, "");
        rc = 0;
    }
    /* past the cap, the last diagnostic says so and stays last */
    if (diags && !ctx.rc)
        sort_diags(diags, first, ctx.problems > SCHEMA_MAX_DIAGS ? diags->n - 1 : diags->n);
    if (ctx.rc) {
        rc = core_err_set(err, ctx.rc, "%s '%s': out of memory", noun, ctx.file);
        goto out;
    }
    if (ctx.problems)
        rc = core_err_set(err, CORE_E_INVAL, "%s '%s' is invalid (%zu %s)", noun, ctx.file,
                          ctx.problems, ctx.problems == 1 ? "problem" : "problems");
out:
    if (rc)
        core_doc_release(doc);
    return rc;
}

int schema_markdown(const struct schema_field *root_fields, struct core_buf *out)
{
    int rc = core_buf_adds(out, "| Key | Type | Required | Default | Description |\n"
                                "|---|---|---|---|---|\n");
    for (const struct schema_field *f = root_fields; !rc && f->key; f++)
        rc = md_rows(out, f, "");
    return rc;
}
