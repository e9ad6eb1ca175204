/* Sigma rules: loading (YAML -> compiled rule), the condition parser, the literal prefilter, the
 * field-mapping layer (a "view" of one telemetry record as Sigma sees it) and evaluation.
 * docs/security.md. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "security/security.h"

#define SET_ARENA_CAP (256u << 20) /* all compiled rules of a set */
#define RULE_MAX (1u << 20)        /* bytes of one rule file */
#define COND_DEPTH_MAX 64
#define MATCH_LIMIT 100000 /* PCRE2: backtracking steps per match */
#define DEPTH_LIMIT 1000
#define HEAP_LIMIT_KIB 1024
#define VIEW_FIELDS_MAX 160
#define LIT_MIN 3       /* shorter required literals filter nothing: the rule is always run */
#define LIT_HASH_BITS 15 /* the literal index: buckets keyed by a literal's first 3 bytes */

/* Pattern bytes standing for Sigma's wildcards once escapes are resolved. */
#define WILD_STAR '\x01'
#define WILD_ONE '\x02'

/* ---- compiled form ------------------------------------------------------------------------ */

enum vop { VOP_GLOB = 1, VOP_RE, VOP_CIDR, VOP_EXISTS, VOP_NUM, VOP_NULL };
enum numop { NUM_LT = 1, NUM_LTE, NUM_GT, NUM_GTE };

struct value {
    enum vop op;
    uint32_t group; /* variants of one written value share a group (windash, base64offset) */
    char *pat;      /* GLOB: with WILD_* bytes; lowercased unless cased */
    size_t len;
    bool cased;
    pcre2_code *re;
    const char *lit; /* RE: a run every match contains (re_required), NULL when none */
    size_t litlen;
    int family; /* CIDR: AF_INET / AF_INET6 */
    uint8_t addr[16];
    int bits;
    bool exists;   /* EXISTS: expected presence */
    enum numop nop; /* NUM */
    double num;
};

struct item {
    const char *field; /* NULL: a keyword (searched in the whole event) */
    bool all;          /* |all: every group must match */
    struct value *v;
    size_t nv;
    uint32_t ngroups;
};

struct conj { /* AND of items */
    struct item *items;
    size_t n;
};

struct sel { /* OR of conjunctions */
    const char *name;
    struct conj *alts;
    size_t n;
};

enum ckind { C_SEL = 1, C_NOT, C_OF };

struct cnode {
    enum ckind kind;
    size_t sel;   /* C_SEL */
    size_t k;     /* C_OF: at least k of the kids (1 = or, n = and) */
    struct cnode **kids;
    size_t n;
};

enum vkind { VK_OTHER = 0, VK_AUDITD, VK_SYSLOG };

struct lsrc {
    int kind;                 /* VK_* required, or -1 for any */
    const char *const *apps;  /* syslog/app names, NULL: any */
    bool proc_creation;       /* category process_creation */
    bool pave_audit;          /* product pave, service audit: the platform's audit log */
};

struct rule {
    struct security_sigma_rule pub;
    struct lsrc ls;
    struct sel *sels;
    size_t nsels;
    struct cnode *cond;
    /* The prefilter: the rule can only match a record whose text (any value a field or keyword
     * can be compared with, lowercased) holds, for every clause, one of its literals. Clause i
     * is lits[clause_end[i - 1] .. clause_end[i]). No clause: nothing could be derived (a not,
     * an exists, a regex without a fixed run...), the rule always runs. */
    uint32_t *lits; /* ids in the set's literal table */
    uint32_t *clause_end;
    uint32_t nclauses;
};

/* One distinct literal of the prefilter (lowercase, at least LIT_MIN bytes). */
struct lit {
    const char *s;
    uint32_t len;
    uint32_t next;   /* next literal of the same bucket; 0 ends */
    uint32_t *rules; /* rules keyed on this literal (one of their clauses holds it) */
    uint32_t nrules, caprules;
};

struct security_sigma_set {
    struct core_arena arena;
    struct rule *rules;
    size_t n, cap;
    struct security_sigma_reject *rej;
    size_t nrej, caprej;
    pcre2_code **codes; /* to free */
    size_t ncodes, capcodes;
    pcre2_match_context *mctx;
    struct lit *lits; /* [0] unused, so that id 0 ends a bucket list */
    uint32_t nlits, caplits;
    uint32_t *heads; /* 1 << LIT_HASH_BITS bucket heads; NULL until the first literal */
    size_t maxsel;   /* the most selections of one rule */
    uint64_t *always; /* bitset over rules: no clause, evaluated whatever the text (cap bits) */
    bool no_prefilter;
};

/* Compile state for one rule. */
struct cctx {
    struct security_sigma_set *s;
    const char *name;
    struct core_err *err;
    struct rule *r;
};

static int fail_at(struct cctx *c, const struct core_node *n, int code, const char *fmt, ...)
    CORE_PRINTF(4, 5);

static int fail_at(struct cctx *c, const struct core_node *n, int code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (code == CORE_E_UNSUPPORTED)
        return core_err_set(c->err, code, "%s:%d:%d: unsupported: %s", c->name, n ? n->line : 0,
                            n ? n->col : 0, msg);
    return core_err_set(c->err, code, "%s:%d:%d: %s", c->name, n ? n->line : 0, n ? n->col : 0,
                        msg);
}

static void *zalloc(struct cctx *c, size_t n)
{
    return core_arena_alloc(&c->s->arena, n ? n : 1);
}

static char *sdup(struct cctx *c, const char *s)
{
    return core_arena_strdup(&c->s->arena, s ? s : "");
}

/* ---- values and modifiers ----------------------------------------------------------------- */

enum {
    M_CONTAINS = 1 << 0,
    M_STARTS = 1 << 1,
    M_ENDS = 1 << 2,
    M_ALL = 1 << 3,
    M_RE = 1 << 4,
    M_RE_I = 1 << 5,
    M_RE_M = 1 << 6,
    M_RE_S = 1 << 7,
    M_CIDR = 1 << 8,
    M_B64 = 1 << 9,
    M_B64OFF = 1 << 10,
    M_WINDASH = 1 << 11,
    M_EXISTS = 1 << 12,
    M_CASED = 1 << 13,
    M_LT = 1 << 14,
    M_LTE = 1 << 15,
    M_GT = 1 << 16,
    M_GTE = 1 << 17,
};

static int parse_mods(struct cctx *c, const struct core_node *at, const char *spec, unsigned *m)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {
        {"contains", M_CONTAINS}, {"startswith", M_STARTS}, {"endswith", M_ENDS},
        {"all", M_ALL},           {"re", M_RE},             {"i", M_RE_I},
        {"m", M_RE_M},            {"s", M_RE_S},            {"cidr", M_CIDR},
        {"base64", M_B64},        {"base64offset", M_B64OFF}, {"windash", M_WINDASH},
        {"exists", M_EXISTS},     {"cased", M_CASED},       {"lt", M_LT},
        {"lte", M_LTE},           {"gt", M_GT},             {"gte", M_GTE},
    };
    static const char *const unsupported[][2] = {
        {"wide", "utf16 encodings are for Windows events, not Linux logs"},
        {"utf16", "utf16 encodings are for Windows events, not Linux logs"},
        {"utf16le", "utf16 encodings are for Windows events, not Linux logs"},
        {"utf16be", "utf16 encodings are for Windows events, not Linux logs"},
        {"expand", "placeholders need a placeholder table, which is not configured"},
        {"fieldref", "comparing two fields of one event"},
    };
    *m = 0;
    const char *p = spec;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool found = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strlen(known[i].name) == n && strncmp(known[i].name, p, n) == 0) {
                *m |= known[i].bit;
                found = true;
            }
        if (!found) {
            for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
                if (strlen(unsupported[i][0]) == n && strncmp(unsupported[i][0], p, n) == 0)
                    return fail_at(c, at, CORE_E_UNSUPPORTED, "modifier '%.*s' (%s)", (int)n, p,
                                   unsupported[i][1]);
            return fail_at(c, at, CORE_E_UNSUPPORTED, "unknown modifier '%.*s'", (int)n, p);
        }
        if (!e)
            break;
        p = e + 1;
    }
    if ((*m & (M_RE_I | M_RE_M | M_RE_S)) && !(*m & M_RE))
        return fail_at(c, at, CORE_E_INVAL, "modifiers i, m and s go with re");
    unsigned kinds = !!(*m & M_RE) + !!(*m & M_CIDR) + !!(*m & M_EXISTS) +
                     !!(*m & (M_LT | M_LTE | M_GT | M_GTE)) +
                     !!(*m & (M_CONTAINS | M_STARTS | M_ENDS | M_B64 | M_B64OFF | M_WINDASH));
    if (kinds > 1 || __builtin_popcount(*m & (M_CONTAINS | M_STARTS | M_ENDS)) > 1 ||
        __builtin_popcount(*m & (M_LT | M_LTE | M_GT | M_GTE)) > 1 ||
        ((*m & M_B64) && (*m & M_B64OFF)))
        return fail_at(c, at, CORE_E_INVAL, "modifiers '%s' do not combine", spec);
    return 0;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_enc(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    out[o] = 0;
}

/* Literal text -> glob pattern: Sigma escapes (\* \? \\) resolved, * and ? become WILD_*. */
static char *glob_from(struct cctx *c, const char *s, size_t n, bool literal, unsigned m,
                       size_t *outlen)
{
    char *p = zalloc(c, n + 3);
    if (!p)
        return NULL;
    size_t o = 0;
    if (m & M_CONTAINS || m & M_ENDS)
        p[o++] = WILD_STAR;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!literal && ch == '\\' && i + 1 < n &&
            (s[i + 1] == '*' || s[i + 1] == '?' || s[i + 1] == '\\')) {
            ch = s[++i];
        } else if (!literal && ch == '*') {
            ch = WILD_STAR;
        } else if (!literal && ch == '?') {
            ch = WILD_ONE;
        }
        if (!(m & M_CASED))
            ch = (char)tolower((unsigned char)ch);
        p[o++] = ch;
    }
    if (m & M_CONTAINS || m & M_STARTS)
        p[o++] = WILD_STAR;
    p[o] = 0;
    *outlen = o;
    return p;
}

struct vlist {
    struct value *v;
    size_t n, cap;
};

static struct value *vl_push(struct cctx *c, struct vlist *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct value *nv = zalloc(c, cap * sizeof(*nv));
        if (!nv)
            return NULL;
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof(*nv));
        l->v = nv;
        l->cap = cap;
    }
    return &l->v[l->n++];
}

static int add_code(struct security_sigma_set *s, pcre2_code *code)
{
    if (s->ncodes == s->capcodes) {
        size_t cap = s->capcodes ? s->capcodes * 2 : 16;
        pcre2_code **nc = core_realloc(s->codes, cap * sizeof(*nc));
        if (!nc)
            return CORE_E_NOMEM;
        s->codes = nc;
        s->capcodes = cap;
    }
    s->codes[s->ncodes++] = code;
    return 0;
}

static bool parse_ip(const char *s, size_t n, int *family, uint8_t addr[16])
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

/* A run of plain characters that every match of the regular expression re contains (for the
 * prefilter): the longest one at the top level, outside groups and classes, without the atoms a
 * quantifier makes optional, escapes resolved. Conservative: NULL when re has a top-level
 * alternation, option settings ((?i), (?x)...), \Q...\E, POSIX classes or anything unclear.
 * returns: in the set's arena, NUL-terminated; NULL when there is no such run. */
static char *re_required(struct cctx *c, const char *re, size_t n, size_t *outlen)
{
    char *run = zalloc(c, n + 1), *best = zalloc(c, n + 1);
    size_t rl = 0, bl = 0;
    int depth = 0;
    bool prev_lit = false;
    if (!run || !best)
        return NULL;
    for (size_t i = 0; i <= n; i++) {
        char ch = i < n ? re[i] : 0, lc = 0;
        bool lit = false;
        if (i == n) {
            /* the end: save the last run */
        } else if (ch == '\\') {
            /* \. \( \\ ... are literal; \d \w \s \b \n ... one class or anchor, no argument;
             * anything else (\x41, \101, \cX, \g1, \k<n>, \p{..}, \Q...) has arguments: stop */
            if (i + 1 >= n)
                return NULL;
            lc = re[++i];
            if (isalnum((unsigned char)lc) && !strchr("dDwWsSbBhHvVRXAzZGnrtfeK", lc))
                return NULL;
            lit = depth == 0 && !isalnum((unsigned char)lc);
        } else if (ch == '[') {
            size_t j = i + 1;
            if (j < n && re[j] == '^')
                j++;
            if (j < n && re[j] == ']')
                j++;
            for (; j < n && re[j] != ']'; j++) {
                if (re[j] == '[')
                    return NULL; /* [[:alpha:]] and the like */
                if (re[j] == '\\')
                    j++;
            }
            if (j >= n)
                return NULL;
            i = j;
        } else if (ch == '(') {
            if (i + 2 < n && re[i + 1] == '?' &&
                (isalpha((unsigned char)re[i + 2]) || re[i + 2] == '-' || re[i + 2] == '^' ||
                 re[i + 2] == '#'))
                return NULL;
            depth++;
        } else if (ch == ')') {
            if (depth == 0)
                return NULL;
            depth--;
        } else if (ch == '|') {
            if (depth == 0)
                return NULL;
        } else if (ch == '?' || ch == '*' || ch == '{') {
            if (prev_lit && rl)
                rl--; /* the atom before is optional (or counted: dropping it is safe) */
            if (ch == '{') {
                size_t j = i + 1;
                while (j < n && (isdigit((unsigned char)re[j]) || re[j] == ','))
                    j++;
                if (j >= n || re[j] != '}')
                    return NULL;
                i = j;
            }
        } else if (ch != '+' && ch != '.' && ch != '^' && ch != '$' && depth == 0) {
            lit = true;
            lc = ch;
        }
        if (lit) {
            run[rl++] = lc;
        } else {
            if (rl > bl) {
                memcpy(best, run, rl);
                bl = rl;
            }
            rl = 0;
        }
        prev_lit = lit;
    }
    if (depth || bl == 0)
        return NULL;
    best[bl] = 0;
    *outlen = bl;
    return best;
}

/* Compiles one written value (scalar node) with modifiers m into values of group g. */
static int compile_value(struct cctx *c, const struct core_node *n, unsigned m, uint32_t g,
                         struct vlist *out)
{
    if (n->kind != CORE_NODE_SCALAR)
        return fail_at(c, n, CORE_E_INVAL, "a value must be a scalar");
    const char *s = n->value;
    size_t len = strlen(s);
    if (m & M_EXISTS) {
        bool b;
        if (!core_scalar_is_bool(n, &b))
            return fail_at(c, n, CORE_E_INVAL, "exists takes true or false");
        struct value *v = vl_push(c, out);
        if (!v)
            return CORE_E_NOMEM;
        *v = (struct value){.op = VOP_EXISTS, .group = g, .exists = b};
        return 0;
    }
    if (!n->is_quoted && core_scalar_is_null(n) && !(m & ~(unsigned)M_ALL)) {
        struct value *v = vl_push(c, out);
        if (!v)
            return CORE_E_NOMEM;
        *v = (struct value){.op = VOP_NULL, .group = g};
        return 0;
    }
    if (m & (M_LT | M_LTE | M_GT | M_GTE)) {
        double d;
        if (!core_scalar_is_number(n, &d))
            return fail_at(c, n, CORE_E_INVAL, "'%s' is not a number", s);
        struct value *v = vl_push(c, out);
        if (!v)
            return CORE_E_NOMEM;
        *v = (struct value){.op = VOP_NUM, .group = g, .num = d,
                            .nop = m & M_LT    ? NUM_LT
                                   : m & M_LTE ? NUM_LTE
                                   : m & M_GT  ? NUM_GT
                                               : NUM_GTE};
        return 0;
    }
    if (m & M_CIDR) {
        const char *slash = strchr(s, '/');
        struct value *v = vl_push(c, out);
        if (!v)
            return CORE_E_NOMEM;
        *v = (struct value){.op = VOP_CIDR, .group = g};
        char *end = NULL;
        long bits = slash ? strtol(slash + 1, &end, 10) : -1;
        if (!parse_ip(s, slash ? (size_t)(slash - s) : len, &v->family, v->addr) ||
            (slash && (!*(slash + 1) || *end)))
            return fail_at(c, n, CORE_E_INVAL, "'%s' is not a network (a.b.c.d/n or x::/n)", s);
        int maxb = v->family == AF_INET ? 32 : 128;
        if (bits < 0)
            bits = maxb;
        if (bits > maxb)
            return fail_at(c, n, CORE_E_INVAL, "'%s': prefix longer than %d bits", s, maxb);
        v->bits = (int)bits;
        return 0;
    }
    if (m & M_RE) {
        int ec;
        PCRE2_SIZE off;
        uint32_t opts = (m & M_RE_I ? PCRE2_CASELESS : 0) | (m & M_RE_M ? PCRE2_MULTILINE : 0) |
                        (m & M_RE_S ? PCRE2_DOTALL : 0);
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)s, len, opts, &ec, &off, NULL);
        if (!code) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof(msg));
            return fail_at(c, n, CORE_E_INVAL, "regular expression '%s' at offset %zu: %s", s,
                           (size_t)off, (const char *)msg);
        }
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        if (add_code(c->s, code)) {
            pcre2_code_free(code);
            return CORE_E_NOMEM;
        }
        struct value *v = vl_push(c, out);
        if (!v)
            return CORE_E_NOMEM;
        *v = (struct value){.op = VOP_RE, .group = g, .re = code};
        v->lit = re_required(c, s, len, &v->litlen);
        return 0;
    }
    /* Strings: windash variants, then base64 / base64offset encodings, then wildcards. */
    const char *vars[8];
    size_t nvars = 0;
    if (m & M_WINDASH) {
        static const char *const dashes[] = {"-", "/", "\xe2\x80\x93", "\xe2\x80\x94",
                                             "\xe2\x80\x95"};
        for (size_t d = 0; d < 5; d++) {
            char *o = zalloc(c, len * 3 + 1);
            if (!o)
                return CORE_E_NOMEM;
            size_t k = 0;
            for (size_t i = 0; i < len; i++) {
                if ((s[i] == '-' || s[i] == '/') && (i == 0 || s[i - 1] == ' ')) {
                    memcpy(o + k, dashes[d], strlen(dashes[d]));
                    k += strlen(dashes[d]);
                } else {
                    o[k++] = s[i];
                }
            }
            vars[nvars++] = o;
        }
    } else {
        vars[nvars++] = s;
    }
    bool literal = false;
    if (m & (M_B64 | M_B64OFF)) {
        const char *enc[8];
        size_t nenc = 0;
        for (size_t i = 0; i < nvars; i++) {
            size_t vl = strlen(vars[i]);
            if (m & M_B64) {
                char *o = zalloc(c, (vl + 2) / 3 * 4 + 1);
                if (!o)
                    return CORE_E_NOMEM;
                b64_enc((const unsigned char *)vars[i], vl, o);
                enc[nenc++] = o;
                continue;
            }
            /* base64offset: the value at each of the three alignments, unstable ends cut
             * (as pySigma does). */
            static const size_t start[3] = {0, 2, 3};
            static const int endcut[3] = {0, 3, 2};
            for (size_t k = 0; k < 3 && nenc < 8; k++) {
                unsigned char *raw = zalloc(c, vl + 3);
                char *o = zalloc(c, (vl + 4) / 3 * 4 + 5);
                if (!raw || !o)
                    return CORE_E_NOMEM;
                memset(raw, ' ', k);
                memcpy(raw + k, vars[i], vl);
                b64_enc(raw, vl + k, o);
                size_t ol = strlen(o);
                size_t cut = (size_t)endcut[(vl + k) % 3];
                size_t e = ol > cut ? ol - cut : 0;
                size_t b = start[k] < e ? start[k] : e;
                o[e] = 0;
                enc[nenc++] = o + b;
            }
        }
        memcpy(vars, enc, nenc * sizeof(*vars));
        nvars = nenc;
        literal = true;
        m |= M_CASED; /* base64 is case-sensitive */
    }
    for (size_t i = 0; i < nvars; i++) {
        struct value *v = vl_push(c, out);
        if (!v)
            return CORE_E_NOMEM;
        *v = (struct value){.op = VOP_GLOB, .group = g, .cased = !!(m & M_CASED)};
        v->pat = glob_from(c, vars[i], strlen(vars[i]), literal, m, &v->len);
        if (!v->pat)
            return CORE_E_NOMEM;
    }
    return 0;
}

/* key: "Field|mod|mod" or "|mod" (keywords with modifiers); val: scalar or list of scalars. */
static int compile_item(struct cctx *c, const char *key, const struct core_node *keynode,
                        const struct core_node *val, struct item *it)
{
    const char *bar = strchr(key, '|');
    unsigned m = 0;
    int rc = 0;
    if (bar) {
        rc = parse_mods(c, keynode, bar + 1, &m);
        if (rc)
            return rc;
    }
    size_t flen = bar ? (size_t)(bar - key) : strlen(key);
    /* keywords are substrings of the event's text */
    if (!flen && !(m & (M_RE | M_CIDR | M_EXISTS | M_LT | M_LTE | M_GT | M_GTE | M_STARTS |
                        M_ENDS)))
        m |= M_CONTAINS;
    it->field = NULL;
    if (flen) {
        char *f = zalloc(c, flen + 1);
        if (!f)
            return CORE_E_NOMEM;
        memcpy(f, key, flen);
        it->field = f;
    } else if (m & M_EXISTS) {
        return fail_at(c, keynode, CORE_E_INVAL, "exists needs a field");
    }
    it->all = !!(m & M_ALL);
    struct vlist l = {0};
    if (val->kind == CORE_NODE_SEQ) {
        if (val->n == 0)
            return fail_at(c, val, CORE_E_INVAL, "empty list of values");
        for (size_t i = 0; i < val->n && !rc; i++)
            rc = compile_value(c, val->items[i], m, (uint32_t)i, &l);
        it->ngroups = (uint32_t)val->n;
    } else if (val->kind == CORE_NODE_SCALAR) {
        rc = compile_value(c, val, m, 0, &l);
        it->ngroups = 1;
    } else {
        return fail_at(c, val, CORE_E_INVAL, "the value of '%s' must be a scalar or a list", key);
    }
    it->v = l.v;
    it->nv = l.n;
    return rc;
}

static int compile_map(struct cctx *c, const struct core_node *map, struct conj *cj)
{
    if (map->n == 0)
        return fail_at(c, map, CORE_E_INVAL, "empty selection");
    cj->items = zalloc(c, map->n * sizeof(*cj->items));
    if (!cj->items)
        return CORE_E_NOMEM;
    cj->n = map->n;
    for (size_t i = 0; i < map->n; i++) {
        int rc = compile_item(c, map->keys[i], map->key_nodes[i], map->items[i], &cj->items[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int compile_sel(struct cctx *c, const char *name, const struct core_node *n,
                       struct sel *out)
{
    out->name = sdup(c, name);
    if (n->kind == CORE_NODE_MAP) {
        out->alts = zalloc(c, sizeof(*out->alts));
        if (!out->alts)
            return CORE_E_NOMEM;
        out->n = 1;
        return compile_map(c, n, &out->alts[0]);
    }
    if (n->kind == CORE_NODE_SCALAR) { /* one keyword */
        out->alts = zalloc(c, sizeof(*out->alts));
        struct item *it = zalloc(c, sizeof(*it));
        if (!out->alts || !it)
            return CORE_E_NOMEM;
        out->n = 1;
        out->alts[0] = (struct conj){it, 1};
        return compile_item(c, "", n, n, it);
    }
    /* A list: maps are alternatives; scalars together are one keyword alternative. */
    if (n->n == 0)
        return fail_at(c, n, CORE_E_INVAL, "empty selection '%s'", name);
    out->alts = zalloc(c, (n->n + 1) * sizeof(*out->alts));
    if (!out->alts)
        return CORE_E_NOMEM;
    size_t nscalars = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct core_node *e = n->items[i];
        if (e->kind == CORE_NODE_MAP) {
            int rc = compile_map(c, e, &out->alts[out->n++]);
            if (rc)
                return rc;
        } else if (e->kind == CORE_NODE_SCALAR) {
            nscalars++;
        } else {
            return fail_at(c, e, CORE_E_INVAL, "a list in selection '%s' holds maps or values",
                           name);
        }
    }
    if (nscalars) {
        struct item *it = zalloc(c, sizeof(*it));
        if (!it)
            return CORE_E_NOMEM;
        struct vlist l = {0};
        uint32_t g = 0;
        for (size_t i = 0; i < n->n; i++) {
            if (n->items[i]->kind != CORE_NODE_SCALAR)
                continue;
            int rc = compile_value(c, n->items[i], M_CONTAINS, g++, &l);
            if (rc)
                return rc;
        }
        *it = (struct item){.field = NULL, .v = l.v, .nv = l.n, .ngroups = g};
        out->alts[out->n++] = (struct conj){it, 1};
    }
    return 0;
}

/* ---- conditions ------------------------------------------------------------------------ */

enum tok { T_END = 0, T_LP, T_RP, T_AND, T_OR, T_NOT, T_OF, T_THEM, T_ALL, T_NUM, T_ID, T_PIPE,
           T_BAD };

struct cparse {
    struct cctx *c;
    const struct core_node *at;
    const char *s;
    size_t i;
    enum tok t;
    const char *tv;
    size_t tl;
    const struct sel *sels;
    size_t nsels;
    int depth;
};

static bool id_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '*' || ch == '-' || ch == '.' ||
           ch == '?';
}

static void next(struct cparse *p)
{
    while (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')
        p->i++;
    p->tv = p->s + p->i;
    p->tl = 0;
    char ch = p->s[p->i];
    if (!ch) {
        p->t = T_END;
        return;
    }
    if (ch == '(' || ch == ')' || ch == '|') {
        p->t = ch == '(' ? T_LP : ch == ')' ? T_RP : T_PIPE;
        p->tl = 1;
        p->i++;
        return;
    }
    if (!id_char(ch)) {
        p->t = T_BAD;
        p->tl = 1;
        return;
    }
    while (id_char(p->s[p->i]))
        p->i++;
    p->tl = (size_t)(p->s + p->i - p->tv);
    static const struct {
        const char *w;
        enum tok t;
    } kw[] = {{"and", T_AND}, {"or", T_OR}, {"not", T_NOT}, {"of", T_OF},
              {"them", T_THEM}, {"all", T_ALL}};
    for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); k++)
        if (strlen(kw[k].w) == p->tl && strncasecmp(kw[k].w, p->tv, p->tl) == 0) {
            p->t = kw[k].t;
            return;
        }
    bool digits = true;
    for (size_t k = 0; k < p->tl; k++)
        digits = digits && isdigit((unsigned char)p->tv[k]);
    p->t = digits ? T_NUM : T_ID;
}

static int cfail(struct cparse *p, int code, const char *fmt, ...) CORE_PRINTF(3, 4);

static int cfail(struct cparse *p, int code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fail_at(p->c, p->at, code, "condition at offset %zu: %s", (size_t)(p->tv - p->s), msg);
}

/* Glob over selection names: * any run, ? one char (case-sensitive, as Sigma names are). */
static bool name_glob(const char *pat, size_t pl, const char *s)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0, sl = strlen(s);
    while (si < sl) {
        if (pi < pl && (pat[pi] == '?' || pat[pi] == s[si])) {
            pi++;
            si++;
        } else if (pi < pl && pat[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pl && pat[pi] == '*')
        pi++;
    return pi == pl;
}

static struct cnode *mknode(struct cparse *p, enum ckind k, size_t n)
{
    struct cnode *x = zalloc(p->c, sizeof(*x));
    if (!x)
        return NULL;
    x->kind = k;
    if (n) {
        x->kids = zalloc(p->c, n * sizeof(*x->kids));
        if (!x->kids)
            return NULL;
    }
    return x;
}

static int parse_or(struct cparse *p, struct cnode **out);

static int parse_primary(struct cparse *p, struct cnode **out)
{
    if (++p->depth > COND_DEPTH_MAX)
        return cfail(p, CORE_E_INVAL, "nested deeper than %d", COND_DEPTH_MAX);
    int rc = 0;
    switch (p->t) {
    case T_NOT: {
        next(p);
        struct cnode *x = mknode(p, C_NOT, 1);
        if (!x)
            return CORE_E_NOMEM;
        x->n = 1;
        rc = parse_primary(p, &x->kids[0]);
        *out = x;
        break;
    }
    case T_LP:
        next(p);
        rc = parse_or(p, out);
        if (!rc && p->t != T_RP)
            rc = cfail(p, CORE_E_INVAL, "')' expected");
        if (!rc)
            next(p);
        break;
    case T_NUM:
    case T_ALL: {
        bool all = p->t == T_ALL;
        size_t k = 0;
        if (!all) {
            if (p->tl > 6)
                return cfail(p, CORE_E_INVAL, "count too large");
            k = (size_t)strtoul(p->tv, NULL, 10);
            if (k == 0)
                return cfail(p, CORE_E_INVAL, "'0 of' is never true");
        }
        next(p);
        if (p->t != T_OF)
            return cfail(p, CORE_E_INVAL, "'of' expected");
        next(p);
        if (p->t != T_THEM && p->t != T_ID)
            return cfail(p, CORE_E_INVAL, "'them' or a selection pattern expected after 'of'");
        struct cnode *x = mknode(p, C_OF, p->nsels);
        if (!x)
            return CORE_E_NOMEM;
        for (size_t i = 0; i < p->nsels; i++) {
            bool hit = p->t == T_THEM ? p->sels[i].name[0] != '_'
                                      : name_glob(p->tv, p->tl, p->sels[i].name);
            if (!hit)
                continue;
            struct cnode *s = mknode(p, C_SEL, 0);
            if (!s)
                return CORE_E_NOMEM;
            s->sel = i;
            x->kids[x->n++] = s;
        }
        if (x->n == 0)
            return cfail(p, CORE_E_INVAL, "no selection matches '%.*s'", (int)p->tl, p->tv);
        x->k = all ? x->n : k;
        if (x->k > x->n)
            return cfail(p, CORE_E_INVAL, "%zu of %zu selections can never match", k, x->n);
        next(p);
        *out = x;
        break;
    }
    case T_ID: {
        for (size_t i = 0; i < p->tl; i++)
            if (p->tv[i] == '*' || p->tv[i] == '?')
                return cfail(p, CORE_E_INVAL, "a wildcard name '%.*s' needs '1 of' or 'all of'",
                             (int)p->tl, p->tv);
        size_t i = 0;
        while (i < p->nsels &&
               !(strlen(p->sels[i].name) == p->tl && strncmp(p->sels[i].name, p->tv, p->tl) == 0))
            i++;
        if (i == p->nsels) {
            if (p->tl == 4 && strncasecmp(p->tv, "near", 4) == 0)
                return cfail(p, CORE_E_UNSUPPORTED, "'near' (temporal correlation)");
            return cfail(p, CORE_E_INVAL, "unknown selection '%.*s'", (int)p->tl, p->tv);
        }
        struct cnode *x = mknode(p, C_SEL, 0);
        if (!x)
            return CORE_E_NOMEM;
        x->sel = i;
        next(p);
        *out = x;
        break;
    }
    case T_PIPE:
        return cfail(p, CORE_E_UNSUPPORTED, "aggregation ('| count() ...'): use a correlation");
    case T_END:
        return cfail(p, CORE_E_INVAL, "unexpected end");
    default:
        return cfail(p, CORE_E_INVAL, "unexpected '%.*s'", (int)(p->tl ? p->tl : 1), p->tv);
    }
    p->depth--;
    return rc;
}

static int parse_and(struct cparse *p, struct cnode **out)
{
    int rc = parse_primary(p, out);
    while (!rc && p->t == T_AND) {
        next(p);
        struct cnode *x = mknode(p, C_OF, 2), *r = NULL;
        if (!x)
            return CORE_E_NOMEM;
        rc = parse_primary(p, &r);
        x->kids[0] = *out;
        x->kids[1] = r;
        x->n = x->k = 2;
        *out = x;
    }
    return rc;
}

static int parse_or(struct cparse *p, struct cnode **out)
{
    if (++p->depth > COND_DEPTH_MAX)
        return cfail(p, CORE_E_INVAL, "nested deeper than %d", COND_DEPTH_MAX);
    int rc = parse_and(p, out);
    while (!rc && p->t == T_OR) {
        next(p);
        struct cnode *x = mknode(p, C_OF, 2), *r = NULL;
        if (!x)
            return CORE_E_NOMEM;
        rc = parse_and(p, &r);
        x->kids[0] = *out;
        x->kids[1] = r;
        x->n = 2;
        x->k = 1;
        *out = x;
    }
    p->depth--;
    return rc;
}

static int parse_condition(struct cctx *c, const struct core_node *at, const char *s,
                           const struct sel *sels, size_t nsels, struct cnode **out)
{
    struct cparse p = {.c = c, .at = at, .s = s, .sels = sels, .nsels = nsels};
    next(&p);
    int rc = parse_or(&p, out);
    if (!rc && p.t == T_PIPE)
        rc = cfail(&p, CORE_E_UNSUPPORTED, "aggregation ('| count() ...'): use a correlation");
    if (!rc && p.t != T_END)
        rc = cfail(&p, CORE_E_INVAL, "unexpected '%.*s'", (int)(p.tl ? p.tl : 1), p.tv);
    return rc;
}

/* ---- logsource -------------------------------------------------------------------------- */

static const char *const APPS_SSHD[] = {"sshd", NULL};
static const char *const APPS_SUDO[] = {"sudo", NULL};
static const char *const APPS_CRON[] = {"cron", "crond", "anacron", NULL};
static const char *const APPS_PAVE[] = {"pave", NULL};
static const char *const APPS_AUTH[] = {"sshd", "sudo", "su", "login", "useradd", "userdel",
                                        "usermod", "groupadd", "groupdel", "groupmod", "passwd",
                                        "chpasswd", "chage", "systemd-logind", "polkitd", "gdm",
                                        "gdm-password", "unix_chkpwd", "pkexec", NULL};

static int compile_logsource(struct cctx *c, const struct core_node *ls)
{
    struct lsrc *l = &c->r->ls;
    l->kind = -1;
    if (!ls)
        return fail_at(c, NULL, CORE_E_INVAL, "a rule needs a 'logsource'");
    if (ls->kind != CORE_NODE_MAP)
        return fail_at(c, ls, CORE_E_INVAL, "'logsource' must be a map");
    const struct core_node *product = core_node_get(ls, "product");
    const struct core_node *service = core_node_get(ls, "service");
    const struct core_node *category = core_node_get(ls, "category");
    bool pave = product && product->kind == CORE_NODE_SCALAR &&
                strcasecmp(product->value, "pave") == 0;
    if (product && !pave &&
        (product->kind != CORE_NODE_SCALAR || strcasecmp(product->value, "linux") != 0))
        return fail_at(c, product, CORE_E_UNSUPPORTED,
                       "logsource product '%s': only linux hosts and the platform's services "
                       "feed the pipeline",
                       product->kind == CORE_NODE_SCALAR ? product->value : "?");
    if (pave) {
        /* the platform's own records (service "pave"); service audit: its audit log, records
         * of the telemetry `audit` source (component "audit") */
        l->apps = APPS_PAVE;
        const char *v = service && service->kind == CORE_NODE_SCALAR ? service->value : "";
        if (service && strcasecmp(v, "audit") != 0)
            return fail_at(c, service, CORE_E_UNSUPPORTED,
                           "logsource service '%s' of product pave (known: audit)", v);
        l->pave_audit = service != NULL;
    } else if (service) {
        const char *v = service->kind == CORE_NODE_SCALAR ? service->value : "";
        if (strcasecmp(v, "auditd") == 0)
            l->kind = VK_AUDITD;
        else if (strcasecmp(v, "sshd") == 0)
            l->apps = APPS_SSHD;
        else if (strcasecmp(v, "auth") == 0)
            l->apps = APPS_AUTH;
        else if (strcasecmp(v, "sudo") == 0)
            l->apps = APPS_SUDO;
        else if (strcasecmp(v, "cron") == 0)
            l->apps = APPS_CRON;
        else if (strcasecmp(v, "syslog") == 0)
            l->kind = VK_SYSLOG;
        else
            return fail_at(c, service, CORE_E_UNSUPPORTED,
                           "logsource service '%s' (known: auditd, auth, sshd, sudo, cron, "
                           "syslog)",
                           v);
    }
    if (category) {
        const char *v = category->kind == CORE_NODE_SCALAR ? category->value : "";
        if (strcasecmp(v, "process_creation") == 0)
            l->proc_creation = true;
        else
            return fail_at(c, category, CORE_E_UNSUPPORTED,
                           "logsource category '%s' (known: process_creation)", v);
    }
    return 0;
}

/* ---- the prefilter ------------------------------------------------------------------------ */

/* Most rules of a large set test for text a given record does not have. Each rule gets, at load,
 * a set of literals one of which any record it matches must contain (in any field or keyword
 * text, compared lowercased); all literals of the set go into one index, a record's text is
 * scanned once against it, and a rule whose literals are all absent is not evaluated. A rule for
 * which no such set can be derived (a `not` alone, exists, null, cidr, numbers, regexes without a
 * fixed run, literals shorter than LIT_MIN) is always evaluated. So the prefilter can only drop
 * evaluations that would have been false: matches are the same with it and without it
 * (security_sigma_set_prefilter, and the unit test that compares both). */

/* A clause being derived: one of v[] is in every record a node is true for (known), or no such
 * literals (!known). Literals point into compiled patterns and are not lowercased yet. */
struct lref {
    const char *p;
    size_t len;
};

struct lset {
    bool known;
    size_t n, cap;
    struct lref *v;
};

/* What a node requires: every clause (an AND of ORs). No clause: nothing is required. */
struct cnf {
    struct lset *c;
    size_t n, cap;
};

static void lset_release(struct lset *l)
{
    core_free(l->v);
    *l = (struct lset){0};
}

static void lset_push(struct lset *l, const char *p, size_t len)
{
    if (!l->known)
        return;
    if (len < LIT_MIN) {
        l->known = false;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct lref *nv = core_realloc(l->v, cap * sizeof(*nv));
        if (!nv) { /* out of memory: no clause, which is always correct */
            l->known = false;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = (struct lref){p, len};
}

static size_t lset_minlen(const struct lset *l)
{
    size_t m = SIZE_MAX;
    for (size_t i = 0; i < l->n; i++)
        m = l->v[i].len < m ? l->v[i].len : m;
    return m;
}

/* Whether clause a likely filters better than b: a longer shortest literal, then fewer. */
static bool lset_better(const struct lset *a, const struct lset *b)
{
    size_t ma = lset_minlen(a), mb = lset_minlen(b);
    return ma > mb || (ma == mb && a->n < b->n);
}

static void cnf_release(struct cnf *f)
{
    for (size_t i = 0; i < f->n; i++)
        lset_release(&f->c[i]);
    core_free(f->c);
    *f = (struct cnf){0};
}

/* Adds clause l to f (consumes it). An unknown clause, or no memory for it, adds nothing: a
 * weaker requirement is still a correct one. */
static void cnf_add(struct cnf *f, struct lset *l)
{
    if (!l->known || !l->n) {
        lset_release(l);
        return;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        struct lset *nc = core_realloc(f->c, cap * sizeof(*nc));
        if (!nc) {
            lset_release(l);
            return;
        }
        f->c = nc;
        f->cap = cap;
    }
    f->c[f->n++] = *l;
    *l = (struct lset){0};
}

/* f AND g into f (consumes g). */
static void cnf_and(struct cnf *f, struct cnf *g)
{
    for (size_t i = 0; i < g->n; i++)
        cnf_add(f, &g->c[i]);
    cnf_release(g);
}

/* f = f OR g (consumes g). Exact while small: (a AND b) OR (c AND d) is (a OR c) AND (a OR d) AND
 * (b OR c) AND (b OR d), clause by clause; past OR_CLAUSES_MAX clauses the best clause of each
 * side, joined, stands for both (weaker, still required). Either side without clauses: none. */
#define OR_CLAUSES_MAX 16
static void cnf_or(struct cnf *f, struct cnf *g)
{
    struct cnf out = {0};
    if (f->n && g->n && f->n * g->n <= OR_CLAUSES_MAX) {
        for (size_t i = 0; i < f->n; i++)
            for (size_t j = 0; j < g->n; j++) {
                struct lset l = {.known = true};
                for (size_t k = 0; k < f->c[i].n; k++)
                    lset_push(&l, f->c[i].v[k].p, f->c[i].v[k].len);
                for (size_t k = 0; k < g->c[j].n; k++)
                    lset_push(&l, g->c[j].v[k].p, g->c[j].v[k].len);
                cnf_add(&out, &l);
            }
    } else if (f->n && g->n) {
        size_t bf = 0, bg = 0;
        for (size_t i = 1; i < f->n; i++)
            bf = lset_better(&f->c[i], &f->c[bf]) ? i : bf;
        for (size_t j = 1; j < g->n; j++)
            bg = lset_better(&g->c[j], &g->c[bg]) ? j : bg;
        struct lset l = {.known = true};
        for (size_t k = 0; k < f->c[bf].n; k++)
            lset_push(&l, f->c[bf].v[k].p, f->c[bf].v[k].len);
        for (size_t k = 0; k < g->c[bg].n; k++)
            lset_push(&l, g->c[bg].v[k].p, g->c[bg].v[k].len);
        cnf_add(&out, &l);
    }
    cnf_release(f);
    cnf_release(g);
    *f = out;
}

/* The longest run of a glob pattern without wildcards: every string the pattern matches holds
 * it. */
static void glob_literal(const struct value *v, const char **p, size_t *len)
{
    size_t start = 0;
    *p = NULL;
    *len = 0;
    for (size_t i = 0; i <= v->len; i++) {
        if (i < v->len && v->pat[i] != WILD_STAR && v->pat[i] != WILD_ONE)
            continue;
        if (i - start > *len) {
            *p = v->pat + start;
            *len = i - start;
        }
        start = i + 1;
    }
}

/* The values of it (those of group g, or all of them with g == UINT32_MAX): one must match. */
static void need_values(const struct item *it, uint32_t g, struct lset *out)
{
    *out = (struct lset){.known = it->nv > 0};
    for (size_t i = 0; out->known && i < it->nv; i++) {
        const struct value *v = &it->v[i];
        const char *p = NULL;
        size_t len = 0;
        if (g != UINT32_MAX && v->group != g)
            continue;
        if (v->op == VOP_GLOB)
            glob_literal(v, &p, &len);
        else if (v->op == VOP_RE && v->lit)
            p = v->lit, len = v->litlen;
        lset_push(out, p, len); /* no literal: !known */
    }
}

static void need_item(const struct item *it, struct cnf *out)
{
    *out = (struct cnf){0};
    /* |all: every group must match, one clause each */
    uint32_t groups = it->all && it->ngroups > 1 ? it->ngroups : 1;
    for (uint32_t g = 0; g < groups; g++) {
        struct lset l;
        need_values(it, groups > 1 ? g : UINT32_MAX, &l);
        cnf_add(out, &l);
    }
}

static void need_sel(const struct sel *sel, struct cnf *out)
{
    *out = (struct cnf){0};
    for (size_t a = 0; a < sel->n && (a == 0 || out->n); a++) {
        struct cnf conj = {0}; /* an AND of items */
        for (size_t k = 0; k < sel->alts[a].n; k++) {
            struct cnf item;
            need_item(&sel->alts[a].items[k], &item);
            cnf_and(&conj, &item);
        }
        if (a == 0)
            *out = conj;
        else
            cnf_or(out, &conj);
    }
}

static void need_cond(const struct rule *r, const struct cnode *c, struct cnf *out)
{
    *out = (struct cnf){0};
    if (c->kind == C_SEL) {
        need_sel(&r->sels[c->sel], out);
    } else if (c->kind == C_OF && c->k == c->n) { /* and: every kid's clauses */
        for (size_t i = 0; i < c->n; i++) {
            struct cnf kid;
            need_cond(r, c->kids[i], &kid);
            cnf_and(out, &kid);
        }
    } else if (c->kind == C_OF) { /* at least one kid is true */
        for (size_t i = 0; i < c->n && (i == 0 || out->n); i++) {
            struct cnf kid;
            need_cond(r, c->kids[i], &kid);
            if (i == 0)
                *out = kid;
            else
                cnf_or(out, &kid);
        }
    } /* C_NOT: nothing is required */
}

static uint32_t lit_hash(const char *p)
{
    uint32_t k = (uint32_t)(unsigned char)p[0] << 16 | (uint32_t)(unsigned char)p[1] << 8 |
                 (unsigned char)p[2];
    return (k * 2654435761u) >> (32 - LIT_HASH_BITS);
}

/* returns: the id of the literal p (lowercased) in the index, added when new; 0 on NOMEM. */
static uint32_t lit_intern(struct security_sigma_set *s, const char *p, size_t len)
{
    char low[256];
    if (len >= sizeof(low))
        len = sizeof(low) - 1; /* a prefix of a required literal is required too */
    for (size_t i = 0; i < len; i++)
        low[i] = (char)tolower((unsigned char)p[i]);
    low[len] = 0;
    if (!s->heads && !(s->heads = core_calloc((size_t)1 << LIT_HASH_BITS, sizeof(*s->heads))))
        return 0;
    uint32_t h = lit_hash(low);
    for (uint32_t id = s->heads[h]; id; id = s->lits[id].next)
        if (s->lits[id].len == len && memcmp(s->lits[id].s, low, len) == 0)
            return id;
    if (s->nlits + 1 >= s->caplits) {
        uint32_t cap = s->caplits ? s->caplits * 2 : 256;
        struct lit *nl = core_realloc(s->lits, cap * sizeof(*nl));
        if (!nl)
            return 0;
        s->lits = nl;
        s->caplits = cap;
    }
    if (s->nlits == 0)
        s->nlits = 1; /* id 0 ends bucket lists */
    char *copy = core_arena_strdup(&s->arena, low);
    if (!copy)
        return 0;
    uint32_t id = s->nlits++;
    s->lits[id] = (struct lit){.s = copy, .len = (uint32_t)len, .next = s->heads[h]};
    s->heads[h] = id;
    return id;
}

/* Derives r's clauses and adds their literals to the index. Out of memory leaves r with fewer
 * clauses (or none: unfiltered), never a wrong one. */
static void prefilter_build(struct security_sigma_set *s, struct rule *r, size_t idx)
{
    struct cnf f;
    need_cond(r, r->cond, &f);
    size_t total = 0;
    for (size_t i = 0; i < f.n; i++)
        total += f.c[i].n;
    uint32_t *ids = total ? core_arena_alloc(&s->arena, total * sizeof(*ids)) : NULL;
    uint32_t *ends = total ? core_arena_alloc(&s->arena, f.n * sizeof(*ends)) : NULL;
    uint32_t n = 0, ncl = 0;
    for (size_t c = 0; ids && ends && c < f.n; c++) {
        uint32_t start = n;
        bool ok = true;
        for (size_t i = 0; ok && i < f.c[c].n; i++) {
            uint32_t id = lit_intern(s, f.c[c].v[i].p, f.c[c].v[i].len);
            bool dup = false;
            for (uint32_t j = start; j < n && !dup; j++)
                dup = ids[j] == id;
            ok = id != 0;
            if (ok && !dup)
                ids[n++] = id;
        }
        if (!ok) { /* drop the clause */
            n = start;
            continue;
        }
        ends[ncl++] = n;
    }
    r->lits = ncl ? ids : NULL;
    r->clause_end = ncl ? ends : NULL;
    r->nclauses = ncl;
    cnf_release(&f);
    /* The rule is a candidate for a record when a literal of its key clause (the fewest
     * literals) is there; the others are checked after. */
    uint32_t key = 0;
    for (uint32_t c = 1; c < ncl; c++)
        if (ends[c] - ends[c - 1] < ends[key] - (key ? ends[key - 1] : 0))
            key = c;
    bool ok = ncl > 0;
    for (uint32_t i = key ? ends[key - 1] : 0; ok && i < (ncl ? ends[key] : 0); i++) {
        struct lit *l = &s->lits[ids[i]];
        if (l->nrules == l->caprules) {
            uint32_t cap = l->caprules ? l->caprules * 2 : 4;
            uint32_t *nr = core_realloc(l->rules, cap * sizeof(*nr));
            if (!nr) {
                ok = false;
                break;
            }
            l->rules = nr;
            l->caprules = cap;
        }
        l->rules[l->nrules++] = (uint32_t)idx;
    }
    if (!ok) /* no clause, or no memory for the keys: always a candidate */
        s->always[idx / 64] |= (uint64_t)1 << (idx % 64);
}

/* ---- loading ---------------------------------------------------------------------------- */

struct security_sigma_set *security_sigma_set_new(void)
{
    struct security_sigma_set *s = core_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    core_arena_init(&s->arena, SET_ARENA_CAP);
    s->mctx = pcre2_match_context_create(NULL);
    if (!s->mctx) {
        core_free(s);
        return NULL;
    }
    pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, DEPTH_LIMIT);
    pcre2_set_heap_limit(s->mctx, HEAP_LIMIT_KIB);
    return s;
}

void security_sigma_set_free(struct security_sigma_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ncodes; i++)
        pcre2_code_free(s->codes[i]);
    core_free(s->codes);
    pcre2_match_context_free(s->mctx);
    core_free(s->rules);
    core_free(s->rej);
    for (uint32_t i = 1; i < s->nlits; i++)
        core_free(s->lits[i].rules);
    core_free(s->lits);
    core_free(s->heads);
    core_free(s->always);
    core_arena_release(&s->arena);
    core_free(s);
}

static const char *scalar_of(const struct core_node *map, const char *key)
{
    const struct core_node *n = map ? core_node_get(map, key) : NULL;
    return n && n->kind == CORE_NODE_SCALAR ? n->value : NULL;
}

static int compile_rule(struct cctx *c, const struct core_node *root)
{
    if (!root || root->kind != CORE_NODE_MAP)
        return fail_at(c, root, CORE_E_INVAL, "a rule must be a YAML map");
    if (core_node_get(root, "correlation"))
        return fail_at(c, core_node_get(root, "correlation"), CORE_E_UNSUPPORTED,
                       "correlation rules");
    const char *title = scalar_of(root, "title");
    if (!title || !*title)
        return fail_at(c, root, CORE_E_INVAL, "a rule needs a 'title'");
    struct rule *r = c->r;
    r->pub.title = sdup(c, title);
    r->pub.id = sdup(c, scalar_of(root, "id") ? scalar_of(root, "id") : title);
    r->pub.status = sdup(c, scalar_of(root, "status"));
    r->pub.level = sdup(c, scalar_of(root, "level"));
    r->pub.source = sdup(c, c->name);
    const char *level = r->pub.level;
    if (*level && strcmp(level, "informational") && strcmp(level, "low") &&
        strcmp(level, "medium") && strcmp(level, "high") && strcmp(level, "critical"))
        return fail_at(c, core_node_get(root, "level"), CORE_E_INVAL,
                       "unknown level '%s' (informational, low, medium, high, critical)", level);
    int rc = compile_logsource(c, core_node_get(root, "logsource"));
    if (rc)
        return rc;
    const struct core_node *det = core_node_get(root, "detection");
    if (!det || det->kind != CORE_NODE_MAP)
        return fail_at(c, det ? det : root, CORE_E_INVAL, "a rule needs a 'detection' map");
    const struct core_node *cond = core_node_get(det, "condition");
    if (!cond)
        return fail_at(c, det, CORE_E_INVAL, "'detection' needs a 'condition'");
    if (core_node_get(det, "timeframe"))
        return fail_at(c, core_node_get(det, "timeframe"), CORE_E_UNSUPPORTED,
                       "'timeframe' (aggregation over time)");
    r->sels = zalloc(c, det->n * sizeof(*r->sels));
    if (!r->sels)
        return CORE_E_NOMEM;
    for (size_t i = 0; i < det->n; i++) {
        if (strcmp(det->keys[i], "condition") == 0)
            continue;
        rc = compile_sel(c, det->keys[i], det->items[i], &r->sels[r->nsels++]);
        if (rc)
            return rc;
    }
    if (cond->kind == CORE_NODE_SCALAR)
        return parse_condition(c, cond, cond->value, r->sels, r->nsels, &r->cond);
    if (cond->kind != CORE_NODE_SEQ || cond->n == 0)
        return fail_at(c, cond, CORE_E_INVAL, "'condition' must be a string or a list of them");
    /* A list of conditions: the rule matches when any does. */
    struct cnode *x = zalloc(c, sizeof(*x));
    if (!x || !(x->kids = zalloc(c, cond->n * sizeof(*x->kids))))
        return CORE_E_NOMEM;
    x->kind = C_OF;
    x->k = 1;
    for (size_t i = 0; i < cond->n; i++) {
        if (cond->items[i]->kind != CORE_NODE_SCALAR)
            return fail_at(c, cond->items[i], CORE_E_INVAL, "a condition must be a string");
        rc = parse_condition(c, cond->items[i], cond->items[i]->value, r->sels, r->nsels,
                             &x->kids[x->n++]);
        if (rc)
            return rc;
    }
    r->cond = x;
    return 0;
}

static int reject(struct security_sigma_set *s, const char *name, const char *title,
                  const struct core_err *e)
{
    if (s->nrej == s->caprej) {
        size_t cap = s->caprej ? s->caprej * 2 : 8;
        struct security_sigma_reject *n = core_realloc(s->rej, cap * sizeof(*n));
        if (!n)
            return CORE_E_NOMEM;
        s->rej = n;
        s->caprej = cap;
    }
    struct security_sigma_reject *r = &s->rej[s->nrej];
    r->source = core_arena_strdup(&s->arena, name);
    r->title = core_arena_strdup(&s->arena, title ? title : "");
    r->reason = core_arena_strdup(&s->arena, e->msg);
    r->unsupported = e->code == CORE_E_UNSUPPORTED;
    if (!r->source || !r->title || !r->reason)
        return CORE_E_NOMEM;
    s->nrej++;
    return 0;
}

int security_sigma_add(struct security_sigma_set *s, const char *name, const char *text,
                       size_t len, struct core_err *err)
{
    struct core_err local = {0};
    struct core_doc doc = {0};
    struct rule r = {0};
    name = name ? name : "<rule>";
    int rc = 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct rule *nr = core_realloc(s->rules, cap * sizeof(*nr));
        if (!nr)
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
        s->rules = nr;
        uint64_t *al = core_realloc(s->always, cap / 64 * sizeof(*al));
        if (!al)
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
        memset(al + s->cap / 64, 0, (cap - s->cap) / 64 * sizeof(*al));
        s->always = al;
        s->cap = cap;
    }
    if (len > RULE_MAX) {
        rc = core_err_set(&local, CORE_E_TOO_BIG, "%s: rule larger than %u bytes", name,
                          RULE_MAX);
    } else {
        rc = core_doc_parse(&doc, name, text, len, &local);
        if (!rc) {
            struct cctx c = {.s = s, .name = name, .err = &local, .r = &r};
            rc = compile_rule(&c, doc.root);
        }
    }
    if (rc == CORE_E_NOMEM && !local.msg[0])
        core_err_set(&local, CORE_E_NOMEM, "out of memory");
    if (rc) {
        const char *title = doc.root ? scalar_of(doc.root, "title") : NULL;
        int rrc = reject(s, name, title, &local);
        if (err)
            *err = local;
        core_doc_release(&doc);
        return rrc ? rrc : rc;
    }
    core_doc_release(&doc);
    prefilter_build(s, &r, s->n);
    s->maxsel = r.nsels > s->maxsel ? r.nsels : s->maxsel;
    s->rules[s->n++] = r;
    return 0;
}

static int yaml_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' &&
           ((n > 4 && strcmp(d->d_name + n - 4, ".yml") == 0) ||
            (n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0));
}

int security_sigma_add_dir(struct security_sigma_set *s, const char *dir, struct core_err *err)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, yaml_filter, alphasort);
    if (n < 0)
        return core_err_set(err, CORE_E_IO, "reading rules directory '%s': %s", dir,
                            strerror(errno));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
        char *text = NULL;
        size_t len = 0;
        struct core_err e = {0};
        if (rc == 0) {
            int frc = core_file_read(path, RULE_MAX, &text, &len, &e);
            if (frc == CORE_E_NOMEM)
                rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            else if (frc && reject(s, path, NULL, &e))
                rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            else if (!frc && security_sigma_add(s, path, text, len, &e) == CORE_E_NOMEM)
                rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        }
        core_free(text);
        free(list[i]);
    }
    free(list);
    return rc;
}

size_t security_sigma_count(const struct security_sigma_set *s)
{
    return s ? s->n : 0;
}

const struct security_sigma_rule *security_sigma_rule(const struct security_sigma_set *s,
                                                      size_t i)
{
    return s && i < s->n ? &s->rules[i].pub : NULL;
}

size_t security_sigma_rejected_count(const struct security_sigma_set *s)
{
    return s ? s->nrej : 0;
}

const struct security_sigma_reject *security_sigma_rejected(const struct security_sigma_set *s,
                                                            size_t i)
{
    return s && i < s->nrej ? &s->rej[i] : NULL;
}

int security_sigma_condition_check(const char *cond, const char *const *sel, size_t n,
                                   struct core_err *err)
{
    struct security_sigma_set *s = security_sigma_set_new();
    if (!s)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    struct rule r = {0};
    struct cctx c = {.s = s, .name = "<condition>", .err = err, .r = &r};
    int rc = 0;
    struct sel *sels = zalloc(&c, (n ? n : 1) * sizeof(*sels));
    if (!sels)
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        sels[i].name = sel[i];
    struct cnode *root = NULL;
    if (!rc)
        rc = parse_condition(&c, NULL, cond, sels, n, &root);
    security_sigma_set_free(s);
    return rc;
}

/* ---- the view: one record as Sigma fields ------------------------------------------------- */

struct vfield {
    const char *k;
    size_t kl;
    const char *v;
    size_t vl;
};

struct view {
    const struct tel_record *rec;
    enum vkind kind;
    char app[64]; /* normalized program / service name, lowercase */
    bool is_exec; /* an auditd EXECVE record */
    size_t n;
    const char *msg; /* the message as written: syslog severity prefix ("fatal: ") put back */
    size_t msglen;
    const char *cmdline; /* EXECVE: a0..aN joined with spaces */
    size_t cmdlen;
    const struct vfield *types; /* a joined auditd event's "audit.types" (T1,T2,...), or NULL */
    struct vfield f[VIEW_FIELDS_MAX]; /* last: view_build clears what comes before */
};

static bool keyeq(const char *a, size_t al, const char *b)
{
    return strlen(b) == al && strncmp(a, b, al) == 0;
}

static bool keyeq_ci(const char *a, size_t al, const char *b)
{
    return strlen(b) == al && strncasecmp(a, b, al) == 0;
}

static int hexv(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* auditd writes values with spaces or special bytes as uppercase hex: decode the fields that
 * can carry them (NULs, as in proctitle, become spaces). Left as written unless the result is
 * valid UTF-8. */
static void audit_decode(struct view *v, struct core_arena *a, struct vfield *f)
{
    static const char *const hexable[] = {"exe", "comm", "cwd", "name", "cmd", "proctitle",
                                          "data", "acct", "key", "path", NULL};
    bool arg = f->kl >= 2 && f->k[0] == 'a' && isdigit((unsigned char)f->k[1]);
    for (size_t i = 1; arg && i < f->kl; i++)
        arg = isdigit((unsigned char)f->k[i]) || (f->k[i] == '[' || f->k[i] == ']');
    bool ok = arg && v->is_exec;
    for (size_t i = 0; !ok && hexable[i]; i++)
        ok = keyeq(f->k, f->kl, hexable[i]);
    if (!ok || f->vl < 2 || f->vl % 2)
        return;
    for (size_t i = 0; i < f->vl; i++)
        if (hexv(f->v[i]) < 0)
            return;
    char *out = core_arena_alloc(a, f->vl / 2 + 1);
    if (!out)
        return;
    size_t n = f->vl / 2;
    for (size_t i = 0; i < n; i++) {
        char ch = (char)(hexv(f->v[2 * i]) << 4 | hexv(f->v[2 * i + 1]));
        out[i] = ch ? ch : ' ';
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = 0;
    if (!core_utf8_valid(out, n))
        return;
    f->v = out;
    f->vl = n;
}

static void view_add(struct view *v, const char *k, size_t kl, const char *val, size_t vl)
{
    if (v->n < VIEW_FIELDS_MAX)
        v->f[v->n++] = (struct vfield){k, kl, val, vl};
}

/* "type=X msg=audit(..): k=v k='v w' ..." that the line parser kept as a plain body: tokens
 * k=v, quotes stripped. */
static void audit_tokens(struct view *v, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\''))
            i++;
        size_t ks = i;
        while (i < n && s[i] != '=' && s[i] != ' ')
            i++;
        if (i >= n || s[i] != '=') {
            while (i < n && s[i] != ' ')
                i++;
            continue;
        }
        size_t ke = i++;
        size_t vs = i, ve;
        if (i < n && s[i] == '\'') /* msg='k=v k=v': tokens inside, not one value */
            vs = ++i;
        if (i < n && s[i] == '"') {
            char q = s[i++];
            vs = i;
            while (i < n && s[i] != q)
                i++;
            ve = i;
            if (i < n)
                i++;
        } else {
            while (i < n && s[i] != ' ')
                i++;
            ve = i;
            while (ve > vs && (s[ve - 1] == '\'' || s[ve - 1] == ','))
                ve--;
        }
        if (ke > ks)
            view_add(v, s + ks, ke - ks, s + vs, ve - vs);
    }
}

static void normalize_app(char out[64], const char *s)
{
    out[0] = 0;
    if (!s)
        return;
    const char *slash = strrchr(s, '/');
    if (slash)
        s = slash + 1;
    size_t o = 0;
    while (*s && *s != '(' && *s != '[' && *s != ':' && o < 63)
        out[o++] = (char)tolower((unsigned char)*s++);
    out[o] = 0;
}

static void view_build(struct view *v, const struct tel_record *rec, struct core_arena *a)
{
    memset(v, 0, offsetof(struct view, f));
    v->n = 0;
    v->rec = rec;
    const char *body = rec->body ? rec->body : "";
    size_t blen = rec->body ? rec->body_len : 0;
    const char *type = NULL;
    size_t typel = 0;
    for (uint32_t i = 0; i < rec->nattrs; i++)
        if (keyeq(rec->attrs[i].key, rec->attrs[i].klen, "type") &&
            rec->attrs[i].type == TEL_V_STR) {
            type = rec->attrs[i].val;
            typel = rec->attrs[i].vlen;
        }
    if (rec->format == TEL_FMT_SYSLOG3164 || rec->format == TEL_FMT_SYSLOG5424) {
        v->kind = VK_SYSLOG;
    } else if (type && blen >= 6 && strncmp(body, "audit(", 6) == 0) {
        v->kind = VK_AUDITD;
    } else if (blen > 5 && strncmp(body, "type=", 5) == 0 && memmem(body, blen, " msg=audit(", 11)) {
        v->kind = VK_AUDITD;
        audit_tokens(v, body, blen);
    }
    normalize_app(v->app, rec->res.service);
    v->msg = body;
    v->msglen = blen;
    if (v->kind == VK_SYSLOG && rec->severity_text && rec->severity_text_len &&
        rec->severity_text[0] != '<') {
        size_t sl = rec->severity_text_len;
        char *m = core_arena_alloc(a, sl + 2 + blen + 1);
        if (m) {
            memcpy(m, rec->severity_text, sl);
            memcpy(m + sl, ": ", 2);
            memcpy(m + sl + 2, body, blen);
            m[sl + 2 + blen] = 0;
            v->msg = m;
            v->msglen = sl + 2 + blen;
        }
    }
    for (uint32_t i = 0; i < rec->nattrs; i++) {
        const struct tel_kv *kv = &rec->attrs[i];
        if (kv->type == TEL_V_NULL)
            continue;
        const char *val = kv->val;
        size_t vl = kv->vlen;
        if (v->kind == VK_AUDITD) {
            /* msg='op=x ... res=y': the parser splits at the quote */
            while (vl && (val[0] == '\'' || val[0] == '"')) {
                val++;
                vl--;
            }
            while (vl && (val[vl - 1] == '\'' || val[vl - 1] == '"'))
                vl--;
            const char *eq = keyeq(kv->key, kv->klen, "msg") ? memchr(val, '=', vl) : NULL;
            if (eq) {
                view_add(v, val, (size_t)(eq - val), eq + 1, vl - (size_t)(eq - val) - 1);
                continue;
            }
        }
        view_add(v, kv->key, kv->klen, val, vl);
    }
    /* an event joined by the auditd source lists its records' types in audit.types
     * (telemetry_auditd.h): it is of each of them */
    bool joined = false;
    for (size_t i = 0; i < v->n; i++) {
        if (keyeq(v->f[i].k, v->f[i].kl, "type"))
            v->is_exec |= v->kind == VK_AUDITD && keyeq_ci(v->f[i].v, v->f[i].vl, "EXECVE");
        if (keyeq(v->f[i].k, v->f[i].kl, "audit.types")) {
            joined = true;
            v->types = &v->f[i];
            v->is_exec |= v->kind == VK_AUDITD && memmem(v->f[i].v, v->f[i].vl, "EXECVE", 6);
        }
    }
    (void)typel;
    if (v->kind != VK_AUDITD)
        return;
    for (size_t i = 0; i < v->n && !joined; i++) /* a joined event is decoded already */
        audit_decode(v, a, &v->f[i]);
    if (!v->is_exec)
        return;
    /* CommandLine of an EXECVE record: its arguments in order */
    struct core_buf b;
    core_buf_init(&b, 1 << 16);
    for (int argi = 0; argi < 1024; argi++) {
        char key[16];
        int kl = snprintf(key, sizeof(key), "a%d", argi);
        size_t j = 0;
        while (j < v->n && !keyeq(v->f[j].k, v->f[j].kl, key))
            j++;
        if (j == v->n)
            break;
        (void)kl;
        if (argi)
            core_buf_add(&b, " ", 1);
        core_buf_add(&b, v->f[j].v, v->f[j].vl);
    }
    char *cl = core_arena_alloc(a, b.len + 1);
    if (cl) {
        memcpy(cl, b.data, b.len);
        cl[b.len] = 0;
        v->cmdline = cl;
        v->cmdlen = b.len;
    }
    core_buf_release(&b);
}

static const struct vfield *view_attr(const struct view *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (keyeq(v->f[i].k, v->f[i].kl, name))
            return &v->f[i];
    return NULL;
}

/* The field mapping: a Sigma field name -> the value in this record. docs/security.md. */
static bool view_get(const struct view *v, const char *field, const char **out, size_t *len)
{
    static const struct {
        const char *sigma;
        const char *attrs[5];
    } map[] = {
        {"Image", {"exe", "process.executable", NULL}},
        {"CommandLine", {"process.command_line", "proctitle", "cmd", NULL}},
        {"ParentImage", {"process.parent.executable", NULL}},
        {"User", {"user", "user.name", "acct", NULL}},
        {"CurrentDirectory", {"cwd", "process.working_directory", NULL}},
        {"TargetFilename", {"file.path", "name", NULL}},
        {"SourceIp", {"client.address", "source.address", "addr", "rhost", NULL}},
        {"ProcessId", {"pid", "process.pid", NULL}},
        {"ParentProcessId", {"ppid", "process.parent.pid", NULL}},
    };
    const struct tel_record *r = v->rec;
    const char *res = NULL;
    if (!strcasecmp(field, "message") || !strcasecmp(field, "body")) {
        *out = v->msg;
        *len = v->msglen;
        return true;
    }
    if (!strcasecmp(field, "service.name") || !strcasecmp(field, "service"))
        res = r->res.service;
    else if (!strcasecmp(field, "host.name") || !strcasecmp(field, "Hostname") ||
             !strcasecmp(field, "Computer"))
        res = r->res.host;
    else if (!strcasecmp(field, "team"))
        res = r->res.team;
    else if (!strcasecmp(field, "deployment.environment"))
        res = r->res.env;
    else if (!strcasecmp(field, "service.instance.id"))
        res = r->res.instance;
    else if (!strcasecmp(field, "app") || !strcasecmp(field, "Application"))
        res = v->app[0] ? v->app : NULL;
    if (res) {
        *out = res;
        *len = strlen(res);
        return true;
    }
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcasecmp(field, map[i].sigma))
            continue;
        if (!strcasecmp(field, "CommandLine") && v->cmdline) {
            *out = v->cmdline;
            *len = v->cmdlen;
            return true;
        }
        for (size_t k = 0; map[i].attrs[k]; k++) {
            const struct vfield *f = view_attr(v, map[i].attrs[k]);
            if (f) {
                *out = f->v;
                *len = f->vl;
                return true;
            }
        }
        if (!strcasecmp(field, "Image") && v->is_exec) { /* EXECVE alone: argv[0] */
            const struct vfield *f = view_attr(v, "a0");
            if (f) {
                *out = f->v;
                *len = f->vl;
                return true;
            }
        }
        return false;
    }
    const struct vfield *f = view_attr(v, field);
    for (size_t i = 0; !f && i < v->n; i++)
        if (keyeq_ci(v->f[i].k, v->f[i].kl, field))
            f = &v->f[i];
    if (!f)
        return false;
    *out = f->v;
    *len = f->vl;
    return true;
}

/* ---- evaluation ------------------------------------------------------------------------- */

/* Glob with WILD_STAR / WILD_ONE, case-insensitive unless cased (pattern already lowered). The
 * classic single-backtrack-point algorithm: O(len(s) * len(p)) at worst, no recursion. */
static bool glob_match(const char *p, size_t pl, const char *s, size_t sl, bool cased)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < sl) {
        char ch = cased ? s[si] : (char)tolower((unsigned char)s[si]);
        if (pi < pl && p[pi] == WILD_STAR) {
            star = pi++;
            mark = si;
        } else if (pi < pl && (p[pi] == WILD_ONE || p[pi] == ch)) {
            pi++;
            si++;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pl && p[pi] == WILD_STAR)
        pi++;
    return pi == pl;
}

struct ectx {
    const struct security_sigma_set *s;
    const struct view *v;
    pcre2_match_data *md;
    int8_t *selstate; /* -1 unknown, 0, 1 */
};

static bool value_match(struct ectx *e, const struct value *val, const char *s, size_t n)
{
    switch (val->op) {
    case VOP_GLOB:
        return glob_match(val->pat, val->len, s, n, val->cased);
    case VOP_RE:
        /* created on the first regex a record gets to: most never do */
        if (!e->md && !(e->md = pcre2_match_data_create(1, NULL)))
            return false;
        return pcre2_match(val->re, (PCRE2_SPTR)s, n, 0, 0, e->md, e->s->mctx) >= 0;
    case VOP_CIDR: {
        int fam;
        uint8_t a[16];
        if (!parse_ip(s, n, &fam, a) || fam != val->family)
            return false;
        int bits = val->bits;
        for (int i = 0; bits > 0; i++, bits -= 8) {
            uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
            if ((a[i] & mask) != (val->addr[i] & mask))
                return false;
        }
        return true;
    }
    case VOP_NUM: {
        char buf[64];
        if (n == 0 || n >= sizeof(buf))
            return false;
        memcpy(buf, s, n);
        buf[n] = 0;
        char *end;
        double d = strtod(buf, &end);
        if (*end || isnan(d))
            return false;
        return val->nop == NUM_LT    ? d < val->num
               : val->nop == NUM_LTE ? d <= val->num
               : val->nop == NUM_GT  ? d > val->num
                                     : d >= val->num;
    }
    case VOP_NULL:
        return n == 0;
    case VOP_EXISTS:
        return false;
    }
    return false;
}

/* Any text of the event (keywords): the body, the command line, every field value. */
static bool keyword_match(struct ectx *e, const struct value *val)
{
    if (val->op == VOP_NULL)
        return false;
    if (value_match(e, val, e->v->msg, e->v->msglen))
        return true;
    if (e->v->cmdline && value_match(e, val, e->v->cmdline, e->v->cmdlen))
        return true;
    for (size_t i = 0; i < e->v->n; i++)
        if (value_match(e, val, e->v->f[i].v, e->v->f[i].vl))
            return true;
    return false;
}

static bool item_match_value(struct ectx *e, const struct item *it, bool found, const char *s,
                             size_t n);

static bool item_match(struct ectx *e, const struct item *it)
{
    const char *s = NULL;
    size_t n = 0;
    bool found = it->field ? view_get(e->v, it->field, &s, &n) : true;
    if (found && e->v->types && !strcasecmp(it->field ? it->field : "", "type") &&
        !(it->nv && it->v[0].op == VOP_EXISTS)) {
        /* a joined auditd event is of every type of its records */
        const char *p = e->v->types->v, *end = p + e->v->types->vl;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *te = comma ? comma : end;
            if (item_match_value(e, it, true, p, (size_t)(te - p)))
                return true;
            p = te + 1;
        }
        return false;
    }
    return item_match_value(e, it, found, s, n);
}

static bool item_match_value(struct ectx *e, const struct item *it, bool found, const char *s,
                             size_t n)
{
    if (it->nv && it->v[0].op == VOP_EXISTS)
        return found == it->v[0].exists;
    /* groups: OR of variants inside; OR across groups, or AND with |all */
    uint32_t matched = 0;
    uint32_t group = UINT32_MAX;
    bool gm = false;
    for (size_t i = 0; i <= it->nv; i++) {
        if (i == it->nv || it->v[i].group != group) {
            if (group != UINT32_MAX) {
                if (gm && !it->all)
                    return true;
                if (!gm && it->all)
                    return false;
                matched += gm;
            }
            if (i == it->nv)
                break;
            group = it->v[i].group;
            gm = false;
        }
        if (gm)
            continue;
        const struct value *val = &it->v[i];
        if (!it->field)
            gm = keyword_match(e, val);
        else if (!found)
            gm = val->op == VOP_NULL;
        else
            gm = value_match(e, val, s, n);
    }
    return it->all && matched == it->ngroups;
}

static bool sel_match(struct ectx *e, const struct rule *r, size_t i)
{
    if (e->selstate[i] >= 0)
        return e->selstate[i];
    const struct sel *sel = &r->sels[i];
    bool any = false;
    for (size_t a = 0; a < sel->n && !any; a++) {
        bool all = true;
        for (size_t k = 0; k < sel->alts[a].n && all; k++)
            all = item_match(e, &sel->alts[a].items[k]);
        any = all;
    }
    e->selstate[i] = any;
    return any;
}

static bool cond_eval(struct ectx *e, const struct rule *r, const struct cnode *c)
{
    switch (c->kind) {
    case C_SEL:
        return sel_match(e, r, c->sel);
    case C_NOT:
        return !cond_eval(e, r, c->kids[0]);
    case C_OF: {
        size_t hits = 0;
        for (size_t i = 0; i < c->n; i++) {
            hits += cond_eval(e, r, c->kids[i]);
            if (hits >= c->k)
                return true;
            if (hits + (c->n - i - 1) < c->k)
                return false;
        }
        return hits >= c->k;
    }
    }
    return false;
}

static bool logsource_ok(const struct lsrc *l, const struct view *v, bool has_cmdline)
{
    if (l->kind >= 0 && (int)v->kind != l->kind)
        return false;
    if (l->apps) {
        bool hit = false;
        for (size_t i = 0; l->apps[i] && !hit; i++)
            hit = strcmp(l->apps[i], v->app) == 0;
        if (!hit)
            return false;
    }
    if (l->proc_creation && !has_cmdline)
        return false;
    if (l->pave_audit) {
        const struct vfield *f = view_attr(v, "component");
        if (!f || !keyeq(f->v, f->vl, "audit"))
            return false;
    }
    return true;
}

/* The record's text for the prefilter: every value view_get and keyword_match can compare with,
 * lowercased, each followed by a NUL (no literal holds one, so none spans two values). With
 * out == NULL only measures. returns: the length. */
static size_t view_text(const struct view *v, char *out)
{
    const struct tel_record *r = v->rec;
    const char *res[] = {r->res.service, r->res.host, r->res.team, r->res.env, r->res.instance,
                         v->app};
    size_t o = 0;
    for (size_t i = 0; i < 2 + v->n + sizeof(res) / sizeof(res[0]); i++) {
        const char *p;
        size_t n;
        if (i == 0) {
            p = v->msg, n = v->msglen;
        } else if (i == 1) {
            p = v->cmdline, n = v->cmdline ? v->cmdlen : 0;
        } else if (i < 2 + v->n) {
            p = v->f[i - 2].v, n = v->f[i - 2].vl;
        } else {
            p = res[i - 2 - v->n];
            n = p ? strlen(p) : 0;
        }
        if (out) {
            for (size_t k = 0; k < n; k++)
                out[o + k] = (char)tolower((unsigned char)p[k]);
            out[o + n] = 0;
        }
        o += n + 1;
    }
    return o;
}

/* Marks in present[] every indexed literal that occurs in text (one pass over it), and in the
 * bitset cand the rules keyed on them. */
static void prefilter_scan(const struct security_sigma_set *s, const char *text, size_t n,
                           uint8_t *present, uint64_t *cand)
{
    for (size_t i = 0; i + LIT_MIN <= n; i++)
        for (uint32_t id = s->heads[lit_hash(text + i)]; id; id = s->lits[id].next) {
            const struct lit *l = &s->lits[id];
            if (present[id] || l->len > n - i || memcmp(text + i, l->s, l->len) != 0)
                continue;
            present[id] = 1;
            for (uint32_t k = 0; k < l->nrules; k++)
                cand[l->rules[k] / 64] |= (uint64_t)1 << (l->rules[k] % 64);
        }
}

static bool prefilter_pass(const struct rule *r, const uint8_t *present)
{
    uint32_t i = 0;
    for (uint32_t c = 0; c < r->nclauses; c++) {
        bool any = false;
        for (; i < r->clause_end[c]; i++)
            if (present[r->lits[i]]) {
                any = true;
                break;
            }
        if (!any)
            return false;
        i = r->clause_end[c];
    }
    return true;
}

size_t security_sigma_match(const struct security_sigma_set *s, const struct tel_record *rec,
                            struct core_arena *scratch, size_t *out, size_t max)
{
    if (!s || !rec || s->n == 0)
        return 0;
    struct view *v = core_malloc(sizeof(*v));
    if (!v)
        return 0;
    view_build(v, rec, scratch);
    struct ectx e = {.s = s, .v = v};
    size_t hits = 0;
    bool filter = !s->no_prefilter && s->nlits > 0;
    size_t words = (s->n + 63) / 64;
    size_t tlen = filter ? view_text(v, NULL) : 0;
    /* one block: candidate rules (a bitset), selection states, literal marks, the text */
    uint64_t *cand = core_malloc(words * sizeof(*cand) + s->maxsel + 1 +
                                 (filter ? s->nlits + tlen : 0));
    uint8_t *present = NULL;
    if (!cand)
        goto out;
    e.selstate = (int8_t *)(cand + words);
    present = (uint8_t *)(cand + words) + s->maxsel + 1;
    if (filter) {
        memcpy(cand, s->always, words * sizeof(*cand));
        memset(present, 0, s->nlits);
        view_text(v, (char *)present + s->nlits);
        prefilter_scan(s, (const char *)present + s->nlits, tlen, present, cand);
    } else {
        memset(cand, 0xff, words * sizeof(*cand));
    }
    bool has_cmdline = v->is_exec || view_attr(v, "process.command_line");
    /* candidates in load order: the set bits, lowest first */
    for (size_t w = 0; w < words; w++)
        for (uint64_t bits = cand[w]; bits; bits &= bits - 1) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
            if (i >= s->n)
                break;
            const struct rule *r = &s->rules[i];
            if ((filter && !prefilter_pass(r, present)) || !logsource_ok(&r->ls, v, has_cmdline))
                continue;
            memset(e.selstate, -1, r->nsels ? r->nsels : 1);
            if (cond_eval(&e, r, r->cond)) {
                if (hits < max)
                    out[hits] = i;
                hits++;
            }
        }
out:
    core_free(cand);
    pcre2_match_data_free(e.md);
    core_free(v);
    return hits;
}

void security_sigma_set_prefilter(struct security_sigma_set *s, bool on)
{
    if (s)
        s->no_prefilter = !on;
}
