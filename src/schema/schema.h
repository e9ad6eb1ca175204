/*
 * schema: strict validation of YAML/JSON files against static schema tables, with diagnostics.
 *
 * Every file a developer writes for the platform (the service manifest `pave.yaml`, the pipeline
 * file `.pave/pipeline.yml`, ...) is checked the same way: schema_parse() checks size and bytes,
 * parses the text into a `struct core_doc` that keeps line:column marks, and walks it against a
 * table of `struct schema_field` (one array per map level: key, type, flags, bounds, default,
 * validator, one-line doc). The walk keeps going after every problem, so one run reports
 * everything wrong with a file (up to SCHEMA_MAX_DIAGS), each problem as a `struct schema_diag`
 * at the file:line:column of the offending node (the key for unknown or missing keys, the value
 * for bad values) with a hint ("did you mean 'replicas'?"). The same tables render the key
 * reference in the docs (schema_markdown()), so the docs cannot drift from the validator.
 *
 * Owners of a file format write the tables and, for cross-field rules, `schema_check_fn`
 * callbacks that report through schema_report(); the generic validators below
 * (schema_check_dns_label, ...) plug straight into tables. Untrusted text quoted in messages goes
 * through schema_show(), which escapes control characters and truncates, so a diagnostic is
 * always one printable line of bounded size.
 *
 * Ownership: `struct schema_diags` owns its items (copies of every string); release it with
 * schema_diags_release(). The tables are static and borrowed. Threading: no global state; a
 * `struct schema_ctx` or `struct schema_diags` must not be shared between threads.
 */
#ifndef PAVE_SCHEMA_H
#define PAVE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Stop after this many problems: a broken file should not produce megabytes of diagnostics. */
#define SCHEMA_MAX_DIAGS 100
/* INT max meaning "no upper bound" (the docs then say ">= min"). */
#define SCHEMA_UNBOUNDED INT64_MAX
/* Buffer sizes for schema_show() output and for paths built with schema_join_path(). */
#define SCHEMA_SHOW_BUF 256
#define SCHEMA_PATH_BUF 512
#define SCHEMA_HINT_BUF 640

/* ---- diagnostics ---- */

struct schema_diag {
    char *file;
    int line; /* 1-based; 0 when unknown */
    int col;
    char *path;    /* path of the offending key, e.g. "spec.replicas" */
    char *message; /* "unknown key 'replica'" */
    char *hint;    /* "did you mean 'replicas'?" or NULL */
};

struct schema_diags {
    struct schema_diag *items;
    size_t n;
    size_t cap;
};

void schema_diags_init(struct schema_diags *d);
void schema_diags_release(struct schema_diags *d);
/* Adds one diagnostic (strings are copied; file, path and hint may be NULL).
 * returns: 0, CORE_E_INVAL (d or fmt NULL) or CORE_E_NOMEM. */
int schema_diags_add(struct schema_diags *d, const char *file, int line, int col,
                     const char *path, const char *hint, const char *fmt, ...) CORE_PRINTF(7, 8);
/* Renders all diagnostics, one per line: "file:line:col: message (hint)", control characters
 * escaped. returns: 0, CORE_E_NOMEM or CORE_E_TOO_BIG (from out). */
int schema_diags_format(const struct schema_diags *d, struct core_buf *out);

/* ---- validation context ---- */

struct schema_ctx {
    const char *file;            /* named in every diagnostic */
    struct schema_diags *diags;  /* may be NULL: problems are still counted */
    size_t problems;
    int rc; /* CORE_E_NOMEM once a diagnostic could not be stored */
};

/* Records one problem at node `at` (NULL: no position) under `path`; hint may be NULL. Past
 * SCHEMA_MAX_DIAGS problems, one last "too many problems" diagnostic is added and the rest are
 * dropped. Quote untrusted text through schema_show(). */
void schema_report(struct schema_ctx *ctx, const struct core_node *at, const char *path,
                   const char *hint, const char *fmt, ...) CORE_PRINTF(5, 6);
/* Whether the problem cap was reached: walks and checks should stop. */
bool schema_stopped(const struct schema_ctx *ctx);

/* ---- the schema tables ---- */

enum schema_type {
    SCHEMA_STRING = 1, /* quoted or plain text; unquoted numbers, booleans, null are not strings */
    SCHEMA_INT,        /* plain integer within [min, max] */
    SCHEMA_NUMBER,     /* plain integer or decimal */
    SCHEMA_DURATION,   /* "300ms", "5s", "1m30s"; at least min and (if max > 0) at most max ms */
    SCHEMA_CPU,        /* cores (0.5, 2) or millicores ("500m") */
    SCHEMA_BYTES,      /* 1024, "256Mi", "1G" */
    SCHEMA_MAP,        /* fixed keys, described by `sub` */
    SCHEMA_DICT,       /* free keys checked by `key_check`; values described by `item` */
    SCHEMA_LIST,       /* items described by `item`; at least min items */
    SCHEMA_BOOL,       /* plain true or false */
};

enum schema_flags {
    SCHEMA_REQUIRED = 1 << 0,
    SCHEMA_MULTILINE = 1 << 1, /* strings may contain newlines and tabs */
};

struct schema_field;

/* Runs after the type and bounds checks pass (for maps and lists: always, after the children).
 * n is the value (for DICT key checks: the key node); path names it. Reports through
 * schema_report(); must cope with children that failed their own checks. */
typedef void (*schema_check_fn)(struct schema_ctx *ctx, const struct schema_field *f,
                                const struct core_node *n, const char *path);

/*
 * One key of a map level, or the description of list items and dictionary values. A MAP's
 * `sub` array ends with an entry whose key is NULL. For the root array given to schema_parse()
 * and schema_markdown(), that terminating entry describes the document itself: `noun` names it
 * in messages ("manifest"), `example` is the hint for an empty document ("start with '...'"),
 * `doc` the hint for an oversized one, and `check` runs on the root map after its keys (for
 * rules across top-level sections).
 */
struct schema_field {
    const char *key;  /* NULL for list items and dictionary values */
    const char *noun; /* what an item is called in messages ("secret name") */
    enum schema_type type;
    unsigned flags;
    int64_t min, max; /* INT: value range; STRING: length in characters (max 0 = no limit);
                       * LIST, DICT: item count (also bounds the cross-checks, which compare
                       * items pairwise); DURATION: milliseconds (max 0 = no limit) */
    const char *dflt; /* default, for the docs; NULL when there is none */
    const char *const *choices;   /* STRING: the allowed values, NULL-terminated */
    schema_check_fn check;        /* semantic check */
    schema_check_fn key_check;    /* DICT: check for each key (node is the key node) */
    const struct schema_field *sub;  /* MAP: fields, terminated by an entry without key */
    const struct schema_field *item; /* LIST items, DICT values */
    const char *example;          /* shown when a required key is missing */
    const char *doc;              /* one line for the reference */
};

/* ---- generic validators, for `check` and `key_check` in tables ---- */

/* A DNS label: 1-63 of a-z, 0-9, '-', not starting or ending with '-'. Suggests a fix. */
void schema_check_dns_label(struct schema_ctx *ctx, const struct schema_field *f,
                            const struct core_node *n, const char *path);
/* DNS labels joined by dots, at most 253 characters. */
void schema_check_dns_name(struct schema_ctx *ctx, const struct schema_field *f,
                           const struct core_node *n, const char *path);
/* A non-empty relative path that stays inside its root: no leading '/', no '\', no "..". */
void schema_check_relpath(struct schema_ctx *ctx, const struct schema_field *f,
                          const struct core_node *n, const char *path);
/* A URL path: starts with '/', no ' ' or '#'. */
void schema_check_urlpath(struct schema_ctx *ctx, const struct schema_field *f,
                          const struct core_node *n, const char *path);
/* An environment variable name `[A-Za-z_][A-Za-z0-9_]*`, at most 255 characters (DICT keys or
 * list items). */
void schema_check_env_name(struct schema_ctx *ctx, const struct schema_field *f,
                           const struct core_node *n, const char *path);
/* For LIST fields of strings: duplicates are reported at the later occurrence. */
void schema_check_unique(struct schema_ctx *ctx, const struct schema_field *f,
                         const struct core_node *n, const char *path);

/* ---- helpers for checks ---- */

/* Renders untrusted text for a message: at most 60 characters (then "..."), control characters
 * escaped, never splitting a UTF-8 sequence. outsz should be SCHEMA_SHOW_BUF. returns: out. */
const char *schema_show(char *out, size_t outsz, const char *s);
/* Appends a key to a dotted path into out ("spec" + "run" -> "spec.run"); keys that are not
 * plain identifiers use ["..."]. */
void schema_join_path(char *out, size_t outsz, const char *parent, const char *key);
/* Value of key in a MAP node, with its key node (key_node may be NULL); NULL when absent or when
 * map is NULL or not a map. */
const struct core_node *schema_map_get(const struct core_node *map, const char *key,
                                       const struct core_node **key_node);
/* Whether n is a scalar that reads as a string (quoted, or not a number, boolean or null). */
bool schema_is_string(const struct core_node *n);

/* ---- entry points ---- */

/*
 * Parses and validates one document (YAML or JSON) named `file` (NULL: "<input>") of len bytes
 * (text may be NULL when len is 0) against root_fields (see struct schema_field for the
 * terminating entry). Steps: size check against max_len, byte checks (NUL, invalid UTF-8, with
 * positions), parsing (syntax errors become diagnostics), the walk, then sorting the new
 * diagnostics into file order. diags may be NULL (problems are then only counted); new items are
 * appended.
 * returns: 0 with *doc holding the tree (release it with core_doc_release()); CORE_E_INVAL with
 * every problem in diags; CORE_E_TOO_BIG over max_len (one diagnostic); CORE_E_NOMEM. On error
 * *doc is released (and safe to release again).
 */
int schema_parse(const char *file, const char *text, size_t len, size_t max_len,
                 const struct schema_field *root_fields, struct core_doc *doc,
                 struct schema_diags *diags, struct core_err *err);

/* Renders every key of a document as Markdown table rows with a header (Key, Type, Required,
 * Default, Description), walking the same tables as the validator. `[]` stands for each item of
 * a list, `<key>` for each key of a free-form map.
 * returns: 0, CORE_E_NOMEM or CORE_E_TOO_BIG (from out). */
int schema_markdown(const struct schema_field *root_fields, struct core_buf *out);

#endif
