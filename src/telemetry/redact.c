/* Redaction of log records: built-in detectors written by hand (one pass over the text, no
 * regex engine) for e-mail addresses, payment card numbers that pass the Luhn check, bearer
 * tokens, Authorization values and password/secret assignments; then the configured PCRE2
 * patterns, each match-limited (match, depth and heap limits) so that a pattern that would
 * backtrack catastrophically costs a bounded amount of work per string.
 *
 * A string whose pattern match hits a limit is replaced as a whole (fail closed: a redaction
 * stage must not let text through because it was expensive to check). New strings go to the
 * caller's arena; if the arena is exhausted a redacted string becomes the bare replacement
 * text, never the original.
 *
 * A redactor is immutable once built; the only shared mutable state is a small pool of PCRE2
 * match-data blocks behind a mutex, so one redactor serves any number of threads. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <string.h>

#include "telemetry/telemetry_parse.h"

#define MATCH_LIMIT 100000u
#define DEPTH_LIMIT 1000u
#define HEAP_LIMIT_KIB 4096u
#define POOL_MAX 16

struct tel_redactor {
    bool emails, cards, bearer;
    pcre2_code **codes;
    size_t ncodes;
    pcre2_match_context *mctx;
    char *replacement;
    size_t replen;
    pthread_mutex_t lock;
    pcre2_match_data *pool[POOL_MAX];
    size_t npool;
};

static const char R_EMAIL[] = "[REDACTED:email]";
static const char R_CARD[] = "[REDACTED:card]";
static const char R_TOKEN[] = "[REDACTED:token]";
static const char R_SECRET[] = "[REDACTED:secret]";

bool tel_luhn_ok(const char *s, size_t len)
{
    int sum = 0, nd = 0;
    for (size_t i = len; i-- > 0;) {
        char ch = s[i];
        if (ch == ' ' || ch == '-')
            continue;
        if (ch < '0' || ch > '9')
            return false;
        int d = ch - '0';
        if (nd++ & 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return nd >= 2 && sum % 10 == 0;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

void tel_redactor_free(struct tel_redactor *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ncodes; i++)
        pcre2_code_free(r->codes[i]);
    core_free(r->codes);
    pcre2_match_context_free(r->mctx);
    for (size_t i = 0; i < r->npool; i++)
        pcre2_match_data_free(r->pool[i]);
    pthread_mutex_destroy(&r->lock);
    core_free(r->replacement);
    core_free(r);
}

struct tel_redactor *tel_redactor_new(const struct tel_redact_config *cfg, struct core_err *err)
{
    struct tel_redactor *r = core_calloc(1, sizeof(*r));
    if (!r) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    r->emails = cfg ? cfg->emails : true;
    r->cards = cfg ? cfg->cards : true;
    r->bearer = cfg ? cfg->bearer : true;
    const char *rep = cfg && cfg->replacement ? cfg->replacement : "[REDACTED]";
    r->replacement = core_strdup(rep);
    if (!r->replacement)
        goto nomem;
    r->replen = strlen(rep);
    size_t np = cfg && cfg->patterns ? cfg->npatterns : 0;
    if (np) {
        r->codes = core_calloc(np, sizeof(*r->codes));
        r->mctx = pcre2_match_context_create(NULL);
        if (!r->codes || !r->mctx)
            goto nomem;
        pcre2_set_match_limit(r->mctx, MATCH_LIMIT);
        pcre2_set_depth_limit(r->mctx, DEPTH_LIMIT);
        pcre2_set_heap_limit(r->mctx, HEAP_LIMIT_KIB);
        for (size_t i = 0; i < np; i++) {
            int ec;
            PCRE2_SIZE off;
            const char *pat = cfg->patterns[i] ? cfg->patterns[i] : "";
            pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &ec, &off,
                                             NULL);
            if (!code) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(ec, msg, sizeof(msg));
                core_err_set(err, CORE_E_INVAL, "redact pattern %zu '%s' at offset %zu: %s", i,
                             pat, (size_t)off, (const char *)msg);
                tel_redactor_free(r);
                return NULL;
            }
            /* JIT when the platform has it; the match limit applies to JIT too. */
            (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
            r->codes[r->ncodes++] = code;
        }
    }
    return r;
nomem:
    tel_redactor_free(r);
    core_err_set(err, CORE_E_NOMEM, "out of memory");
    return NULL;
}

static pcre2_match_data *md_get(struct tel_redactor *r)
{
    pcre2_match_data *md = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->npool)
        md = r->pool[--r->npool];
    pthread_mutex_unlock(&r->lock);
    return md ? md : pcre2_match_data_create(1, NULL);
}

static void md_put(struct tel_redactor *r, pcre2_match_data *md)
{
    if (!md)
        return;
    pthread_mutex_lock(&r->lock);
    if (r->npool < POOL_MAX) {
        r->pool[r->npool++] = md;
        md = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    pcre2_match_data_free(md);
}

/* ---- spans and rebuilding ------------------------------------------------------------------ */

struct span {
    size_t start, end;
    const char *rep;
    size_t replen;
};

struct spans {
    struct span local[16];
    struct span *v;
    size_t n, cap;
    struct core_arena *arena;
    bool lost; /* the arena could not hold more spans */
};

static void spans_init(struct spans *s, struct core_arena *a)
{
    s->v = s->local;
    s->n = 0;
    s->cap = 16;
    s->arena = a;
    s->lost = false;
}

static void span_add(struct spans *s, size_t start, size_t end, const char *rep, size_t replen)
{
    if (s->n == s->cap) {
        struct span *nv = core_arena_alloc(s->arena, 2 * s->cap * sizeof(*nv));
        if (!nv) {
            s->lost = true;
            return;
        }
        memcpy(nv, s->v, s->n * sizeof(*nv));
        s->v = nv;
        s->cap *= 2;
    }
    s->v[s->n++] = (struct span){start, end, rep, replen};
}

/* The text with the (ordered, disjoint) spans replaced, in the arena. */
static const char *rebuild(const struct spans *s, const char *t, size_t n, uint32_t *outn,
                           const char *fallback)
{
    size_t total = n;
    for (size_t i = 0; i < s->n; i++)
        total = total - (s->v[i].end - s->v[i].start) + s->v[i].replen;
    char *d = s->lost ? NULL : core_arena_alloc(s->arena, total + 1);
    if (!d) {
        *outn = (uint32_t)strlen(fallback);
        return fallback;
    }
    size_t o = 0, at = 0;
    for (size_t i = 0; i < s->n; i++) {
        memcpy(d + o, t + at, s->v[i].start - at);
        o += s->v[i].start - at;
        memcpy(d + o, s->v[i].rep, s->v[i].replen);
        o += s->v[i].replen;
        at = s->v[i].end;
    }
    memcpy(d + o, t + at, n - at);
    o += n - at;
    d[o] = 0;
    *outn = (uint32_t)o;
    return d;
}

/* ---- built-in detectors -------------------------------------------------------------------- */

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool email_local(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool email_domain(char c)
{
    return is_alnum(c) || c == '.' || c == '-';
}

/* An address around the '@' at t[at]; returns its end (0 if none) and *start. */
static size_t email_at(const char *t, size_t n, size_t at, size_t floor, size_t *start)
{
    size_t s = at;
    while (s > floor && email_local(t[s - 1]))
        s--;
    while (s < at && t[s] == '.')
        s++;
    if (s == at)
        return 0;
    size_t e = at + 1, last_dot = 0;
    while (e < n && email_domain(t[e])) {
        if (t[e] == '.')
            last_dot = e;
        e++;
    }
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-'))
        e--;
    if (last_dot >= e - 1 || last_dot <= at + 1)
        return 0;
    /* top-level domain: 2+ letters */
    size_t tld = 0;
    for (size_t k = last_dot + 1; k < e; k++) {
        if (!((t[k] >= 'a' && t[k] <= 'z') || (t[k] >= 'A' && t[k] <= 'Z')))
            return 0;
        tld++;
    }
    if (tld < 2)
        return 0;
    *start = s;
    return e;
}

/* A card number starting at t[i] (a digit not preceded by a word char, '.', ':' or '/'):
 * 13-19 digits, either contiguous or in groups of 4 (the last 1-4) or 4-6-5 / 4-6-4,
 * separated by single spaces or dashes; first digit 2-6 (issuer ranges: no network issues
 * 0, 1, 7, 8 or 9, which also keeps epoch times out); Luhn-valid. returns: its end or 0. Sets
 * *run_end to the end of the digit run so the caller skips it either way. */
static size_t card_at(const char *t, size_t n, size_t i, size_t *run_end)
{
    size_t groups[20], ng = 0, nd = 0, j = i, glen = 0;
    char sep = 0;
    bool ok = true;
    while (j < n) {
        if (is_digit(t[j])) {
            glen++;
            nd++;
            j++;
            continue;
        }
        if ((t[j] == ' ' || t[j] == '-') && j + 1 < n && is_digit(t[j + 1]) && glen > 0) {
            if (sep && t[j] != sep)
                ok = false;
            sep = t[j];
            if (ng < 20)
                groups[ng++] = glen;
            else
                ok = false;
            glen = 0;
            j++;
            continue;
        }
        break;
    }
    if (ng < 20)
        groups[ng++] = glen;
    *run_end = j;
    if (!ok || nd < 13 || nd > 19 || t[i] < '2' || t[i] > '6')
        return 0;
    /* followed by a word char, or a '.'/',' and a digit (a decimal, an IP): not a card */
    if (j < n && (is_alnum(t[j]) || t[j] == '_' || t[j] == '@'))
        return 0;
    if (j + 1 < n && (t[j] == '.' || t[j] == ',' || t[j] == ':') && is_digit(t[j + 1]))
        return 0;
    if (ng > 1) {
        bool fours = true;
        for (size_t g = 0; g + 1 < ng; g++)
            fours &= groups[g] == 4;
        fours &= groups[ng - 1] >= 1 && groups[ng - 1] <= 4;
        bool amex = ng == 3 && groups[0] == 4 && groups[1] == 6 &&
                    (groups[2] == 5 || groups[2] == 4);
        if (!fours && !amex)
            return 0;
    }
    return tel_luhn_ok(t + i, j - i) ? j : 0;
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* ASCII case-insensitive match of a[0..n) against lit (lowercase, no NUL): what strncasecmp
 * does in the C locale, without a call per attempt. */
static inline bool ieq(const char *a, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lit[i])
            return false;
    return true;
}

static bool token_char(char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
           c == '=';
}

/* "Bearer <token>" at t[i] (case-insensitive, word start). returns the token end, 0 if none. */
static size_t bearer_at(const char *t, size_t n, size_t i, size_t *ts)
{
    if (n - i < 7 || lower(t[i]) != 'b' || !ieq(t + i, "bearer", 6) || (i && is_alnum(t[i - 1])))
        return 0;
    size_t j = i + 6;
    if (t[j] != ' ' && t[j] != '\t')
        return 0;
    while (j < n && (t[j] == ' ' || t[j] == '\t'))
        j++;
    size_t s = j;
    while (j < n && token_char(t[j]))
        j++;
    if (j - s < 8)
        return 0;
    *ts = s;
    return j;
}

/* A value after a key word: `key: v`, `key=v`, `"key":"v"`, `key = "v"`. With scheme, a
 * leading auth scheme word ("Basic", "Bearer" ...) is kept. returns: the value end, 0 if none. */
static size_t value_after(const char *t, size_t n, size_t j, bool scheme, size_t *vs)
{
    if (j < n && (t[j] == '"' || t[j] == '\''))
        j++;
    while (j < n && t[j] == ' ')
        j++;
    if (j >= n || (t[j] != ':' && t[j] != '='))
        return 0;
    j++;
    while (j < n && (t[j] == ' ' || t[j] == '"' || t[j] == '\''))
        j++;
    if (scheme) {
        size_t w = j;
        while (w < n && ((t[w] >= 'a' && t[w] <= 'z') || (t[w] >= 'A' && t[w] <= 'Z')))
            w++;
        if (w > j && w < n && t[w] == ' ' && w - j <= 16) {
            j = w;
            while (j < n && t[j] == ' ')
                j++;
        }
    }
    size_t s = j;
    while (j < n && t[j] != ' ' && t[j] != '"' && t[j] != '\'' && t[j] != ',' && t[j] != ';' &&
           t[j] != '&' && t[j] != '}' && t[j] != '\t')
        j++;
    if (j == s)
        return 0;
    *vs = s;
    return j;
}

struct keyword {
    const char *word;
    size_t len;
    bool scheme;
    const char *rep;
};

static const struct keyword secret_words[] = {
    {"authorization", 13, true, R_TOKEN}, {"password", 8, false, R_SECRET},
    {"passwd", 6, false, R_SECRET},       {"secret", 6, false, R_SECRET},
    {"api_key", 7, false, R_SECRET},      {"apikey", 6, false, R_SECRET},
};

/* Trigger bytes: '@', digits, and first letters of the words above. */
static const uint8_t trig[256] = {
    ['@'] = 1, ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2,
    ['7'] = 2, ['8'] = 2, ['9'] = 2, ['b'] = 3, ['B'] = 3, ['a'] = 3, ['A'] = 3, ['p'] = 3,
    ['P'] = 3, ['s'] = 3, ['S'] = 3,
};

static void builtins(const struct tel_redactor *r, const char *t, size_t n, struct spans *sp)
{
    size_t floor = 0; /* end of the last span: matches never overlap */
    size_t i = 0;
    while (i < n) {
        while (i < n && !trig[(uint8_t)t[i]])
            i++;
        if (i >= n)
            break;
        char ch = t[i];
        size_t s, e;
        if (ch == '@') {
            if (r->emails && (e = email_at(t, n, i, floor, &s))) {
                span_add(sp, s, e, R_EMAIL, sizeof(R_EMAIL) - 1);
                i = floor = e;
                continue;
            }
        } else if (is_digit(ch)) {
            size_t run_end;
            char prev = i ? t[i - 1] : ' ';
            if (is_digit(prev) || is_alnum(prev) || prev == '.' || prev == ':' || prev == '/' ||
                prev == '_' || prev == '-') {
                i++;
                continue;
            }
            e = r->cards ? card_at(t, n, i, &run_end) : 0;
            if (e) {
                span_add(sp, i, e, R_CARD, sizeof(R_CARD) - 1);
                i = floor = e;
                continue;
            }
            /* Skip the digits only: an e-mail may still start inside ("12@x.io"). */
            while (i < n && is_digit(t[i]))
                i++;
            continue;
        } else if (r->bearer && (!i || !is_alnum(t[i - 1]))) {
            if ((e = bearer_at(t, n, i, &s))) {
                span_add(sp, s, e, R_TOKEN, sizeof(R_TOKEN) - 1);
                i = floor = e;
                continue;
            }
            for (size_t k = 0; k < sizeof(secret_words) / sizeof(secret_words[0]); k++) {
                const struct keyword *kw = &secret_words[k];
                if (lower(ch) == kw->word[0] && n - i > kw->len && ieq(t + i, kw->word, kw->len) &&
                    (e = value_after(t, n, i + kw->len, kw->scheme, &s))) {
                    /* an already redacted bearer value stays as the bearer rule wrote it */
                    span_add(sp, s, e, kw->rep, strlen(kw->rep));
                    i = floor = e;
                    goto next;
                }
            }
        }
        i++;
    next:;
    }
}

/* Keys whose whole string value is a secret. */
static const char *secret_key(const char *k, size_t n)
{
    static const struct {
        const char *w;
        size_t l;
        const char *rep;
    } words[] = {{"authorization", 13, R_TOKEN}, {"token", 5, R_TOKEN},  {"password", 8, R_SECRET},
                 {"passwd", 6, R_SECRET},        {"secret", 6, R_SECRET}, {"api_key", 7, R_SECRET},
                 {"apikey", 6, R_SECRET},        {"cookie", 6, R_SECRET}};
    /* Most keys hold none of the words' first letters (a t p s c) in a place where the
     * shortest word (5 bytes) still fits: one pass over the key rules them out. */
    bool maybe = false;
    for (size_t i = 0; i + 5 <= n && !maybe; i++) {
        char c = lower(k[i]);
        maybe = c == 'a' || c == 't' || c == 'p' || c == 's' || c == 'c';
    }
    if (!maybe)
        return NULL;
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
        for (size_t i = 0; i + words[w].l <= n; i++)
            if (lower(k[i]) == words[w].w[0] && ieq(k + i, words[w].w, words[w].l))
                return words[w].rep;
    return NULL;
}

/* ---- configured patterns ------------------------------------------------------------------- */

/* returns: replacements made (the whole string on a limit), -1 when nothing changed. */
static int patterns(const struct tel_redactor *r, pcre2_match_data *md, const char **text,
                    uint32_t *len, struct core_arena *arena)
{
    int count = 0;
    for (size_t p = 0; p < r->ncodes; p++) {
        const char *t = *text;
        size_t n = *len, off = 0;
        struct spans sp;
        spans_init(&sp, arena);
        while (off <= n) {
            int rc = pcre2_match(r->codes[p], (PCRE2_SPTR)t, n, off, 0, md, r->mctx);
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0) {
                /* match/depth/heap limit or another run-time error: fail closed */
                *text = r->replacement;
                *len = (uint32_t)r->replen;
                return count + 1;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t s = ov[0], e = ov[1];
            if (e < s || e > n) /* \K can make a match end before it starts */
                break;
            if (e > s) {
                span_add(&sp, s, e, r->replacement, r->replen);
                off = e;
            } else {
                /* an empty match: step over one character */
                unsigned cp;
                size_t l = off < n ? core_utf8_decode(t + off, n - off, &cp) : 1;
                off += l ? l : 1;
            }
        }
        if (sp.n) {
            count += (int)sp.n;
            *text = rebuild(&sp, t, n, len, r->replacement);
        }
    }
    return count ? count : -1;
}

static int redact_text(const struct tel_redactor *r, pcre2_match_data *md, const char **text,
                       uint32_t *len, struct core_arena *arena)
{
    int count = 0;
    if (!*text || !*len)
        return 0;
    if (r->emails || r->cards || r->bearer) {
        struct spans sp;
        spans_init(&sp, arena);
        builtins(r, *text, *len, &sp);
        if (sp.n) {
            count += (int)sp.n;
            *text = rebuild(&sp, *text, *len, len, r->replacement);
        }
    }
    if (r->ncodes && md) {
        int c = patterns(r, md, text, len, arena);
        if (c > 0)
            count += c;
    }
    return count;
}

int tel_redact(const struct tel_redactor *r, struct tel_record *rec, struct core_arena *arena)
{
    if (!r || !rec)
        return 0;
    /* The pool is the one mutable part of a shared redactor. */
    struct tel_redactor *mr = (struct tel_redactor *)r;
    pcre2_match_data *md = r->ncodes ? md_get(mr) : NULL;
    int count = 0;
    if (r->ncodes && !md) {
        /* no memory for matching: fail closed on everything a pattern could have matched */
        if (rec->body_len) {
            rec->body = r->replacement;
            rec->body_len = (uint32_t)r->replen;
            rec->body_plain = false;
            count++;
        }
    } else {
        const char *was = rec->body;
        uint32_t was_len = rec->body_len;
        count += redact_text(r, md, &rec->body, &rec->body_len, arena);
        if (rec->body != was || rec->body_len != was_len)
            rec->body_plain = false; /* the new text is not known to be plain */
    }
    for (uint32_t i = 0; i < rec->nattrs; i++) {
        struct tel_kv *kv = &rec->attrs[i];
        if (kv->type != TEL_V_STR || kv->vlen == 0)
            continue;
        const char *rep;
        if (r->bearer && (rep = secret_key(kv->key, kv->klen)) &&
            !(kv->vlen == strlen(rep) && memcmp(kv->val, rep, kv->vlen) == 0)) {
            kv->val = rep;
            kv->vlen = (uint32_t)strlen(rep);
            kv->plain &= (uint8_t)~TEL_PLAIN_VAL;
            count++;
            continue;
        }
        if (r->ncodes && !md) {
            kv->val = r->replacement;
            kv->vlen = (uint32_t)r->replen;
            kv->plain &= (uint8_t)~TEL_PLAIN_VAL;
            count++;
            continue;
        }
        const char *was = kv->val;
        uint32_t was_len = kv->vlen;
        count += redact_text(r, md, &kv->val, &kv->vlen, arena);
        if (kv->val != was || kv->vlen != was_len)
            kv->plain &= (uint8_t)~TEL_PLAIN_VAL;
    }
    if (md)
        md_put(mr, md);
    if (count)
        rec->redacted = true;
    return count;
}
