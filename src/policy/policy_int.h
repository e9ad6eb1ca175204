/*
 * policy internals: the compiled form of a policy set, shared by parse.c (compiles documents into
 * it), eval.c (evaluates subjects against it) and inventory.c. Nothing outside src/policy/
 * includes this header.
 *
 * A compiled set owns one arena (every string, path, value list and rule lives there) plus the
 * PCRE2 codes, which are kept in a list so policy_set_free() can free them. After
 * policy_set_parse() returns, the set is immutable: evaluation only reads it, and the per-call
 * state (PCRE2 match data) belongs to the caller of policy_evaluate(), so threads may share a set.
 */
#ifndef PAVE_POLICY_INT_H
#define PAVE_POLICY_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "policy/policy.h"

/* Hard limits on what one set may hold: policies are written by people, a set bigger than this
 * is a mistake (or hostile) and is refused rather than slowing every gate. */
#define POLICY_MAX_RULES 4096
#define POLICY_MAX_DOC (4u << 20)        /* bytes per document */
#define POLICY_ARENA_CAP (64u << 20)     /* compiled set */
#define POLICY_MAX_PATH_SEGS 32
#define POLICY_MATCH_LIMIT 100000u       /* PCRE2 match limit per match */
#define POLICY_DEPTH_LIMIT 10000u

enum pol_kind {
    POL_REQUIRED_TAGS = 1,
    POL_APPROVED_TECH,
    POL_RESOURCE_BOUNDS,
    POL_EXPOSURE,
    POL_DATA_CLASS,
    POL_PROVENANCE,
    POL_FIELD,
};

enum pol_op {
    POL_OP_EQ = 1,
    POL_OP_NE,
    POL_OP_LT,
    POL_OP_LE,
    POL_OP_GT,
    POL_OP_GE,
    POL_OP_IN,
    POL_OP_NOT_IN,
    POL_OP_MATCHES,
    POL_OP_EXISTS,
    POL_OP_ABSENT,
    POL_OP_CONTAINS,
};

enum pol_seg_kind { POL_SEG_KEY = 1, POL_SEG_INDEX, POL_SEG_ANY };

struct pol_seg {
    enum pol_seg_kind kind;
    const char *key; /* KEY */
    size_t index;    /* INDEX */
};

struct pol_path {
    const char *text; /* as written, for messages */
    struct pol_seg *segs;
    size_t n;
    bool has_any; /* some segment is [*] */
};

enum pol_vtype { POL_V_NULL = 1, POL_V_BOOL, POL_V_NUM, POL_V_STR, POL_V_LIST };

/* A literal from a rule. Strings that read as quantities ("500m", "1Gi") carry their number too,
 * so comparisons need no parsing at evaluation time. */
struct pol_value {
    enum pol_vtype type;
    bool b;
    bool is_num;   /* NUM, or a STR that parses as a quantity */
    double num;
    const char *s; /* STR; also NUM as written */
    struct pol_value *items; /* LIST */
    size_t n;
};

struct pol_cond {
    struct pol_path path;
    enum pol_op op;
    struct pol_value val;
    pcre2_code *re; /* MATCHES */
    const char *want; /* "expected >= 2", for failure messages (built once at parse) */
    int line, col;
};

/* A bounded quantity: replicas (count), cpu (millicores), memory (bytes). */
struct pol_bound {
    bool has_min, has_max;
    int64_t min, max;
    int min_line, min_col, max_line, max_col;
};

struct pol_tier_bounds {
    int tier; /* 1..4 */
    struct pol_bound replicas, cpu, memory;
};

struct pol_tag_req {
    const char *key;
    bool required;
    const char *pattern;
    pcre2_code *re;
    const char **values; /* allowed values; n == 0: any */
    size_t nvalues;
    int line, col;
};

struct pol_tech {
    const char *name;
    const char **versions; /* n == 0: any version */
    size_t n;
};

struct pol_scope {
    const char **teams;
    size_t nteams;
    const char **envs;
    size_t nenvs;
    unsigned tiers;    /* bit t set: tier t; 0 = all */
    unsigned subjects; /* bit (1 << subject); 0 = the kind's defaults */
    unsigned gates;    /* bit (1 << gate); 0 = all */
};

struct pol_rule {
    const char *id, *policy, *file;
    const char *kind_name;
    enum pol_kind kind;
    const char *description, *rationale, *remediation;
    enum policy_severity severity;
    enum policy_mode mode;
    struct pol_scope scope;
    int line, col;

    /* required-tags */
    struct pol_tag_req *tags;
    size_t ntags;
    /* approved-technologies */
    struct pol_tech *techs;
    size_t ntechs;
    /* resource-bounds */
    struct pol_tier_bounds *tiers;
    size_t ntiers;
    /* exposure, data-classification */
    const char **domains;
    size_t ndomains;
    bool require_tls;
    int max_tier; /* 0: no limit */
    /* data-classification */
    const char *class_tag;
    const char **conf_values;
    size_t nconf;
    /* provenance */
    const char **builders;
    size_t nbuilders;
    /* field */
    struct pol_cond *all, *any, *none;
    size_t nall, nany, nnone;
};

struct policy_set {
    struct core_arena arena;
    struct pol_rule *rules; /* heap array (rules grow while documents are compiled) */
    size_t nrules, caprules;
    pcre2_code **codes; /* every compiled regex, freed with the set (heap array) */
    size_t ncodes, capcodes;
    pcre2_match_context *mctx; /* match and depth limits; read-only after parse */
    uint32_t max_ovector;      /* largest capture count + 1 of any code */
    char digest[65];
};

/* Subjects a kind applies to when its scope names none. */
unsigned policy_kind_default_subjects(enum pol_kind k);

/* "==", "in" ... */
const char *policy_op_name(enum pol_op op);

/* Parses a quantity: a number with an optional suffix m (milli), k, M, G, T, P (powers of 1000)
 * or Ki, Mi, Gi, Ti, Pi (powers of 1024). returns: whether s is one. */
bool policy_quantity(const char *s, double *out);

/* Technology of a cloud resource for approved-technologies: maps the resource's type and
 * attributes (doc) to a name ("postgres") and a version (may be NULL). returns: false when the
 * type is not a known managed technology. name/version: borrowed from doc or static. */
bool policy_resource_technology(const json_t *doc, const char **name, const char **version,
                                char *vbuf, size_t vbufsz);

#endif
