/* Syslog messages onto the log standard: RFC 5424 ("<PRI>1 TS HOST APP PROCID MSGID SD MSG")
 * and RFC 3164 / BSD ("<PRI>Mmm dd hh:mm:ss host tag[pid]: msg"), the latter also without PRI
 * as rsyslog writes /var/log/syslog and /var/log/messages.
 *
 * Severity comes from PRI (OpenTelemetry's syslog mapping), the facility becomes the
 * "syslog.facility" attribute, structured data becomes "sd.<id>.<param>" attributes, and a
 * message that is itself a JSON object is parsed like any JSON line (its own fields win).
 * BSD timestamps carry no year or zone: they are read as UTC in the current year (the previous
 * year when that would put them more than a month in the future, for December lines read in
 * January). */
#include "telemetry/telemetry_parse.h"

#include <string.h>

static const char *const facilities[24] = {
    "kern",   "user",   "mail",     "daemon",  "auth",    "syslog", "lpr",   "news",
    "uucp",   "cron",   "authpriv", "ftp",     "ntp",     "audit",  "alert", "clock",
    "local0", "local1", "local2",   "local3",  "local4",  "local5", "local6", "local7",
};

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "<PRI>": returns bytes used (0 if none) and the value (0..191). */
static size_t parse_pri(const char *s, size_t n, unsigned *pri)
{
    if (n < 3 || s[0] != '<')
        return 0;
    unsigned v = 0;
    size_t i = 1;
    while (i < n && i <= 3 && is_digit(s[i]))
        v = v * 10 + (unsigned)(s[i++] - '0');
    if (i == 1 || i >= n || s[i] != '>' || v > 191 || (i > 2 && s[1] == '0'))
        return 0;
    *pri = v;
    return i + 1;
}

/* A token up to the next space. */
static size_t token(const char *s, size_t n, size_t i, const char **t, size_t *tl)
{
    size_t j = i;
    while (j < n && s[j] != ' ')
        j++;
    *t = s + i;
    *tl = j - i;
    return j;
}

static void add_str(struct tel_pctx *c, const char *k, const char *v, size_t vl)
{
    uint32_t n;
    const char *cv = tel_utf8_clean(c->arena, v, vl, &n);
    tel_pctx_add(c, k, (uint32_t)strlen(k), cv, n, TEL_V_STR);
}

static void set_app(struct tel_pctx *c, const struct tel_origin *origin, const char *app,
                    size_t al)
{
    if (!al)
        return;
    if (!origin || !origin->service || !origin->service[0]) {
        uint32_t n;
        const char *cv = tel_utf8_clean(c->arena, app, al, &n);
        char *d = tel_arena_strndup(c->arena, cv, n);
        if (d && !memchr(cv, 0, n)) {
            c->rec->res.service = d;
            return;
        }
    }
    add_str(c, "syslog.appname", app, al);
}

static void set_host(struct tel_pctx *c, const char *h, size_t hl)
{
    if (!hl || memchr(h, 0, hl))
        return;
    uint32_t n;
    const char *cv = tel_utf8_clean(c->arena, h, hl, &n);
    char *d = tel_arena_strndup(c->arena, cv, n);
    if (d)
        c->rec->res.host = d;
}

/* The MSG part: JSON when it is one, else plain text. */
static void set_msg(struct tel_pctx *c, const char *s, size_t n, bool detect_level)
{
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == 0))
        n--;
    if (n && s[0] == '{' && tel_pctx_json(c, s, n))
        return;
    tel_pctx_plain(c, s, n, detect_level);
}

/* ---- RFC 5424 ------------------------------------------------------------------------------- */

/* One SD-ELEMENT at s[i] == '['; returns the index after it or 0 when malformed. */
static size_t sd_element(struct tel_pctx *c, const char *s, size_t n, size_t i)
{
    size_t j = ++i;
    while (j < n && s[j] != ' ' && s[j] != ']' && s[j] != '=' && s[j] != '"')
        j++;
    if (j == i || j >= n)
        return 0;
    const char *id = s + i;
    size_t idl = j - i;
    for (;;) {
        if (s[j] == ']')
            return j + 1;
        if (s[j] != ' ')
            return 0;
        j++;
        size_t ps = j;
        while (j < n && s[j] != '=' && s[j] != ' ' && s[j] != ']' && s[j] != '"')
            j++;
        if (j == ps || j + 1 >= n || s[j] != '=' || s[j + 1] != '"')
            return 0;
        const char *pn = s + ps;
        size_t pl = j - ps;
        j += 2;
        size_t vs = j;
        bool esc = false;
        while (j < n && s[j] != '"') {
            if (s[j] == '\\' && j + 1 < n) {
                esc = true;
                j++;
            }
            j++;
        }
        if (j >= n)
            return 0;
        size_t vl = j - vs;
        j++;
        if (j >= n)
            return 0;
        /* key: "sd.<id>.<param>" */
        char *key = core_arena_alloc(c->arena, 4 + idl + pl + 1);
        if (!key)
            continue;
        memcpy(key, "sd.", 3);
        memcpy(key + 3, id, idl);
        key[3 + idl] = '.';
        memcpy(key + 4 + idl, pn, pl);
        uint32_t kl;
        const char *ck = tel_utf8_clean(c->arena, key, 4 + idl + pl, &kl);
        const char *v = s + vs;
        if (esc) {
            /* RFC 5424 6.3.3: only \" \\ and \] are escapes; other backslashes are kept. */
            char *d = core_arena_alloc(c->arena, vl + 1);
            if (!d)
                continue;
            size_t o = 0;
            for (size_t k = 0; k < vl; k++) {
                if (v[k] == '\\' && k + 1 < vl && (v[k + 1] == '"' || v[k + 1] == '\\' ||
                                                   v[k + 1] == ']'))
                    k++;
                d[o++] = v[k];
            }
            v = d;
            vl = o;
        }
        uint32_t cl;
        const char *cv = tel_utf8_clean(c->arena, v, vl, &cl);
        tel_pctx_add(c, ck, kl, cv, cl, TEL_V_STR);
    }
}

static bool parse_5424(struct tel_pctx *c, const struct tel_origin *origin, const char *s,
                       size_t n, size_t i)
{
    /* VERSION SP */
    if (i + 1 >= n || s[i] != '1' || s[i + 1] != ' ')
        return false;
    i += 2;
    const char *f[5];
    size_t fl[5];
    for (int k = 0; k < 5; k++) {
        i = token(s, n, i, &f[k], &fl[k]);
        if (fl[k] == 0 || i >= n)
            return false;
        i++;
    }
    int64_t ns;
    size_t used;
    if (!(fl[0] == 1 && f[0][0] == '-')) {
        if (!tel_time_rfc3339(f[0], fl[0], &ns, &used) || used != fl[0])
            return false;
        c->rec->time_ns = ns;
    }
    if (!(fl[1] == 1 && f[1][0] == '-'))
        set_host(c, f[1], fl[1]);
    if (!(fl[2] == 1 && f[2][0] == '-'))
        set_app(c, origin, f[2], fl[2]);
    if (!(fl[3] == 1 && f[3][0] == '-'))
        add_str(c, "syslog.procid", f[3], fl[3]);
    if (!(fl[4] == 1 && f[4][0] == '-'))
        add_str(c, "syslog.msgid", f[4], fl[4]);
    /* STRUCTURED-DATA (required: "-" when there is none) */
    if (i >= n)
        return false;
    if (s[i] == '-') {
        i++;
    } else if (s[i] == '[') {
        while (i < n && s[i] == '[') {
            size_t j = sd_element(c, s, n, i);
            if (!j)
                return false;
            i = j;
        }
    } else {
        return false;
    }
    if (i < n && s[i] != ' ')
        return false;
    if (i < n)
        i++;
    if (n - i >= 3 && memcmp(s + i, "\xEF\xBB\xBF", 3) == 0)
        i += 3;
    set_msg(c, s + i, n - i, false);
    return true;
}

/* ---- RFC 3164 ------------------------------------------------------------------------------- */

static int month_of(const char *s)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int m = 0; m < 12; m++)
        if (memcmp(s, names + 3 * m, 3) == 0)
            return m + 1;
    return 0;
}

/* "Mmm dd hh:mm:ss" (day space-padded or zero-padded). */
static bool bsd_time(const char *s, size_t n, int64_t now_ns, int64_t *ns)
{
    if (n < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':')
        return false;
    int mon = month_of(s);
    if (!mon)
        return false;
    int d = 0;
    if (s[4] == ' ' && is_digit(s[5]))
        d = s[5] - '0';
    else if (is_digit(s[4]) && is_digit(s[5]))
        d = (s[4] - '0') * 10 + (s[5] - '0');
    else
        return false;
    for (int k = 7; k < 15; k++)
        if (k != 9 && k != 12 && !is_digit(s[k]))
            return false;
    int h = (s[7] - '0') * 10 + (s[8] - '0'), mi = (s[10] - '0') * 10 + (s[11] - '0'),
        se = (s[13] - '0') * 10 + (s[14] - '0');
    if (d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return false;
    /* The current year from now (days -> civil year, coarse: 365.2425 days). */
    int64_t days_now = now_ns / 86400000000000LL;
    int64_t year = 1970 + (days_now * 400) / 146097;
    while (tel_days_from_civil(year + 1, 1, 1) <= days_now)
        year++;
    while (tel_days_from_civil(year, 1, 1) > days_now)
        year--;
    int64_t t = (tel_days_from_civil(year, (unsigned)mon, (unsigned)d) * 86400 + h * 3600 +
                 mi * 60 + se) * 1000000000LL;
    if (t > now_ns + 31LL * 86400 * 1000000000LL)
        t = (tel_days_from_civil(year - 1, (unsigned)mon, (unsigned)d) * 86400 + h * 3600 +
             mi * 60 + se) * 1000000000LL;
    *ns = t;
    return true;
}

static bool tag_char(char ch)
{
    return ch > ' ' && ch != '[' && ch != ':' && ch != 0x7f;
}

static bool parse_3164(struct tel_pctx *c, const struct tel_origin *origin, const char *s,
                       size_t n, size_t i, bool have_pri)
{
    int64_t ns;
    size_t used;
    if (bsd_time(s + i, n - i, c->rec->observed_ns, &ns)) {
        i += 15;
    } else if (n - i >= 19 && is_digit(s[i]) && tel_time_rfc3339(s + i, n - i, &ns, &used) &&
               i + used < n && s[i + used] == ' ') {
        i += used; /* rsyslog's high-precision file format */
    } else if (have_pri) {
        /* "<13>text": a PRI and no header (RFC 3164 4.3.3) */
        set_msg(c, s + i, n - i, false);
        return true;
    } else {
        return false;
    }
    if (i >= n || s[i] != ' ')
        return false;
    c->rec->time_ns = ns;
    i++;
    const char *h;
    size_t hl;
    i = token(s, n, i, &h, &hl);
    if (hl == 0 || i >= n)
        return false;
    set_host(c, h, hl);
    while (i < n && s[i] == ' ')
        i++;
    /* TAG[pid]: — lenient: a tag may be followed by a space ("syslogd 1.4.1: restart."). */
    size_t ts = i;
    while (i < n && i - ts < 64 && tag_char(s[i]))
        i++;
    if (i > ts && (i == n || s[i] == '[' || s[i] == ':' || s[i] == ' ')) {
        set_app(c, origin, s + ts, i - ts);
        if (i < n && s[i] == '[') {
            const char *rb = memchr(s + i, ']', n - i < 32 ? n - i : 32);
            if (rb) {
                add_str(c, "syslog.procid", s + i + 1, (size_t)(rb - s) - i - 1);
                i = (size_t)(rb - s) + 1;
            }
        }
        if (i < n && s[i] == ':')
            i++;
        if (i < n && s[i] == ' ')
            i++;
    } else {
        i = ts;
    }
    set_msg(c, s + i, n - i, !have_pri);
    return true;
}

bool tel_parse_syslog(const char *msg, size_t len, const struct tel_origin *origin,
                      struct core_arena *arena, struct tel_record *rec)
{
    struct tel_pctx c;
    tel_pctx_init(&c, origin, arena, rec);
    if (!msg)
        len = 0;
    if (len > UINT32_MAX)
        len = UINT32_MAX;
    unsigned pri = 0;
    size_t i = parse_pri(msg, len, &pri);
    bool ok;
    if (i) {
        rec->severity = tel_sev_from_syslog(pri & 7);
        tel_pctx_add(&c, "syslog.facility", sizeof("syslog.facility") - 1, facilities[pri >> 3],
                     (uint32_t)strlen(facilities[pri >> 3]), TEL_V_STR);
        ok = parse_5424(&c, origin, msg, len, i);
        if (ok) {
            rec->format = TEL_FMT_SYSLOG5424;
        } else {
            /* Start again: 5424 may have added fields before it gave up. */
            tel_pctx_init(&c, origin, arena, rec);
            rec->severity = tel_sev_from_syslog(pri & 7);
            tel_pctx_add(&c, "syslog.facility", sizeof("syslog.facility") - 1,
                         facilities[pri >> 3], (uint32_t)strlen(facilities[pri >> 3]),
                         TEL_V_STR);
            ok = parse_3164(&c, origin, msg, len, i, true);
            rec->format = TEL_FMT_SYSLOG3164;
        }
    } else {
        ok = len && parse_3164(&c, origin, msg, len, 0, false);
        rec->format = TEL_FMT_SYSLOG3164;
    }
    if (!ok) {
        tel_parse_line(msg, len, origin, arena, rec);
        return false;
    }
    tel_pctx_finish(&c);
    return true;
}
