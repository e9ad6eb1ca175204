/* auditd event join: groups the records of one auditd event and writes the event as one line
 * (contract and output shape in telemetry_auditd.h). Input is untrusted: every record is
 * parsed with bounds (AUDITD_*), a value that does not decode to UTF-8 stays as written, and a
 * line that is not an auditd record passes through unchanged. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "telemetry/telemetry.h"
#include "telemetry/telemetry_auditd.h"

#define ID_MAX 64
#define TYPE_MAX 32
#define HEADER_SCAN 256 /* "node=... type=... msg=audit(" must start within this */

/* ---- one record's header ---------------------------------------------------------------- */

struct header {
    char type[TYPE_MAX];
    char id[ID_MAX];  /* "TIME:SERIAL" */
    size_t pre;       /* length of what precedes "type=" ("node=NAME ") */
    size_t body;      /* offset of the fields after "msg=audit(ID):" */
};

/* Parses "[node=N ]type=T msg=audit(ID)[:] ...". returns: false when line is not a record. */
static bool parse_header(const char *s, size_t n, struct header *h)
{
    size_t scan = n < HEADER_SCAN ? n : HEADER_SCAN;
    const char *t = memmem(s, scan, "type=", 5);
    const char *m = memmem(s, scan, "msg=audit(", 10);
    if (!t || !m || t > m || (t != s && t[-1] != ' '))
        return false;
    size_t tl = 0;
    for (const char *p = t + 5; p < m && *p != ' ' && tl < TYPE_MAX - 1; p++)
        h->type[tl++] = *p;
    h->type[tl] = 0;
    const char *id = m + 10, *end = s + n;
    size_t il = 0;
    while (id + il < end && id[il] != ')' && il < ID_MAX - 1) {
        char c = id[il];
        if (!isdigit((unsigned char)c) && c != '.' && c != ':')
            return false;
        il++;
    }
    if (!tl || !il || id + il >= end || id[il] != ')')
        return false;
    memcpy(h->id, id, il);
    h->id[il] = 0;
    const char *b = id + il + 1;
    if (b < end && *b == ':')
        b++;
    h->body = (size_t)(b - s);
    h->pre = (size_t)(t - s);
    return true;
}

/* ---- fields ----------------------------------------------------------------------------- */

struct field {
    char *key;
    char *val;
    size_t vlen;
    bool quoted; /* written in quotes: never hex */
};

struct fields {
    struct field *v;
    size_t n, cap;
};

static void fields_release(struct fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        core_free(f->v[i].key);
        core_free(f->v[i].val);
    }
    core_free(f->v);
    memset(f, 0, sizeof(*f));
}

/* Takes key and val (owned) even on error. */
static int fields_add(struct fields *f, char *key, char *val, size_t vlen, bool quoted)
{
    if (!key || !val || f->n >= AUDITD_FIELDS_MAX) {
        core_free(key);
        core_free(val);
        return key && val ? 0 : CORE_E_NOMEM; /* past the cap: dropped */
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 32;
        struct field *v = core_realloc(f->v, cap * sizeof(*v));
        if (!v) {
            core_free(key);
            core_free(val);
            return CORE_E_NOMEM;
        }
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = (struct field){key, val, vlen, quoted};
    return 0;
}

static struct field *fields_get(struct fields *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].key, key) == 0)
            return &f->v[i];
    return NULL;
}

/* "aN" (is_arg), "aN[i]" (*piece: the length of "aN"), "aN_len" (*len_key) */
static bool arg_key(const char *k, size_t kl, size_t *piece, bool *len_key)
{
    *piece = 0;
    *len_key = false;
    if (kl < 2 || k[0] != 'a' || !isdigit((unsigned char)k[1]))
        return false;
    size_t i = 1;
    while (i < kl && isdigit((unsigned char)k[i]))
        i++;
    if (i == kl)
        return true;
    if (kl - i == 4 && memcmp(k + i, "_len", 4) == 0) {
        *len_key = true;
        return true;
    }
    if (k[i] != '[' || k[kl - 1] != ']' || kl - i < 3)
        return false;
    for (size_t j = i + 1; j < kl - 1; j++)
        if (!isdigit((unsigned char)k[j]))
            return false;
    *piece = i;
    return true;
}

/* Splits a record's fields (after its header) into rec: k=v, k="v", msg='k=v ...' (tokens
 * inside). EXECVE pieces aN[i] are appended to aN. */
static int tokenize(const char *s, size_t n, bool is_exec, struct fields *rec)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\''))
            i++;
        size_t ks = i;
        while (i < n && s[i] != '=' && s[i] != ' ')
            i++;
        if (i >= n || s[i] != '=' || i == ks) {
            while (i < n && s[i] != ' ')
                i++;
            continue;
        }
        size_t ke = i++;
        if (i < n && s[i] == '\'') { /* msg='op=... res=...': the tokens inside are fields */
            i++;
            continue;
        }
        size_t vs = i, ve;
        bool quoted = false;
        if (i < n && s[i] == '"') {
            quoted = true;
            vs = ++i;
            while (i < n && s[i] != '"')
                i++;
            ve = i;
            if (i < n)
                i++;
        } else {
            while (i < n && s[i] != ' ')
                i++;
            ve = i;
            while (ve > vs && s[ve - 1] == '\'')
                ve--;
        }
        size_t piece;
        bool len_key;
        bool arg = is_exec && arg_key(s + ks, ke - ks, &piece, &len_key);
        if (arg && len_key)
            continue;
        if (arg && piece) {
            char base[32];
            if (piece >= sizeof(base))
                continue;
            memcpy(base, s + ks, piece);
            base[piece] = 0;
            struct field *f = fields_get(rec, base);
            if (!f) {
                int rc = fields_add(rec, core_strdup(base), core_strdup(""), 0, quoted);
                if (rc)
                    return rc;
                f = fields_get(rec, base);
                if (!f)
                    continue; /* past the field cap */
            }
            if (f->vlen + (ve - vs) > AUDITD_EVENT_BYTES)
                continue;
            char *v = core_realloc(f->val, f->vlen + (ve - vs) + 1);
            if (!v)
                return CORE_E_NOMEM;
            memcpy(v + f->vlen, s + vs, ve - vs);
            f->vlen += ve - vs;
            v[f->vlen] = 0;
            f->val = v;
            continue;
        }
        int rc = fields_add(rec, core_strndup(s + ks, ke - ks), core_strndup(s + vs, ve - vs),
                            ve - vs, quoted);
        if (rc)
            return rc;
    }
    return 0;
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* auditd hex-encodes values that hold spaces, quotes or control bytes (NULs separate
 * proctitle's arguments: they become spaces). Decoded in place when the result is UTF-8. */
static void hex_decode(struct field *f, bool is_exec)
{
    static const char *const hexable[] = {"exe", "comm", "cwd", "name", "cmd", "proctitle",
                                          "data", "acct", "key", "path", NULL};
    size_t piece;
    bool len_key;
    bool ok = !f->quoted && is_exec && arg_key(f->key, strlen(f->key), &piece, &len_key) &&
              !len_key;
    for (size_t i = 0; !ok && !f->quoted && hexable[i]; i++)
        ok = strcmp(f->key, hexable[i]) == 0;
    if (!ok || f->vlen < 2 || f->vlen % 2)
        return;
    for (size_t i = 0; i < f->vlen; i++)
        if (hexv(f->val[i]) < 0)
            return;
    size_t n = f->vlen / 2;
    char *out = core_malloc(n + 1);
    if (!out)
        return;
    for (size_t i = 0; i < n; i++) {
        char c = (char)(hexv(f->val[2 * i]) << 4 | hexv(f->val[2 * i + 1]));
        out[i] = c ? c : ' ';
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = 0;
    if (!core_utf8_valid(out, n)) {
        core_free(out);
        return;
    }
    core_free(f->val);
    f->val = out;
    f->vlen = n;
}

/* Keys the line parser maps onto the standard (time, msg, host ...): kept as "audit.KEY". */
static bool reserved(const char *k)
{
    static const char *const r[] = {"time", "ts", "timestamp", "t", "@timestamp", "msg",
                                    "message", "body", "log", "level", "lvl", "loglevel",
                                    "severity", "severity_text", "severity_number", "host",
                                    "hostname", "app", "service", "env", "environment",
                                    "version", "instance", "team", "attributes", "resource",
                                    "observed_ts", "trace_id", "span_id", "traceparent", "type",
                                    NULL};
    for (size_t i = 0; r[i]; i++)
        if (strcmp(k, r[i]) == 0)
            return true;
    return strncmp(k, "audit.", 6) == 0;
}

/* ---- JSON output ------------------------------------------------------------------------ */

static int json_str(struct core_buf *b, const char *s, size_t n)
{
    int rc = core_buf_addc(b, '"');
    size_t i = 0;
    while (!rc && i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = core_buf_add(b, e, 2);
            i++;
        } else if (c == 0) { /* many JSON readers refuse \u0000 */
            rc = core_buf_adds(b, "\\ufffd");
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            rc = core_buf_addf(b, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            rc = core_buf_addc(b, (char)c);
            i++;
        } else {
            unsigned cp;
            size_t l = core_utf8_decode(s + i, n - i, &cp);
            if (l) {
                rc = core_buf_add(b, s + i, l);
                i += l;
            } else {
                rc = core_buf_adds(b, "\\ufffd");
                i++;
            }
        }
    }
    return rc ? rc : core_buf_addc(b, '"');
}

static int json_kv(struct core_buf *b, const char *k, const char *v, size_t vl)
{
    int rc = core_buf_addc(b, ',');
    if (!rc)
        rc = json_str(b, k, strlen(k));
    if (!rc)
        rc = core_buf_addc(b, ':');
    return rc ? rc : json_str(b, v, vl);
}

/* "1481077231.371:479" -> RFC 3339 of its time, into out ("" when it has none) */
static void id_time(const char *id, char *out, size_t outsz)
{
    out[0] = 0;
    long long sec = 0, ms = 0;
    int digits = 0;
    const char *p = id;
    while (isdigit((unsigned char)*p) && digits < 12) {
        sec = sec * 10 + (*p++ - '0');
        digits++;
    }
    if (!digits || digits >= 12)
        return;
    if (*p == '.') {
        p++;
        for (int k = 0; k < 3; k++)
            ms = ms * 10 + (isdigit((unsigned char)*p) ? *p++ - '0' : 0);
    }
    core_time_format(sec * 1000 + ms, out, outsz);
}

static void lower(char *dst, size_t dstsz, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < dstsz; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = 0;
}

/* Adds a record's fields to the event under names not taken yet. */
static int merge(struct fields *ev, struct fields *rec, const char *type, size_t ri,
                 bool rename_args)
{
    char lt[TYPE_MAX];
    lower(lt, sizeof(lt), type);
    for (size_t i = 0; i < rec->n; i++) {
        struct field *f = &rec->v[i];
        char name[160];
        if (rename_args && f->key[0] == 'a' && strlen(f->key) == 2 && f->key[1] >= '0' &&
            f->key[1] <= '3')
            snprintf(name, sizeof(name), "syscall.%s", f->key);
        else if (reserved(f->key))
            snprintf(name, sizeof(name), "audit.%.100s", f->key);
        else
            snprintf(name, sizeof(name), "%.100s", f->key);
        if (fields_get(ev, name))
            snprintf(name, sizeof(name), "%s.%.100s", lt, f->key);
        if (fields_get(ev, name))
            snprintf(name, sizeof(name), "%s%zu.%.100s", lt, ri, f->key);
        if (fields_get(ev, name))
            continue; /* a record that repeats a key: the first value stays */
        char *key = core_strdup(name);
        int rc = fields_add(ev, key, f->val, f->vlen, f->quoted);
        f->val = NULL; /* moved (or freed by fields_add) */
        if (rc)
            return rc;
    }
    return 0;
}

int tel_auditd_join(const char *const *recs, const size_t *lens, size_t n, struct core_buf *out)
{
    if (n == 0)
        return 0;
    struct header h0;
    if (n == 1 || !parse_header(recs[0], lens[0], &h0))
        return core_buf_add(out, recs[0], lens[0]);
    struct header *hs = core_calloc(n, sizeof(*hs));
    if (!hs)
        return CORE_E_NOMEM;
    bool has_exec = false;
    for (size_t i = 0; i < n; i++) {
        if (!parse_header(recs[i], lens[i], &hs[i])) /* callers pass records only */
            snprintf(hs[i].type, sizeof(hs[i].type), "UNKNOWN");
        has_exec |= strcmp(hs[i].type, "EXECVE") == 0;
    }
    struct fields ev = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct fields rec = {0};
        bool is_exec = strcmp(hs[i].type, "EXECVE") == 0;
        if (hs[i].id[0] && hs[i].pre)
            rc = tokenize(recs[i], hs[i].pre, false, &rec);
        if (!rc && hs[i].id[0])
            rc = tokenize(recs[i] + hs[i].body, lens[i] - hs[i].body, is_exec, &rec);
        for (size_t k = 0; !rc && k < rec.n; k++)
            hex_decode(&rec.v[k], is_exec);
        if (!rc)
            rc = merge(&ev, &rec, hs[i].type, i, has_exec && strcmp(hs[i].type, "SYSCALL") == 0);
        fields_release(&rec);
    }
    size_t start = out->len;
    char ts[40], types[AUDITD_RECORDS_MAX * TYPE_MAX], hdr[ID_MAX + 16];
    id_time(h0.id, ts, sizeof(ts));
    types[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(types + strlen(types), sizeof(types) - strlen(types), "%s%s", i ? "," : "",
                 hs[i].type);
    snprintf(hdr, sizeof(hdr), "audit(%s):", h0.id);
    if (!rc)
        rc = core_buf_adds(out, "{\"msg\":");
    if (!rc) { /* the body names the record types: "audit(ID): SYSCALL EXECVE CWD" */
        struct core_buf body;
        core_buf_init(&body, sizeof(types) + sizeof(hdr));
        rc = core_buf_adds(&body, hdr);
        for (size_t i = 0; !rc && i < n; i++)
            rc = core_buf_addf(&body, " %s", hs[i].type);
        if (!rc)
            rc = json_str(out, body.data, body.len);
        core_buf_release(&body);
    }
    if (!rc && ts[0])
        rc = json_kv(out, "time", ts, strlen(ts));
    if (!rc)
        rc = json_kv(out, "audit.id", h0.id, strlen(h0.id));
    if (!rc)
        rc = core_buf_addf(out, ",\"audit.records\":%zu", n);
    if (!rc)
        rc = json_kv(out, "audit.types", types, strlen(types));
    if (!rc) /* one key each: JSON readers may refuse duplicates; sigma reads audit.types */
        rc = json_kv(out, "type", hs[0].type, strlen(hs[0].type));
    for (size_t i = 0; i < ev.n && !rc; i++)
        rc = json_kv(out, ev.v[i].key, ev.v[i].val, ev.v[i].vlen);
    if (!rc)
        rc = core_buf_addc(out, '}');
    if (!rc && out->len - start > TEL_LINE_MAX) /* the engine would cut it into invalid JSON */
        rc = CORE_E_TOO_BIG;
    if (rc) {
        out->len = start;
        out->data[start] = 0;
    }
    fields_release(&ev);
    core_free(hs);
    return rc;
}

/* ---- the joiner ------------------------------------------------------------------------- */

struct open_event {
    char id[ID_MAX];
    int64_t since_ms;
    struct core_buf lines; /* the records, each followed by '\n' */
    size_t n;
    bool used;
};

struct tel_auditd {
    struct open_event ev[AUDITD_OPEN_MAX];
    uint64_t order[AUDITD_OPEN_MAX]; /* opening order, to complete the oldest first */
    uint64_t next;
};

struct tel_auditd *tel_auditd_new(void)
{
    return core_calloc(1, sizeof(struct tel_auditd));
}

void tel_auditd_free(struct tel_auditd *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < AUDITD_OPEN_MAX; i++)
        if (j->ev[i].used)
            core_buf_release(&j->ev[i].lines);
    core_free(j);
}

size_t tel_auditd_pending(const struct tel_auditd *j)
{
    size_t n = 0;
    for (size_t i = 0; i < AUDITD_OPEN_MAX; i++)
        n += j->ev[i].used;
    return n;
}

/* Emits event i (joined) and closes it. */
static int complete(struct tel_auditd *j, size_t i, struct core_buf *out)
{
    struct open_event *e = &j->ev[i];
    const char *recs[AUDITD_RECORDS_MAX] = {0};
    size_t lens[AUDITD_RECORDS_MAX] = {0}, n = 0;
    const char *p = e->lines.data, *end = p + e->lines.len;
    while (p < end && n < AUDITD_RECORDS_MAX) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        recs[n] = p;
        lens[n++] = (size_t)(nl - p);
        p = nl + 1;
    }
    int rc = tel_auditd_join(recs, lens, n, out);
    if (rc == CORE_E_TOO_BIG) {
        /* too big as one line: the records go out one by one rather than not at all */
        rc = 0;
        for (size_t k = 0; k < n && !rc; k++) {
            rc = core_buf_add(out, recs[k], lens[k]);
            if (!rc && k + 1 < n)
                rc = core_buf_addc(out, '\n');
        }
    }
    if (!rc)
        rc = core_buf_addc(out, '\n');
    core_buf_release(&e->lines);
    memset(e, 0, sizeof(*e));
    return rc;
}

static size_t oldest(const struct tel_auditd *j)
{
    size_t best = AUDITD_OPEN_MAX;
    for (size_t i = 0; i < AUDITD_OPEN_MAX; i++)
        if (j->ev[i].used && (best == AUDITD_OPEN_MAX || j->order[i] < j->order[best]))
            best = i;
    return best;
}

int tel_auditd_feed(struct tel_auditd *j, const char *line, size_t len, int64_t now_ms,
                    struct core_buf *out)
{
    while (len && line[len - 1] == '\r')
        len--;
    struct header h;
    if (!parse_header(line, len, &h)) {
        int rc = core_buf_add(out, line, len);
        return rc ? rc : core_buf_addc(out, '\n');
    }
    size_t i = 0;
    while (i < AUDITD_OPEN_MAX && !(j->ev[i].used && strcmp(j->ev[i].id, h.id) == 0))
        i++;
    if (strcmp(h.type, "EOE") == 0) /* the end of an event: it carries nothing else */
        return i < AUDITD_OPEN_MAX ? complete(j, i, out) : 0;
    if (i == AUDITD_OPEN_MAX) {
        i = 0;
        while (i < AUDITD_OPEN_MAX && j->ev[i].used)
            i++;
        if (i == AUDITD_OPEN_MAX) {
            i = oldest(j);
            int rc = complete(j, i, out);
            if (rc)
                return rc;
        }
        struct open_event *e = &j->ev[i];
        e->used = true;
        snprintf(e->id, sizeof(e->id), "%s", h.id);
        e->since_ms = now_ms;
        core_buf_init(&e->lines, AUDITD_EVENT_BYTES);
        j->order[i] = j->next++;
    }
    struct open_event *e = &j->ev[i];
    if (e->n && e->lines.len + len + 1 > AUDITD_EVENT_BYTES) {
        /* this record would make the event too big: what we have is the event */
        int rc = complete(j, i, out);
        if (rc)
            return rc;
        return tel_auditd_feed(j, line, len, now_ms, out);
    }
    if (len + 1 > AUDITD_EVENT_BYTES) { /* one record larger than an event: as it is */
        int rc = core_buf_add(out, line, len);
        return rc ? rc : core_buf_addc(out, '\n');
    }
    int rc = core_buf_add(&e->lines, line, len);
    if (!rc)
        rc = core_buf_addc(&e->lines, '\n');
    if (rc)
        return rc;
    e->n++;
    return e->n >= AUDITD_RECORDS_MAX ? complete(j, i, out) : 0;
}

int tel_auditd_flush(struct tel_auditd *j, int64_t now_ms, int64_t age_ms, struct core_buf *out)
{
    for (;;) {
        size_t best = AUDITD_OPEN_MAX;
        for (size_t i = 0; i < AUDITD_OPEN_MAX; i++)
            if (j->ev[i].used && (age_ms <= 0 || now_ms - j->ev[i].since_ms >= age_ms) &&
                (best == AUDITD_OPEN_MAX || j->order[i] < j->order[best]))
                best = i;
        if (best == AUDITD_OPEN_MAX)
            return 0;
        int rc = complete(j, best, out);
        if (rc)
            return rc;
    }
}
