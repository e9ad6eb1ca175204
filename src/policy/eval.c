/*
 * Policy evaluation: one subject (a manifest, image facts or a resource's attributes as JSON)
 * against a compiled set. Pure and read-only on the set; the only per-call state is a PCRE2 match
 * data block (created on the first regex use) and the results. Nothing is parsed here that could
 * have been parsed at compile time: paths are pre-split, literals pre-typed, regexes compiled.
 *
 * Every failure gets one concrete message naming the field and the value found, so a developer
 * can fix it without reading the rule.
 */
#include "policy/policy_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- names ----------------------------------------------------------------------------- */

const char *policy_mode_name(enum policy_mode m)
{
    switch (m) {
    case POLICY_AUDIT: return "audit";
    case POLICY_WARN: return "warn";
    case POLICY_ENFORCE: return "enforce";
    }
    return "unknown";
}

const char *policy_severity_name(enum policy_severity s)
{
    switch (s) {
    case POLICY_LOW: return "low";
    case POLICY_MEDIUM: return "medium";
    case POLICY_HIGH: return "high";
    case POLICY_CRITICAL: return "critical";
    }
    return "unknown";
}

const char *policy_outcome_name(enum policy_outcome o)
{
    switch (o) {
    case POLICY_PASS: return "pass";
    case POLICY_FAIL: return "fail";
    case POLICY_EXCEPTED: return "excepted";
    case POLICY_SKIPPED: return "skipped";
    }
    return "unknown";
}

const char *policy_subject_name(enum policy_subject s)
{
    switch (s) {
    case POLICY_SUBJECT_SERVICE: return "service";
    case POLICY_SUBJECT_IMAGE: return "image";
    case POLICY_SUBJECT_RESOURCE: return "resource";
    }
    return "unknown";
}

const char *policy_gate_name(enum policy_gate g)
{
    switch (g) {
    case POLICY_GATE_CHECK: return "check";
    case POLICY_GATE_CATALOG: return "catalog";
    case POLICY_GATE_PIPELINE: return "pipeline";
    case POLICY_GATE_REGISTRY: return "registry";
    case POLICY_GATE_DEPLOY: return "deploy";
    }
    return "unknown";
}

/* ---- evaluation state ------------------------------------------------------------------ */

#define MSG_MAX 1024

struct msg {
    char buf[MSG_MAX];
    size_t len;
};

static void msg_add(struct msg *m, const char *fmt, ...) CORE_PRINTF(2, 3);
static void msg_add(struct msg *m, const char *fmt, ...)
{
    va_list ap;
    if (m->len >= MSG_MAX - 1)
        return;
    if (m->len) {
        int w = snprintf(m->buf + m->len, MSG_MAX - m->len, "; ");
        m->len += (size_t)w;
        if (m->len >= MSG_MAX - 1) {
            m->len = MSG_MAX - 1;
            return;
        }
    }
    va_start(ap, fmt);
    int w = vsnprintf(m->buf + m->len, MSG_MAX - m->len, fmt, ap);
    va_end(ap);
    if (w > 0)
        m->len += (size_t)w;
    if (m->len >= MSG_MAX)
        m->len = MSG_MAX - 1;
}

struct eval {
    const struct policy_set *set;
    const struct policy_input *in;
    pcre2_match_data *md;
    int tier; /* effective tier, 0 unknown */
    int rc;
};

static bool re_match(struct eval *ev, const pcre2_code *re, const char *s, size_t len)
{
    if (!ev->md) {
        ev->md = pcre2_match_data_create(ev->set->max_ovector, NULL);
        if (!ev->md) {
            ev->rc = CORE_E_NOMEM;
            return false;
        }
    }
    /* a match that hits the limits counts as no match: hostile values cannot stall a gate */
    return pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, ev->md, ev->set->mctx) >= 0;
}

/* Short printable rendering of a JSON value for messages. */
static const char *show(const json_t *v, char *out, size_t outsz)
{
    if (!v || json_is_null(v))
        snprintf(out, outsz, "absent");
    else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        if (n > 60)
            snprintf(out, outsz, "'%.57s...'", s);
        else
            snprintf(out, outsz, "'%s'", s);
        /* keep messages one line */
        for (char *p = out; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = '?';
    } else if (json_is_integer(v))
        snprintf(out, outsz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, outsz, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, outsz, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_array(v))
        snprintf(out, outsz, "a list of %zu", json_array_size(v));
    else
        snprintf(out, outsz, "a map");
    return out;
}

/* Text of a scalar JSON value (numbers rendered into buf). NULL for others. */
static const char *scalar_text(const json_t *v, char *buf, size_t bufsz)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, bufsz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, bufsz, "%.17g", json_real_value(v));
        return buf;
    }
    return NULL;
}

static bool json_num(const json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return true;
    }
    if (json_is_string(v))
        return policy_quantity(json_string_value(v), out);
    return false;
}

static bool value_eq(const json_t *v, const struct pol_value *x)
{
    double d;
    switch (x->type) {
    case POL_V_NULL: return json_is_null(v);
    case POL_V_BOOL: return json_is_boolean(v) && json_is_true(v) == x->b;
    case POL_V_NUM: return json_num(v, &d) && d == x->num;
    case POL_V_STR:
        if (json_is_string(v) && strcmp(json_string_value(v), x->s) == 0)
            return true;
        return x->is_num && json_num(v, &d) && d == x->num;
    case POL_V_LIST: return false;
    }
    return false;
}

static bool cond_holds(struct eval *ev, const struct pol_cond *c, const json_t *v)
{
    double d;
    switch (c->op) {
    case POL_OP_EXISTS: return true;
    case POL_OP_ABSENT: return false;
    case POL_OP_EQ: return value_eq(v, &c->val);
    case POL_OP_NE: return !value_eq(v, &c->val);
    case POL_OP_LT: return json_num(v, &d) && d < c->val.num;
    case POL_OP_LE: return json_num(v, &d) && d <= c->val.num;
    case POL_OP_GT: return json_num(v, &d) && d > c->val.num;
    case POL_OP_GE: return json_num(v, &d) && d >= c->val.num;
    case POL_OP_IN:
    case POL_OP_NOT_IN: {
        bool in = false;
        for (size_t i = 0; i < c->val.n && !in; i++)
            in = value_eq(v, &c->val.items[i]);
        return c->op == POL_OP_IN ? in : !in;
    }
    case POL_OP_MATCHES: {
        char buf[64];
        const char *s = scalar_text(v, buf, sizeof(buf));
        return s && c->re && re_match(ev, c->re, s, strlen(s));
    }
    case POL_OP_CONTAINS:
        if (json_is_array(v)) {
            size_t i;
            json_t *it;
            json_array_foreach(v, i, it) if (value_eq(it, &c->val)) return true;
            return false;
        }
        return json_is_string(v) && c->val.type == POL_V_STR &&
               strstr(json_string_value(v), c->val.s) != NULL;
    }
    return false;
}

/* Visits every value the path reaches (null counts as absent); stops when a visit says so. */
struct visit {
    struct eval *ev;
    const struct pol_cond *c;
    size_t found;
    const json_t *first; /* first value found, for messages */
    bool held;
};

static void walk(struct visit *vs, const struct pol_seg *seg, size_t n, const json_t *v)
{
    if (vs->held || !v || json_is_null(v))
        return;
    if (n == 0) {
        if (!vs->found++)
            vs->first = v;
        vs->held = cond_holds(vs->ev, vs->c, v);
        return;
    }
    switch (seg->kind) {
    case POL_SEG_KEY:
        if (json_is_object(v))
            walk(vs, seg + 1, n - 1, json_object_get(v, seg->key));
        break;
    case POL_SEG_INDEX:
        if (json_is_array(v))
            walk(vs, seg + 1, n - 1, json_array_get(v, seg->index));
        break;
    case POL_SEG_ANY:
        if (json_is_array(v)) {
            size_t i;
            json_t *it;
            json_array_foreach(v, i, it)
            {
                walk(vs, seg + 1, n - 1, it);
                if (vs->held)
                    break;
            }
        } else if (json_is_object(v)) {
            const char *k;
            json_t *it;
            json_object_foreach((json_t *)v, k, it)
            {
                walk(vs, seg + 1, n - 1, it);
                if (vs->held)
                    break;
            }
        }
        break;
    }
}

/* Whether the condition holds for the document ([*]: for some element). */
static bool cond_eval(struct eval *ev, const struct pol_cond *c, const json_t *doc,
                      struct visit *out)
{
    struct visit vs = {.ev = ev, .c = c};
    walk(&vs, c->path.segs, c->path.n, doc);
    if (c->op == POL_OP_ABSENT)
        vs.held = vs.found == 0;
    *out = vs;
    return vs.held;
}

/* Cheap appends for the hot failure path (hundreds of thousands of messages per scan). */
static void put(struct msg *m, const char *s)
{
    size_t n = strlen(s);
    if (m->len + n >= MSG_MAX)
        n = MSG_MAX - 1 - m->len;
    memcpy(m->buf + m->len, s, n);
    m->len += n;
    m->buf[m->len] = 0;
}

static void put_value(struct msg *m, const json_t *v)
{
    char buf[128];
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = 0;
        buf[n++] = '\'';
        for (; *s && n < 61; s++)
            buf[n++] = (unsigned char)*s < 0x20 ? '?' : *s;
        if (*s) {
            memcpy(buf + n, "...", 3);
            n += 3;
        }
        buf[n++] = '\'';
        buf[n] = 0;
        put(m, buf);
    } else if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        char *e = buf + sizeof(buf) - 1, *p = e;
        bool neg = x < 0;
        uint64_t u = neg ? 0 - (uint64_t)x : (uint64_t)x;
        *p = 0;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (neg)
            *--p = '-';
        put(m, p);
    } else {
        put(m, show(v, buf, sizeof(buf)));
    }
}

static void cond_fail_msg(struct msg *m, const struct pol_cond *c, const struct visit *vs)
{
    if (m->len)
        put(m, "; ");
    if (!vs->found) {
        put(m, c->path.text);
        put(m, " is absent, ");
    } else if (c->path.has_any) {
        put(m, "no value of ");
        put(m, c->path.text);
        put(m, " matches (first: ");
        put_value(m, vs->first);
        put(m, "), ");
    } else {
        put(m, c->path.text);
        put(m, " is ");
        put_value(m, vs->first);
        put(m, ", ");
    }
    put(m, c->want);
}

static void cond_text(const struct pol_cond *c, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s %s", c->path.text, c->want + strlen("expected "));
}

static void eval_field(struct eval *ev, const struct pol_rule *r, const json_t *doc,
                       struct msg *m)
{
    struct visit vs;
    char txt[400], got[128];
    for (size_t i = 0; i < r->nall; i++)
        if (!cond_eval(ev, &r->all[i], doc, &vs))
            cond_fail_msg(m, &r->all[i], &vs);
    if (r->nany) {
        bool one = false;
        for (size_t i = 0; i < r->nany && !one; i++)
            one = cond_eval(ev, &r->any[i], doc, &vs);
        if (!one) {
            struct msg sub;
            sub.len = 0;
            sub.buf[0] = 0;
            for (size_t i = 0; i < r->nany; i++) {
                cond_eval(ev, &r->any[i], doc, &vs);
                cond_fail_msg(&sub, &r->any[i], &vs);
            }
            if (m->len)
                put(m, "; ");
            put(m, "none of the alternatives holds: ");
            put(m, sub.buf);
        }
    }
    for (size_t i = 0; i < r->nnone; i++)
        if (cond_eval(ev, &r->none[i], doc, &vs)) {
            cond_text(&r->none[i], txt, sizeof(txt));
            if (vs.found)
                msg_add(m, "%s must not hold (found %s)", txt, show(vs.first, got, sizeof(got)));
            else
                msg_add(m, "%s must not hold", txt);
        }
}

/* ---- built-in kinds -------------------------------------------------------------------- */

static const json_t *get_path(const json_t *v, const char *a, const char *b, const char *c)
{
    v = json_object_get(v, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return v && !json_is_null(v) ? v : NULL;
}

static const json_t *subject_tags(const struct policy_input *in)
{
    if (in->subject == POLICY_SUBJECT_SERVICE)
        return get_path(in->doc, "metadata", "tags", NULL);
    if (in->subject == POLICY_SUBJECT_IMAGE)
        return get_path(in->doc, "labels", NULL, NULL);
    return get_path(in->doc, "tags", NULL, NULL);
}

static void list_text(char *out, size_t outsz, const char **v, size_t n)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && o < outsz; i++)
        o += (size_t)snprintf(out + o, outsz - o, "%s%s", i ? ", " : "", v[i]);
}

static void eval_tags(struct eval *ev, const struct pol_rule *r, struct msg *m)
{
    const json_t *tags = subject_tags(ev->in);
    char buf[64], allowed[400], got[128];
    for (size_t i = 0; i < r->ntags; i++) {
        const struct pol_tag_req *t = &r->tags[i];
        const json_t *v = json_object_get(tags, t->key);
        const char *s = scalar_text(v, buf, sizeof(buf));
        if (!s || !*s) {
            if (t->required)
                msg_add(m, v && !json_is_null(v) && !s ? "tag '%s' is not a string"
                                                        : "tag '%s' is missing",
                        t->key);
            continue;
        }
        if (t->nvalues) {
            bool ok = false;
            for (size_t j = 0; j < t->nvalues && !ok; j++)
                ok = strcmp(t->values[j], s) == 0;
            if (!ok) {
                list_text(allowed, sizeof(allowed), t->values, t->nvalues);
                msg_add(m, "tag '%s' is %s, allowed: %s", t->key, show(v, got, sizeof(got)),
                        allowed);
                continue;
            }
        }
        if (t->re && !re_match(ev, t->re, s, strlen(s)))
            msg_add(m, "tag '%s' is %s, which does not match %s", t->key,
                    show(v, got, sizeof(got)), t->pattern);
    }
}

/* "16" approves "16", "16.2" and "16.2.1"; "3.12" approves "3.12.4" but not "3.1". */
static bool version_ok(const char *approved, const char *v)
{
    size_t n = strlen(approved);
    return strncmp(approved, v, n) == 0 && (v[n] == 0 || v[n] == '.');
}

static void check_tech(const struct pol_rule *r, const char *what, const char *name,
                       const char *version, struct msg *m)
{
    char allowed[400];
    for (size_t i = 0; i < r->ntechs; i++) {
        const struct pol_tech *t = &r->techs[i];
        if (strcmp(t->name, name) != 0)
            continue;
        if (!t->n || !version)
            return;
        for (size_t j = 0; j < t->n; j++)
            if (version_ok(t->versions[j], version))
                return;
        list_text(allowed, sizeof(allowed), t->versions, t->n);
        msg_add(m, "%s uses %s %s, which is not an approved version (approved: %s)", what, name,
                version, allowed);
        return;
    }
    size_t o = 0;
    allowed[0] = 0;
    for (size_t i = 0; i < r->ntechs && o < sizeof(allowed); i++)
        o += (size_t)snprintf(allowed + o, sizeof(allowed) - o, "%s%s", i ? ", " : "",
                              r->techs[i].name);
    msg_add(m, "%s uses %s, which is not an approved technology (approved: %s)", what, name,
            allowed);
}

static void eval_tech(struct eval *ev, const struct pol_rule *r, struct msg *m)
{
    char what[200], vbuf[64];
    if (ev->in->subject == POLICY_SUBJECT_SERVICE) {
        const json_t *deps = get_path(ev->in->doc, "spec", "dependencies", NULL);
        size_t i;
        json_t *d;
        json_array_foreach(deps, i, d)
        {
            const char *res = json_string_value(json_object_get(d, "resource"));
            if (!res)
                continue;
            const char *name = json_string_value(json_object_get(d, "name"));
            const char *ver = scalar_text(json_object_get(d, "version"), vbuf, sizeof(vbuf));
            snprintf(what, sizeof(what), "dependency '%s'", name ? name : res);
            check_tech(r, what, res, ver, m);
        }
        return;
    }
    const char *name, *ver;
    if (!policy_resource_technology(ev->in->doc, &name, &ver, vbuf, sizeof(vbuf)))
        return;
    snprintf(what, sizeof(what), "%s", ev->in->name ? ev->in->name : "the resource");
    check_tech(r, what, name, ver, m);
}

static const char *show_qty(int what, int64_t x, char *out, size_t outsz)
{
    static const char *units[] = {"Ki", "Mi", "Gi", "Ti"};
    if (what == 0) {
        snprintf(out, outsz, "%" PRId64, x);
    } else if (what == 1) {
        if (x % 1000 == 0)
            snprintf(out, outsz, "%" PRId64, x / 1000);
        else
            snprintf(out, outsz, "%" PRId64 "m", x);
    } else {
        int u = -1;
        while (u < 3 && x && x % 1024 == 0) {
            x /= 1024;
            u++;
        }
        snprintf(out, outsz, "%" PRId64 "%s", x, u >= 0 ? units[u] : "");
    }
    return out;
}

/* A quantity field of the manifest: its value, or false when absent (*bad when unreadable). */
static bool read_qty(int what, const json_t *v, int64_t *out, bool *bad)
{
    char buf[64];
    *bad = false;
    if (!v)
        return false;
    if (what == 0) {
        if (json_is_integer(v)) {
            *out = json_integer_value(v);
            return true;
        }
        *bad = true;
        return false;
    }
    const char *s = json_is_real(v) ? (snprintf(buf, sizeof(buf), "%g", json_real_value(v)), buf)
                                    : scalar_text(v, buf, sizeof(buf));
    if (s && (what == 1 ? core_parse_millicores(s, out) : core_parse_bytes(s, out)) == 0)
        return true;
    *bad = true;
    return false;
}

static void eval_bounds(struct eval *ev, const struct pol_rule *r, struct msg *m)
{
    static const char *paths[] = {"spec.replicas", "spec.run.resources.cpu",
                                  "spec.run.resources.memory"};
    const json_t *doc = ev->in->doc;
    const struct pol_tier_bounds *tb = NULL;
    int tier = ev->tier ? ev->tier : 3;
    char a[48], b[48];
    for (size_t i = 0; i < r->ntiers; i++)
        if (r->tiers[i].tier == tier)
            tb = &r->tiers[i];
    if (!tb)
        return;
    const json_t *as = get_path(doc, "spec", "autoscale", NULL);
    const json_t *vals[] = {get_path(doc, "spec", "replicas", NULL),
                            get_path(doc, "spec", "run", "resources"),
                            get_path(doc, "spec", "run", "resources")};
    vals[1] = vals[1] ? get_path(vals[1], "cpu", NULL, NULL) : NULL;
    vals[2] = vals[2] ? get_path(vals[2], "memory", NULL, NULL) : NULL;
    const struct pol_bound *bs[] = {&tb->replicas, &tb->cpu, &tb->memory};
    for (int k = 0; k < 3; k++) {
        const struct pol_bound *bd = bs[k];
        if (!bd->has_min && !bd->has_max)
            continue;
        int64_t lo = 0, hi = 0;
        bool bad = false, have;
        const char *lo_path = paths[k], *hi_path = paths[k];
        if (k == 0 && as) {
            /* with autoscale the count moves between min and max */
            have = read_qty(0, get_path(as, "min", NULL, NULL), &lo, &bad) &&
                   read_qty(0, get_path(as, "max", NULL, NULL), &hi, &bad);
            lo_path = "spec.autoscale.min";
            hi_path = "spec.autoscale.max";
        } else if (k == 0 && !vals[0]) {
            have = true;
            lo = hi = 1; /* the manifest default */
        } else {
            have = read_qty(k, vals[k], &lo, &bad);
            hi = lo;
        }
        if (!have) {
            if (bad)
                msg_add(m, "%s is not a valid quantity", paths[k]);
            else if (bd->has_min)
                msg_add(m, "%s is not set; tier %d requires at least %s", paths[k], tier,
                        show_qty(k, bd->min, a, sizeof(a)));
            else
                msg_add(m, "%s is not set; tier %d allows at most %s", paths[k], tier,
                        show_qty(k, bd->max, a, sizeof(a)));
            continue;
        }
        if (bd->has_min && lo < bd->min)
            msg_add(m, "%s is %s; tier %d requires at least %s", lo_path,
                    show_qty(k, lo, a, sizeof(a)), tier, show_qty(k, bd->min, b, sizeof(b)));
        if (bd->has_max && hi > bd->max)
            msg_add(m, "%s is %s; tier %d allows at most %s", hi_path,
                    show_qty(k, hi, a, sizeof(a)), tier, show_qty(k, bd->max, b, sizeof(b)));
    }
}

static bool host_internal(const struct pol_rule *r, const char *host)
{
    size_t hl = strlen(host);
    for (size_t i = 0; i < r->ndomains; i++) {
        const char *d = r->domains[i];
        size_t dl = strlen(d);
        if (hl == dl && strcasecmp(host, d) == 0)
            return true;
        if (hl > dl && host[hl - dl - 1] == '.' && strcasecmp(host + hl - dl, d) == 0)
            return true;
    }
    return false;
}

static void eval_exposure(struct eval *ev, const struct pol_rule *r, struct msg *m)
{
    const json_t *expose = get_path(ev->in->doc, "spec", "expose", NULL);
    const char *host = json_string_value(json_object_get(expose, "host"));
    if (!host || host_internal(r, host))
        return;
    if (r->require_tls && !json_is_true(json_object_get(expose, "tls")))
        msg_add(m, "public host '%s' is served without TLS", host);
    int tier = ev->tier ? ev->tier : 3;
    if (r->max_tier && tier > r->max_tier)
        msg_add(m, "public host '%s' belongs to a tier %d service; public hosts need tier %d "
                   "or more critical",
                host, tier, r->max_tier);
}

static void eval_class(struct eval *ev, const struct pol_rule *r, struct msg *m)
{
    const json_t *tags = subject_tags(ev->in);
    const char *cls = json_string_value(json_object_get(tags, r->class_tag));
    const json_t *doc = ev->in->doc;
    bool conf = false;
    for (size_t i = 0; cls && i < r->nconf && !conf; i++)
        conf = strcmp(r->conf_values[i], cls) == 0;
    if (!conf)
        return;
    if (ev->in->subject == POLICY_SUBJECT_SERVICE) {
        const char *host = json_string_value(get_path(doc, "spec", "expose", "host"));
        if (host && !host_internal(r, host))
            msg_add(m, "data classified '%s' is exposed on public host '%s'", cls, host);
        if (json_is_false(get_path(doc, "spec", "logs", "redact")))
            msg_add(m, "data classified '%s' but log redaction is turned off "
                       "(spec.logs.redact: false)",
                    cls);
        return;
    }
    if (json_is_true(json_object_get(doc, "publicly_accessible")))
        msg_add(m, "data classified '%s' on a publicly accessible resource", cls);
    if (json_is_true(json_object_get(doc, "public")))
        msg_add(m, "data classified '%s' on a public resource", cls);
    const char *acl = json_string_value(json_object_get(doc, "acl"));
    if (acl && (!strcmp(acl, "public-read") || !strcmp(acl, "public-read-write")))
        msg_add(m, "data classified '%s' with acl '%s'", cls, acl);
}

static void eval_provenance(struct eval *ev, const struct pol_rule *r, struct msg *m)
{
    const json_t *doc = ev->in->doc;
    const char *sig = json_string_value(json_object_get(doc, "signature"));
    const char *builder = json_string_value(json_object_get(doc, "builder"));
    char allowed[400];
    if (!sig || strcmp(sig, "verified") != 0)
        msg_add(m, "image signature is %s%s%s, expected verified", sig ? "'" : "",
                sig ? sig : "missing", sig ? "'" : "");
    if (!json_is_true(json_object_get(doc, "provenance")))
        msg_add(m, "image has no provenance attestation");
    bool ok = false;
    /* an entry ending in a star matches by prefix: "pave/" plus a star is any version */
    for (size_t i = 0; builder && i < r->nbuilders && !ok; i++) {
        size_t bl = strlen(r->builders[i]);
        ok = bl && r->builders[i][bl - 1] == '*'
                 ? strncmp(r->builders[i], builder, bl - 1) == 0
                 : strcmp(r->builders[i], builder) == 0;
    }
    if (!ok) {
        list_text(allowed, sizeof(allowed), r->builders, r->nbuilders);
        if (builder)
            msg_add(m, "image was built by '%s', not by an approved builder (%s)", builder,
                    allowed);
        else
            msg_add(m, "image names no builder; approved builders: %s", allowed);
    }
}

/* ---- scope and the loop ---------------------------------------------------------------- */

static bool in_list(const char **v, size_t n, const char *s)
{
    if (!n || !s)
        return true; /* unscoped, or unknown on the subject: the rule applies */
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static bool in_scope(const struct pol_rule *r, const struct eval *ev)
{
    const struct policy_input *in = ev->in;
    bool gate_known = in->gate >= POLICY_GATE_CHECK && in->gate <= POLICY_GATE_DEPLOY;
    if (in->subject < POLICY_SUBJECT_SERVICE || in->subject > POLICY_SUBJECT_RESOURCE)
        return false;
    if (r->scope.gates && !gate_known)
        return false; /* only gate-scoped rules need to know the gate */
    unsigned subjects = r->scope.subjects ? r->scope.subjects : policy_kind_default_subjects(r->kind);
    if (!(subjects & (1u << in->subject)))
        return false;
    if (r->scope.gates && !(r->scope.gates & (1u << in->gate)))
        return false;
    if (r->scope.tiers && ev->tier && !(r->scope.tiers & (1u << ev->tier)))
        return false;
    return in_list(r->scope.teams, r->scope.nteams, in->team) &&
           in_list(r->scope.envs, r->scope.nenvs, in->env);
}

static const struct policy_exception *find_exception(const struct policy_input *in,
                                                     const char *rule)
{
    for (size_t i = 0; i < in->nexceptions; i++) {
        const struct policy_exception *x = &in->exceptions[i];
        if (!x->rule || strcmp(x->rule, rule) != 0 || x->expires_ms <= in->now_ms || !x->subject)
            continue;
        if (strcmp(x->subject, "*") == 0 || (in->name && strcmp(x->subject, in->name) == 0))
            return x;
    }
    return NULL;
}

int policy_evaluate(const struct policy_set *set, const struct policy_input *in,
                    struct policy_results *out, struct core_err *err)
{
    struct eval ev = {.set = set, .in = in, .tier = in->tier};
    memset(out, 0, sizeof(*out));
    if (ev.tier < 1 || ev.tier > 4) {
        ev.tier = 0;
        if (in->subject == POLICY_SUBJECT_SERVICE) {
            const json_t *t = get_path(in->doc, "metadata", "tier", NULL);
            ev.tier = json_is_integer(t) && json_integer_value(t) >= 1 &&
                              json_integer_value(t) <= 4
                          ? (int)json_integer_value(t)
                          : 3; /* the manifest default */
        }
    }
    if (set->nrules && !(out->v = core_calloc(set->nrules, sizeof(*out->v))))
        return core_err_set(err, CORE_E_NOMEM, "policy evaluation: out of memory");
    for (size_t i = 0; i < set->nrules && !ev.rc; i++) {
        const struct pol_rule *r = &set->rules[i];
        if (!in_scope(r, &ev))
            continue;
        struct msg m;
        m.len = 0;
        m.buf[0] = 0;
        switch (r->kind) {
        case POL_REQUIRED_TAGS: eval_tags(&ev, r, &m); break;
        case POL_APPROVED_TECH: eval_tech(&ev, r, &m); break;
        case POL_RESOURCE_BOUNDS: eval_bounds(&ev, r, &m); break;
        case POL_EXPOSURE: eval_exposure(&ev, r, &m); break;
        case POL_DATA_CLASS: eval_class(&ev, r, &m); break;
        case POL_PROVENANCE: eval_provenance(&ev, r, &m); break;
        case POL_FIELD: eval_field(&ev, r, in->doc, &m); break;
        }
        struct policy_result *res = &out->v[out->n++];
        res->rule = r->id;
        res->policy = r->policy;
        res->kind = r->kind_name;
        res->mode = r->mode;
        res->severity = r->severity;
        res->remediation = r->remediation;
        res->outcome = POLICY_PASS;
        if (!m.len)
            continue;
        if (!(res->message = core_strdup(m.buf))) {
            ev.rc = CORE_E_NOMEM;
            break;
        }
        const struct policy_exception *x = find_exception(in, r->id);
        if (x) {
            res->outcome = POLICY_EXCEPTED;
            res->exception_id = x->id;
            continue;
        }
        res->outcome = POLICY_FAIL;
        out->failed++;
        if (r->mode == POLICY_WARN)
            out->warned++;
        if (r->mode == POLICY_ENFORCE)
            out->blocked = true;
    }
    pcre2_match_data_free(ev.md);
    if (ev.rc) {
        policy_results_free(out);
        return core_err_set(err, ev.rc, "policy evaluation: out of memory");
    }
    return 0;
}

void policy_results_free(struct policy_results *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        core_free(r->v[i].message);
    core_free(r->v);
    memset(r, 0, sizeof(*r));
}

json_t *policy_results_json(const struct policy_results *r)
{
    json_t *arr = json_array();
    json_t *o = json_pack("{s:b, s:i, s:i, s:o}", "blocked", r->blocked, "failed", r->failed,
                          "warned", r->warned, "results", arr);
    if (!o)
        return NULL;
    for (size_t i = 0; i < r->n; i++) {
        const struct policy_result *x = &r->v[i];
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:o}", "rule", x->rule,
                              "policy", x->policy, "kind", x->kind, "mode",
                              policy_mode_name(x->mode), "severity",
                              policy_severity_name(x->severity), "outcome",
                              policy_outcome_name(x->outcome), "message", x->message,
                              "remediation", x->remediation, "exception",
                              x->outcome == POLICY_EXCEPTED ? json_integer(x->exception_id)
                                                            : json_null());
        if (!e || json_array_append_new(arr, e)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int policy_results_explain(const struct policy_results *r, const char *subject_name,
                           struct core_buf *out)
{
    const char *name = subject_name ? subject_name : "subject";
    int rc = 0;
    if (!r->failed)
        return core_buf_addf(out, "%s: all %zu rules in scope pass\n", name, r->n);
    rc = core_buf_addf(out, "%s: %d rule%s failed%s\n", name, r->failed,
                       r->failed == 1 ? "" : "s", r->blocked ? " (blocked)" : "");
    for (size_t i = 0; !rc && i < r->n; i++) {
        const struct policy_result *x = &r->v[i];
        if (x->outcome != POLICY_FAIL)
            continue;
        rc = core_buf_addf(out, "\n%s (%s, %s): %s.", x->rule, policy_mode_name(x->mode),
                           policy_severity_name(x->severity), x->message ? x->message : "failed");
        if (!rc && x->remediation)
            rc = core_buf_addf(out, " Fix: %s", x->remediation);
        if (!rc)
            rc = core_buf_addf(out,
                               "\n  To ask for an exception: pave policy exceptions request "
                               "--subject %s --rule %s --expires 30d --justification '...'\n",
                               name, x->rule);
    }
    return rc;
}
