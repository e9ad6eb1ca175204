/* /api/v1 routes that feed the telemetry pipeline: HTTP JSON ingest (docs/telemetry.md).
 *
 * POST /api/v1/logs?service=S[&env=E] takes newline-delimited JSON or plain lines, or one JSON
 * array whose objects and strings each become a line. The caller must be an admin or in the
 * service's team. Lines are pushed without blocking: a full pipeline answers 429. */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "telemetry/telemetry.h"

static void reply_status(struct api_req *r, int status, const char *code, const char *msg)
{
    api_reply_json(r, status,
                   json_pack("{s:{s:s,s:s,s:[]}}", "error", "code", code, "message", msg,
                             "details"));
}

/* Appends one array element as one line. Strings with line breaks become {"message": ..} so
 * they stay one record. returns: false on out of memory / too big. */
static bool add_element(struct core_buf *out, json_t *v, size_t *n)
{
    char *text = NULL;
    const char *s = json_string_value(v);
    if (s && !strpbrk(s, "\r\n")) {
        if (!*s)
            return true;
        if (core_buf_adds(out, s) || core_buf_addc(out, '\n'))
            return false;
        (*n)++;
        return true;
    }
    if (s) {
        json_t *o = json_pack("{s:s}", "message", s);
        text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
    } else {
        /* objects and anything else: compact JSON has no raw line breaks */
        text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    bool ok = text && core_buf_adds(out, text) == 0 && core_buf_addc(out, '\n') == 0;
    free(text);
    if (ok)
        (*n)++;
    return ok;
}

/* Counts the lines the engine will take (it skips empty ones). */
static size_t count_lines(const char *p, size_t len)
{
    size_t n = 0;
    const char *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = (size_t)((nl ? nl : end) - p);
        if (l && p[l - 1] == '\r')
            l--;
        n += l > 0;
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* POST /api/v1/logs?service=S&env=E */
static void h_ingest(struct api_req *r)
{
    char service[128], env[128];
    const char *svc = api_query(r, "service", service, sizeof(service));
    const char *en = api_query(r, "env", env, sizeof(env));
    if (!svc || !core_is_dns_label(svc)) {
        api_reply_error(r, CORE_E_INVAL, "query parameter 'service' (a service name) is required",
                        NULL);
        return;
    }
    if (en && !*en)
        en = NULL;
    if (en && !core_is_dns_label(en)) {
        api_reply_error(r, CORE_E_INVAL, "query parameter 'env' must be an environment name",
                        NULL);
        return;
    }
    struct tel_engine *tel = api_ctx(r)->telemetry;
    if (!tel || !tel_engine_accepts_http(tel)) {
        reply_status(r, 503, "unavailable",
                     "log ingest is not enabled on this server (add a source of type http to "
                     "the telemetry config)");
        return;
    }
    struct core_err err = {0};
    struct catalog_service s = {0};
    if (catalog_service_get(api_ctx(r)->cat, svc, &s, &err)) {
        api_reply_err(r, &err);
        return;
    }
    if (!api_can_change_team(r, s.team)) {
        catalog_service_release(&s);
        api_reply_error(r, CORE_E_PERM, "only the service's team or an admin may send its logs",
                        NULL);
        return;
    }
    struct core_buf lines;
    core_buf_init(&lines, 0);
    const char *data = r->body.data;
    size_t len = r->body.len, n = 0;
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    json_t *arr = NULL;
    if (i < len && data[i] == '[') {
        /* a JSON array, unless it does not parse: then "[INFO] ..." is a plain line */
        json_error_t jerr;
        arr = json_loadb(data, len, 0, &jerr);
        if (arr && !json_is_array(arr)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (arr) {
        size_t k;
        json_t *v;
        bool ok = true;
        json_array_foreach(arr, k, v) {
            if (ok)
                ok = add_element(&lines, v, &n);
        }
        json_decref(arr);
        if (!ok) {
            core_buf_release(&lines);
            catalog_service_release(&s);
            api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
            return;
        }
        data = lines.data;
        len = lines.len;
    } else {
        n = count_lines(data, len);
    }
    int rc = n ? tel_engine_ingest_http(tel, svc, en, s.team, data, len, &err) : 0;
    core_buf_release(&lines);
    catalog_service_release(&s);
    if (rc == CORE_E_TOO_BIG)
        reply_status(r, 429, "too_many_requests",
                     "the telemetry pipeline is full; retry later");
    else if (rc == CORE_E_UNSUPPORTED)
        reply_status(r, 503, "unavailable", "log ingest is not enabled on this server");
    else if (rc)
        api_reply_err(r, &err);
    else
        api_reply_json(r, 202, json_pack("{s:I}", "accepted", (json_int_t)n));
}

const struct api_route api_ingest_routes[] = {
    {"POST", "/api/v1/logs", h_ingest, true, false},
};
const size_t api_ingest_nroutes = sizeof(api_ingest_routes) / sizeof(api_ingest_routes[0]);
