/*
 * The service manifest (pave.yaml): diagnostics, the schema tables and the validator.
 *
 * Validation is driven by static tables of `struct sch_field`, one array per map level (key,
 * type, flags, bounds, default, validator, one-line doc). check_node() walks the document tree
 * against them and keeps going after every problem, so one run reports everything wrong with a
 * manifest, each problem at the file:line:column of the offending node: the key for unknown or
 * missing keys, the value for bad values. The same tables generate the key reference in
 * docs/manifest.md (catalog_manifest_schema_markdown()).
 *
 * Untrusted text quoted in messages goes through show(), which escapes control characters and
 * truncates, so a diagnostic is always one printable line of bounded size.
 */
#include "catalog/catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stop after this many problems: a broken file should not produce megabytes of diagnostics. */
#define MANIFEST_MAX_DIAGS 100
/* Characters of untrusted text quoted in one message, and the buffer that holds them. */
#define SHOW_CHARS 60
#define SHOW_BUF 256
#define PATH_BUF 512
#define MSG_BUF 1024
#define HINT_BUF 640
/* The canonical JSON is at most a few times larger than the input (escapes). */
#define MANIFEST_JSON_MAX (16u * CATALOG_MANIFEST_MAX)
#define SCH_UNBOUNDED INT64_MAX

/* Not yet in catalog.h: renders the key reference of pave.yaml as a Markdown table. */

/* ---- diagnostics ----------------------------------------------------------------------- */

void catalog_diags_init(struct catalog_diags *d)
{
    d->items = NULL;
    d->n = 0;
    d->cap = 0;
}

static void diag_release(struct catalog_diag *g)
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

void catalog_diags_release(struct catalog_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        diag_release(&d->items[i]);
    core_free(d->items);
    catalog_diags_init(d);
}

int catalog_diags_add(struct catalog_diags *d, const char *file, int line, int col,
                      const char *path, const char *hint, const char *fmt, ...)
{
    struct catalog_diag g = {.line = line, .col = col};
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
        struct catalog_diag *items = core_realloc(d->items, cap * sizeof(*items));
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

int catalog_diags_format(const struct catalog_diags *d, struct core_buf *out)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < d->n; i++) {
        const struct catalog_diag *g = &d->items[i];
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
static const char *show(char *out, size_t outsz, const char *s)
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
static void join_path(char *out, size_t outsz, const char *parent, const char *key)
{
    bool plain = *key != 0;
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            plain = false;
    char shown[SHOW_BUF];
    show(shown, sizeof(shown), key);
    if (!plain)
        snprintf(out, outsz, "%s[\"%s\"]", parent, shown);
    else if (*parent)
        snprintf(out, outsz, "%s.%s", parent, shown);
    else
        snprintf(out, outsz, "%s", shown);
}

/* ---- validation context ---------------------------------------------------------------- */

struct vctx {
    const char *file;
    struct catalog_diags *diags; /* may be NULL: problems are still counted */
    size_t problems;
    int rc; /* CORE_E_NOMEM once a diagnostic could not be stored */
};

static void report(struct vctx *v, const struct core_node *at, const char *path, const char *hint,
                   const char *fmt, ...) CORE_PRINTF(5, 6);

static void report(struct vctx *v, const struct core_node *at, const char *path, const char *hint,
                   const char *fmt, ...)
{
    char msg[MSG_BUF];
    va_list ap;
    if (v->problems > MANIFEST_MAX_DIAGS)
        return;
    v->problems++;
    if (v->rc || !v->diags)
        return;
    if (v->problems > MANIFEST_MAX_DIAGS) {
        if (catalog_diags_add(v->diags, v->file, 0, 0, "", "fix these and run again",
                              "too many problems; stopping after %d", MANIFEST_MAX_DIAGS))
            v->rc = CORE_E_NOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (catalog_diags_add(v->diags, v->file, at ? at->line : 0, at ? at->col : 0,
                          path ? path : "", hint, "%s", msg))
        v->rc = CORE_E_NOMEM;
}

static bool stopped(const struct vctx *v)
{
    return v->problems > MANIFEST_MAX_DIAGS;
}

/* ---- the schema ------------------------------------------------------------------------ */

enum sch_type {
    SCH_STRING = 1, /* quoted or plain text; unquoted numbers, booleans and null are not strings */
    SCH_INT,        /* plain integer within [min, max] */
    SCH_NUMBER,     /* plain integer or decimal */
    SCH_DURATION,   /* "300ms", "5s", "1m30s"; at least min milliseconds */
    SCH_CPU,        /* cores (0.5, 2) or millicores ("500m") */
    SCH_BYTES,      /* 1024, "256Mi", "1G" */
    SCH_MAP,        /* fixed keys, described by `sub` */
    SCH_DICT,       /* free keys checked by `key_check`; values described by `item` */
    SCH_LIST,       /* items described by `item`; at least min items */
};

enum sch_flags {
    SCH_REQUIRED = 1 << 0,
    SCH_MULTILINE = 1 << 1, /* strings may contain newlines and tabs */
};

struct sch_field;
/* Runs after the type and bounds checks pass (for maps and lists: always, after the children). */
typedef void (*sch_check_fn)(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                             const char *path);

struct sch_field {
    const char *key;  /* NULL for list items and dictionary values */
    const char *noun; /* what an item is called in messages ("secret name") */
    enum sch_type type;
    unsigned flags;
    int64_t min, max; /* INT: value range; STRING: length in characters (max 0 = no limit);
                       * LIST, DICT: item count (also bounds the cross-checks, which compare
                       * items pairwise); DURATION: minimum milliseconds */
    const char *dflt; /* default, for the docs; NULL when there is none */
    const char *const *choices;   /* STRING: the allowed values */
    sch_check_fn check;           /* semantic check */
    sch_check_fn key_check;       /* DICT: check for each key (node is the key node) */
    const struct sch_field *sub;  /* MAP: fields, terminated by an entry without key */
    const struct sch_field *item; /* LIST items, DICT values */
    const char *example;          /* shown when a required key is missing */
    const char *doc;              /* one line for the reference */
};

static const char *label(const struct sch_field *f)
{
    return f->key ? f->key : f->noun ? f->noun : "value";
}

static void check_dns_label(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                            const char *path);
static void check_dns_name(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                           const char *path);
static void check_relpath(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                          const char *path);
static void check_urlpath(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                          const char *path);
static void check_env_name(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                           const char *path);
static void check_tag_key(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                          const char *path);
static void check_unique(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                         const char *path);
static void check_ports(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                        const char *path);
static void check_health(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                         const char *path);
static void check_run(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                      const char *path);
static void check_rollout(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                          const char *path);
static void check_dependency(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                             const char *path);
static void check_dependencies(struct vctx *v, const struct sch_field *f,
                               const struct core_node *n, const char *path);
static void check_availability(struct vctx *v, const struct sch_field *f,
                               const struct core_node *n, const char *path);

static const char *const api_versions[] = {CATALOG_API_VERSION, NULL};
static const char *const kinds[] = {"Service", NULL};
static const char *const protocols[] = {"http", "tcp", "grpc", NULL};
static const char *const strategies[] = {"rolling", "recreate", "canary", NULL};

static const struct sch_field tag_value = {
    .noun = "tag value", .type = SCH_STRING, .max = 256,
    .doc = "tag value: a string of at most 256 characters (quote numbers: \"1234\")",
};

static const struct sch_field metadata_fields[] = {
    {.key = "name", .type = SCH_STRING, .flags = SCH_REQUIRED, .check = check_dns_label,
     .example = "name: payments-api",
     .doc = "service name, unique in the catalog; a DNS label (1-63 of a-z, 0-9, '-')"},
    {.key = "team", .type = SCH_STRING, .flags = SCH_REQUIRED, .check = check_dns_label,
     .example = "team: payments",
     .doc = "owning team; a DNS label naming a team that exists in the catalog"},
    {.key = "tier", .type = SCH_INT, .min = 1, .max = 4, .dflt = "3",
     .doc = "criticality; 1 is the most critical"},
    {.key = "description", .type = SCH_STRING, .flags = SCH_MULTILINE, .max = 500,
     .doc = "short summary shown in the portal, at most 500 characters"},
    {.key = "tags", .type = SCH_DICT, .max = 64, .key_check = check_tag_key, .item = &tag_value,
     .doc = "tags for cost allocation and policies; keys 1-63 of a-z, 0-9, '-', '.', '_', '/'"},
    {0},
};

static const struct sch_field build_fields[] = {
    {.key = "pipeline", .type = SCH_STRING, .max = 1024, .check = check_relpath,
     .doc = "pipeline definition, a path relative to the repository root"},
    {0},
};

static const struct sch_field command_item = {
    .noun = "command argument", .type = SCH_STRING, .min = 1, .max = 4096,
    .doc = "a program argument",
};

static const struct sch_field port_fields[] = {
    {.key = "name", .type = SCH_STRING, .flags = SCH_REQUIRED, .check = check_dns_label,
     .example = "name: http", .doc = "port name, unique within the service; a DNS label"},
    {.key = "port", .type = SCH_INT, .flags = SCH_REQUIRED, .min = 1, .max = 65535,
     .example = "port: 8080", .doc = "port number the process listens on, unique"},
    {.key = "protocol", .type = SCH_STRING, .choices = protocols, .dflt = "http",
     .doc = "wire protocol, for load balancing and health checks"},
    {0},
};

static const struct sch_field port_item = {
    .noun = "port", .type = SCH_MAP, .sub = port_fields, .doc = "one listening port",
};

static const struct sch_field health_fields[] = {
    {.key = "path", .type = SCH_STRING, .flags = SCH_REQUIRED, .max = 1024,
     .check = check_urlpath, .example = "path: /healthz",
     .doc = "HTTP path probed for health; starts with '/'"},
    {.key = "interval", .type = SCH_DURATION, .min = 1, .dflt = "10s",
     .doc = "time between probes"},
    {.key = "timeout", .type = SCH_DURATION, .min = 1, .dflt = "1s",
     .doc = "time a probe may take; must be less than interval"},
    {0},
};

static const struct sch_field resources_fields[] = {
    {.key = "cpu", .type = SCH_CPU, .doc = "CPU limit in cores (0.5, 2) or millicores (\"500m\")"},
    {.key = "memory", .type = SCH_BYTES,
     .doc = "memory limit in bytes with an optional unit (\"256Mi\", \"1Gi\", \"500M\")"},
    {0},
};

static const struct sch_field env_value = {
    .noun = "env value", .type = SCH_STRING, .flags = SCH_MULTILINE, .max = 4096,
    .doc = "value: a string (quote numbers and booleans: \"8080\", \"true\")",
};

static const struct sch_field secret_item = {
    .noun = "secret name", .type = SCH_STRING, .check = check_env_name,
    .doc = "name of a secret injected as an environment variable",
};

static const struct sch_field run_fields[] = {
    {.key = "command", .type = SCH_LIST, .min = 1, .max = 256, .item = &command_item,
     .doc = "program and arguments, a non-empty list of strings"},
    {.key = "ports", .type = SCH_LIST, .max = 64, .item = &port_item, .check = check_ports,
     .doc = "listening ports; names and numbers must be unique"},
    {.key = "health", .type = SCH_MAP, .sub = health_fields, .check = check_health,
     .doc = "HTTP health check"},
    {.key = "resources", .type = SCH_MAP, .sub = resources_fields,
     .doc = "resource limits per replica"},
    {.key = "env", .type = SCH_DICT, .max = 256, .key_check = check_env_name, .item = &env_value,
     .doc = "environment variables; names match `[A-Za-z_][A-Za-z0-9_]*`"},
    {.key = "secrets", .type = SCH_LIST, .max = 256, .item = &secret_item, .check = check_unique,
     .doc = "secret names injected as environment variables; unique, not also in env"},
    {0},
};

static const struct sch_field rollout_fields[] = {
    {.key = "strategy", .type = SCH_STRING, .choices = strategies, .dflt = "rolling",
     .doc = "how running replicas are replaced by new ones"},
    {.key = "maxSurge", .type = SCH_INT, .min = 0, .max = SCH_UNBOUNDED, .dflt = "1",
     .doc = "extra replicas allowed during a rolling update"},
    {.key = "maxUnavailable", .type = SCH_INT, .min = 0, .max = SCH_UNBOUNDED, .dflt = "0",
     .doc = "replicas that may be down during a rolling update; not both 0 with maxSurge"},
    {0},
};

static const struct sch_field expose_path_item = {
    .noun = "path", .type = SCH_STRING, .max = 1024, .check = check_urlpath,
    .doc = "URL path prefix routed to the service; starts with '/'",
};

static const struct sch_field expose_fields[] = {
    {.key = "host", .type = SCH_STRING, .flags = SCH_REQUIRED, .check = check_dns_name,
     .example = "host: payments.internal",
     .doc = "host name routed to the service; DNS labels joined by dots, at most 253"},
    {.key = "paths", .type = SCH_LIST, .min = 1, .max = 64, .item = &expose_path_item,
     .dflt = "[\"/\"]",
     .check = check_unique, .doc = "URL path prefixes; each starts with '/', no duplicates"},
    {0},
};

static const struct sch_field dependency_fields[] = {
    {.key = "service", .type = SCH_STRING, .check = check_dns_label,
     .doc = "another service in the catalog (exactly one of service or resource)"},
    {.key = "resource", .noun = "resource type", .type = SCH_STRING, .check = check_dns_label,
     .doc = "type of a platform resource, e.g. postgres, redis (exactly one of service or "
            "resource)"},
    {.key = "name", .type = SCH_STRING, .check = check_dns_label,
     .doc = "resource instance name, required with resource; a DNS label"},
    {.key = "version", .type = SCH_STRING, .min = 1, .max = 64,
     .doc = "wanted resource version, e.g. \"16\" (quote numbers)"},
    {0},
};

static const struct sch_field dependency_item = {
    .noun = "dependency", .type = SCH_MAP, .sub = dependency_fields, .check = check_dependency,
    .doc = "one dependency",
};

static const struct sch_field slo_fields[] = {
    {.key = "availability", .type = SCH_NUMBER, .check = check_availability,
     .doc = "availability objective in percent, above 0 and below 100 (99.9)"},
    {.key = "latencyP99", .type = SCH_DURATION, .min = 1,
     .doc = "99th percentile latency objective"},
    {0},
};

static const struct sch_field spec_fields[] = {
    {.key = "build", .type = SCH_MAP, .sub = build_fields, .doc = "how CI builds the service"},
    {.key = "run", .type = SCH_MAP, .sub = run_fields, .check = check_run,
     .doc = "how the runtime runs the service"},
    {.key = "replicas", .type = SCH_INT, .min = 0, .max = 100, .dflt = "1",
     .doc = "number of instances"},
    {.key = "rollout", .type = SCH_MAP, .sub = rollout_fields, .check = check_rollout,
     .doc = "how new versions replace old ones"},
    {.key = "expose", .type = SCH_MAP, .sub = expose_fields,
     .doc = "routing from the ingress to the service"},
    {.key = "dependencies", .type = SCH_LIST, .max = 128, .item = &dependency_item,
     .check = check_dependencies, .doc = "services and resources this service uses"},
    {.key = "slo", .type = SCH_MAP, .sub = slo_fields, .doc = "service level objectives"},
    {.key = "docs", .type = SCH_STRING, .max = 1024, .check = check_relpath,
     .doc = "documentation folder, a path relative to the repository root"},
    {0},
};

static const struct sch_field root_fields[] = {
    {.key = "apiVersion", .type = SCH_STRING, .flags = SCH_REQUIRED, .choices = api_versions,
     .example = "apiVersion: " CATALOG_API_VERSION,
     .doc = "manifest format version"},
    {.key = "kind", .type = SCH_STRING, .flags = SCH_REQUIRED, .choices = kinds,
     .example = "kind: Service", .doc = "kind of object described"},
    {.key = "metadata", .type = SCH_MAP, .flags = SCH_REQUIRED, .sub = metadata_fields,
     .example = "metadata: { name: payments-api, team: payments }",
     .doc = "who the service is and who owns it"},
    {.key = "spec", .type = SCH_MAP, .sub = spec_fields, .doc = "what to build, run and expose"},
    {0},
};

static const struct sch_field root_field = {
    .noun = "manifest", .type = SCH_MAP, .sub = root_fields, .doc = "a pave.yaml document",
};

/* ---- typed views of nodes -------------------------------------------------------------- */

static bool is_string(const struct core_node *n)
{
    if (!n || n->kind != CORE_NODE_SCALAR)
        return false;
    return n->is_quoted || !(core_scalar_is_null(n) || core_scalar_is_bool(n, NULL) ||
                             core_scalar_is_number(n, NULL));
}

/* "string \"two\"", "integer 2", "a map"... for "expected X, got Y" messages. */
static const char *describe(const struct core_node *n, char *out, size_t outsz)
{
    char s[SHOW_BUF];
    if (n->kind == CORE_NODE_MAP)
        return "a map";
    if (n->kind == CORE_NODE_SEQ)
        return "a list";
    show(s, sizeof(s), n->value);
    if (is_string(n))
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

static const char *type_name(enum sch_type t)
{
    switch (t) {
    case SCH_STRING: return "a string";
    case SCH_INT: return "an integer";
    case SCH_NUMBER: return "a number";
    case SCH_DURATION: return "a duration";
    case SCH_CPU: return "a CPU quantity";
    case SCH_BYTES: return "a memory quantity";
    case SCH_MAP:
    case SCH_DICT: return "a map";
    case SCH_LIST: return "a list";
    }
    return "a value";
}

static bool type_matches(enum sch_type t, const struct core_node *n)
{
    switch (t) {
    case SCH_STRING:
    case SCH_DURATION: return is_string(n);
    case SCH_INT: return core_scalar_is_int(n, NULL);
    case SCH_NUMBER: return core_scalar_is_number(n, NULL);
    case SCH_CPU:
    case SCH_BYTES: return is_string(n) || core_scalar_is_number(n, NULL);
    case SCH_MAP:
    case SCH_DICT: return n->kind == CORE_NODE_MAP;
    case SCH_LIST: return n->kind == CORE_NODE_SEQ;
    }
    return false;
}

/* Reports a type mismatch with a hint about the usual cause. returns: whether the type is right */
static bool check_type(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                       const char *path)
{
    char got[SHOW_BUF + 32], hint[HINT_BUF], s[SHOW_BUF];
    const char *h = NULL;
    if (type_matches(f->type, n))
        return true;
    if (n->kind == CORE_NODE_SCALAR) {
        show(s, sizeof(s), n->value);
        if (core_scalar_is_null(n)) {
            h = "give it a value or remove the key";
        } else if (f->type == SCH_STRING && !n->is_quoted) {
            snprintf(hint, sizeof(hint), "put it in quotes: \"%s\"", s);
            h = hint;
        } else if ((f->type == SCH_INT || f->type == SCH_NUMBER) && n->is_quoted) {
            struct core_node plain = *n;
            plain.is_quoted = false;
            if (f->type == SCH_INT ? core_scalar_is_int(&plain, NULL)
                                   : core_scalar_is_number(&plain, NULL)) {
                snprintf(hint, sizeof(hint), "remove the quotes: %s", s);
                h = hint;
            }
        } else if (f->type == SCH_INT && core_scalar_is_number(n, NULL)) {
            h = "use a whole number";
        } else if (f->type == SCH_DURATION && core_scalar_is_number(n, NULL)) {
            snprintf(hint, sizeof(hint), "add a unit, e.g. \"%ss\" or \"%sms\"", s, s);
            h = hint;
        } else if (f->type == SCH_LIST && is_string(n)) {
            snprintf(hint, sizeof(hint), "write a list: [\"%s\"]", s);
            h = hint;
        }
    }
    report(v, n, path, h, "expected %s, got %s", type_name(f->type),
           describe(n, got, sizeof(got)));
    return false;
}

/* ---- the walk -------------------------------------------------------------------------- */

static void check_node(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                       const struct core_node *key, const char *path);

static const struct sch_field *find_field(const struct sch_field *fields, const char *key)
{
    for (const struct sch_field *f = fields; f->key; f++)
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

static void unknown_key(struct vctx *v, const struct sch_field *fields, const struct core_node *kn,
                        const char *key, const char *path)
{
    const char *choices[32];
    size_t n = 0;
    char hint[HINT_BUF], words[HINT_BUF - 32], s[SHOW_BUF];
    for (const struct sch_field *f = fields; f->key && n + 1 < sizeof(choices) / sizeof(*choices);
         f++)
        choices[n++] = f->key;
    choices[n] = NULL;
    const char *best = core_did_you_mean(key, choices);
    if (best) {
        snprintf(hint, sizeof(hint), "did you mean '%s'?", best);
    } else {
        list_words(words, sizeof(words), choices, ", ");
        snprintf(hint, sizeof(hint), "allowed keys here: %s", words);
    }
    report(v, kn, path, hint, "unknown key '%s'", show(s, sizeof(s), key));
}

static void check_map(struct vctx *v, const struct sch_field *fields, const struct core_node *n,
                      const struct core_node *key, const char *path)
{
    char kpath[PATH_BUF];
    for (size_t i = 0; i < n->n && !stopped(v); i++) {
        const struct sch_field *f = find_field(fields, n->keys[i]);
        join_path(kpath, sizeof(kpath), path, n->keys[i]);
        if (!f)
            unknown_key(v, fields, n->key_nodes[i], n->keys[i], kpath);
        else
            check_node(v, f, n->items[i], n->key_nodes[i], kpath);
    }
    for (const struct sch_field *f = fields; f->key && !stopped(v); f++) {
        if (!(f->flags & SCH_REQUIRED) || core_node_get(n, f->key))
            continue;
        char hint[HINT_BUF];
        if (f->example)
            snprintf(hint, sizeof(hint), "add it, e.g. '%s'", f->example);
        join_path(kpath, sizeof(kpath), path, f->key);
        report(v, key ? key : n, kpath, f->example ? hint : NULL, "missing required key '%s'",
               f->key);
    }
}

static void check_string(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                         const char *path)
{
    char s[SHOW_BUF], hint[HINT_BUF], words[HINT_BUF - 32];
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
        report(v, n, path, hint, "%s %s '%s'", f->choices[1] ? "unknown" : "unsupported",
               label(f), show(s, sizeof(s), val));
        return;
    }
    size_t chars = utf8_chars(val);
    if (f->min > 0 && chars < (size_t)f->min) {
        report(v, n, path, NULL, "%s must not be empty", label(f));
        return;
    }
    if (f->max > 0 && chars > (size_t)f->max) {
        report(v, n, path, NULL, "%s is too long (%zu characters, at most %lld)", label(f), chars,
               (long long)f->max);
        return;
    }
    unsigned cp = find_control(val, f->flags & SCH_MULTILINE);
    if (cp)
        report(v, n, path, cp == '\n' || cp == '\r' ? "write it on one line" : NULL,
               "%s must not contain control characters (found U+%04X)", label(f), cp);
}

static void check_node(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                       const struct core_node *key, const char *path)
{
    char s[SHOW_BUF], ipath[PATH_BUF];
    int64_t x = 0;
    size_t before = v->problems;
    bool container = f->type == SCH_MAP || f->type == SCH_DICT || f->type == SCH_LIST;

    if (stopped(v) || !check_type(v, f, n, path))
        return;
    if ((f->type == SCH_LIST || f->type == SCH_DICT) && f->max > 0 && n->n > (size_t)f->max) {
        report(v, n, path, NULL, "%s has too many %s (%zu, at most %lld)", label(f),
               f->type == SCH_LIST ? "items" : "keys", n->n, (long long)f->max);
        return;
    }
    switch (f->type) {
    case SCH_STRING:
        check_string(v, f, n, path);
        break;
    case SCH_INT:
        core_scalar_is_int(n, &x);
        if (x < f->min || x > f->max) {
            if (f->max == SCH_UNBOUNDED)
                report(v, n, path, NULL, "%s must be at least %lld, got %lld", label(f),
                       (long long)f->min, (long long)x);
            else
                report(v, n, path, NULL, "%s must be between %lld and %lld, got %lld", label(f),
                       (long long)f->min, (long long)f->max, (long long)x);
        }
        break;
    case SCH_NUMBER:
        break;
    case SCH_DURATION:
        if (core_parse_duration_ms(n->value, &x))
            report(v, n, path,
                   "use whole numbers with a unit: ms, s, m, h or d, e.g. \"300ms\", \"5s\", "
                   "\"1m30s\"",
                   "invalid duration '%s' for %s", show(s, sizeof(s), n->value), label(f));
        else if (x < f->min)
            report(v, n, path, NULL, "%s must be longer than 0, got '%s'", label(f),
                   show(s, sizeof(s), n->value));
        break;
    case SCH_CPU:
        if (core_parse_millicores(n->value, &x))
            report(v, n, path, "use cores (0.5, 2) or millicores (\"500m\")",
                   "invalid CPU quantity '%s'", show(s, sizeof(s), n->value));
        else if (x <= 0)
            report(v, n, path, "use at least \"1m\"", "%s must be more than 0", label(f));
        break;
    case SCH_BYTES:
        if (core_parse_bytes(n->value, &x))
            report(v, n, path,
                   "use a number with an optional unit: Ki, Mi, Gi, Ti (powers of 1024) or k, M, "
                   "G, T, e.g. \"256Mi\"",
                   "invalid memory quantity '%s'", show(s, sizeof(s), n->value));
        else if (x <= 0)
            report(v, n, path, NULL, "%s must be more than 0", label(f));
        break;
    case SCH_MAP:
        check_map(v, f->sub, n, key, path);
        break;
    case SCH_DICT:
        for (size_t i = 0; i < n->n && !stopped(v); i++) {
            size_t b = v->problems;
            join_path(ipath, sizeof(ipath), path, n->keys[i]);
            if (f->key_check)
                f->key_check(v, f, n->key_nodes[i], ipath);
            if (v->problems == b)
                check_node(v, f->item, n->items[i], n->key_nodes[i], ipath);
        }
        break;
    case SCH_LIST:
        if (n->n < (size_t)f->min)
            report(v, n, path, NULL, "%s must not be empty", label(f));
        for (size_t i = 0; i < n->n && !stopped(v); i++) {
            snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
            check_node(v, f->item, n->items[i], NULL, ipath);
        }
        break;
    }
    if (f->check && !stopped(v) && (container || v->problems == before))
        f->check(v, f, n, path);
}

/* ---- semantic checks ------------------------------------------------------------------- */

/* Value of key in map, with its key node; NULL when absent. */
static const struct core_node *map_get(const struct core_node *map, const char *key,
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

/* A valid DNS label, or NULL: the cross-checks only look at values that passed their own. */
static const char *label_value(const struct core_node *n)
{
    return is_string(n) && core_is_dns_label(n->value) ? n->value : NULL;
}

static void check_dns_label(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                            const char *path)
{
    char s[SHOW_BUF], hint[HINT_BUF], fix[64];
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
    report(v, n, path, o > 0 && core_is_dns_label(fix) ? hint : NULL,
           "invalid %s '%s': must be a DNS label (1-63 characters of lower-case letters, digits "
           "and '-', starting and ending with a letter or digit)",
           label(f), show(s, sizeof(s), n->value));
}

static void check_dns_name(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                           const char *path)
{
    char s[SHOW_BUF], part[64];
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
        report(v, n, path, "e.g. 'payments.internal'",
               "invalid %s '%s': must be a DNS name (DNS labels of a-z, 0-9 and '-' joined by "
               "dots, at most 253 characters)",
               label(f), show(s, sizeof(s), n->value));
}

static void check_relpath(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                          const char *path)
{
    char s[SHOW_BUF];
    const char *val = n->value;
    show(s, sizeof(s), val);
    if (!*val) {
        report(v, n, path, NULL, "%s must not be empty", label(f));
        return;
    }
    if (val[0] == '/') {
        report(v, n, path, "remove the leading '/'; paths are relative to the repository root",
               "%s must be a relative path, got '%s'", label(f), s);
        return;
    }
    if (strchr(val, '\\')) {
        report(v, n, path, "use '/' to separate directories", "%s '%s' contains '\\'", label(f),
               s);
        return;
    }
    for (const char *p = val; *p;) {
        size_t l = strcspn(p, "/");
        if (l == 2 && p[0] == '.' && p[1] == '.') {
            report(v, n, path, "paths must stay inside the repository",
                   "%s '%s' must not contain '..'", label(f), s);
            return;
        }
        p += l;
        if (*p == '/')
            p++;
    }
}

static void check_urlpath(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                          const char *path)
{
    char s[SHOW_BUF], hint[HINT_BUF];
    show(s, sizeof(s), n->value);
    if (n->value[0] != '/') {
        snprintf(hint, sizeof(hint), "try '/%s'", s);
        report(v, n, path, hint, "%s must start with '/', got '%s'", label(f), s);
    } else if (strpbrk(n->value, " #")) {
        report(v, n, path, "percent-encode spaces as %20", "%s '%s' must not contain ' ' or '#'",
               label(f), s);
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
static void check_env_name(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                           const char *path)
{
    char s[SHOW_BUF], hint[HINT_BUF], fix[64];
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
    report(v, n, path, has_fix ? hint : NULL,
           "invalid %s '%s': use letters, digits and '_', not starting with a digit",
           f->type == SCH_DICT ? "environment variable name" : label(f),
           show(s, sizeof(s), n->value));
}

static void check_tag_key(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                          const char *path)
{
    char s[SHOW_BUF];
    const char *k = n->value;
    bool ok = *k && strlen(k) <= 63;
    bool upper = false;
    for (const char *p = k; ok && *p; p++) {
        upper |= *p >= 'A' && *p <= 'Z';
        ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
             *p == '_' || *p == '/';
    }
    if (!ok)
        report(v, n, path, upper ? "tag keys are lower case" : NULL,
               "invalid tag key '%s': use 1-63 characters of a-z, 0-9, '-', '.', '_' and '/'",
               show(s, sizeof(s), k));
}

/* Duplicate strings in a list, reported at the later occurrence. */
static void check_unique(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                         const char *path)
{
    char s[SHOW_BUF], hint[HINT_BUF], ipath[PATH_BUF];
    for (size_t i = 1; i < n->n; i++) {
        if (!is_string(n->items[i]))
            continue;
        for (size_t j = 0; j < i; j++) {
            if (is_string(n->items[j]) && strcmp(n->items[i]->value, n->items[j]->value) == 0) {
                snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
                snprintf(hint, sizeof(hint), "already listed at line %d", n->items[j]->line);
                report(v, n->items[i], ipath, hint, "duplicate %s '%s'", label(f->item),
                       show(s, sizeof(s), n->items[i]->value));
                break;
            }
        }
    }
}

static void check_ports(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                        const char *path)
{
    char s[SHOW_BUF], hint[HINT_BUF], ipath[PATH_BUF];
    for (size_t i = 1; i < n->n; i++) {
        const struct core_node *name = map_get(n->items[i], "name", NULL);
        const struct core_node *port = map_get(n->items[i], "port", NULL);
        int64_t num = 0, other = 0;
        bool has_num = core_scalar_is_int(port, &num) && num >= 1 && num <= 65535;
        bool name_dup = false, num_dup = false;
        for (size_t j = 0; j < i; j++) {
            const struct core_node *oname = map_get(n->items[j], "name", NULL);
            const struct core_node *oport = map_get(n->items[j], "port", NULL);
            if (!name_dup && label_value(name) && label_value(oname) &&
                strcmp(name->value, oname->value) == 0) {
                name_dup = true;
                snprintf(ipath, sizeof(ipath), "%s[%zu].name", path, i);
                snprintf(hint, sizeof(hint), "port names must be unique; first used at line %d",
                         oname->line);
                report(v, name, ipath, hint, "duplicate port name '%s'",
                       show(s, sizeof(s), name->value));
            }
            if (!num_dup && has_num && core_scalar_is_int(oport, &other) && other == num) {
                num_dup = true;
                snprintf(ipath, sizeof(ipath), "%s[%zu].port", path, i);
                snprintf(hint, sizeof(hint), "port numbers must be unique; first used at line %d",
                         oport->line);
                report(v, port, ipath, hint, "duplicate port %lld", (long long)num);
            }
        }
    }
}

/* Effective duration of an optional key: its valid value, the default, or false if invalid. */
static bool duration_or(const struct core_node *map, const char *key, int64_t dflt, int64_t *out,
                        const struct core_node **node)
{
    *node = map_get(map, key, NULL);
    if (!*node) {
        *out = dflt;
        return true;
    }
    return is_string(*node) && core_parse_duration_ms((*node)->value, out) == 0 && *out > 0;
}

static void check_health(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                         const char *path)
{
    const struct core_node *in, *tn;
    int64_t interval, timeout;
    char ipath[PATH_BUF];
    if (!duration_or(n, "interval", 10000, &interval, &in) ||
        !duration_or(n, "timeout", 1000, &timeout, &tn) || timeout < interval)
        return;
    const struct core_node *at = tn ? tn : in ? in : n;
    join_path(ipath, sizeof(ipath), path, tn ? "timeout" : "interval");
    report(v, at, ipath, "a probe must finish before the next one starts",
           "timeout (%lldms) must be less than interval (%lldms)", (long long)timeout,
           (long long)interval);
}

static void check_run(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                      const char *path)
{
    const struct core_node *env = map_get(n, "env", NULL);
    const struct core_node *secrets = map_get(n, "secrets", NULL);
    char s[SHOW_BUF], ipath[PATH_BUF];
    if (!env || env->kind != CORE_NODE_MAP || !secrets || secrets->kind != CORE_NODE_SEQ)
        return;
    for (size_t i = 0; i < secrets->n; i++) {
        const struct core_node *sn = secrets->items[i];
        bool seen = !is_string(sn);
        for (size_t j = 0; j < i && !seen; j++)
            seen = is_string(secrets->items[j]) && !strcmp(secrets->items[j]->value, sn->value);
        if (seen || !core_node_get(env, sn->value))
            continue; /* a repeated secret is reported as a duplicate already */
        snprintf(ipath, sizeof(ipath), "%s.secrets[%zu]", path, i);
        report(v, sn, ipath, "remove it from env; secret values never go in the manifest",
               "'%s' is both in env and in secrets", show(s, sizeof(s), sn->value));
    }
}

static void check_rollout(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                          const char *path)
{
    const struct core_node *strategy = map_get(n, "strategy", NULL);
    const struct core_node *surge = map_get(n, "maxSurge", NULL);
    const struct core_node *unavail = map_get(n, "maxUnavailable", NULL);
    int64_t s = 1, u = 0;
    char ipath[PATH_BUF];
    if (strategy && !(is_string(strategy) && strcmp(strategy->value, "rolling") == 0))
        return;
    if ((surge && !core_scalar_is_int(surge, &s)) || (unavail && !core_scalar_is_int(unavail, &u)))
        return;
    if (s != 0 || u != 0)
        return;
    join_path(ipath, sizeof(ipath), path, unavail ? "maxUnavailable" : "maxSurge");
    report(v, unavail ? unavail : surge, ipath,
           "set maxSurge: 1 to start a new replica before stopping an old one",
           "maxSurge and maxUnavailable cannot both be 0 with strategy 'rolling'");
}

static void check_dependency(struct vctx *v, const struct sch_field *f, const struct core_node *n,
                             const char *path)
{
    const struct core_node *sk, *rk, *nk, *vk;
    const struct core_node *svc = map_get(n, "service", &sk);
    const struct core_node *res = map_get(n, "resource", &rk);
    const struct core_node *name = map_get(n, "name", &nk);
    map_get(n, "version", &vk);
    char ipath[PATH_BUF];
    if (svc && res) {
        join_path(ipath, sizeof(ipath), path, "resource");
        report(v, rk, ipath, "split it into two dependencies",
               "a dependency has exactly one of 'service' or 'resource', not both");
        return;
    }
    if (!svc && !res) {
        report(v, n, path, "e.g. '- service: ledger' or '- resource: postgres' with 'name'",
               "a dependency needs exactly one of 'service' or 'resource'");
        return;
    }
    if (svc && (nk || vk)) {
        join_path(ipath, sizeof(ipath), path, nk ? "name" : "version");
        report(v, nk ? nk : vk, ipath, "the service name goes in 'service'",
               "'%s' only applies to resource dependencies", nk ? "name" : "version");
    }
    if (res && !name) {
        join_path(ipath, sizeof(ipath), path, "name");
        report(v, rk, ipath, "name the resource instance, e.g. 'name: payments-db'",
               "missing required key 'name' for a resource dependency");
    }
}

static void check_dependencies(struct vctx *v, const struct sch_field *f,
                               const struct core_node *n, const char *path)
{
    char s[SHOW_BUF], hint[HINT_BUF], ipath[PATH_BUF];
    for (size_t i = 1; i < n->n; i++) {
        const char *keys[] = {"service", "name"};
        for (size_t k = 0; k < 2; k++) {
            const struct core_node *a = map_get(n->items[i], keys[k], NULL);
            if (!label_value(a) || (k == 1 && map_get(n->items[i], "service", NULL)))
                continue;
            for (size_t j = 0; j < i; j++) {
                const struct core_node *b = map_get(n->items[j], keys[k], NULL);
                if (!label_value(b) || (k == 1 && map_get(n->items[j], "service", NULL)) ||
                    strcmp(a->value, b->value) != 0)
                    continue;
                snprintf(ipath, sizeof(ipath), "%s[%zu].%s", path, i, keys[k]);
                snprintf(hint, sizeof(hint), "already listed at line %d", b->line);
                report(v, a, ipath, hint, "duplicate dependency on %s '%s'",
                       k == 0 ? "service" : "resource", show(s, sizeof(s), a->value));
                break;
            }
        }
    }
}

static void check_availability(struct vctx *v, const struct sch_field *f,
                               const struct core_node *n, const char *path)
{
    double d = 0;
    char s[SHOW_BUF];
    core_scalar_is_number(n, &d);
    if (d > 0 && d < 100)
        return;
    report(v, n, path, "a percentage such as 99.9; 100 cannot be met",
           "availability must be above 0 and below 100 (percent), got %s",
           show(s, sizeof(s), n->value));
}

/* ---- input checks ---------------------------------------------------------------------- */

/*
 * The document parser refuses NUL bytes and invalid UTF-8 too, but without a position; find the
 * first bad byte here so the diagnostic can point at it. Columns count characters, as libyaml's do.
 */
static bool check_bytes(struct vctx *v, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    struct core_node at = {.line = 1, .col = 1};
    size_t i = 0;
    while (i < len) {
        unsigned cp = 0;
        size_t l = p[i] ? core_utf8_decode((const char *)p + i, len - i, &cp) : 0;
        if (p[i] == 0) {
            report(v, &at, "", "remove it; manifests are text", "NUL byte in the manifest");
            return false;
        }
        if (l == 0) {
            report(v, &at, "", "save the file as UTF-8", "invalid UTF-8 byte 0x%02x", p[i]);
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
static void syntax_diag(struct vctx *v, const struct core_err *perr, const char *text, size_t len)
{
    const char *msg = perr->msg;
    size_t fl = strlen(v->file);
    struct core_node at = {0};
    int consumed = 0;
    if (strncmp(msg, v->file, fl) == 0 && msg[fl] == ':') {
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
    report(v, at.line > 0 ? &at : NULL, "", hint, "invalid YAML: %s", msg);
}

/* Orders diagnostics [from, to) by position (stable: the walk order breaks ties), so a long
 * report reads top to bottom. */
static void sort_diags(struct catalog_diags *d, size_t from, size_t to)
{
    for (size_t i = from + 1; i < to; i++) {
        struct catalog_diag g = d->items[i];
        size_t j = i;
        while (j > from && (d->items[j - 1].line > g.line ||
                            (d->items[j - 1].line == g.line && d->items[j - 1].col > g.col))) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = g;
    }
}

/* ---- the manifest ---------------------------------------------------------------------- */

void catalog_manifest_init(struct catalog_manifest *m)
{
    memset(m, 0, sizeof(*m));
}

void catalog_manifest_release(struct catalog_manifest *m)
{
    core_free(m->file);
    core_free(m->name);
    core_free(m->team);
    core_free(m->description);
    core_free(m->json);
    catalog_manifest_init(m);
}

/* Copies the summary fields out of a validated tree. */
static int fill(struct catalog_manifest *m, const char *file, const struct core_node *root)
{
    const struct core_node *meta = core_node_get(root, "metadata");
    const struct core_node *name = core_node_get(meta, "name");
    const struct core_node *team = core_node_get(meta, "team");
    const struct core_node *tier = core_node_get(meta, "tier");
    const struct core_node *desc = core_node_get(meta, "description");
    struct core_buf json;
    int64_t t = 3;
    int rc = CORE_E_NOMEM;

    core_buf_init(&json, MANIFEST_JSON_MAX);
    if (tier)
        core_scalar_is_int(tier, &t);
    m->tier = (int)t;
    m->team_line = team->line;
    m->team_col = team->col;
    if (!(m->file = core_strdup(file)) || !(m->name = core_strdup(name->value)) ||
        !(m->team = core_strdup(team->value)) ||
        (desc && !(m->description = core_strdup(desc->value))))
        goto out;
    if ((rc = core_node_to_json(root, &json)))
        goto out;
    core_sha256_hex(json.data, json.len, m->digest);
    m->json = core_buf_detach(&json, NULL);
    rc = m->json ? 0 : CORE_E_NOMEM;
out:
    core_buf_release(&json);
    return rc;
}

int catalog_manifest_parse(const char *file, const char *text, size_t len,
                           struct catalog_manifest *m, struct catalog_diags *diags,
                           struct core_err *err)
{
    static const struct core_node doc_start = {.line = 1, .col = 1};
    struct vctx v = {.file = file ? file : "<input>", .diags = diags};
    struct core_doc doc = {0};
    struct core_err perr = {0};
    size_t first = diags ? diags->n : 0;
    int rc = 0;

    catalog_manifest_init(m);
    if (!text)
        text = "";
    if (len > CATALOG_MANIFEST_MAX) {
        report(&v, NULL, "", "keep pave.yaml small; move long text into the docs folder",
               "manifest is too large (%zu bytes, at most %d)", len, CATALOG_MANIFEST_MAX);
        rc = v.rc ? v.rc
                  : core_err_set(err, CORE_E_TOO_BIG, "manifest '%s' is too large (%zu bytes)",
                                 v.file, len);
        goto out;
    }
    if (check_bytes(&v, text, len)) {
        rc = core_doc_parse(&doc, v.file, text, len, &perr);
        if (rc && rc != CORE_E_INVAL) {
            core_err_set(err, rc, "%s", perr.msg);
            goto out;
        }
        if (rc)
            syntax_diag(&v, &perr, text, len);
        else if (!doc.root)
            report(&v, &doc_start, "", "start with 'apiVersion: " CATALOG_API_VERSION "'",
                   "manifest is empty");
        else
            check_node(&v, &root_field, doc.root, NULL, "");
        rc = 0;
    }
    /* past the cap, the last diagnostic says so and stays last */
    if (diags && !v.rc)
        sort_diags(diags, first, v.problems > MANIFEST_MAX_DIAGS ? diags->n - 1 : diags->n);
    if (v.rc) {
        rc = core_err_set(err, v.rc, "manifest '%s': out of memory", v.file);
        goto out;
    }
    if (v.problems) {
        rc = core_err_set(err, CORE_E_INVAL, "manifest '%s' is invalid (%zu %s)", v.file,
                          v.problems, v.problems == 1 ? "problem" : "problems");
        goto out;
    }
    rc = fill(m, v.file, doc.root);
    if (rc)
        core_err_set(err, rc, "manifest '%s': out of memory", v.file);
out:
    core_doc_release(&doc);
    if (rc)
        catalog_manifest_release(m);
    return rc;
}

/* ---- the reference --------------------------------------------------------------------- */

static const char *doc_type(const struct sch_field *f)
{
    switch (f->type) {
    case SCH_STRING: return f->choices ? "enum" : "string";
    case SCH_INT: return "integer";
    case SCH_NUMBER: return "number";
    case SCH_DURATION: return "duration";
    case SCH_CPU: return "cpu";
    case SCH_BYTES: return "bytes";
    case SCH_MAP: return "map";
    case SCH_DICT: return "map of string";
    case SCH_LIST: return f->item && f->item->type == SCH_MAP ? "list of maps" : "list of strings";
    }
    return "";
}

static int schema_rows(struct core_buf *out, const struct sch_field *f, const char *path)
{
    char p[PATH_BUF], words[HINT_BUF];
    int rc = 0;
    if (f->key)
        snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", f->key);
    else
        snprintf(p, sizeof(p), "%s", path);
    if (f->key) {
        rc = core_buf_addf(out, "| `%s` | %s | %s | %s | %s", p, doc_type(f),
                           f->flags & SCH_REQUIRED ? "yes" : "", f->dflt ? f->dflt : "", f->doc);
        if (!rc && f->type == SCH_INT) {
            if (f->max == SCH_UNBOUNDED)
                rc = core_buf_addf(out, " (>= %lld)", (long long)f->min);
            else
                rc = core_buf_addf(out, " (%lld..%lld)", (long long)f->min, (long long)f->max);
        }
        if (!rc && (f->type == SCH_LIST || f->type == SCH_DICT) && f->max > 0)
            rc = core_buf_addf(out, " (at most %lld %s)", (long long)f->max,
                               f->type == SCH_LIST ? "items" : "keys");
        if (!rc && f->choices) {
            list_words(words, sizeof(words), f->choices, ", ");
            rc = core_buf_addf(out, " (one of: %s)", words);
        }
        if (!rc)
            rc = core_buf_adds(out, " |\n");
    }
    if (!rc && f->type == SCH_MAP)
        for (const struct sch_field *c = f->sub; !rc && c->key; c++)
            rc = schema_rows(out, c, p);
    if (!rc && f->type == SCH_LIST && f->item && f->item->type == SCH_MAP) {
        strncat(p, "[]", sizeof(p) - strlen(p) - 1);
        rc = schema_rows(out, f->item, p);
    }
    if (!rc && f->type == SCH_DICT) {
        strncat(p, ".<key>", sizeof(p) - strlen(p) - 1);
        rc = core_buf_addf(out, "| `%s` | %s |  |  | %s |\n", p, doc_type(f->item), f->item->doc);
    }
    return rc;
}

/* Renders every key of pave.yaml as Markdown table rows, walking the same tables as the
 * validator. returns: 0, CORE_E_NOMEM or CORE_E_TOO_BIG (from out). */
int catalog_manifest_schema_markdown(struct core_buf *out)
{
    int rc = core_buf_adds(out, "| Key | Type | Required | Default | Description |\n"
                                "|---|---|---|---|---|\n");
    return rc ? rc : schema_rows(out, &root_field, "");
}
