/* Allocation front-end with failure injection, growable buffers and arenas. */
#include "core/core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint failmalloc_every;
static atomic_uint failmalloc_count;
static atomic_int failmalloc_inited;

void core_failmalloc_set(unsigned every_n)
{
    atomic_store(&failmalloc_inited, 1);
    atomic_store(&failmalloc_every, every_n);
    atomic_store(&failmalloc_count, 0);
}

static bool should_fail(void)
{
    if (!atomic_load(&failmalloc_inited)) {
        const char *e = getenv("CORE_FAILMALLOC");
        atomic_store(&failmalloc_every, e ? (unsigned)strtoul(e, NULL, 10) : 0);
        atomic_store(&failmalloc_inited, 1);
    }
    unsigned every = atomic_load(&failmalloc_every);
    if (every == 0)
        return false;
    return (atomic_fetch_add(&failmalloc_count, 1) + 1) % every == 0;
}

void *core_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *core_calloc(size_t nmemb, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *core_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void core_free(void *p)
{
    free(p);
}

char *core_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = core_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *core_strdup(const char *s)
{
    return s ? core_strndup(s, strlen(s)) : NULL;
}

/* ---- buffers ---- */

static char empty_buf[1];

void core_buf_init(struct core_buf *b, size_t max)
{
    b->data = empty_buf;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void core_buf_release(struct core_buf *b)
{
    if (b->cap)
        core_free(b->data);
    core_buf_init(b, b->max);
}

void core_buf_clear(struct core_buf *b)
{
    b->len = 0;
    b->data[0] = 0;
}

static int buf_grow(struct core_buf *b, size_t extra)
{
    if (b->max && (b->len + extra > b->max || b->len + extra < b->len))
        return CORE_E_TOO_BIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *d = core_realloc(b->cap ? b->data : NULL, cap);
    if (!d)
        return CORE_E_NOMEM;
    if (!b->cap)
        d[0] = 0;
    b->data = d;
    b->cap = cap;
    return 0;
}

int core_buf_reserve(struct core_buf *b, size_t n)
{
    return buf_grow(b, n);
}

int core_buf_add(struct core_buf *b, const void *data, size_t n)
{
    int rc = buf_grow(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int core_buf_adds(struct core_buf *b, const char *s)
{
    return core_buf_add(b, s, strlen(s));
}

int core_buf_addc(struct core_buf *b, char c)
{
    return core_buf_add(b, &c, 1);
}

int core_buf_addf(struct core_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return CORE_E_INVAL;
    if ((size_t)n < sizeof(small))
        return core_buf_add(b, small, (size_t)n);
    int rc = buf_grow(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int core_buf_add_html(struct core_buf *b, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        switch (*s) {
        case '&': rc = core_buf_adds(b, "&amp;"); break;
        case '<': rc = core_buf_adds(b, "&lt;"); break;
        case '>': rc = core_buf_adds(b, "&gt;"); break;
        case '"': rc = core_buf_adds(b, "&quot;"); break;
        case '\'': rc = core_buf_adds(b, "&#39;"); break;
        default: rc = core_buf_addc(b, *s);
        }
    }
    return rc;
}

size_t core_utf8_decode(const char *str, size_t n, unsigned *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        min = 0x80;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        min = 0x800;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned cp;
    return core_utf8_decode((const char *)s, n, &cp);
}

bool core_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t l = utf8_seq(p + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

int core_buf_add_json_str(struct core_buf *b, const char *s)
{
    int rc = core_buf_addc(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t i = 0;
    while (!rc && i < n) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = core_buf_add(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': rc = core_buf_adds(b, "\\n"); break;
            case '\r': rc = core_buf_adds(b, "\\r"); break;
            case '\t': rc = core_buf_adds(b, "\\t"); break;
            default: rc = core_buf_addf(b, "\\u%04x", c);
            }
            i++;
        } else if (c < 0x80) {
            rc = core_buf_addc(b, (char)c);
            i++;
        } else {
            size_t l = utf8_seq(p + i, n - i);
            if (l) {
                rc = core_buf_add(b, p + i, l);
                i += l;
            } else {
                rc = core_buf_adds(b, "\\ufffd");
                i++;
            }
        }
    }
    return rc ? rc : core_buf_addc(b, '"');
}

char *core_buf_detach(struct core_buf *b, size_t *len)
{
    char *d;
    if (len)
        *len = b->len;
    if (b->cap) {
        d = b->data;
    } else {
        d = core_strdup("");
    }
    core_buf_init(b, b->max);
    return d;
}

/* ---- arenas ---- */

struct core_arena_chunk {
    struct core_arena_chunk *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char mem[];
};

void core_arena_init(struct core_arena *a, size_t cap)
{
    a->head = NULL;
    a->used = 0;
    a->cap = cap;
}

void core_arena_release(struct core_arena *a)
{
    struct core_arena_chunk *c = a->head;
    while (c) {
        struct core_arena_chunk *next = c->next;
        core_free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

void *core_arena_alloc(struct core_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (a->cap && (a->used + n > a->cap || a->used + n < a->used))
        return NULL;
    struct core_arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t sz = n > 8192 ? n : 8192;
        c = core_malloc(sizeof(*c) + sz);
        if (!c)
            return NULL;
        c->size = sz;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->mem + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *core_arena_strdup(struct core_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *d = core_arena_alloc(a, n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

char *core_arena_sprintf(struct core_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *d = core_arena_alloc(a, (size_t)n + 1);
    if (!d)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}
