/* Small text helpers: name checks, suggestions, durations and quantities. */
#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool core_is_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

int core_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 64;
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            int v = prev[j - 1] + cost;
            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            cur[j] = v;
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

const char *core_did_you_mean(const char *word, const char *const *choices)
{
    const char *best = NULL;
    int best_d = 1000;
    size_t wl = strlen(word);
    int limit = wl <= 3 ? 1 : (wl <= 6 ? 2 : 3);
    for (size_t i = 0; choices[i]; i++) {
        int d = core_edit_distance(word, choices[i]);
        if (d < best_d) {
            best_d = d;
            best = choices[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

int core_parse_duration_ms(const char *s, int64_t *out_ms)
{
    if (!s || !*s)
        return CORE_E_INVAL;
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return CORE_E_INVAL;
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0 || v > 1000000000LL)
            return CORE_E_INVAL;
        p = end;
        int64_t mult;
        if (strncmp(p, "ms", 2) == 0) {
            mult = 1;
            p += 2;
        } else if (*p == 's') {
            mult = 1000;
            p++;
        } else if (*p == 'm') {
            mult = 60000;
            p++;
        } else if (*p == 'h') {
            mult = 3600000;
            p++;
        } else if (*p == 'd') {
            mult = 86400000;
            p++;
        } else {
            return CORE_E_INVAL;
        }
        total += (int64_t)v * mult;
        if (total > INT64_C(1) << 50)
            return CORE_E_INVAL;
    }
    *out_ms = total;
    return 0;
}

/* strtod would also take hex, exponents and locale forms: allow only digits and one dot, and
 * require strtod to stop exactly where they end. */
static bool plain_decimal_prefix(const char *s)
{
    bool dot = false, digit = false;
    const char *p = s;
    for (; *p && (isdigit((unsigned char)*p) || *p == '.'); p++) {
        if (*p == '.') {
            if (dot)
                return false;
            dot = true;
        } else {
            digit = true;
        }
    }
    char *end = NULL;
    strtod(s, &end);
    return digit && end == p;
}

int core_parse_bytes(const char *s, int64_t *out)
{
    if (!s || !*s || !isdigit((unsigned char)*s) || !plain_decimal_prefix(s))
        return CORE_E_INVAL;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || !isfinite(v) || v < 0)
        return CORE_E_INVAL;
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"", 1},           {"k", 1e3},          {"K", 1e3},           {"M", 1e6},
        {"G", 1e9},        {"T", 1e12},         {"Ki", 1024.0},       {"Mi", 1048576.0},
        {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double r = v * units[i].mult;
            if (r > 9.0e15)
                return CORE_E_INVAL;
            *out = (int64_t)r;
            return 0;
        }
    }
    return CORE_E_INVAL;
}

int core_parse_millicores(const char *s, int64_t *out)
{
    if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.') || !plain_decimal_prefix(s))
        return CORE_E_INVAL;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || !isfinite(v) || v < 0 || v > 1e6)
        return CORE_E_INVAL;
    if (*end == 0) {
        *out = (int64_t)llround(v * 1000.0);
        return 0;
    }
    if (strcmp(end, "m") == 0 && v == floor(v)) {
        *out = (int64_t)v;
        return 0;
    }
    return CORE_E_INVAL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int core_url_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '+') {
            *w++ = ' ';
        } else if (*r == '%') {
            int hi = hexval(r[1]);
            int lo = hi >= 0 ? hexval(r[2]) : -1;
            if (hi < 0 || lo < 0)
                return CORE_E_INVAL;
            char c = (char)(hi * 16 + lo);
            if (c == 0)
                return CORE_E_INVAL;
            *w++ = c;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    return 0;
}

int core_form_get(const char *form, const char *key, char *out, size_t outsz)
{
    if (!form)
        return CORE_E_NOTFOUND;
    size_t kl = strlen(key);
    const char *p = form;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = len - kl - 1;
            if (vl >= outsz)
                return CORE_E_TOO_BIG;
            memcpy(out, p + kl + 1, vl);
            out[vl] = 0;
            return core_url_decode(out);
        }
        if (len == kl && strncmp(p, key, kl) == 0) {
            if (outsz < 1)
                return CORE_E_TOO_BIG;
            out[0] = 0;
            return 0;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return CORE_E_NOTFOUND;
}

int core_buf_add_urlenc(struct core_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            rc = core_buf_addc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = core_buf_add(b, e, 3);
        }
    }
    return rc;
}
