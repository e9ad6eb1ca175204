/*
 * cloud: the platform's view of cloud spend. This header covers billing:
 * reading providers' cost exports, mapping every format onto FOCUS columns,
 * storing charges by billing period, and grouping spend by team, service,
 * environment and cost center through tags joined to the catalog (accounts,
 * organization policies and budgets are to follow here).
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
    int aux[2];   /* format-specific extra columns (AWS amortized costs), -1 if
                     absent */
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
    struct core_buf scratch; /* owns tags_json and tag_* */
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

#endif
