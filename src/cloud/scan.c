/* Parallel scan of one billing file (the header comment of the "parallel scan"
 * section in cloud.h explains the range split and its check). Three parts: a
 * record reader over a mapped window with exactly the states of
 * cloud_csv_next(); the workers and the in-order hand-over of batches to the
 * opening thread; and the group-by used by `pave cost scan`. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "cloud/cloud.h"

#define RECORD_MAX (16u << 20) /* as the streaming reader */
#define BATCH_ROWS 1024
#define BATCH_BYTES (512u << 10)
#define QUEUE_MAX 8           /* batches waiting per worker */
#define DROP_EVERY (8u << 20) /* drop mapped pages behind a worker this often */
#define MIN_RANGE (4u << 20)
#define BAD_MAX CLOUD_IMPORT_BAD_MAX

/* ---- the record reader ---- */

enum { ST_START, ST_PLAIN, ST_QUOTED, ST_QUOTE_SEEN };
enum { RD_EOF = 0, RD_RECORD = 1, RD_BLANK = 2 };

struct rd {
    const unsigned char *p, *end;
    int64_t line; /* lines consumed since the window start */
    char *buf;    /* the record: fields separated by NUL */
    size_t cap, len;
    size_t *offs;
    char **fields;
};

static int rd_init(struct rd *r)
{
    memset(r, 0, sizeof(*r));
    r->cap = 4096;
    r->buf = core_malloc(r->cap);
    r->offs = core_malloc(sizeof(*r->offs) * CLOUD_CSV_FIELDS_MAX);
    r->fields = core_malloc(sizeof(*r->fields) * CLOUD_CSV_FIELDS_MAX);
    return r->buf && r->offs && r->fields ? 0 : CORE_E_NOMEM;
}

static void rd_release(struct rd *r)
{
    core_free(r->buf);
    core_free(r->offs);
    core_free(r->fields);
    memset(r, 0, sizeof(*r));
}

static int rd_grow(struct rd *r)
{
    if (r->cap >= RECORD_MAX)
        return CORE_E_TOO_BIG;
    size_t nc = r->cap * 2 > RECORD_MAX ? RECORD_MAX : r->cap * 2;
    char *nb = core_realloc(r->buf, nc);
    if (!nb)
        return CORE_E_NOMEM;
    r->buf = nb;
    r->cap = nc;
    return 0;
}

#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 >= r->cap && (rc = rd_grow(r)))                                                  \
            goto fail;                                                                             \
        r->buf[o++] = (char)(ch);                                                                  \
    } while (0)

/* Bytes that end a run: inside quotes '"' and '\n' (lines are counted);
 * outside them also ',' and '\r'. */
static const unsigned char stop_quoted[256] = {['"'] = 1, ['\n'] = 1};
static const unsigned char stop_plain[256] = {['"'] = 1, ['\n'] = 1, [','] = 1, ['\r'] = 1};

/* Bytes with the top bit set where x has a byte equal to c. Borrows can only
 * flag bytes above a true match, so the lowest flag is exact. */
static inline uint64_t bytes_eq(uint64_t x, unsigned char c)
{
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t v = x ^ (ones * c);
    return (v - ones) & ~v;
}

/* The end of a run of ordinary bytes at p: eight bytes at a time, then one by
 * one for the tail. */
static inline const unsigned char *run_end(const unsigned char *p, const unsigned char *end,
                                           bool quoted)
{
#ifdef __SSE2__
    const __m128i vq = _mm_set1_epi8('"'), vn = _mm_set1_epi8('\n');
    const __m128i vc = _mm_set1_epi8(','), vr = _mm_set1_epi8('\r');
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(x, vq), _mm_cmpeq_epi8(x, vn));
        if (!quoted)
            m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(x, vc), _mm_cmpeq_epi8(x, vr)));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t m = bytes_eq(x, '"') | bytes_eq(x, '\n');
        if (!quoted)
            m |= bytes_eq(x, ',') | bytes_eq(x, '\r');
        m &= 0x8080808080808080ull;
        if (m)
            return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    const unsigned char *tbl = quoted ? stop_quoted : stop_plain;
    while (p < end && !tbl[*p])
        p++;
    return p;
}

/* Appends the run [p, q) to the current field with the per-field cap of the
 * streaming reader (bytes past it are dropped and the record is bad). */
static int put_run(struct rd *r, size_t *o, size_t *flen, const unsigned char *p,
                   const unsigned char *q, const char **bad)
{
    size_t n = (size_t)(q - p);
    if (*flen + n > CLOUD_CSV_FIELD_MAX) {
        n = CLOUD_CSV_FIELD_MAX - *flen;
        if (!*bad)
            *bad = "a field over 1 MiB";
    }
    while (*o + n + 1 >= r->cap) {
        int rc = rd_grow(r);
        if (rc)
            return rc;
    }
    memcpy(r->buf + *o, p, n);
    *o += n;
    *flen += n;
    return 0;
}

/*
 * Reads one record at r->p: the same states, limits and messages as
 * cloud_csv_next(), without the byte-order mark (the caller checks it at
 * offset 0) and with blank lines returned as RD_BLANK so that the caller can
 * stop at a range end between them. Runs of ordinary bytes are copied at once;
 * the state machine sees only the bytes that matter. *bad is set for a
 * malformed record. returns: RD_RECORD, RD_BLANK, RD_EOF, CORE_E_TOO_BIG or
 * CORE_E_NOMEM.
 */
static int rd_next(struct rd *r, size_t *nfields, int64_t *line, const char **bad)
{
    const unsigned char *p = r->p, *end = r->end;
    if (p >= end)
        return RD_EOF;
    size_t o = 0, nf = 0, flen = 0;
    int state = ST_START, rc = 0;
    bool terminated = false;
    *bad = NULL;
    *line = r->line;
    r->offs[0] = 0;
    for (;;) {
        if (state == ST_QUOTED || state == ST_PLAIN) {
            const unsigned char *q = run_end(p, end, state == ST_QUOTED);
            if (q > p && (rc = put_run(r, &o, &flen, p, q, bad)))
                goto fail;
            p = q;
        }
        if (p >= end)
            break;
        int c = *p++;
        if (state == ST_QUOTED) {
            if (c == '"') {
                state = ST_QUOTE_SEEN;
                continue;
            }
            r->line++; /* a newline inside quotes */
        } else {
            if (c == '"') {
                if (state == ST_START) {
                    state = ST_QUOTED;
                    continue;
                }
                if (state == ST_QUOTE_SEEN) { /* "" inside quotes */
                    state = ST_QUOTED;
                    goto add;
                }
                if (!*bad)
                    *bad = "a quote inside an unquoted field";
                goto add;
            }
            if (c == ',' || c == '\n' || c == '\r') {
                PUT(0);
                nf++;
                if (c == ',') {
                    if (nf >= CLOUD_CSV_FIELDS_MAX) {
                        if (!*bad)
                            *bad = "too many fields";
                        nf = CLOUD_CSV_FIELDS_MAX - 1;
                        o = r->offs[nf];
                    }
                    r->offs[nf] = o;
                    flen = 0;
                    state = ST_START;
                    continue;
                }
                if (c == '\r' && p < end && *p == '\n')
                    p++;
                r->line++;
                terminated = true;
                break;
            }
            if (state == ST_QUOTE_SEEN) {
                if (!*bad)
                    *bad = "text after a closing quote";
                state = ST_PLAIN;
            } else if (state == ST_START) {
                state = ST_PLAIN;
            }
        }
    add:
        if (flen >= CLOUD_CSV_FIELD_MAX) {
            if (!*bad)
                *bad = "a field over 1 MiB";
            continue;
        }
        flen++;
        PUT(c);
    }
    if (!terminated) {
        if (state == ST_QUOTED && !*bad)
            *bad = "unclosed quote at end of input";
        PUT(0);
        nf++;
    }
    r->p = p;
    r->len = o;
    if (nf == 1 && o == 1 && !*bad)
        return RD_BLANK;
    for (size_t i = 0; i < nf; i++)
        r->fields[i] = r->buf + r->offs[i];
    *nfields = nf;
    return RD_RECORD;
fail:
    r->p = p;
    return rc;
}

/* ---- fast normalization (keys_only) ---- */

static bool fast_null(const char *s)
{
    unsigned char c = (unsigned char)s[0];
    if (c > ' ' && c != 'N' && c != 'n' && c != '\\')
        return false;
    return cloud_is_null(s);
}

static const char *fast_field(const struct cloud_map *m, char *const *f, enum cloud_col col)
{
    for (int k = 0; k < 3 && m->idx[col][k] >= 0; k++) {
        const char *v = f[m->idx[col][k]];
        if (!fast_null(v))
            return v;
    }
    return NULL;
}

static inline bool dig(char c)
{
    return c >= '0' && c <= '9';
}

/* cloud_parse_time() for "YYYY-MM-DD[( |T)HH:MM[:SS][.fff][Z]]" with a day up
 * to 28 and no offset (nothing can roll over): the same answer without
 * snprintf. Anything else goes to cloud_parse_time(). */
static int fast_time(const char *s, char out[21])
{
    if (!(dig(s[0]) && dig(s[1]) && dig(s[2]) && dig(s[3]) && s[4] == '-' && dig(s[5]) &&
          dig(s[6]) && s[7] == '-' && dig(s[8]) && dig(s[9])))
        return cloud_parse_time(s, out);
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int mo = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    char hh[2] = {'0', '0'}, mm[2] = {'0', '0'}, ss[2] = {'0', '0'};
    const char *p = s + 10;
    if (*p == 'T' || *p == ' ') {
        if (!(dig(p[1]) && dig(p[2]) && p[3] == ':' && dig(p[4]) && dig(p[5])))
            return cloud_parse_time(s, out);
        hh[0] = p[1], hh[1] = p[2], mm[0] = p[4], mm[1] = p[5];
        p += 6;
        if (*p == ':') {
            if (!(dig(p[1]) && dig(p[2])))
                return cloud_parse_time(s, out);
            ss[0] = p[1], ss[1] = p[2];
            p += 3;
        }
        if (*p == '.')
            for (p++; dig(*p); p++)
                ;
        if (*p == 'Z')
            p++;
    }
    if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 28 || hh[0] > '2' ||
        (hh[0] == '2' && hh[1] > '3') || mm[0] > '5' || ss[0] > '5')
        return cloud_parse_time(s, out);
    memcpy(out, s, 10);
    out[10] = 'T';
    out[11] = hh[0], out[12] = hh[1], out[13] = ':', out[14] = mm[0], out[15] = mm[1];
    out[16] = ':', out[17] = ss[0], out[18] = ss[1], out[19] = 'Z', out[20] = 0;
    return 0;
}

/* cloud_parse_money() for "[-]D{1,6}[.D{1,9}]": exact decimal arithmetic gives
 * the same nano-units as llround(strtod(s) * 1e9) there, since the product
 * stays under 2^50 and the double error under a quarter unit. Anything else
 * goes to cloud_parse_money(). */
static int fast_money(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = *p == '-';
    p += neg;
    int64_t ip = 0, fr = 0;
    int id = 0, fd = 0;
    for (; dig(*p); p++, id++)
        if (id < 6) /* a longer integer part goes to the slow path: no overflow here */
            ip = ip * 10 + (*p - '0');
    if (id == 0 || id > 6)
        return cloud_parse_money(s, out);
    if (*p == '.') {
        for (p++; dig(*p); p++, fd++) {
            if (fd == 9)
                return cloud_parse_money(s, out);
            fr = fr * 10 + (*p - '0');
        }
        if (fd == 0)
            return cloud_parse_money(s, out);
    }
    if (*p)
        return cloud_parse_money(s, out);
    for (; fd < 9; fd++)
        fr *= 10;
    int64_t v = ip * 1000000000 + fr;
    *out = neg ? -v : v;
    return 0;
}

/* The allocation role of a tag key, as billing_csv.c's tag_role(): 0 team, 1
 * service, 2 env, 3 cost center, -1 none. */
static int fast_role(const char *k, size_t n)
{
    if (n >= 5 && (k[4] == ':' || k[4] == '_') && strncasecmp(k, "user", 4) == 0) {
        k += 5;
        n -= 5;
    }
    if (n < 3 || n > 13)
        return -1;
    char b[16];
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        b[i] = (c == '_' || c == ' ') ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    static const struct {
        const char *name;
        unsigned char len, role;
    } roles[] = {
        {"team", 4, 0},         {"owner", 5, 0},          {"owning-team", 11, 0},
        {"squad", 5, 0},        {"service", 7, 1},        {"app", 3, 1},
        {"application", 11, 1}, {"service-name", 12, 1},  {"app-name", 8, 1},
        {"env", 3, 2},          {"environment", 11, 2},   {"stage", 5, 2},
        {"tier-env", 8, 2},     {"cost-center", 11, 3},   {"costcenter", 10, 3},
        {"cost-centre", 11, 3}, {"business-unit", 13, 3}, {"businessunit", 12, 3},
    };
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (roles[i].len == n && memcmp(b, roles[i].name, n) == 0)
            return roles[i].role;
    return -1;
}

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* A printable-ASCII JSON string without escapes at p (after the quote); returns
 * its closing quote or NULL. */
static char *plain_str(char *p)
{
    while ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f && *p != '"' && *p != '\\')
        p++;
    return *p == '"' ? p : NULL;
}

/* The allocation tags of a flat JSON object of plain strings, read in place
 * (value ends are overwritten with NUL, so call it only once the row will not
 * go to cloud_billing_row()). returns: true when handled; false for anything
 * the slow path must see (escapes, non-ASCII, numbers, nesting, duplicates). */
static bool fast_tags(char *s, const char *tag[4])
{
    struct {
        char *k, *v, *vend;
        size_t kl;
    } e[32];
    int ne = 0;
    char *p = s;
    while (*p == ' ')
        p++;
    if (*p != '{')
        return false;
    p = (char *)json_ws(p + 1);
    if (*p == '}') {
        p++;
    } else {
        for (;;) {
            if (*p != '"' || ne == 32)
                return false;
            char *k = p + 1, *ke = plain_str(k);
            if (!ke)
                return false;
            p = (char *)json_ws(ke + 1);
            if (*p != ':')
                return false;
            p = (char *)json_ws(p + 1);
            if (*p != '"')
                return false;
            char *v = p + 1, *ve = plain_str(v);
            if (!ve)
                return false;
            e[ne].k = k, e[ne].kl = (size_t)(ke - k), e[ne].v = v, e[ne].vend = ve;
            ne++;
            p = (char *)json_ws(ve + 1);
            if (*p == ',') {
                p = (char *)json_ws(p + 1);
                continue;
            }
            if (*p != '}')
                return false;
            p++;
            break;
        }
    }
    if (*json_ws(p))
        return false;
    for (int i = 0; i < ne; i++)
        for (int j = i + 1; j < ne; j++)
            if (e[i].kl == e[j].kl && memcmp(e[i].k, e[j].k, e[i].kl) == 0)
                return false; /* jansson keeps the last value in the first place */
    for (int i = 0; i < ne; i++) {
        int r = fast_role(e[i].k, e[i].kl);
        if (r < 0 || tag[r] || e[i].vend == e[i].v)
            continue;
        *e[i].vend = 0;
        tag[r] = e[i].v;
    }
    return true;
}

static bool map_fast_ok(const struct cloud_map *m)
{
    if (m->ntags)
        return false;
    for (size_t i = 0; i < sizeof(m->aux) / sizeof(m->aux[0]); i++)
        if (m->aux[i] >= 0)
            return false;
    return true;
}

/* cloud_billing_row() restricted to the keys_only fields; every refusal and
 * every value it does not recognize is left to cloud_billing_row() so that
 * verdicts and messages are the same. */
static int fast_row(const struct cloud_map *m, char *const *f, size_t n, struct cloud_charge *c,
                    struct core_err *err)
{
    if (n != m->ncols)
        return cloud_billing_row(m, f, n, c, err);
    core_buf_clear(&c->scratch);
    const char *bp = fast_field(m, f, CLOUD_COL_BILLING_PERIOD_START);
    const char *cs = fast_field(m, f, CLOUD_COL_CHARGE_PERIOD_START);
    const char *ce = fast_field(m, f, CLOUD_COL_CHARGE_PERIOD_END);
    char t[21];
    c->charge_start[0] = c->charge_end[0] = 0;
    if ((cs && fast_time(cs, c->charge_start)) || (ce && fast_time(ce, c->charge_end)))
        return cloud_billing_row(m, f, n, c, err);
    if (bp) {
        if (fast_time(bp, t))
            return cloud_billing_row(m, f, n, c, err);
    } else if (cs) {
        memcpy(t, c->charge_start, sizeof(t));
    } else {
        return cloud_billing_row(m, f, n, c, err);
    }
    memcpy(c->period, t, 7);
    c->period[7] = 0;
    const char *bv = fast_field(m, f, CLOUD_COL_BILLED_COST);
    const char *ev = fast_field(m, f, CLOUD_COL_EFFECTIVE_COST);
    const char *lv = fast_field(m, f, CLOUD_COL_LIST_COST);
    c->billed_n = c->effective_n = c->list_n = 0;
    if ((bv && fast_money(bv, &c->billed_n)) || (ev && fast_money(ev, &c->effective_n)) ||
        (lv && fast_money(lv, &c->list_n)))
        return cloud_billing_row(m, f, n, c, err);
    if (!ev)
        c->effective_n = c->billed_n;
    c->tag_team = c->tag_service = c->tag_env = c->tag_cost_center = NULL;
    const char *tags[4] = {NULL, NULL, NULL, NULL};
    const char *tv = fast_field(m, f, CLOUD_COL_TAGS);
    if (tv && !fast_tags((char *)tv, tags))
        return cloud_billing_row(m, f, n, c, err);
    c->tag_team = tags[0];
    c->tag_service = tags[1];
    c->tag_env = tags[2];
    c->tag_cost_center = tags[3];
    c->tags_json = NULL;
    c->charge_category = NULL;
    c->currency = fast_field(m, f, CLOUD_COL_BILLING_CURRENCY);
    c->provider = fast_field(m, f, CLOUD_COL_PROVIDER_NAME);
    if (!c->provider)
        c->provider = m->fmt->provider;
    c->billing_account = fast_field(m, f, CLOUD_COL_BILLING_ACCOUNT_ID);
    c->sub_account = fast_field(m, f, CLOUD_COL_SUB_ACCOUNT_ID);
    c->service_name = fast_field(m, f, CLOUD_COL_SERVICE_NAME);
    c->service_category = fast_field(m, f, CLOUD_COL_SERVICE_CATEGORY);
    c->region = fast_field(m, f, CLOUD_COL_REGION_ID);
    c->resource_id = fast_field(m, f, CLOUD_COL_RESOURCE_ID);
    c->sku = fast_field(m, f, CLOUD_COL_SKU_ID);
    return 0;
}

/* ---- the scan ---- */

struct batch {
    struct batch *next;
    char *buf; /* record bytes the rows point into; never moves once a row uses it
                */
    size_t len, cap;
    struct cloud_charge ch[BATCH_ROWS];
    int64_t lines[BATCH_ROWS];
    size_t n;
};

struct worker;
/* Called by a worker for each good row (group mode). */
typedef int (*row_fn)(struct worker *w, const struct cloud_charge *c);

struct worker {
    struct cloud_scan *s;
    int idx;
    pthread_t th;
    bool started;
    size_t o_start, o_end; /* nominal range */
    size_t start, stop;    /* record boundaries after the parity pass */
    uint64_t quotes;       /* quotes in [o_start, o_end) */
    bool counted;
    int64_t lines, rows, malformed;
    struct cloud_scan_bad bad[BAD_MAX];
    size_t nbad;
    int rc;
    char msg[512];
    int64_t fail_line; /* relative line of a fatal record error */
    bool extended, done;
    atomic_llong pos; /* progress */
    struct rd rd;
    struct cloud_charge ch;
    char **bfields;
    /* batch mode */
    struct batch *cur;
    struct batch *q[QUEUE_MAX];
    size_t qhead, qn;
    /* group mode */
    row_fn row;
    struct cloud_scan_ght *ht;
    char *currency;
    bool mixed;
    struct core_buf key;
};

struct cloud_scan {
    char *path;
    const char *format; /* borrowed from the options, used while opening */
    int fd;
    bool mapped;
    const unsigned char *base;
    size_t size;
    size_t data; /* first byte after the header */
    int64_t data_line;
    struct cloud_csv *csv; /* streaming fallback */
    struct cloud_map map;
    bool keys_only, fast_ok;
    int nw;
    struct worker *w;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int cancel_from; /* workers at or after this index are discarded */
    bool running, finished;
    int cur;          /* worker whose batches are handed out */
    int64_t cur_base; /* its first line */
    struct batch *handed, *free_list;
    int64_t rows, malformed;
    struct cloud_scan_bad *bad;
    size_t nbad;
    bool stitched;
    const enum cloud_group *by; /* group mode */
    size_t nby;
};

static size_t online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

/* A mapped file that another process truncates while we read it raises SIGBUS on the pages
 * past its new end. A thread reading the map sets scan_jmp first; the handler jumps back there,
 * and that read fails with an error instead of killing the process. A SIGBUS anywhere else
 * restores the previous disposition and returns, so the faulting access repeats and is
 * handled as it would have been without us. */
static _Thread_local sigjmp_buf *scan_jmp;
static struct sigaction prev_bus;
static pthread_mutex_t bus_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    if (scan_jmp)
        siglongjmp(*scan_jmp, 1);
    sigaction(SIGBUS, &prev_bus, NULL);
}

/* Installs on_sigbus unless it is already the handler (someone may have replaced it since the
 * last scan), keeping the one it replaces. */
static void install_bus_handler(void)
{
    struct sigaction cur, sa;
    pthread_mutex_lock(&bus_mu);
    if (sigaction(SIGBUS, NULL, &cur) == 0 &&
        !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, &prev_bus);
    }
    pthread_mutex_unlock(&bus_mu);
}

#define SCAN_SHRUNK "the file shrank while it was being read (truncated or replaced by another " \
                    "process?); read it again once it is complete"

static int read_header_mapped(struct cloud_scan *s, struct core_err *err)
{
    struct rd r;
    int rc;
    if (rd_init(&r)) {
        rd_release(&r);
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    r.p = s->base;
    r.end = s->base + s->size;
    if (s->base[0] == 0xEF) {
        if (s->size < 3 || s->base[1] != 0xBB || s->base[2] != 0xBF) {
            rc = core_err_set(err, CORE_E_INVAL, "'%s' header: line 1: a broken byte-order mark",
                              s->path);
            goto out;
        }
        r.p += 3;
    }
    size_t nf = 0;
    int64_t line;
    const char *bad;
    do
        rc = rd_next(&r, &nf, &line, &bad);
    while (rc == RD_BLANK);
    if (rc == RD_EOF) {
        rc = core_err_set(err, CORE_E_INVAL, "'%s' is empty", s->path);
        goto out;
    }
    if (rc < 0) {
        rc = core_err_set(err, rc, "'%s' header: line %lld: record over %u bytes", s->path,
                          (long long)line + 1, RECORD_MAX);
        goto out;
    }
    if (bad) {
        rc = core_err_set(err, CORE_E_INVAL, "'%s' header: line %lld: %s", s->path,
                          (long long)line + 1, bad);
        goto out;
    }
    if ((rc = cloud_billing_map(&s->map, s->format, r.fields, nf, err))) {
        core_err_wrap(err, "'%s'", s->path);
        goto out;
    }
    s->data = (size_t)(r.p - s->base);
    s->data_line = 1 + r.line;
out:
    rd_release(&r);
    return rc;
}

static int read_header_stream(struct cloud_scan *s, struct core_err *err)
{
    if (!(s->csv = cloud_csv_open_file(s->path, err)))
        return err ? err->code : CORE_E_IO;
    char **f;
    size_t n;
    int64_t line;
    struct core_err e2 = {0};
    int rc = cloud_csv_next(s->csv, &f, &n, &line, &e2);
    if (rc == 0)
        return core_err_set(err, CORE_E_INVAL, "'%s' is empty", s->path);
    if (rc < 0)
        return core_err_set(err, rc, "'%s' header: %s", s->path, e2.msg);
    if ((rc = cloud_billing_map(&s->map, s->format, f, n, err)))
        core_err_wrap(err, "'%s'", s->path);
    return rc;
}

struct cloud_scan *cloud_scan_open(const char *path, const struct cloud_scan_opts *o,
                                   struct core_err *err)
{
    static const struct cloud_scan_opts defaults = {0};
    if (!o)
        o = &defaults;
    struct cloud_scan *s = core_calloc(1, sizeof(*s));
    if (!s || !(s->path = core_strdup(path))) {
        core_free(s);
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    s->fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->keys_only = o->keys_only;
    s->format = o->format;
    /* read before sigsetjmp below: nothing live across it may be changed after it */
    const int threads = o->threads;
    const size_t min_range = o->min_range;
    int rc = 0;
    struct stat sb;
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        core_err_set(err, CORE_E_IO, "cannot open '%s': %s", path, strerror(errno));
        goto fail;
    }
    unsigned char magic[2] = {0, 0};
    if (fstat(s->fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        pread(s->fd, magic, 2, 0) == 2 && !(magic[0] == 0x1f && magic[1] == 0x8b)) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, s->fd, 0);
        if (m != MAP_FAILED) {
            s->base = m;
            s->size = (size_t)sb.st_size;
            s->mapped = true;
            madvise(m, s->size, MADV_SEQUENTIAL);
        }
    }
    if (!s->mapped)
        s->size = fstat(s->fd, &sb) == 0 && S_ISREG(sb.st_mode) ? (size_t)sb.st_size : 0;
    if (s->mapped) {
        install_bus_handler();
        sigjmp_buf jb;
        if (sigsetjmp(jb, 0)) {
            scan_jmp = NULL;
            rc = core_err_set(err, CORE_E_IO, "'%s': %s", path, SCAN_SHRUNK);
            goto fail;
        }
        scan_jmp = &jb;
        rc = read_header_mapped(s, err);
        scan_jmp = NULL;
    } else {
        rc = read_header_stream(s, err);
    }
    if (rc)
        goto fail;
    s->fast_ok = s->keys_only && map_fast_ok(&s->map);
    size_t want = threads > 0 ? (size_t)threads : online_cpus();
    if (want > CLOUD_SCAN_THREADS_MAX)
        want = CLOUD_SCAN_THREADS_MAX;
    size_t minr = min_range ? min_range : MIN_RANGE;
    size_t span = s->mapped ? s->size - s->data : 0;
    size_t nw = s->mapped ? span / minr + 1 : 1;
    if (nw > want)
        nw = want;
    if (nw > span && span > 0)
        nw = span;
    if (nw < 1)
        nw = 1;
    s->nw = (int)nw;
    atomic_store(&s->cancel_from, s->nw);
    if (!(s->w = core_calloc(nw, sizeof(*s->w)))) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < nw; i++) {
        struct worker *w = &s->w[i];
        w->s = s;
        w->idx = (int)i;
        w->o_start = s->data + span * i / nw;
        w->o_end = s->data + span * (i + 1) / nw;
        cloud_charge_init(&w->ch);
        core_buf_init(&w->key, 1u << 20);
        /* Own memory from the start: an empty core_buf points at one static
         * byte that core_buf_clear() writes, which threads would share. */
        if (rd_init(&w->rd) || core_buf_reserve(&w->ch.scratch, 64) ||
            core_buf_reserve(&w->key, 64) ||
            !(w->bfields = core_malloc(sizeof(*w->bfields) * CLOUD_CSV_FIELDS_MAX))) {
            core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    s->cur_base = s->data_line;
    return s;
fail:
    cloud_scan_free(s);
    return NULL;
}

const struct cloud_map *cloud_scan_map(const struct cloud_scan *s)
{
    return &s->map;
}

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < BATCH_ROWS; i++)
        cloud_charge_release(&b->ch[i]);
    core_free(b->buf);
    core_free(b);
}

static void stop_workers(struct cloud_scan *s)
{
    if (!s->running)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->cancel_from, 0);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nw; i++)
        if (s->w[i].started)
            pthread_join(s->w[i].th, NULL);
    s->running = false;
}

void cloud_scan_free(struct cloud_scan *s)
{
    if (!s)
        return;
    stop_workers(s);
    for (int i = 0; s->w && i < s->nw; i++) {
        struct worker *w = &s->w[i];
        rd_release(&w->rd);
        cloud_charge_release(&w->ch);
        core_buf_release(&w->key);
        core_free(w->bfields);
        core_free(w->currency);
        batch_free(w->cur);
        for (size_t k = 0; k < w->qn; k++)
            batch_free(w->q[(w->qhead + k) % QUEUE_MAX]);
    }
    core_free(s->w);
    batch_free(s->handed);
    while (s->free_list) {
        struct batch *b = s->free_list;
        s->free_list = b->next;
        batch_free(b);
    }
    core_free(s->bad);
    cloud_map_release(&s->map);
    cloud_csv_free(s->csv);
    if (s->mapped)
        munmap((void *)s->base, s->size);
    if (s->fd >= 0)
        close(s->fd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    core_free(s->path);
    core_free(s);
}

/* ---- workers ---- */

static bool cancelled(const struct worker *w)
{
    return w->idx >= atomic_load_explicit(&w->s->cancel_from, memory_order_relaxed);
}

/* Quotes in [p, p+n), eight bytes at a time: a byte equal to '"' becomes 0
 * after the XOR, and only such bytes keep their top bit in y. */
static uint64_t count_quotes(const unsigned char *p, size_t n)
{
    const uint64_t pat = 0x2222222222222222ull, lo7 = 0x7f7f7f7f7f7f7f7full;
    uint64_t c = 0;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i vq = _mm_set1_epi8('"');
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        c += (uint64_t)__builtin_popcount((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vq)));
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t t = x ^ pat;
        uint64_t y = ~(((t & lo7) + lo7) | t | lo7);
        c += (uint64_t)__builtin_popcountll(y);
    }
    for (; i < n; i++)
        c += p[i] == '"';
    return c;
}

/* The first line start at or after o that is outside quotes, given the quote
 * parity at o; the file size when there is none. */
static size_t find_start(const struct cloud_scan *s, size_t o, uint64_t parity)
{
    for (const unsigned char *p = s->base + o, *end = s->base + s->size; p < end; p++) {
        if (*p == '"')
            parity ^= 1;
        else if (*p == '\n' && !(parity & 1))
            return (size_t)(p + 1 - s->base);
    }
    return s->size;
}

/* Drops mapped pages of [from, to) from this process (the page cache keeps
 * them), so resident memory does not grow with the file. */
static void drop_pages(const struct cloud_scan *s, size_t from, size_t to)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    from = (from + pg - 1) / pg * pg;
    to = to / pg * pg;
    if (to > from)
        madvise((void *)(s->base + from), to - from, MADV_DONTNEED);
}

static void note_bad(struct worker *w, int64_t line, const char *reason)
{
    w->malformed++;
    if (w->nbad >= BAD_MAX)
        return;
    w->bad[w->nbad].line = line;
    /* reasons are short; a long one is cut */
    snprintf(w->bad[w->nbad].reason, sizeof(w->bad[w->nbad].reason), "%.159s", reason);
    w->nbad++;
}

/* The reader's messages start with "line N: "; the report names the line. */
static const char *strip_line(const char *msg)
{
    if (strncmp(msg, "line ", 5) == 0) {
        const char *p = strstr(msg, ": ");
        if (p)
            return p + 2;
    }
    return msg;
}

static int normalize(const struct cloud_scan *s, char *const *f, size_t n, struct cloud_charge *c,
                     struct core_err *err)
{
    return s->fast_ok ? fast_row(&s->map, f, n, c, err) : cloud_billing_row(&s->map, f, n, c, err);
}

static struct batch *batch_get(struct worker *w)
{
    struct cloud_scan *s = w->s;
    pthread_mutex_lock(&s->mu);
    struct batch *b = s->free_list;
    if (b)
        s->free_list = b->next;
    pthread_mutex_unlock(&s->mu);
    if (!b) {
        if (!(b = core_calloc(1, sizeof(*b))))
            return NULL;
        bool ok = true;
        for (size_t i = 0; i < BATCH_ROWS; i++) {
            cloud_charge_init(&b->ch[i]);
            ok = ok && core_buf_reserve(&b->ch[i].scratch, 64) == 0; /* see cloud_scan_open */
        }
        if (!ok || !(b->buf = core_malloc(BATCH_BYTES))) {
            batch_free(b);
            return NULL;
        }
        b->cap = BATCH_BYTES;
    }
    b->next = NULL;
    b->n = b->len = 0;
    return b;
}

static void batch_recycle(struct cloud_scan *s, struct batch *b)
{
    pthread_mutex_lock(&s->mu);
    b->next = s->free_list;
    s->free_list = b;
    pthread_mutex_unlock(&s->mu);
}

/* Queues a full batch for the consumer; waits while the queue is full. */
static void batch_push(struct worker *w, struct batch *b)
{
    struct cloud_scan *s = w->s;
    pthread_mutex_lock(&s->mu);
    while (w->qn == QUEUE_MAX && !cancelled(w))
        pthread_cond_wait(&s->cv, &s->mu);
    if (cancelled(w)) {
        b->next = s->free_list;
        s->free_list = b;
    } else {
        w->q[(w->qhead + w->qn) % QUEUE_MAX] = b;
        w->qn++;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* One good record: normalized into the current batch (batch mode) or into the
 * worker's charge and handed to w->row (group mode). rec/reclen: the record's
 * bytes, fields pointing into them. returns: 0 or a fatal error. */
static int deliver(struct worker *w, char **fields, size_t nf, const char *rec, size_t reclen,
                   int64_t line)
{
    struct cloud_scan *s = w->s;
    struct core_err e = {0};
    int rc;
    if (w->row) {
        rc = normalize(s, fields, nf, &w->ch, &e);
        if (rc == CORE_E_INVAL) {
            note_bad(w, line, e.msg);
            return 0;
        }
        return rc ? rc : w->row(w, &w->ch);
    }
    struct batch *b = w->cur;
    if (b && (b->n == BATCH_ROWS || b->len + reclen > b->cap)) {
        batch_push(w, b);
        b = w->cur = NULL;
    }
    if (!b && !(b = w->cur = batch_get(w)))
        return CORE_E_NOMEM;
    if (reclen > b->cap) { /* an empty batch: nothing points into buf yet */
        char *nb = core_realloc(b->buf, reclen);
        if (!nb)
            return CORE_E_NOMEM;
        b->buf = nb;
        b->cap = reclen;
    }
    char *dst = b->buf + b->len;
    memcpy(dst, rec, reclen);
    for (size_t k = 0; k < nf; k++)
        w->bfields[k] = dst + (fields[k] - rec);
    rc = normalize(s, w->bfields, nf, &b->ch[b->n], &e);
    if (rc == CORE_E_INVAL) {
        note_bad(w, line, e.msg);
        return 0;
    }
    if (rc)
        return rc;
    b->lines[b->n++] = line;
    b->len += reclen;
    return 0;
}

static void scan_range(struct worker *w)
{
    struct cloud_scan *s = w->s;
    struct rd *r = &w->rd;
    r->p = s->base + w->start;
    r->end = s->base + s->size;
    r->line = 0;
    size_t stop = w->stop, dropped = w->start;
    for (;;) {
        if (cancelled(w))
            break;
        size_t pos = (size_t)(r->p - s->base);
        if (pos >= stop) {
            if (pos == stop || w->extended)
                break;
            /* The last record ran over the next range's start: that range
             * began inside a quoted field. Read on to the end in its place. */
            w->extended = true;
            stop = s->size;
            pthread_mutex_lock(&s->mu);
            if (atomic_load(&s->cancel_from) > w->idx + 1)
                atomic_store(&s->cancel_from, w->idx + 1);
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (pos - dropped >= DROP_EVERY) {
            drop_pages(s, dropped, pos);
            dropped = pos;
            atomic_store_explicit(&w->pos, (long long)(pos - w->start), memory_order_relaxed);
        }
        size_t nf = 0;
        int64_t line;
        const char *bad;
        int rc = rd_next(r, &nf, &line, &bad);
        if (rc == RD_EOF)
            break;
        if (rc == RD_BLANK)
            continue;
        if (rc < 0) {
            w->rc = rc;
            w->fail_line = line;
            snprintf(w->msg, sizeof(w->msg), "%s",
                     rc == CORE_E_TOO_BIG ? "record over 16 MiB" : "out of memory");
            break;
        }
        w->rows++;
        if (bad) {
            note_bad(w, line, bad);
            continue;
        }
        if ((rc = deliver(w, r->fields, nf, r->buf, r->len, line))) {
            w->rc = rc;
            w->fail_line = line;
            snprintf(w->msg, sizeof(w->msg), "%s", "out of memory");
            break;
        }
    }
    w->lines = r->line;
    atomic_store(&w->pos, (long long)((size_t)(r->p - s->base) - w->start));
}

static void scan_stream(struct worker *w)
{
    struct cloud_scan *s = w->s;
    for (int64_t k = 0;; k++) {
        if (cancelled(w))
            break;
        char **f;
        size_t n;
        int64_t line;
        struct core_err e = {0};
        int rc = cloud_csv_next(s->csv, &f, &n, &line, &e);
        if (rc == 0)
            break;
        if (rc == CORE_E_INVAL) {
            w->rows++;
            note_bad(w, line, strip_line(e.msg));
            continue;
        }
        if (rc < 0) {
            w->rc = rc;
            w->fail_line = -1;
            snprintf(w->msg, sizeof(w->msg), "%s", e.msg);
            break;
        }
        w->rows++;
        size_t reclen = (size_t)(f[n - 1] + strlen(f[n - 1]) + 1 - f[0]);
        if ((rc = deliver(w, f, n, f[0], reclen, line))) {
            w->rc = rc;
            w->fail_line = -1;
            snprintf(w->msg, sizeof(w->msg), "line %lld: out of memory", (long long)line);
            break;
        }
        if ((k & 0xfff) == 0)
            atomic_store_explicit(&w->pos, cloud_csv_offset(s->csv), memory_order_relaxed);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct cloud_scan *s = w->s;
    sigjmp_buf jb;
    if (s->mapped && sigsetjmp(jb, 0)) {
        scan_jmp = NULL;
        w->rc = CORE_E_IO;
        w->fail_line = -1;
        snprintf(w->msg, sizeof(w->msg), "%s", SCAN_SHRUNK);
        pthread_mutex_lock(&s->mu);
        w->counted = true; /* later workers wait for this range's quote count */
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    } else if (s->mapped) {
        scan_jmp = &jb;
        int last = s->nw - 1;
        if (w->idx < last) {
            for (size_t a = w->o_start; a < w->o_end; a += DROP_EVERY) {
                size_t b = w->o_end - a > DROP_EVERY ? a + DROP_EVERY : w->o_end;
                w->quotes += count_quotes(s->base + a, b - a);
                drop_pages(s, a, b);
            }
        }
        uint64_t parity = 0;
        pthread_mutex_lock(&s->mu);
        w->counted = true;
        pthread_cond_broadcast(&s->cv);
        for (int j = 0; j < w->idx; j++) {
            while (!s->w[j].counted)
                pthread_cond_wait(&s->cv, &s->mu);
            parity += s->w[j].quotes;
        }
        pthread_mutex_unlock(&s->mu);
        w->start = w->idx == 0 ? s->data : find_start(s, w->o_start, parity);
        w->stop = w->idx == last ? s->size : find_start(s, w->o_end, parity + w->quotes);
        scan_range(w);
        scan_jmp = NULL;
    } else {
        scan_stream(w);
    }
    if (!w->rc && w->cur && w->cur->n) {
        batch_push(w, w->cur);
        w->cur = NULL;
    }
    pthread_mutex_lock(&s->mu);
    w->done = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int start_workers(struct cloud_scan *s, struct core_err *err)
{
    s->running = true;
    for (int i = 0; i < s->nw; i++) {
        if (pthread_create(&s->w[i].th, NULL, worker_main, &s->w[i])) {
            stop_workers(s);
            return core_err_set(err, CORE_E_NOMEM, "cannot start a scan thread");
        }
        s->w[i].started = true;
    }
    return 0;
}

static int worker_error(const struct cloud_scan *s, const struct worker *w, int64_t base,
                        struct core_err *err)
{
    if (w->fail_line < 0)
        return core_err_set(err, w->rc, "'%s': %s", s->path, w->msg);
    return core_err_set(err, w->rc, "'%s' line %lld: %s", s->path, (long long)(base + w->fail_line),
                        w->msg);
}

/* Adds a finished worker's counts and malformed rows (lines made absolute). */
static int absorb(struct cloud_scan *s, const struct worker *w, int64_t base)
{
    s->rows += w->rows;
    s->malformed += w->malformed;
    if (!s->bad && !(s->bad = core_calloc(BAD_MAX, sizeof(*s->bad))))
        return CORE_E_NOMEM;
    for (size_t k = 0; k < w->nbad && s->nbad < BAD_MAX; k++) {
        s->bad[s->nbad] = w->bad[k];
        s->bad[s->nbad++].line += base;
    }
    return 0;
}

int cloud_scan_next(struct cloud_scan *s, struct cloud_scan_batch *b, struct core_err *err)
{
    int rc;
    if (s->handed) {
        batch_recycle(s, s->handed);
        s->handed = NULL;
    }
    if (s->finished)
        return 0;
    if (!s->running) {
        if (!s->mapped)
            s->cur_base = 0; /* the streaming reader counts lines itself */
        if ((rc = start_workers(s, err)))
            return rc;
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct worker *w = &s->w[s->cur];
        if (w->qn) {
            struct batch *bt = w->q[w->qhead];
            w->qhead = (w->qhead + 1) % QUEUE_MAX;
            w->qn--;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            for (size_t i = 0; i < bt->n; i++)
                bt->lines[i] += s->cur_base;
            s->handed = bt;
            b->rows = bt->ch;
            b->lines = bt->lines;
            b->n = bt->n;
            return 1;
        }
        if (w->done) {
            if (w->rc) {
                pthread_mutex_unlock(&s->mu);
                rc = worker_error(s, w, s->cur_base, err);
                stop_workers(s);
                s->finished = true;
                return rc;
            }
            if (absorb(s, w, s->cur_base)) {
                pthread_mutex_unlock(&s->mu);
                stop_workers(s);
                s->finished = true;
                return core_err_set(err, CORE_E_NOMEM, "out of memory");
            }
            s->cur_base += w->lines;
            s->stitched |= w->extended;
            s->cur = w->extended ? s->nw : s->cur + 1;
            if (s->cur >= s->nw) {
                s->cur = s->nw - 1;
                pthread_mutex_unlock(&s->mu);
                stop_workers(s);
                s->finished = true;
                return 0;
            }
            continue;
        }
        pthread_cond_wait(&s->cv, &s->mu);
    }
}

void cloud_scan_progress(const struct cloud_scan *s, int64_t *done, int64_t *total)
{
    int64_t d = s->mapped ? (int64_t)s->data : 0;
    for (int i = 0; i < s->nw; i++)
        d += atomic_load_explicit(&s->w[i].pos, memory_order_relaxed);
    *total = (int64_t)s->size;
    *done = *total && d > *total ? *total : d;
}

void cloud_scan_stats(const struct cloud_scan *s, struct cloud_scan_stats *out)
{
    out->rows = s->rows;
    out->malformed = s->malformed;
    out->bad = s->bad;
    out->nbad = s->nbad;
    out->threads = s->nw;
    out->stitched = s->stitched;
}

/* ---- group by tags ---- */

struct gent {
    uint64_t h;
    char *key; /* values separated by NUL */
    size_t klen;
    int64_t rows, billed_n, effective_n;
};

struct cloud_scan_ght {
    struct gent *e;
    size_t cap, n;
};

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h | 1; /* 0 marks an empty slot */
}

static void ght_free(struct cloud_scan_ght *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        core_free(t->e[i].key);
    core_free(t->e);
    core_free(t);
}

static struct gent *ght_slot(struct gent *e, size_t cap, const char *k, size_t kl, uint64_t h)
{
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!e[i].h || (e[i].h == h && e[i].klen == kl && memcmp(e[i].key, k, kl) == 0))
            return &e[i];
}

/* The entry for key k (inserted with zero sums when new), or NULL on NOMEM. */
static struct gent *ght_get(struct cloud_scan_ght *t, const char *k, size_t kl)
{
    uint64_t h = hash_bytes(k, kl);
    if ((t->n + 1) * 10 > t->cap * 7) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        struct gent *ne = core_calloc(nc, sizeof(*ne));
        if (!ne)
            return NULL;
        for (size_t i = 0; i < t->cap; i++)
            if (t->e[i].h)
                *ght_slot(ne, nc, t->e[i].key, t->e[i].klen, t->e[i].h) = t->e[i];
        core_free(t->e);
        t->e = ne;
        t->cap = nc;
    }
    struct gent *g = ght_slot(t->e, t->cap, k, kl, h);
    if (!g->h) {
        if (!(g->key = core_malloc(kl ? kl : 1)))
            return NULL;
        memcpy(g->key, k, kl);
        g->klen = kl;
        g->h = h;
        t->n++;
    }
    return g;
}

static const char *charge_key(const struct cloud_charge *c, enum cloud_group by)
{
    const char *v = by == CLOUD_BY_TEAM      ? c->tag_team
                    : by == CLOUD_BY_SERVICE ? c->tag_service
                    : by == CLOUD_BY_ENV     ? c->tag_env
                                             : c->tag_cost_center;
    return v && *v ? v : CLOUD_UNALLOCATED;
}

static int group_row(struct worker *w, const struct cloud_charge *c)
{
    const struct cloud_scan *s = w->s;
    core_buf_clear(&w->key);
    for (size_t i = 0; i < s->nby; i++) {
        const char *v = charge_key(c, s->by[i]);
        if (core_buf_add(&w->key, v, strlen(v) + 1))
            return CORE_E_TOO_BIG;
    }
    struct gent *g = ght_get(w->ht, w->key.data, w->key.len);
    if (!g)
        return CORE_E_NOMEM;
    g->rows++;
    g->billed_n += c->billed_n;
    g->effective_n += c->effective_n;
    if (c->currency && !w->mixed) {
        if (!w->currency) {
            if (!(w->currency = core_strdup(c->currency)))
                return CORE_E_NOMEM;
        } else if (strcmp(w->currency, c->currency) != 0) {
            w->mixed = true;
        }
    }
    return 0;
}

void cloud_scan_result_init(struct cloud_scan_result *r, const enum cloud_group *by, size_t nby)
{
    memset(r, 0, sizeof(*r));
    if (nby > CLOUD_SCAN_KEYS_MAX)
        nby = CLOUD_SCAN_KEYS_MAX;
    memcpy(r->by, by, nby * sizeof(*by));
    r->nby = nby;
}

void cloud_scan_result_release(struct cloud_scan_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < CLOUD_SCAN_KEYS_MAX; k++)
            core_free(r->items[i].key[k]);
    core_free(r->items);
    for (size_t i = 0; i < r->nbad; i++) {
        core_free(r->bad[i].file);
        core_free(r->bad[i].reason);
    }
    core_free(r->bad);
    core_free(r->currency);
    ght_free(r->ht);
    memset(r, 0, sizeof(*r));
}

static int result_currency(struct cloud_scan_result *r, const char *cur, bool mixed)
{
    if (r->currency && strcmp(r->currency, "mixed") == 0)
        return 0;
    if (mixed || (cur && r->currency && strcmp(r->currency, cur) != 0)) {
        core_free(r->currency);
        return (r->currency = core_strdup("mixed")) ? 0 : CORE_E_NOMEM;
    }
    if (cur && !r->currency)
        return (r->currency = core_strdup(cur)) ? 0 : CORE_E_NOMEM;
    return 0;
}

/* Adds worker w's groups and malformed rows (lines from base) to r. */
static int result_absorb(struct cloud_scan_result *r, const struct cloud_scan *s,
                         const struct worker *w, int64_t base)
{
    r->rows += w->rows;
    r->malformed += w->malformed;
    for (size_t i = 0; i < w->ht->cap; i++) {
        const struct gent *g = &w->ht->e[i];
        if (!g->h)
            continue;
        struct gent *t = ght_get(r->ht, g->key, g->klen);
        if (!t)
            return CORE_E_NOMEM;
        t->rows += g->rows;
        t->billed_n += g->billed_n;
        t->effective_n += g->effective_n;
        r->total_billed_n += g->billed_n;
        r->total_effective_n += g->effective_n;
    }
    if (result_currency(r, w->currency, w->mixed))
        return CORE_E_NOMEM;
    for (size_t k = 0; k < w->nbad && r->nbad < BAD_MAX; k++) {
        if (!r->bad && !(r->bad = core_calloc(BAD_MAX, sizeof(*r->bad))))
            return CORE_E_NOMEM;
        struct cloud_malformed *m = &r->bad[r->nbad];
        m->file = core_strdup(s->path);
        m->reason = core_strdup(w->bad[k].reason);
        m->line = base + w->bad[k].line;
        r->nbad++;
        if (!m->file || !m->reason)
            return CORE_E_NOMEM;
    }
    return 0;
}

int cloud_scan_group(const char *path, const struct cloud_scan_opts *o, struct cloud_scan_result *r,
                     struct core_err *err)
{
    int rc = 0;
    if (!r->ht && !(r->ht = core_calloc(1, sizeof(*r->ht))))
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    struct cloud_scan *s = cloud_scan_open(path, o, err);
    if (!s)
        return err ? err->code : CORE_E_IO;
    s->by = r->by;
    s->nby = r->nby;
    for (int i = 0; i < s->nw; i++) {
        s->w[i].row = group_row;
        if (!(s->w[i].ht = core_calloc(1, sizeof(*s->w[i].ht)))) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
    }
    if ((rc = start_workers(s, err)))
        goto out;
    for (int i = 0; i < s->nw; i++)
        pthread_join(s->w[i].th, NULL);
    s->running = false;
    int64_t base = s->mapped ? s->data_line : 0;
    for (int i = 0; i < s->nw; i++) {
        const struct worker *w = &s->w[i];
        if (w->rc) {
            rc = w->rc == CORE_E_NOMEM ? core_err_set(err, rc, "out of memory")
                                       : worker_error(s, w, base, err);
            goto out;
        }
        if (result_absorb(r, s, w, base)) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        base += w->lines;
        if (w->extended)
            break;
    }
    if (s->nw > r->threads)
        r->threads = s->nw;
out:
    for (int i = 0; i < s->nw; i++) {
        ght_free(s->w[i].ht);
        s->w[i].ht = NULL;
    }
    cloud_scan_free(s);
    return rc;
}

static bool row_unallocated(const struct cloud_scan_group_row *g)
{
    return strcmp(g->key[0], CLOUD_UNALLOCATED) == 0;
}

static int cmp_group(const void *pa, const void *pb)
{
    const struct cloud_scan_group_row *a = pa, *b = pb;
    bool ua = row_unallocated(a), ub = row_unallocated(b);
    if (ua != ub)
        return ua ? 1 : -1;
    if (a->billed_n != b->billed_n)
        return a->billed_n > b->billed_n ? -1 : 1;
    for (size_t k = 0; k < CLOUD_SCAN_KEYS_MAX && a->key[k]; k++) {
        int c = strcmp(a->key[k], b->key[k]);
        if (c)
            return c;
    }
    return 0;
}

int cloud_scan_result_finish(struct cloud_scan_result *r, struct core_err *err)
{
    size_t n = r->ht ? r->ht->n : 0;
    struct cloud_scan_group_row *items = core_calloc(n ? n : 1, sizeof(*items));
    if (!items)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < CLOUD_SCAN_KEYS_MAX; k++)
            core_free(r->items[i].key[k]);
    core_free(r->items);
    r->items = items;
    r->n = 0;
    for (size_t i = 0; r->ht && i < r->ht->cap; i++) {
        const struct gent *g = &r->ht->e[i];
        if (!g->h)
            continue;
        struct cloud_scan_group_row *it = &items[r->n++];
        const char *p = g->key;
        for (size_t k = 0; k < r->nby; k++) {
            if (!(it->key[k] = core_strdup(p)))
                return core_err_set(err, CORE_E_NOMEM, "out of memory");
            p += strlen(p) + 1;
        }
        it->rows = g->rows;
        it->billed_n = g->billed_n;
        it->effective_n = g->effective_n;
    }
    if (r->n)
        qsort(items, r->n, sizeof(*items), cmp_group);
    return 0;
}
