/* /api/v1 routes of the log store: what `pave logs` reads (docs/telemetry.md).
 *
 * GET /api/v1/services/{name}/logs?env=&since=&until=&level=&grep=&limit=&follow=1 answers
 * the service's records from DATA/telemetry/store as ndjson (standard JSON lines, oldest
 * first). With follow the response stays open: after the first answer the stream asks the
 * store for lines after its cursor on every server tick (parked in between, holding no
 * thread) until the client goes away or the server stops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "telemetry/telemetry.h"

#define LIMIT_DEFAULT 1000
#define LIMIT_MAX 100000
#define FIRST_MAX (64u << 20)  /* the first answer; older lines beyond it are cut */
#define FOLLOW_STEP (1u << 20) /* lines gathered per follow read */

struct logs_stream {
    struct api_server *srv;
    struct MHD_Connection *conn;
    char dir[4200];
    char service[256], env[256], grep[512];
    struct tel_store_query q;
    struct tel_store_cursor cur;
    struct core_buf pending; /* lines not yet handed to MHD */
    size_t sent;             /* bytes of pending already handed out */
    bool follow;
};

static int gather(void *arg, const struct tel_store_row *row)
{
    struct logs_stream *ls = arg;
    if (core_buf_add(&ls->pending, row->line, row->len) || core_buf_addc(&ls->pending, '\n'))
        return ls->follow ? 1 : 0; /* follow: stop here, the cursor says where */
    ls->cur = row->at;
    return ls->pending.len >= FOLLOW_STEP && ls->follow ? 1 : 0;
}

static ssize_t logs_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct logs_stream *ls = cls;
    (void)pos;
    if (ls->sent == ls->pending.len && ls->follow) {
        core_buf_clear(&ls->pending);
        ls->sent = 0;
        ls->pending.max = FIRST_MAX; /* one line always fits */
        struct tel_store_query q = ls->q;
        q.limit = 0;
        q.has_after = true;
        q.after = ls->cur;
        struct tel_store_cursor end = ls->cur;
        q.end = &end;
        struct core_err err = {0};
        int rc = tel_store_query(ls->dir, &q, gather, ls, &err);
        if (rc == 0)
            ls->cur = end; /* everything read: move past non-matching lines too */
        else if (rc < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (ls->sent < ls->pending.len) {
        size_t n = ls->pending.len - ls->sent;
        if (n > max)
            n = max;
        memcpy(buf, ls->pending.data + ls->sent, n);
        ls->sent += n;
        return (ssize_t)n;
    }
    if (!ls->follow)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (!api_stream_park(ls->srv, ls->conn))
        return MHD_CONTENT_READER_END_OF_STREAM;
    return 0;
}

static void logs_free(void *cls)
{
    struct logs_stream *ls = cls;
    core_buf_release(&ls->pending);
    core_free(ls);
}

static bool truthy(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

/* Parses since/until; replies 400 and returns false on a bad value. */
static bool query_time(struct api_req *r, const char *key, int64_t now, int64_t *out)
{
    char v[64];
    *out = 0;
    if (!api_query(r, key, v, sizeof(v)) || !*v)
        return true;
    if (tel_store_parse_time(v, now, out) == 0)
        return true;
    char msg[200];
    snprintf(msg, sizeof(msg), "'%s' must be a duration back from now (15m, 2h, 7d) or an "
                               "RFC 3339 time",
             key);
    api_reply_error(r, CORE_E_INVAL, msg, NULL);
    return false;
}

static void h_service_logs(struct api_req *r)
{
    const char *name = r->params[0];
    struct catalog_service s;
    struct core_err err = {0};
    if (!core_is_dns_label(name)) {
        api_reply_error(r, CORE_E_INVAL, "invalid service name", NULL);
        return;
    }
    if (catalog_service_get(api_ctx(r)->cat, name, &s, &err)) {
        api_reply_err(r, &err);
        return;
    }
    catalog_service_release(&s);
    struct logs_stream *ls = core_calloc(1, sizeof(*ls));
    if (!ls) {
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    core_buf_init(&ls->pending, FIRST_MAX);
    ls->srv = api_server_of(r);
    ls->conn = r->conn;
    tel_store_dir(api_ctx(r)->data_dir, ls->dir, sizeof(ls->dir));
    snprintf(ls->service, sizeof(ls->service), "%s", name);
    ls->q.service = ls->service;

    char v[64];
    int64_t now = core_now_ms() * 1000000;
    if (!query_time(r, "since", now, &ls->q.since_ns) ||
        !query_time(r, "until", now, &ls->q.until_ns))
        goto fail;
    if (api_query(r, "env", ls->env, sizeof(ls->env)) && ls->env[0])
        ls->q.env = ls->env;
    if (api_query(r, "grep", ls->grep, sizeof(ls->grep)) && ls->grep[0])
        ls->q.grep = ls->grep;
    if (api_query(r, "level", v, sizeof(v)) && v[0]) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        ls->q.min_severity = end && !*end && n > 0 && n <= 24 ? (int)n
                                                             : tel_severity_parse(v, strlen(v));
        if (!ls->q.min_severity) {
            api_reply_error(r, CORE_E_INVAL,
                            "'level' must be trace, debug, info, warn, error or fatal", NULL);
            goto fail;
        }
    }
    ls->q.limit = LIMIT_DEFAULT;
    if (api_query(r, "limit", v, sizeof(v)) && v[0]) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (!end || *end || n < 1 || n > LIMIT_MAX) {
            api_reply_error(r, CORE_E_INVAL, "'limit' must be from 1 to 100000", NULL);
            goto fail;
        }
        ls->q.limit = (size_t)n;
    }
    ls->follow = truthy(api_query(r, "follow", v, sizeof(v)));

    /* the first answer: the newest `limit` matches, and where following goes on from */
    struct tel_store_query q = ls->q;
    q.end = &ls->cur;
    bool follow = ls->follow;
    ls->follow = false; /* gather keeps going (and cuts at FIRST_MAX) */
    int rc = tel_store_query(ls->dir, &q, gather, ls, &err);
    ls->follow = follow;
    if (rc) {
        api_reply_err(r, &err);
        goto fail;
    }
    r->resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, logs_read, ls,
                                                logs_free);
    if (!r->resp) {
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        goto fail;
    }
    MHD_add_response_header(r->resp, "Content-Type", "application/x-ndjson");
    MHD_add_response_header(r->resp, "Cache-Control", "no-store");
    r->status = 200;
    return;
fail:
    logs_free(ls);
}

const struct api_route api_logs_routes[] = {
    {"GET", "/api/v1/services/{name}/logs", h_service_logs, true, false},
};
const size_t api_logs_nroutes = sizeof(api_logs_routes) / sizeof(api_logs_routes[0]);
