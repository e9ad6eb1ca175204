/*
 * Inventories: splitting a document into policy subjects. A pave.yaml manifest is one service; a
 * Terraform plan (`terraform show -json`) yields every managed resource of planned_values, child
 * modules included; a flat cloud export (a JSON array, or {"resources": [...]}) yields each row.
 * Resources are shaped so rules read them uniformly: attributes at the top level, `tags` holding
 * the resource's tags (Terraform: tags_all merged with tags), and address/type/provider set.
 *
 * Also the mapping from cloud resource types to technologies used by approved-technologies
 * (docs/policy.md lists it).
 */
#include "policy/policy_int.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"

/* ---- technologies of cloud resources --------------------------------------------------- */

static const char *str(const json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* "POSTGRES_15" -> version "15"; "MYSQL_8_0" -> "8.0"; "REDIS_7_0" -> "7.0" */
static const char *underscore_version(const char *s, char *buf, size_t bufsz)
{
    const char *u = s ? strchr(s, '_') : NULL;
    if (!u || !u[1])
        return NULL;
    size_t o = 0;
    for (const char *p = u + 1; *p && o + 1 < bufsz; p++)
        buf[o++] = *p == '_' ? '.' : *p;
    buf[o] = 0;
    return buf;
}

static const char *engine_name(const char *e)
{
    static const struct {
        const char *engine, *tech;
    } map[] = {
        {"postgres", "postgres"},     {"aurora-postgresql", "postgres"},
        {"mysql", "mysql"},           {"aurora-mysql", "mysql"},
        {"aurora", "mysql"},          {"mariadb", "mariadb"},
        {"redis", "redis"},           {"valkey", "valkey"},
        {"memcached", "memcached"},   {"RabbitMQ", "rabbitmq"},
        {"rabbitmq", "rabbitmq"},     {"ActiveMQ", "activemq"},
        {"docdb", "mongodb"},         {"neptune", "neptune"},
    };
    if (!e)
        return NULL;
    for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++)
        if (strcmp(map[i].engine, e) == 0)
            return map[i].tech;
    if (!strncmp(e, "oracle-", 7))
        return "oracle";
    if (!strncmp(e, "sqlserver-", 10))
        return "sqlserver";
    return e;
}

bool policy_resource_technology(const json_t *doc, const char **name, const char **version,
                                char *vbuf, size_t vbufsz)
{
    const char *type = str(doc, "type");
    *name = NULL;
    *version = NULL;
    if (!type)
        return false;
    if (!strcmp(type, "aws_db_instance") || !strcmp(type, "aws_rds_cluster") ||
        !strcmp(type, "aws_docdb_cluster") || !strcmp(type, "aws_neptune_cluster")) {
        *name = engine_name(str(doc, "engine"));
        *version = str(doc, "engine_version");
    } else if (!strcmp(type, "aws_elasticache_cluster") ||
               !strcmp(type, "aws_elasticache_replication_group")) {
        *name = engine_name(str(doc, "engine") ? str(doc, "engine") : "redis");
        *version = str(doc, "engine_version");
    } else if (!strcmp(type, "aws_mq_broker")) {
        *name = engine_name(str(doc, "engine_type"));
        *version = str(doc, "engine_version");
    } else if (!strcmp(type, "aws_msk_cluster")) {
        *name = "kafka";
        *version = str(doc, "kafka_version");
    } else if (!strcmp(type, "aws_opensearch_domain") ||
               !strcmp(type, "aws_elasticsearch_domain")) {
        const char *v = str(doc, "engine_version");
        if (!strcmp(type, "aws_elasticsearch_domain")) {
            *name = "elasticsearch";
            *version = str(doc, "elasticsearch_version");
        } else if (v && !strncmp(v, "Elasticsearch_", 14)) {
            *name = "elasticsearch";
            *version = v + 14;
        } else {
            *name = "opensearch";
            *version = v && !strncmp(v, "OpenSearch_", 11) ? v + 11 : v;
        }
    } else if (!strcmp(type, "google_sql_database_instance")) {
        const char *v = str(doc, "database_version");
        *name = !v                              ? NULL
                : !strncmp(v, "POSTGRES_", 9)   ? "postgres"
                : !strncmp(v, "MYSQL_", 6)      ? "mysql"
                : !strncmp(v, "SQLSERVER_", 10) ? "sqlserver"
                                                : NULL;
        *version = underscore_version(v, vbuf, vbufsz);
    } else if (!strcmp(type, "google_redis_instance")) {
        *name = "redis";
        *version = underscore_version(str(doc, "redis_version"), vbuf, vbufsz);
    } else if (!strcmp(type, "azurerm_postgresql_flexible_server") ||
               !strcmp(type, "azurerm_postgresql_server")) {
        *name = "postgres";
        *version = str(doc, "version");
    } else if (!strcmp(type, "azurerm_mysql_flexible_server")) {
        *name = "mysql";
        *version = str(doc, "version");
    } else if (!strcmp(type, "azurerm_redis_cache")) {
        *name = "redis";
        *version = str(doc, "redis_version");
    } else if (str(doc, "engine")) {
        /* flat exports of other managed services that follow the RDS shape */
        *name = engine_name(str(doc, "engine"));
        *version = str(doc, "engine_version");
    }
    return *name != NULL;
}

/* ---- subjects -------------------------------------------------------------------------- */

static void fill_from_tags(struct policy_input *in, const json_t *tags)
{
    const json_t *t;
    in->team = json_string_value(json_object_get(tags, "team"));
    in->env = json_string_value(json_object_get(tags, "env"));
    if (!in->env)
        in->env = json_string_value(json_object_get(tags, "environment"));
    t = json_object_get(tags, "tier");
    const char *s = json_string_value(t);
    if (s && s[0] >= '1' && s[0] <= '4' && !s[1])
        in->tier = s[0] - '0';
    else if (json_is_integer(t) && json_integer_value(t) >= 1 && json_integer_value(t) <= 4)
        in->tier = (int)json_integer_value(t);
}

static int each_manifest(const char *name, const char *text, size_t len, policy_subject_fn fn,
                         void *arg, struct core_err *err)
{
    struct catalog_manifest m;
    struct schema_diags diags;
    struct core_buf txt;
    json_error_t jerr;
    json_t *doc = NULL;
    int rc;

    schema_diags_init(&diags);
    core_buf_init(&txt, 4096);
    rc = catalog_manifest_parse(name, text, len, &m, &diags, err);
    if (rc == CORE_E_INVAL) {
        schema_diags_format(&diags, &txt);
        core_err_set(err, rc, "%s", txt.data);
        goto out;
    }
    if (rc)
        goto out;
    if (!(doc = json_loads(m.json, 0, &jerr))) {
        rc = core_err_set(err, CORE_E_NOMEM, "%s: cannot load the manifest JSON", name);
        goto out;
    }
    struct policy_input in = {
        .subject = POLICY_SUBJECT_SERVICE, .gate = POLICY_GATE_CHECK, .name = m.name,
        .team = m.team, .tier = m.tier, .doc = doc, .now_ms = core_now_ms(),
    };
    in.env = json_string_value(json_object_get(json_object_get(json_object_get(doc, "metadata"),
                                                               "tags"), "env"));
    rc = fn(arg, &in);
out:
    json_decref(doc);
    core_buf_release(&txt);
    schema_diags_release(&diags);
    catalog_manifest_release(&m);
    return rc;
}

struct tf_walk {
    policy_subject_fn fn;
    void *arg;
    int64_t now;
    int depth;
};

/* tags_all (provider default tags included) overlaid with the resource's own tags */
static json_t *merged_tags(const json_t *values)
{
    json_t *all = json_object_get(values, "tags_all");
    json_t *own = json_object_get(values, "tags");
    json_t *t = json_is_object(all) ? json_copy(all) : json_object();
    if (t && json_is_object(own))
        json_object_update(t, own);
    return t;
}

static int tf_module(struct tf_walk *w, const json_t *mod, struct core_err *err)
{
    size_t i;
    json_t *r;
    int rc = 0;
    if (++w->depth > 64)
        return core_err_set(err, CORE_E_INVAL, "terraform plan: modules nested too deeply");
    json_array_foreach(json_object_get(mod, "resources"), i, r)
    {
        const char *mode = str(r, "mode");
        if (!json_is_object(r) || (mode && strcmp(mode, "managed") != 0))
            continue; /* data sources are reads, not resources */
        json_t *values = json_object_get(r, "values");
        json_t *doc = json_is_object(values) ? json_copy(values) : json_object();
        json_t *tags = merged_tags(values);
        if (!doc || !tags) {
            json_decref(doc);
            json_decref(tags);
            return core_err_set(err, CORE_E_NOMEM, "terraform plan: out of memory");
        }
        const char *keys[] = {"address", "type", "name", "provider_name", "index"};
        const char *as[] = {"address", "type", "resource_name", "provider", "index"};
        for (size_t k = 0; k < 5; k++) {
            json_t *v = json_object_get(r, keys[k]);
            if (v)
                json_object_set(doc, as[k], v);
        }
        json_t *maddr = json_object_get(mod, "address");
        if (maddr)
            json_object_set(doc, "module", maddr);
        json_object_set_new(doc, "tags", tags);
        struct policy_input in = {
            .subject = POLICY_SUBJECT_RESOURCE, .gate = POLICY_GATE_CHECK,
            .name = str(r, "address"), .doc = doc, .now_ms = w->now,
        };
        fill_from_tags(&in, tags);
        rc = w->fn(w->arg, &in);
        json_decref(doc);
        if (rc)
            return rc;
    }
    json_array_foreach(json_object_get(mod, "child_modules"), i, r)
    {
        if ((rc = tf_module(w, r, err)))
            return rc;
    }
    w->depth--;
    return 0;
}

static int each_resource(const json_t *rows, policy_subject_fn fn, void *arg,
                         struct core_err *err)
{
    size_t i;
    json_t *r;
    int64_t now = core_now_ms();
    char idx[48];
    json_array_foreach(rows, i, r)
    {
        if (!json_is_object(r))
            return core_err_set(err, CORE_E_INVAL, "resources[%zu]: expected an object", i);
        const char *name = str(r, "address");
        if (!name)
            name = str(r, "arn");
        if (!name)
            name = str(r, "id");
        if (!name)
            name = str(r, "name");
        if (!name) {
            snprintf(idx, sizeof(idx), "resources[%zu]", i);
            name = idx;
        }
        struct policy_input in = {
            .subject = POLICY_SUBJECT_RESOURCE, .gate = POLICY_GATE_CHECK, .name = name,
            .doc = r, .now_ms = now,
        };
        fill_from_tags(&in, json_object_get(r, "tags"));
        int rc = fn(arg, &in);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- streaming flat exports ------------------------------------------------------------ */

static size_t skip_ws(const char *t, size_t len, size_t i)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

/* Parses one JSON value at text[*pos] (anything may follow it) and moves *pos past it. */
static json_t *load_at(const char *file, const char *text, size_t len, size_t *pos,
                       struct core_err *err)
{
    json_error_t jerr;
    json_t *v = json_loadb(text + *pos, len - *pos,
                           JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                           &jerr);
    if (!v) {
        core_err_set(err, CORE_E_INVAL, "%s: byte %zu: %s", file, *pos + (size_t)jerr.position,
                     jerr.text);
        return NULL;
    }
    *pos += (size_t)jerr.position;
    return v;
}

/*
 * A quicker reader for export rows: it builds exactly the jansson values json_loadb() would, but
 * scans with plain loops instead of jansson's per-character lexer (which was half the engine's
 * time on a large export). It declines (returns NULL, nothing kept) anything it does not handle
 * the same way — \u escapes, control characters, invalid UTF-8, integers of more than 18 digits,
 * long or overflowing reals, duplicate keys, nesting deeper than FAST_DEPTH, and every syntax
 * error — and the caller then asks json_loadb(), which gives the same value or the same error.
 */
#define FAST_DEPTH 64

struct fast {
    const char *p, *end;
    int depth;
};

static void fast_ws(struct fast *f)
{
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\t' || *f->p == '\r'))
        f->p++;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid. */
static size_t fast_utf8(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp, min;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1fu, min = 0x80;
    else if ((p[0] & 0xf0) == 0xe0)
        len = 3, cp = p[0] & 0x0fu, min = 0x800;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07u, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : len;
}

/* A string at f->p (on its '"'). Without escapes *s points into the text; with simple ones it is
 * decoded into tmp (*s = tmp). returns: false to decline. */
static bool fast_string(struct fast *f, const char **s, size_t *n, char *tmp, size_t tmpsz)
{
    const unsigned char *p = (const unsigned char *)f->p + 1;
    const unsigned char *end = (const unsigned char *)f->end;
    const unsigned char *start = p;
    size_t o = 0;
    bool escaped = false;
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') {
            if (escaped) {
                *s = tmp;
                *n = o;
            } else {
                *s = (const char *)start;
                *n = (size_t)(p - start);
            }
            f->p = (const char *)p + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (!escaped) {
                size_t k = (size_t)(p - start);
                if (k >= tmpsz)
                    return false;
                memcpy(tmp, start, k);
                o = k;
                escaped = true;
            }
            if (p + 1 >= end || o + 1 >= tmpsz)
                return false;
            switch (p[1]) {
            case '"': tmp[o++] = '"'; break;
            case '\\': tmp[o++] = '\\'; break;
            case '/': tmp[o++] = '/'; break;
            case 'b': tmp[o++] = '\b'; break;
            case 'f': tmp[o++] = '\f'; break;
            case 'n': tmp[o++] = '\n'; break;
            case 'r': tmp[o++] = '\r'; break;
            case 't': tmp[o++] = '\t'; break;
            default: return false; /* \u and invalid escapes */
            }
            p += 2;
            continue;
        }
        size_t l = 1;
        if (c >= 0x80 && !(l = fast_utf8(p, (size_t)(end - p))))
            return false;
        if (escaped) {
            if (o + l >= tmpsz)
                return false;
            memcpy(tmp + o, p, l);
            o += l;
        }
        p += l;
    }
    return false;
}

static json_t *fast_number(struct fast *f)
{
    const char *p = f->p, *end = f->end, *start = p;
    bool real = false;
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    if (*p == '0')
        p++;
    else
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    if (p < end && *p == '.') {
        real = true;
        if (++p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - start);
    f->p = p;
    if (!real) {
        const char *d = start + (*start == '-');
        if (p - d > 18)
            return NULL; /* may overflow: jansson decides */
        long long v = 0;
        for (; d < p; d++)
            v = v * 10 + (*d - '0');
        return json_integer(*start == '-' ? -v : v);
    }
    char buf[64];
    if (n >= sizeof(buf))
        return NULL;
    memcpy(buf, start, n);
    buf[n] = 0;
    double v = strtod(buf, NULL);
    return isinf(v) ? NULL : json_real(v);
}

static json_t *fast_value(struct fast *f)
{
    char tmp[512];
    const char *s;
    size_t n;
    fast_ws(f);
    if (f->p >= f->end)
        return NULL;
    switch (*f->p) {
    case '"':
        return fast_string(f, &s, &n, tmp, sizeof(tmp)) ? json_stringn_nocheck(s, n) : NULL;
    case '{': {
        if (++f->depth > FAST_DEPTH)
            return NULL;
        json_t *o = json_object();
        f->p++;
        fast_ws(f);
        if (f->p < f->end && *f->p == '}') {
            f->p++;
            f->depth--;
            return o;
        }
        while (o) {
            fast_ws(f);
            json_t *v = NULL;
            if (f->p >= f->end || *f->p != '"' ||
                !fast_string(f, &s, &n, tmp, sizeof(tmp)) || json_object_getn(o, s, n))
                break;
            /* s may point into tmp: the value's parse has its own (one frame down) */
            fast_ws(f);
            if (f->p >= f->end || *f->p != ':')
                break;
            f->p++;
            if (!(v = fast_value(f)))
                break;
            if (json_object_setn_new_nocheck(o, s, n, v))
                break;
            fast_ws(f);
            if (f->p < f->end && *f->p == ',') {
                f->p++;
                continue;
            }
            if (f->p < f->end && *f->p == '}') {
                f->p++;
                f->depth--;
                return o;
            }
            break;
        }
        json_decref(o);
        return NULL;
    }
    case '[': {
        if (++f->depth > FAST_DEPTH)
            return NULL;
        json_t *a = json_array();
        f->p++;
        fast_ws(f);
        if (f->p < f->end && *f->p == ']') {
            f->p++;
            f->depth--;
            return a;
        }
        while (a) {
            json_t *v = fast_value(f);
            if (!v || json_array_append_new(a, v))
                break;
            fast_ws(f);
            if (f->p < f->end && *f->p == ',') {
                f->p++;
                continue;
            }
            if (f->p < f->end && *f->p == ']') {
                f->p++;
                f->depth--;
                return a;
            }
            break;
        }
        json_decref(a);
        return NULL;
    }
    case 't':
        if (f->end - f->p >= 4 && !memcmp(f->p, "true", 4)) {
            f->p += 4;
            return json_true();
        }
        return NULL;
    case 'f':
        if (f->end - f->p >= 5 && !memcmp(f->p, "false", 5)) {
            f->p += 5;
            return json_false();
        }
        return NULL;
    case 'n':
        if (f->end - f->p >= 4 && !memcmp(f->p, "null", 4)) {
            f->p += 4;
            return json_null();
        }
        return NULL;
    default:
        return fast_number(f);
    }
}

/* Reads the rows of a resource list one at a time, from just after its '['. */
struct reader {
    const char *file, *text;
    size_t len, i, n;
    bool done;
    int rc_after; /* an error found after the last row was returned */
    struct core_err err;
};

/* returns: 0 with *out (NULL after the last row), or CORE_E_INVAL with rd->err */
static int reader_next(struct reader *rd, json_t **out)
{
    *out = NULL;
    if (rd->rc_after)
        return rd->rc_after;
    if (rd->done)
        return 0;
    if (rd->n == 0 && rd->i < rd->len && rd->text[rd->i] == ']') {
        rd->done = true;
        return 0;
    }
    json_t *r = NULL;
    if (rd->i < rd->len && rd->text[rd->i] == '{') {
        struct fast f = {.p = rd->text + rd->i, .end = rd->text + rd->len};
        if ((r = fast_value(&f)))
            rd->i = (size_t)(f.p - rd->text);
    }
    if (!r && !(r = load_at(rd->file, rd->text, rd->len, &rd->i, &rd->err)))
        return CORE_E_INVAL;
    if (!json_is_object(r)) {
        json_decref(r);
        return core_err_set(&rd->err, CORE_E_INVAL, "%s: resources[%zu]: expected an object",
                            rd->file, rd->n);
    }
    rd->n++;
    rd->i = skip_ws(rd->text, rd->len, rd->i);
    if (rd->i < rd->len && rd->text[rd->i] == ',')
        rd->i = skip_ws(rd->text, rd->len, rd->i + 1);
    else if (rd->i < rd->len && rd->text[rd->i] == ']')
        rd->done = true; /* whatever follows the list (other keys, the brace) is not checked */
    else
        rd->rc_after = core_err_set(&rd->err, CORE_E_INVAL,
                                    "%s: byte %zu: expected ',' or ']' after a resource",
                                    rd->file, rd->i);
    *out = r;
    return 0;
}

/*
 * A flat export read one row at a time: a resource is parsed, evaluated and freed before the
 * next, so 100 000 rows never sit in memory as one tree (that tree, not the checks, used to be
 * most of the time). Handles a top-level array and {"resources": [...]} (other keys skipped).
 * returns: 0, CORE_E_INVAL, CORE_E_NOTFOUND (not this shape: the caller loads the whole
 * document), or what fn returned.
 */
static int stream_resources(const char *file, const char *text, size_t len, policy_subject_fn fn,
                            void *arg, struct core_err *err)
{
    size_t i = skip_ws(text, len, 0);
    bool in_object = i < len && text[i] == '{';
    int64_t now = core_now_ms();
    char idx[48];
    if (in_object) {
        /* find "resources" among the top-level keys */
        i = skip_ws(text, len, i + 1);
        for (;;) {
            if (i >= len || text[i] != '"')
                return CORE_E_NOTFOUND;
            json_t *key = load_at(file, text, len, &i, err);
            if (!key)
                return CORE_E_INVAL;
            bool is_res = json_is_string(key) && !strcmp(json_string_value(key), "resources");
            json_decref(key);
            i = skip_ws(text, len, i);
            if (i >= len || text[i] != ':')
                return CORE_E_NOTFOUND;
            i = skip_ws(text, len, i + 1);
            if (is_res)
                break;
            json_t *skip = load_at(file, text, len, &i, err);
            if (!skip)
                return CORE_E_INVAL;
            json_decref(skip);
            i = skip_ws(text, len, i);
            if (i < len && text[i] == ',')
                i = skip_ws(text, len, i + 1);
        }
    }
    if (i >= len || text[i] != '[')
        return CORE_E_NOTFOUND;
    struct reader rd = {.file = file, .text = text, .len = len, .i = skip_ws(text, len, i + 1)};
    int rc = 0;
    for (size_t n = 0;; n++) {
        json_t *r;
        if ((rc = reader_next(&rd, &r))) {
            if (err)
                *err = rd.err;
            break;
        }
        if (!r)
            break;
        const char *name = str(r, "address");
        if (!name)
            name = str(r, "arn");
        if (!name)
            name = str(r, "id");
        if (!name)
            name = str(r, "name");
        if (!name) {
            snprintf(idx, sizeof(idx), "resources[%zu]", n);
            name = idx;
        }
        struct policy_input in = {
            .subject = POLICY_SUBJECT_RESOURCE, .gate = POLICY_GATE_CHECK, .name = name,
            .doc = r, .now_ms = now,
        };
        fill_from_tags(&in, json_object_get(r, "tags"));
        rc = fn(arg, &in);
        json_decref(r);
        if (rc)
            break;
    }
    return rc;
}

int policy_inventory_each(const char *name, const char *text, size_t len,
                          enum policy_inventory kind, policy_subject_fn fn, void *arg,
                          struct core_err *err)
{
    const char *file = name ? name : "<input>";
    size_t i = 0;
    json_t *root = NULL;
    json_error_t jerr;
    int rc;

    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    bool is_json = i < len && (text[i] == '{' || text[i] == '[');
    if (kind == POLICY_INV_MANIFEST || (kind == POLICY_INV_AUTO && !is_json))
        return each_manifest(file, text, len, fn, arg, err);
    if (kind == POLICY_INV_RESOURCES || (kind == POLICY_INV_AUTO && text[i] == '[') ||
        (kind == POLICY_INV_AUTO && len - i > 16 && memmem(text + i, 64 < len - i ? 64 : len - i,
                                                         "\"resources\"", 11))) {
        rc = stream_resources(file, text, len, fn, arg, err);
        if (rc != CORE_E_NOTFOUND)
            return rc;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return core_err_set(err, CORE_E_INVAL, "%s:%d:%d: %s", file, jerr.line, jerr.column,
                            jerr.text);
    if (kind == POLICY_INV_AUTO) {
        if (json_is_array(root) || json_is_array(json_object_get(root, "resources")))
            kind = POLICY_INV_RESOURCES;
        else if (json_object_get(root, "planned_values") ||
                 json_object_get(root, "terraform_version"))
            kind = POLICY_INV_TERRAFORM;
        else if (json_object_get(root, "apiVersion") && json_object_get(root, "kind"))
            kind = POLICY_INV_MANIFEST;
    }
    switch (kind) {
    case POLICY_INV_MANIFEST:
        rc = each_manifest(file, text, len, fn, arg, err);
        break;
    case POLICY_INV_TERRAFORM: {
        struct tf_walk w = {.fn = fn, .arg = arg, .now = core_now_ms()};
        json_t *mod = json_object_get(json_object_get(root, "planned_values"), "root_module");
        rc = json_is_object(mod) ? tf_module(&w, mod, err) : 0;
        break;
    }
    case POLICY_INV_RESOURCES: {
        json_t *rows = json_is_array(root) ? root : json_object_get(root, "resources");
        rc = json_is_array(rows) ? each_resource(rows, fn, arg, err)
                                 : core_err_set(err, CORE_E_INVAL,
                                                "%s: expected a list of resources", file);
        break;
    }
    default:
        rc = core_err_set(err, CORE_E_INVAL,
                          "%s: not a manifest, Terraform plan or resource export (expected "
                          "planned_values, a JSON array or {\"resources\": [...]})",
                          file);
    }
    json_decref(root);
    return rc;
}
