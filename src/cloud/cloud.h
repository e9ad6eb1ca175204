/*
 * cloud: the platform's view of cloud spend. This header covers billing:
 * reading providers' cost exports, mapping every format onto FOCUS columns,
 * storing charges by billing period, and grouping spend by team, service,
 * environment and cost center through tags joined to the catalog; parallel
 * scans of export files (scan.c); allocation with shared-cost split rules,
 * trends, commitments, recommendations, budgets and anomalies (analysis.c,
 * docs/cost.md). The organization
 * section (docs/org.md) holds AWS-Organizations-style accounts and OUs as a
 * tree, service control policies in the IAM JSON grammar with their
 * root-to-account evaluation, and tag policies checked through the policy
 * engine.
 *
 * Three layers. (1) `struct cloud_csv` is a streaming RFC 4180 reader (quotes,
 * embedded newlines, CRLF, a UTF-8 BOM, gzip input detected by magic bytes)
 * that never holds more than one record and refuses fields over
 * CLOUD_CSV_FIELD_MAX. (2) The mapping layer: cloud_billing_formats[] is a
 * table, one entry per export format, naming for each FOCUS column the source
 * header(s) that carry it (docs/billing-formats.md). cloud_billing_map()
 * detects the format from a header row and cloud_billing_row() normalizes one
 * row into a `struct cloud_charge` (NULL literals, dates with or without T/Z or
 * in MM/DD/YYYY, tags as JSON with or without braces or as one column per tag).
 * Both layers are pure and are what the fuzzer drives. (3)
 * cloud_billing_import() streams files into the store: one transaction per
 * file; every (billing account, period) scope met in the file replaces what was
 * stored for it, so re-importing a month never double counts; a scope with
 * malformed rows is left untouched unless the caller allows skipping them
 * (all-or-nothing per period). cloud_cost_report() groups the stored charges.
 *
 * Money is held as int64 nano-units of the billing currency (1e-9), exact for
 * sums of up to about 9.2 billion. Ownership: structs filled here own their
 * strings; release them with the matching _release(). Threading: one reader,
 * mapping or import per thread; the store serializes writers.
 */
#ifndef PAVE_CLOUD_H
#define PAVE_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct store;

/* ---- streaming CSV ---- */

#define CLOUD_CSV_FIELD_MAX (1u << 20) /* one field, bytes */
#define CLOUD_CSV_FIELDS_MAX 4096      /* fields in one record */

struct cloud_csv;

/* Opens a file (plain or gzip). returns: owned by caller, free with
 * cloud_csv_free(); NULL with err set when the file cannot be opened. */
struct cloud_csv *cloud_csv_open_file(const char *path, struct core_err *err);
/* Reads from memory (data: borrowed, must outlive the reader; not gzip). */
struct cloud_csv *cloud_csv_open_mem(const char *data, size_t len, struct core_err *err);
void cloud_csv_free(struct cloud_csv *r);

/*
 * Reads the next record. *fields receives nfields NUL-terminated fields, valid
 * until the next call; *line is the 1-based line on which the record started.
 * returns: 1 for a record; 0 at end of input; CORE_E_INVAL for a malformed
 * record (an unclosed quote at end of input, stray text after a closing quote,
 * a field over CLOUD_CSV_FIELD_MAX or too many fields; message in err, the
 * reader has skipped the record and may be called again); CORE_E_IO for a read
 * or decompression error (fatal); CORE_E_NOMEM.
 */
int cloud_csv_next(struct cloud_csv *r, char ***fields, size_t *nfields, int64_t *line,
                   struct core_err *err);
/* Bytes consumed from the underlying file so far (compressed bytes for gzip),
 * for progress. */
int64_t cloud_csv_offset(const struct cloud_csv *r);

/* ---- formats and normalization ---- */

/* The FOCUS columns Paved keeps. */
enum cloud_col {
    CLOUD_COL_BILLING_PERIOD_START = 0,
    CLOUD_COL_CHARGE_PERIOD_START,
    CLOUD_COL_CHARGE_PERIOD_END,
    CLOUD_COL_BILLED_COST,
    CLOUD_COL_EFFECTIVE_COST,
    CLOUD_COL_LIST_COST,
    CLOUD_COL_BILLING_CURRENCY,
    CLOUD_COL_BILLING_ACCOUNT_ID,
    CLOUD_COL_SUB_ACCOUNT_ID,
    CLOUD_COL_PROVIDER_NAME,
    CLOUD_COL_SERVICE_NAME,
    CLOUD_COL_SERVICE_CATEGORY,
    CLOUD_COL_CHARGE_CATEGORY,
    CLOUD_COL_REGION_ID,
    CLOUD_COL_RESOURCE_ID,
    CLOUD_COL_SKU_ID,
    CLOUD_COL_TAGS,
    /* commitment analysis (src/cloud/analysis.c) */
    CLOUD_COL_COMMITMENT_ID,
    CLOUD_COL_COMMITMENT_TYPE,
    CLOUD_COL_COMMITMENT_STATUS,
    CLOUD_COL_PRICING_CATEGORY,
    CLOUD_COL_CONSUMED_QUANTITY,
    CLOUD_COL_USAGE_TYPE,
    CLOUD_COL_COUNT,
};

/* FOCUS name of a column ("BilledCost"). */
const char *cloud_col_name(enum cloud_col c);

struct cloud_format {
    const char *name;        /* "focus", "aws-cur", "aws-cur2", "azure", "gcp", "oci" */
    const char *description; /* one line */
    const char *provider;    /* ProviderName when the export has no column for it, or NULL */
    /* Headers that must all be present (case-insensitive) for detection. */
    const char *detect[4];
    /* For each cloud_col: candidate source headers separated by '|', first
     * present wins; NULL when the format has none. */
    const char *cols[CLOUD_COL_COUNT];
    /* Prefix of one-column-per-tag headers ("resourceTags/"), or NULL. */
    const char *tag_prefix;
};

extern const struct cloud_format cloud_billing_formats[];
extern const size_t cloud_billing_nformats;

/* A header row resolved against a format. */
struct cloud_map {
    const struct cloud_format *fmt;
    int idx[CLOUD_COL_COUNT][4]; /* candidate column indexes, -1 terminated */
    int *tag_cols;               /* indexes of one-per-tag columns */
    char **tag_keys;             /* their tag keys (prefix removed) */
    size_t ntags;
    size_t ncols; /* fields in the header */
    int aux[6];   /* format-specific extra columns (AWS amortized costs, unused
                     commitment), -1 if absent */
};
void cloud_map_release(struct cloud_map *m);

/* Detects the format of a header row (or uses `format` when not NULL) and
 * resolves it. returns: 0; CORE_E_UNSUPPORTED when no format matches (message
 * names the closest); CORE_E_INVAL for an unknown `format` name; CORE_E_NOMEM.
 */
int cloud_billing_map(struct cloud_map *m, const char *format, char *const *hdr, size_t n,
                      struct core_err *err);

/* One normalized charge. Strings are borrowed from the row or from the charge's
 * own buffer and stay valid until the next cloud_billing_row() or
 * cloud_charge_release(). */
struct cloud_charge {
    char period[8];        /* "YYYY-MM" */
    char charge_start[21]; /* RFC 3339 UTC, "" if unknown */
    char charge_end[21];
    int64_t billed_n; /* nano-units */
    int64_t effective_n;
    int64_t list_n;
    const char *currency;
    const char *billing_account;
    const char *sub_account;
    const char *provider;
    const char *service_name;
    const char *service_category;
    const char *charge_category;
    const char *region;
    const char *resource_id;
    const char *sku;
    const char *tags_json; /* canonical JSON object, "{}" when none */
    /* Allocation keys drawn from the tags, NULL when absent. */
    const char *tag_team;
    const char *tag_service;
    const char *tag_env;
    const char *tag_cost_center;
    /* Commitment fields, FOCUS style (docs/billing-formats.md). */
    const char *commitment_id;     /* reservation / savings plan id, NULL when none */
    const char *commitment_type;   /* "reservation", "savings-plan" or NULL (static) */
    const char *commitment_status; /* "used", "unused" or NULL (static) */
    const char *pricing_category;  /* "on-demand", "commitment", "spot", "other" or NULL */
    const char *usage_type;        /* provider usage type / SKU description, NULL if none */
    int64_t usage_qty_n;           /* consumed quantity, nano-units */
    int64_t unused_commitment_n;   /* unused commitment cost carried by this charge */
    struct core_buf scratch;       /* owns tags_json and tag_* */
};
void cloud_charge_init(struct cloud_charge *c);
void cloud_charge_release(struct cloud_charge *c);

/* Normalizes one data row. returns: 0; CORE_E_INVAL for a malformed row (wrong
 * field count, a cost that is not a number, no usable date; message in err);
 * CORE_E_NOMEM. */
int cloud_billing_row(const struct cloud_map *m, char *const *f, size_t n, struct cloud_charge *c,
                      struct core_err *err);

/* Helpers, exposed for tests. A value is null when empty or a NULL literal
 * ("NULL", "null", "None", "N/A"). */
bool cloud_is_null(const char *s);
/* Parses "2024-09-18 22:00:00", "2024-09-18T22:00:00Z", "...000Z", "+02:00"
 * offsets, "2024-09-18", "09/18/2024[ 10:00[:00]]" and "202409" into RFC 3339
 * UTC (out: 21 bytes). */
int cloud_parse_time(const char *s, char out[21]);
/* Parses a decimal or exponent number into nano-units. */
int cloud_parse_money(const char *s, int64_t *out);

/* ---- import ---- */

struct cloud_malformed {
    char *file;
    int64_t line;
    char *reason;
};

struct cloud_scope {
    char *billing_account;
    char period[8];
    int64_t rows;
    int64_t malformed;
    int64_t billed_n;
    bool replaced; /* stored (false: left untouched because of malformed rows) */
};

struct cloud_import_stats {
    int64_t rows;                /* data rows read */
    int64_t imported;            /* rows stored */
    int64_t malformed;           /* rows refused */
    struct cloud_malformed *bad; /* the first CLOUD_IMPORT_BAD_MAX of them */
    size_t nbad;
    struct cloud_scope *scopes;
    size_t nscopes;
    char format[16]; /* format of the last file */
};
#define CLOUD_IMPORT_BAD_MAX 100
void cloud_import_stats_release(struct cloud_import_stats *s);

/* Progress callback: bytes done and total of the current file. */
typedef void (*cloud_progress_fn)(void *arg, const char *file, int64_t done, int64_t total);

struct cloud_import_opts {
    const char *format;         /* NULL = detect */
    bool allow_malformed;       /* import a scope's good rows even if some rows were
                                   malformed */
    cloud_progress_fn progress; /* may be NULL */
    void *progress_arg;
    int threads; /* reader threads for a plain file (scan.c), 0 = one per CPU */
};

/* Imports one file in one transaction (see the header comment). stats
 * accumulate over calls. returns: 0 (malformed rows are counted in stats, not
 * errors); CORE_E_UNSUPPORTED for an unknown header; CORE_E_IO; CORE_E_NOMEM;
 * store errors. Nothing is stored on error. */
int cloud_billing_import(struct store *st, const char *path, const struct cloud_import_opts *o,
                         struct cloud_import_stats *stats, struct core_err *err);

/* ---- reports ---- */

enum cloud_group {
    CLOUD_BY_TEAM = 0,
    CLOUD_BY_SERVICE,
    CLOUD_BY_ENV,
    CLOUD_BY_COST_CENTER,
};

#define CLOUD_UNALLOCATED "unallocated"

struct cloud_report_row {
    char *key;       /* team/service/env/cost center, or CLOUD_UNALLOCATED */
    bool in_catalog; /* key names a catalog team or service */
    int64_t rows;
    int64_t billed_n;
    int64_t effective_n;
};

struct cloud_report {
    struct cloud_report_row *items; /* billed cost descending, unallocated last */
    size_t n;
    int64_t total_billed_n;
    int64_t total_effective_n;
    char *currency; /* the currency when there is one, "mixed" otherwise, NULL if
                       empty */
};
void cloud_report_release(struct cloud_report *r);

/* Groups stored charges. Team: the `team` tag when it names a catalog team,
 * else the team owning the `service` tag's catalog service, else the tag value
 * as is, else unallocated. Service: the `service` tag. period: "YYYY-MM" or
 * NULL for all. */
int cloud_cost_report(struct store *st, enum cloud_group by, const char *period,
                      struct cloud_report *out, struct core_err *err);

/* Formats nano-units as a decimal with `decimals` places. */
void cloud_money_format(int64_t n, int decimals, char *out, size_t outsz);

/* ---- organization (org.c, org_policy.c, org_tags.c) ---- */

/*
 * An organization is a tree: one root, organizational units (OUs) and
 * accounts, with policies attached to any node (docs/org.md). Policies of type
 * "scp" are IAM JSON documents compiled by org_policy_parse(); an action is
 * allowed for an account only if every level from the root down to the account
 * has an attached SCP with a matching Allow and no level has a matching Deny.
 * Policies of type "tag" are AWS tag policies, inherited per key and evaluated
 * by the policy engine (src/policy) as required-tags and field rules.
 *
 * The parser and the evaluator (org_policy.c) are pure; org.c parses import
 * files into a `struct org_data` and moves it to and from the store (tables
 * org_nodes, org_policies, org_attachments); org_tags.c checks resources.
 */

#define ORG_POLICY_MAX (64u << 10)  /* one policy document, bytes */
#define ORG_FILE_MAX (16u << 20)    /* one import file, bytes */
#define ORG_DEPTH_MAX 16            /* levels from the root to an account */
#define ORG_STATEMENTS_MAX 1000     /* statements in one document */

struct json_t;

enum org_effect { ORG_ALLOW = 1, ORG_DENY };

/* A compiled IAM/SCP document. Immutable after parsing; may be shared by
 * threads. */
struct org_policy;

/* Compiles an IAM JSON policy document: Version, Id, Statement (object or
 * array) of Sid, Effect, Action/NotAction, Resource/NotResource (absent: "*")
 * and Condition. Anything else, an unknown condition operator, a value of the
 * wrong type or a numeric operator with a non-number is refused, the message
 * naming the path in the document ("Statement[1].Condition.StringEqualz:
 * unknown condition operator 'StringEqualz' (did you mean 'StringEquals'?)").
 * text: borrowed, at most ORG_POLICY_MAX bytes. returns: owned by caller (free
 * with org_policy_free()), or NULL with err (CORE_E_INVAL, CORE_E_TOO_BIG,
 * CORE_E_NOMEM). */
struct org_policy *org_policy_parse(const char *text, size_t len, struct core_err *err);
void org_policy_free(struct org_policy *p);
size_t org_policy_nstatements(const struct org_policy *p);
/* Sid of statement i, or NULL when it has none. */
const char *org_policy_sid(const struct org_policy *p, size_t i);
enum org_effect org_policy_effect(const struct org_policy *p, size_t i);

/* A context key (case-insensitive) and one of its values; repeat a key for a
 * multi-valued key. */
struct org_kv {
    const char *key;
    const char *value;
};

/* A request: all borrowed. */
struct org_request {
    const char *action;   /* "s3:GetObject" (matched case-insensitively) */
    const char *resource; /* an ARN; NULL means "*" */
    const struct org_kv *context;
    size_t ncontext;
};

/* True when statement i applies to req: its action, resource and every
 * condition match. Pure. */
bool org_statement_matches(const struct org_policy *p, size_t i, const struct org_request *req);

/* Wildcard match: '*' any run of bytes, '?' one byte; icase folds ASCII. */
bool org_glob_match(const char *pattern, const char *s, bool icase);
/* ARN match as ArnLike: each of the six ':' segments separately (the last one
 * takes the rest), case-sensitive, with wildcards. */
bool org_arn_match(const char *pattern, const char *arn);

/* Policies attached at one level (borrowed). */
struct org_attached {
    const char *id;
    const char *name;
    const struct org_policy *policy;
};
struct org_level {
    const char *kind; /* "root", "ou", "account" */
    const char *id;
    const char *name;
    const struct org_attached *policies;
    size_t npolicies;
};

/* A statement found: level index (-1 for none), policy index at that level,
 * statement index in the policy. */
struct org_hit {
    int level;
    size_t policy;
    size_t statement;
};

struct org_decision {
    bool allowed;
    struct org_hit deny;  /* the first matching Deny from the root down */
    int missing_level;    /* the first level without a matching Allow, or -1 */
    struct org_hit allow[ORG_DEPTH_MAX]; /* per level, the first matching Allow */
};

/* SCP evaluation over levels[0] (the root) .. levels[n-1] (the account); n at
 * most ORG_DEPTH_MAX. Explicit Deny wins; else every level needs an Allow. */
void org_scp_decide(const struct org_level *levels, size_t n, const struct org_request *req,
                    struct org_decision *out);

/* The organization as stored (strings owned). kind: "root", "ou", "account";
 * policy type: "scp" or "tag". */
struct org_node {
    char *id;
    char *kind;
    char *name;
    char *parent_id; /* NULL for a root */
    char *email;
    char *status;
};
struct org_policy_rec {
    char *id;
    char *name;
    char *type;
    char *document; /* JSON text */
};
struct org_attachment {
    char *policy_id;
    char *target_id;
};
struct org_data {
    struct org_node *nodes;
    size_t nnodes;
    struct org_policy_rec *policies;
    size_t npolicies;
    struct org_attachment *att;
    size_t natt;
    bool whole;          /* a complete organization (Paved shape): replaces */
    char *targets_of;    /* list-targets-for-policy: the policy whose targets
                            these are (replaced) */
};
void org_data_release(struct org_data *d);

struct org_import_opts {
    const char *parent; /* parent id for AWS list shapes without "ParentId" */
    const char *policy; /* policy id for list-targets-for-policy without "PolicyId" */
};

/* Parses one import file (Paved YAML/JSON, or an AWS Organizations CLI output;
 * docs/org.md) into d, which must be zeroed. Every policy document is compiled
 * (SCPs with org_policy_parse(), tag policies with org_tag_policy_check()) and
 * every problem refuses the file. name: for messages. returns: 0,
 * CORE_E_INVAL, CORE_E_TOO_BIG, CORE_E_NOMEM. */
int org_import_parse(struct org_data *d, const char *name, const char *text, size_t len,
                     const struct org_import_opts *o, struct core_err *err);

/* Stores d in one transaction: a whole organization replaces everything
 * stored; other files replace the nodes and policies they name (by id) and,
 * for targets, that policy's attachments. Re-importing is idempotent. */
int org_store_save(struct store *st, const struct org_data *d, struct core_err *err);
/* Loads the whole organization into d (zeroed first). */
int org_store_load(struct store *st, struct org_data *d, struct core_err *err);

/* A node by id, else by name (case-sensitive), else NULL. */
const struct org_node *org_node_find(const struct org_data *d, const char *id_or_name);
/* The path root .. node into path (ORG_DEPTH_MAX entries). returns: 0;
 * CORE_E_INVAL when a parent is missing, there is a cycle or the tree is too
 * deep. */
int org_node_path(const struct org_data *d, const struct org_node *n,
                  const struct org_node *path[ORG_DEPTH_MAX], size_t *npath,
                  struct core_err *err);

/* Answers "can ACCOUNT do ACTION on RESOURCE" with SCPs: *out receives
 * {"decision": "allow"|"deny", "account": {id, name}, "action", "resource",
 * "reason", "statement": {policy, policy_id, sid, index, effect, level: {kind,
 * id, name}} (null for an implicit deny), "missing_level": {...} (implicit
 * deny), "levels": [{kind, id, name, policies: [..], allowed_by}]}.
 * returns: 0; CORE_E_NOTFOUND for an unknown account; CORE_E_INVAL for a
 * broken tree or a stored document that no longer compiles; CORE_E_NOMEM. */
int org_can(const struct org_data *d, const char *account, const struct org_request *req,
            struct json_t **out, struct core_err *err);

/* The tree as JSON: {"roots": [{kind, id, name, email, status, policies:
 * [{id, name, type}], children: [...]}], "orphans": [...]}. */
struct json_t *org_tree_json(const struct org_data *d);

/* Loads the demo organization (demo/org.yaml, embedded) into a store that has no organization
 * yet; does nothing otherwise. */
int cloud_org_demo_load(struct store *st, struct core_err *err);

/* Validates an AWS tag policy document ({"tags": {KEY: {tag_key, tag_value,
 * enforced_for}}}, each with "@@assign"), naming the path of any problem. */
int org_tag_policy_check(const char *text, size_t len, struct core_err *err);

/* The effective tag policy of a node: the tag policies attached from the root
 * down, merged per key (a lower level's tag_key, tag_value and enforced_for
 * replace the inherited ones; policies of one level in name order). *out: {KEY:
 * {"tag_key", "tag_value": [...], "enforced_for": [...], "from": [policy names]}},
 * {} when none applies. */
int org_tags_effective(const struct org_data *d, const struct org_node *n,
                       struct json_t **out, struct core_err *err);
/* Translates an effective tag policy into a guard-rails policy document (JSON
 * text of kind Policy with field and required-tags rules). *out: owned by the
 * caller (core_free). The subject document it expects is built by
 * org_tags_subject(). */
int org_tags_to_rules(struct json_t *effective, char **out, struct core_err *err);

/* Checks resources against their accounts' effective tag policies with the
 * policy engine: the distinct resources of the billing data (cost_lines;
 * account = sub account, else billing account) when resources is NULL, else
 * the resources JSON (an array or {"resources": [...]} of {id, type, account,
 * tags}). account: NULL for all. *out: {"summary": {resources, compliant,
 * non_compliant, not_enforced, enforced_violations}, "items": [{resource,
 * account, type, status, enforced, reasons: [...]}]} (non-compliant items). */
int org_tags_check(struct store *st, const struct org_data *d, const char *account,
                   const char *resources, size_t len, struct json_t **out,
                   struct core_err *err);

/* ---- parallel scan (scan.c) ---- */

/*
 * A parallel reader of one billing file. A plain file is mapped and split into
 * byte ranges, one per thread. Range starts are chosen at a newline outside
 * quotes (quote parity counted per range in a first pass), and every range is
 * checked at its end: the worker before a boundary must stop exactly on it. If
 * it does not (a malformed quote made the parity lie), that worker carries on to
 * the end of the file and the later ranges are thrown away, so results are
 * always those of one sequential pass (cloud_csv_next + cloud_billing_row):
 * same rows, same malformed rows, same line numbers (lines are counted per
 * range and offset once the ranges before are done). Gzip input and files that
 * cannot be mapped (pipes) are read by one streaming thread. Memory: each
 * worker copies one record at a time; mapped pages are dropped behind the workers (MADV_DONTNEED), so resident memory
 * stays small whatever the file size.
 *
 * keys_only selects a fast normalization for grouping: the same verdicts,
 * period, dates, costs, currency, account, provider, service, region,
 * resource, SKU and allocation tags as cloud_billing_row(), but tags_json,
 * charge_category and the commitment fields are not filled (unspecified). It
 * falls back to cloud_billing_row() for any value it does not recognize, and
 * is not used for one-column-per-tag formats or AWS amortized columns.
 *
 * Threading: a struct cloud_scan belongs to the thread that opened it; it runs
 * its own workers. Thread count 0 means the number of online CPUs.
 */
#define CLOUD_SCAN_THREADS_MAX 64

struct cloud_scan;

struct cloud_scan_opts {
    const char *format; /* NULL = detect from the header */
    int threads;        /* 0 = online CPUs, at most CLOUD_SCAN_THREADS_MAX */
    size_t min_range;   /* smallest byte range worth a thread; 0 = 4 MiB (tests use 1) */
    bool keys_only;     /* fast path for grouping (see above) */
};

/* Opens a file, reads its header and resolves the format. Error messages are
 * those of cloud_billing_import ("cannot open", "is empty", "header: ...").
 * returns: owned by caller, free with cloud_scan_free(); NULL with err set. */
struct cloud_scan *cloud_scan_open(const char *path, const struct cloud_scan_opts *o,
                                   struct core_err *err);
void cloud_scan_free(struct cloud_scan *s);
/* The resolved header (borrowed, lives as long as s). */
const struct cloud_map *cloud_scan_map(const struct cloud_scan *s);

/* Normalized rows handed to the opening thread in file order. rows[i] is valid
 * until the next cloud_scan_next() or cloud_scan_free(); lines[i] is the line
 * on which row i starts. */
struct cloud_scan_batch {
    struct cloud_charge *rows;
    const int64_t *lines;
    size_t n;
};
/* Starts the workers on the first call. returns: 1 with a batch; 0 when the
 * file is done; CORE_E_TOO_BIG (a record over 16 MiB), CORE_E_IO or
 * CORE_E_NOMEM (err set). Malformed rows are not errors: see
 * cloud_scan_stats(). */
int cloud_scan_next(struct cloud_scan *s, struct cloud_scan_batch *b, struct core_err *err);
/* Bytes of the file behind the workers so far, and the file size (0 unknown). */
void cloud_scan_progress(const struct cloud_scan *s, int64_t *done, int64_t *total);

struct cloud_scan_bad {
    int64_t line;
    char reason[160];
};
struct cloud_scan_stats {
    int64_t rows;                     /* data records, malformed included */
    int64_t malformed;                /* rows refused */
    const struct cloud_scan_bad *bad; /* the first CLOUD_IMPORT_BAD_MAX, by line */
    size_t nbad;
    int threads;    /* ranges the file was split into */
    bool stitched;  /* a range boundary was wrong and a worker read on */
};
/* Valid after cloud_scan_next() returned 0 (bad: borrowed from s). */
void cloud_scan_stats(const struct cloud_scan *s, struct cloud_scan_stats *out);

/* Spend grouped by up to four tag keys straight from files: the tag values as
 * they are (no catalog lookup), CLOUD_UNALLOCATED when a tag is missing. */
#define CLOUD_SCAN_KEYS_MAX 4
struct cloud_scan_group_row {
    char *key[CLOUD_SCAN_KEYS_MAX];
    int64_t rows;
    int64_t billed_n;
    int64_t effective_n;
};
struct cloud_scan_ght;
struct cloud_scan_result {
    enum cloud_group by[CLOUD_SCAN_KEYS_MAX];
    size_t nby;
    struct cloud_scan_group_row *items; /* after cloud_scan_result_finish(): billed desc */
    size_t n;
    int64_t rows, malformed, total_billed_n, total_effective_n;
    char *currency;              /* one currency, "mixed", or NULL when none */
    struct cloud_malformed *bad; /* first CLOUD_IMPORT_BAD_MAX over all files */
    size_t nbad;
    int threads; /* most ranges any file was split into */
    struct cloud_scan_ght *ht;
};
void cloud_scan_result_init(struct cloud_scan_result *r, const enum cloud_group *by, size_t nby);
void cloud_scan_result_release(struct cloud_scan_result *r);
/* Scans one file with worker threads and adds its groups to r (call once per
 * file). returns: 0; the errors of cloud_scan_open / cloud_scan_next. */
int cloud_scan_group(const char *path, const struct cloud_scan_opts *o,
                     struct cloud_scan_result *r, struct core_err *err);
/* Fills r->items from the groups, sorted by billed cost (unallocated last). */
int cloud_scan_result_finish(struct cloud_scan_result *r, struct core_err *err);

/* ---- analysis (analysis.c) ----
 *
 * Reports over the stored charges, each returned as a JSON object the caller
 * owns (json_decref()): the CLI prints it as a table, CSV or JSON, the API
 * sends it, the portal draws it. Money in these objects is a decimal string
 * with 6 places ("12.500000"); every report carries billed and effective
 * (amortized) cost. Definitions (docs/cost.md): untagged spend is spend
 * without a team tag; commitment-eligible usage is usage priced on demand or
 * by a commitment in a compute or database service category (or covered by a
 * commitment); coverage is covered / eligible usage at on-demand prices;
 * utilization is used / (used + unused) commitment. period is "YYYY-MM" or
 * NULL for all stored data. Errors: NULL with err set (store errors,
 * CORE_E_NOMEM). Threading: one call per thread and store connection.
 */

struct json_t;

/* Text from an export as a new JSON string (NULL: ""): exports are not always
 * valid UTF-8, and the bytes of an invalid string that are not ASCII become
 * '?'. returns: a new reference, NULL on allocation failure. */
struct json_t *cloud_json_text(const char *s);

/* Spreads `amount` over n shares in proportion to weights (all >= 0; NULL or
 * all zero means even). out[i] receives each share; the shares always sum to
 * `amount` exactly: each gets floor(amount * w / W) and the nano-units left
 * over go one by one to the largest remainders, ties to the earlier share.
 * returns: 0; CORE_E_INVAL for n == 0 or a negative weight. */
int cloud_split_amount(int64_t amount, const int64_t *weights, size_t n, int64_t *out);

/* Validates a split rule document (YAML or JSON; see docs/cost.md):
 *   name: shared-platform
 *   match: {team: [shared, platform], service: [AWS CloudTrail]}
 *   method: even | proportional | fixed
 *   teams: [payments, search]          # even and proportional
 *   weights: {payments: 3, search: 1}  # fixed
 * On success *json receives the canonical JSON (owned by caller, free() it:
 * jansson allocates it; a fixed rule's teams are the keys of weights) and
 * name the rule name; the canonical JSON checks again as the same rule. returns: 0; CORE_E_INVAL with file:line:col in err;
 * CORE_E_NOMEM. Pure: the fuzzer drives it. */
int cloud_split_rule_check(const char *text, size_t len, char **json, char name[64],
                           struct core_err *err);
/* Stores (or replaces) a checked rule. actor: recorded in the audit log. */
int cloud_split_rule_put(struct store *st, const char *text, size_t len, const char *actor,
                         char name[64], struct core_err *err);
/* returns: 0; CORE_E_NOTFOUND when no rule has that name. */
int cloud_split_rule_delete(struct store *st, const char *name, const char *actor,
                            struct core_err *err);
/* {"items":[{"name", "method", "match", "teams", "weights", "updated_at"}]} */
struct json_t *cloud_split_rule_list(struct store *st, struct core_err *err);

/* Spend by team with split rules applied when `split`: {"period", "currency",
 * "split", "items":[{"team", "in_catalog", "rows", "direct_billed",
 * "allocated_billed", "billed", "direct_effective", "allocated_effective",
 * "effective", and direct_billed_n, allocated_billed_n, billed_n in exact
 * nano-units}], "total_billed", "total_effective", "shared":[{"rule",
 * "billed", "effective", "allocated_billed"}]}. The last item is always
 * "unallocated": untagged spend plus shared spend a rule could not spread. */
struct json_t *cloud_cost_team_report(struct store *st, const char *period, bool split,
                                      struct core_err *err);
/* Spend without a team tag grouped by account (sub account, else billing
 * account) or by provider service: {"by", "items":[{"key", "rows", "billed",
 * "effective"}], "total_billed", "total_effective"}. */
struct json_t *cloud_cost_untagged(struct store *st, const char *period, bool by_service,
                                   struct core_err *err);
/* Daily (charge start date) or monthly (billing period) series, optionally
 * split by team or service tag (group: -1 for none, CLOUD_BY_TEAM,
 * CLOUD_BY_SERVICE): {"interval", "items":[{"date", "key", "billed",
 * "effective"}]} ordered by date. */
struct json_t *cloud_cost_trend(struct store *st, const char *period, bool monthly, int group,
                                struct core_err *err);
/* Coverage and utilization per commitment type: {"eligible_ondemand_equiv",
 * "covered_ondemand_equiv", "ondemand", "coverage_pct", "types":[{"type",
 * "commitments", "used", "unused", "utilization_pct"}]}; a percentage is null
 * when its denominator is zero. */
struct json_t *cloud_cost_commitments(struct store *st, const char *period, struct core_err *err);

struct cloud_recommendation {
    size_t days;                 /* days in the series */
    int64_t baseline_daily_n;    /* the percentile of daily on-demand eligible spend */
    int64_t ondemand_hourly_n;   /* baseline / 24: on-demand spend to cover per hour */
    int64_t commitment_hourly_n; /* what to commit per hour (after the discount) */
    int64_t monthly_savings_n;   /* estimated, over 730 hours */
    int64_t mean_daily_n;
};
/* Recommendation from a daily on-demand eligible spend series (missing days
 * as 0): baseline = the `percentile` (0-100, nearest rank) of the days,
 * commitment per hour = baseline / 24 * (1 - discount_pct / 100), savings =
 * baseline / 24 * 730 * discount_pct / 100. returns: 0; CORE_E_INVAL for an
 * empty series or out-of-range parameters. */
int cloud_recommend_series(const int64_t *daily, size_t n, double percentile, double discount_pct,
                           struct cloud_recommendation *out);
/* The same over the store's last `days` days of data (ending at the latest
 * charge date), with its assumptions listed in "assumptions". */
struct json_t *cloud_cost_recommend(struct store *st, int days, double discount_pct,
                                    double percentile, struct core_err *err);

/* The period reports default to: the latest one holding at least a tenth of
 * the rows of the busiest period, so a few late lines of a new month do not
 * make a nearly empty month the default. out: "" when no charges. */
int cloud_default_period(struct store *st, char out[16], struct core_err *err);

#define CLOUD_BUDGET_OK "ok"
#define CLOUD_BUDGET_AT_RISK "at-risk"
#define CLOUD_BUDGET_OVER "over"
/* Linear forecast to month end from month-to-date spend after `day` of
 * `days_in_month` days, and the state: over when actual > budget, at-risk when
 * the forecast exceeds the budget or actual reaches alert_pct % of it, else
 * ok. *state is one of the CLOUD_BUDGET_* strings. */
void cloud_budget_forecast(int64_t actual_n, int day, int days_in_month, int64_t budget_n,
                           int alert_pct, int64_t *forecast_n, const char **state);
/* Sets a team's monthly budget (nano-units > 0, alert_pct 1..1000). Audited. */
int cloud_budget_set(struct store *st, const char *team, int64_t monthly_n, int alert_pct,
                     const char *actor, struct core_err *err);
/* Budgets with month-to-date actual (direct + allocated team spend), forecast
 * and state for `period` (NULL: cloud_default_period(), else this month).
 * The month's elapsed days are those up to the latest charge date stored for
 * it (without charges: today in the current month, else the whole month). With `record`, a team at risk or over gets one cost_alerts
 * row per team and period (logged when new). {"period", "as_of_day",
 * "days_in_month", "items":[{"team", "budget", "alert_pct", "actual",
 * "forecast", "used_pct", "state", "alert"}], "over", "new_alerts"}. */
struct json_t *cloud_budget_list(struct store *st, const char *period, bool record,
                                 struct core_err *err);

/* Scores one day against the previous n days of a series: baseline = their
 * mean, spread = max(standard deviation, 10% of the mean, 0.01 unit); score
 * = (today - baseline) / spread. returns: true when score >= threshold and
 * today is above the median of the previous days too. */
bool cloud_anomaly_score(const int64_t *prev, size_t n, int64_t today, double threshold,
                         double *score, int64_t *baseline_n);
/* Anomalies in daily billed spend per provider service over the stored data,
 * each day scored against the `days` days before it (3 of them with spend):
 * {"days", "threshold", "items":[{"service", "date", "spend", "baseline",
 * "delta", "score", "top":[{"dimension", "key", "delta"}], "explanation"}]}.
 * top lists the usage types, resources, accounts and regions whose spend
 * moved most against their own trailing mean. */
struct json_t *cloud_cost_anomalies(struct store *st, int days, double threshold,
                                    struct core_err *err);

/* The demo (pave up, pave server --demo): when the store holds no charges,
 * imports the FOCUS and AWS CUR samples from `dir` (tests/data/billing), adds
 * a split rule spreading shared EC2 over the demo teams and two budgets.
 * returns: 0 (also when charges exist); import and store errors. */
int cloud_demo_load(struct store *st, const char *dir, struct core_err *err);

#endif
