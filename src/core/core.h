/*
 * core: the small shared toolkit every other module builds on.
 *
 * It owns four things. (1) Errors: `struct core_err` carries a negative `enum core_errc`, a
 * fixed-size message and the file:line where it was raised; fallible functions return int (0 or
 * a negative code) and take `struct core_err *err` last (NULL allowed). (2) Memory: all
 * allocations go through core_malloc() and friends so tests can inject failures
 * (CORE_FAILMALLOC=N fails every Nth call); `struct core_buf` is a growable, NUL-terminated byte
 * buffer with a hard `max`; `struct core_arena` is a bump allocator with a byte cap for one unit
 * of work. (3) Documents: core_doc_parse() turns YAML (and therefore JSON) text into a tree of
 * `struct core_node` that keeps line:column marks, so validators can name positions. (4) The
 * program's own log: JSON lines on stderr in the platform's logging standard.
 *
 * Threading: errors, buffers, arenas and documents are owned by one thread at a time. The logger
 * is thread safe. Nothing here keeps hidden global state except the logger's level and the
 * allocation-failure counter, both process wide by design.
 */
#ifndef PAVE_CORE_H
#define PAVE_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CORE_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---- errors ---------------------------------------------------------------------------- */

enum core_errc {
    CORE_OK = 0,
    CORE_E_INVAL = -1,
    CORE_E_NOMEM = -2,
    CORE_E_IO = -3,
    CORE_E_NOTFOUND = -4,
    CORE_E_CONFLICT = -5,
    CORE_E_TOO_BIG = -6,
    CORE_E_PERM = -7,
    CORE_E_AUTH = -8,
    CORE_E_UNSUPPORTED = -9,
    CORE_E_INTERNAL = -10,
};

struct core_err {
    int code;
    char msg[512];
    const char *file;
    int line;
};

/* Name of an error code ("invalid", "not found" ...); never NULL. */
const char *core_errc_name(int code);

/* Sets err (if not NULL) and returns code, so `return core_err_set(err, ...)` is the usual form. */
#define core_err_set(err, code, ...) core_err_set_at((err), __FILE__, __LINE__, (code), __VA_ARGS__)
int core_err_set_at(struct core_err *err, const char *file, int line, int code, const char *fmt,
                    ...) CORE_PRINTF(5, 6);
/* Prefixes context to the message already in err ("loading 'x': <old message>"). */
void core_err_wrap(struct core_err *err, const char *fmt, ...) CORE_PRINTF(2, 3);
void core_err_clear(struct core_err *err);

#define CORE_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            core_assert_fail(#cond, __FILE__, __LINE__);                                           \
    } while (0)
void core_assert_fail(const char *what, const char *file, int line);

/* ---- memory ---------------------------------------------------------------------------- */

/* Fail every Nth allocation (0 = never). Also read from the CORE_FAILMALLOC environment variable
 * at the first allocation. */
void core_failmalloc_set(unsigned every_n);
void *core_malloc(size_t n);
void *core_calloc(size_t nmemb, size_t size);
void *core_realloc(void *p, size_t n);
void core_free(void *p);
/* returns: owned by caller (core_free), NULL on NOMEM or if s is NULL */
char *core_strdup(const char *s);
char *core_strndup(const char *s, size_t n);

/* Growable buffer. Invariants: after init `data` is never NULL and data[len] == 0; binary
 * content with embedded NULs is allowed. Appending beyond `max` (0 = unlimited) fails with
 * CORE_E_TOO_BIG and leaves the buffer unchanged. */
struct core_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};
void core_buf_init(struct core_buf *b, size_t max);
void core_buf_release(struct core_buf *b);
void core_buf_clear(struct core_buf *b);
int core_buf_add(struct core_buf *b, const void *data, size_t n);
/* Makes room for n more bytes (and the NUL) without changing len or the contents, so that a
 * writer can fill data + len directly and then advance len. Fails like core_buf_add. */
int core_buf_reserve(struct core_buf *b, size_t n);
int core_buf_adds(struct core_buf *b, const char *s);
int core_buf_addc(struct core_buf *b, char c);
int core_buf_addf(struct core_buf *b, const char *fmt, ...) CORE_PRINTF(2, 3);
/* Appends s escaped for HTML text and attribute values. */
int core_buf_add_html(struct core_buf *b, const char *s);
/* Appends s as a JSON string literal with quotes. Invalid UTF-8 bytes become U+FFFD. */
int core_buf_add_json_str(struct core_buf *b, const char *s);
/* Hands the heap string to the caller and re-inits the buffer. returns: owned by caller. */
char *core_buf_detach(struct core_buf *b, size_t *len);

/* Bump allocator for one unit of work (a request, a query). Allocations beyond `cap` bytes in
 * total fail with NULL. Memory lives until core_arena_release(). */
struct core_arena_chunk;
struct core_arena {
    struct core_arena_chunk *head;
    size_t used;
    size_t cap;
};
void core_arena_init(struct core_arena *a, size_t cap);
void core_arena_release(struct core_arena *a);
void *core_arena_alloc(struct core_arena *a, size_t n);
char *core_arena_strdup(struct core_arena *a, const char *s);
char *core_arena_sprintf(struct core_arena *a, const char *fmt, ...) CORE_PRINTF(2, 3);

/* ---- text helpers --------------------------------------------------------------------- */

bool core_utf8_valid(const char *s, size_t n);
/* Decodes the UTF-8 sequence at s (at most n bytes, n >= 1) into *cp. returns: its length in
 * bytes, or 0 when it is invalid (overlong, surrogate, out of range or truncated). */
size_t core_utf8_decode(const char *s, size_t n, unsigned *cp);
/* RFC 1123 DNS label: 1..63 chars of [a-z0-9-], not starting or ending with '-'. */
bool core_is_dns_label(const char *s);
/* Levenshtein distance, capped at 64 for long strings. */
int core_edit_distance(const char *a, const char *b);
/* Best match of `word` among NULL-terminated `choices` within a small distance, or NULL. */
const char *core_did_you_mean(const char *word, const char *const *choices);
/* Parses "5s", "300ms", "1m", "2h" to milliseconds. */
int core_parse_duration_ms(const char *s, int64_t *out_ms);
/* Parses Kubernetes-style quantities: "256Mi", "1Gi", "500M", "1024" to bytes. */
int core_parse_bytes(const char *s, int64_t *out);
/* Parses CPU: "0.5", "2", "500m" to millicores. */
int core_parse_millicores(const char *s, int64_t *out);

/* Decodes %XX and '+' (form encoding) in place; returns CORE_E_INVAL on a bad escape or a
 * decoded NUL. */
int core_url_decode(char *s);
/* Finds `key` in an application/x-www-form-urlencoded string (query or body) and copies its
 * decoded value into out. returns: 0, CORE_E_NOTFOUND, CORE_E_TOO_BIG (value longer than
 * outsz-1) or CORE_E_INVAL (bad encoding). */
int core_form_get(const char *form, const char *key, char *out, size_t outsz);
/* Appends s percent-encoded for a URL query value. */
int core_buf_add_urlenc(struct core_buf *b, const char *s);

/* ---- time and hashing ------------------------------------------------------------------ */

int64_t core_now_ms(void);
/* RFC 3339 UTC with milliseconds into out (at least 32 bytes). */
void core_time_format(int64_t ms, char *out, size_t outsz);
/* SHA-256 of data as 64 lowercase hex chars + NUL in out (65 bytes). */
void core_sha256_hex(const void *data, size_t n, char out[65]);
/* n random bytes from the OS CSPRNG. */
int core_random_bytes(void *out, size_t n);
/* n random bytes as 2n hex chars + NUL in out. */
int core_random_hex(char *out, size_t nbytes);
/* Constant-time comparison of two equal-length strings; false when lengths differ. */
bool core_str_eq_ct(const char *a, const char *b);

/* ---- documents (YAML / JSON with positions) ------------------------------------------- */

enum core_node_kind {
    CORE_NODE_SCALAR = 1,
    CORE_NODE_MAP,
    CORE_NODE_SEQ,
};

struct core_node {
    enum core_node_kind kind;
    int line; /* 1-based */
    int col;  /* 1-based */
    char *value;     /* SCALAR: text (NUL-terminated; may contain no NUL) */
    bool is_quoted;  /* SCALAR: was written in quotes (so "2" is a string, 2 a number) */
    char **keys;     /* MAP: keys[i] names items[i] */
    struct core_node **key_nodes; /* MAP: key positions */
    struct core_node **items;     /* MAP values / SEQ items */
    size_t n;
};

struct core_doc {
    struct core_arena arena;
    struct core_node *root; /* NULL for an empty document */
};

/* Parses one YAML document (JSON is accepted as YAML flow syntax). Anchors/aliases are refused,
 * nesting is limited to 64 levels and input must be valid UTF-8 without NUL bytes. `name` is used
 * in error messages ("file.yaml:3:5: ..."). On failure the doc is released.
 * returns: 0 or CORE_E_INVAL / CORE_E_TOO_BIG / CORE_E_NOMEM. */
int core_doc_parse(struct core_doc *doc, const char *name, const char *text, size_t len,
                   struct core_err *err);
/* Parses several '---'-separated documents, calling fn for each root. */
typedef int (*core_doc_fn)(void *arg, struct core_node *root, struct core_err *err);
int core_doc_parse_stream(const char *name, const char *text, size_t len, core_doc_fn fn,
                          void *arg, struct core_err *err);
void core_doc_release(struct core_doc *doc);
/* Value of key in a MAP node or NULL. */
struct core_node *core_node_get(const struct core_node *map, const char *key);
/* Renders a node tree as JSON (scalars typed YAML-1.2-core style unless quoted). */
int core_node_to_json(const struct core_node *node, struct core_buf *out);
/* Typed view of a scalar: true if it is a plain (unquoted) integer / number / bool / null. */
bool core_scalar_is_int(const struct core_node *n, int64_t *out);
bool core_scalar_is_number(const struct core_node *n, double *out);
bool core_scalar_is_bool(const struct core_node *n, bool *out);
bool core_scalar_is_null(const struct core_node *n);

/* ---- files ----------------------------------------------------------------------------- */

/* Reads a whole file, refusing files larger than max. returns: 0 and *out owned by caller. */
int core_file_read(const char *path, size_t max, char **out, size_t *len, struct core_err *err);
/* Writes atomically: temp file in the same directory, fsync, rename. */
int core_file_write_atomic(const char *path, const void *data, size_t len, int mode,
                           struct core_err *err);
int core_mkdir_p(const char *path, int mode, struct core_err *err);

/* ---- the program's own log ------------------------------------------------------------ */

enum core_log_level {
    CORE_LOG_DEBUG = 1,
    CORE_LOG_INFO,
    CORE_LOG_WARN,
    CORE_LOG_ERROR,
};

enum core_log_field_kind { CORE_LF_STR = 1, CORE_LF_INT, CORE_LF_END };
struct core_log_field {
    enum core_log_field_kind kind;
    const char *key;
    const char *s;
    int64_t i;
};
#define LOG_STR(k, v) ((struct core_log_field){CORE_LF_STR, (k), (v), 0})
#define LOG_INT(k, v) ((struct core_log_field){CORE_LF_INT, (k), NULL, (int64_t)(v)})
#define LOG_END_ ((struct core_log_field){CORE_LF_END, NULL, NULL, 0})

void core_log_set_level(enum core_log_level lvl);
/* A copy of every line (without newline) also goes to fn, outside the log lock, except lines
 * of the component "telemetry" (the pipeline the tap feeds). fn must not block for long.
 * NULL removes the tap; set_tap returns only once calls to the previous tap have finished, so
 * it must not be called from inside a tap. */
typedef void (*core_log_tap_fn)(void *arg, const char *line, size_t len);
void core_log_set_tap(core_log_tap_fn fn, void *arg);
void core_log_set_resource(const char *instance, const char *version);
/* Writes one JSON line to stderr. `body` is a constant message; fields are escaped here. Field
 * names that look secret (token, password, secret, authorization, cookie) are redacted. */
void core_log_emit(enum core_log_level lvl, const char *component, const char *body,
                   const struct core_log_field *fields);
#define core_log_(lvl, comp, body, ...)                                                            \
    core_log_emit((lvl), (comp), (body),                                                           \
                  (const struct core_log_field[]){__VA_ARGS__ __VA_OPT__(, ) LOG_END_})
#define log_debug(comp, ...) core_log_(CORE_LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...) core_log_(CORE_LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) core_log_(CORE_LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) core_log_(CORE_LOG_ERROR, comp, __VA_ARGS__)

#define PAVE_VERSION "0.1.0"

#endif
