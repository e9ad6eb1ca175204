/* Sinks that POST batches over HTTP with libcurl (one easy handle per sink, reused so the
 * connection stays open, guarded by a mutex):
 *
 *  - `loki`: Grafana Loki's push API, POST {url}/loki/api/v1/push with
 *    {"streams":[{"stream":{labels},"values":[["<ns>","<line>"],...]}]}. Labels: service, env,
 *    team, severity (lowercase; empty ones omitted) plus static `labels` from the config; one
 *    stream per distinct label set of the batch.
 *  - `http`: POST the standard lines to `url` as ndjson (default) or a JSON array
 *    (`format: json`), with optional `headers`.
 *  - `elasticsearch`: POST {url}/_bulk, an {"index":{"_index":...}} action before each line;
 *    `index` is a strftime pattern over the event's UTC time (default pave-logs-%Y.%m.%d). A
 *    bulk answer with "errors": true rejects the whole batch (it goes to the dead-letter file:
 *    items that did go in are then also in the dead letters; replaying is at-least-once).
 *
 * Answers: 2xx delivered; 408, 429, 5xx and transport errors are retried (engine backoff);
 * any other answer rejects the batch for good with the server's message. Timeout 10 s unless
 * `timeout` says otherwise. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "telemetry/telemetry_int.h"

#define RESP_MAX (64u << 10)
#define BODY_MAX (64u << 20)

enum hkind { H_LOKI = 1, H_HTTP, H_ES };

struct label {
    char *name, *value;
};

struct hsink {
    enum hkind kind;
    char *url;   /* the full endpoint */
    char *shown; /* the same without user:password@, for messages and logs */
    char *index;
    bool json_array;
    long timeout_ms;
    struct label *labels;
    size_t nlabels;
    struct curl_slist *hdrs;
    CURL *curl;
    pthread_mutex_t mu;
    struct core_buf resp;
};

/* ---- configuration ---------------------------------------------------------------------- */

static bool label_name_ok(const char *s)
{
    if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static bool header_ok(const char *s, bool value)
{
    if (!value && !*s)
        return false;
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || (!value && (*s == ':' || *s == ' ')))
            return false;
    return true;
}

static void hsink_free(struct hsink *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nlabels; i++) {
        core_free(h->labels[i].name);
        core_free(h->labels[i].value);
    }
    core_free(h->labels);
    core_free(h->url);
    core_free(h->shown);
    core_free(h->index);
    curl_slist_free_all(h->hdrs);
    if (h->curl)
        curl_easy_cleanup(h->curl);
    core_buf_release(&h->resp);
    pthread_mutex_destroy(&h->mu);
    core_free(h);
}

/* curl_global_init is not thread safe in older libcurl: run it once, before any handle */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int http_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                       struct core_err *err, enum hkind kind)
{
    static const char *const loki_keys[] = {"type", "name",    "when",    "buffer",
                                            "url",  "labels",  "headers", "timeout", NULL};
    static const char *const http_keys[] = {"type", "name",    "when",    "buffer",
                                            "url",  "format",  "headers", "timeout", NULL};
    static const char *const es_keys[] = {"type", "name",  "when",    "buffer",
                                          "url",  "index", "headers", "timeout", NULL};
    const char *what = kind == H_LOKI ? "the loki sink"
                       : kind == H_ES ? "the elasticsearch sink"
                                      : "the http sink";
    int rc = tel_cfg_keys(e, cfg, what,
                          kind == H_LOKI ? loki_keys : kind == H_ES ? es_keys : http_keys, err);
    const char *url = NULL, *format = NULL, *index = NULL;
    int64_t timeout = 0;
    if (!rc)
        rc = tel_cfg_str(e, cfg, "url", NULL, &url, err);
    if (!rc)
        rc = tel_cfg_int(e, cfg, "timeout", TEL_CFG_MS, 100, 600000, 10000, &timeout, err);
    if (!rc && kind == H_HTTP)
        rc = tel_cfg_str(e, cfg, "format", "ndjson", &format, err);
    if (!rc && kind == H_ES)
        rc = tel_cfg_str(e, cfg, "index", "pave-logs-%Y.%m.%d", &index, err);
    if (rc)
        return rc;
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return tel_cfg_error(e, url ? core_node_get(cfg, "url") : cfg, err,
                             "%s needs a url (http:// or https://)", what);
    if (format && strcmp(format, "ndjson") != 0 && strcmp(format, "json") != 0)
        return tel_cfg_error(e, core_node_get(cfg, "format"), err,
                             "format must be ndjson or json, not '%s'", format);
    if (index && (!*index || strlen(index) > 200))
        return tel_cfg_error(e, core_node_get(cfg, "index"), err, "index must be a name");

    struct hsink *h = core_calloc(1, sizeof(*h));
    if (!h)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    pthread_mutex_init(&h->mu, NULL);
    core_buf_init(&h->resp, RESP_MAX);
    h->kind = kind;
    h->timeout_ms = (long)timeout;
    h->json_array = format && strcmp(format, "json") == 0;
    size_t ul = strlen(url);
    while (ul > 8 && url[ul - 1] == '/' && kind != H_HTTP)
        ul--;
    const char *suffix = kind == H_LOKI ? "/loki/api/v1/push" : kind == H_ES ? "/_bulk" : "";
    h->url = core_malloc(ul + strlen(suffix) + 1);
    if (h->url) {
        memcpy(h->url, url, ul);
        strcpy(h->url + ul, suffix);
    }
    h->index = index ? core_strdup(index) : NULL;
    if (h->url) {
        const char *host = strstr(h->url, "://") + 3;
        const char *at = strchr(host, '@'), *slash = strchr(host, '/');
        if (at && (!slash || at < slash)) {
            size_t scheme = (size_t)(host - h->url);
            h->shown = core_malloc(strlen(h->url) + 1);
            if (h->shown) {
                memcpy(h->shown, h->url, scheme);
                strcpy(h->shown + scheme, at + 1);
            }
        } else {
            h->shown = core_strdup(h->url);
        }
    }
    if (!h->url || !h->shown || (index && !h->index)) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto fail;
    }
    const struct core_node *labels = core_node_get(cfg, "labels");
    if (labels) {
        if (labels->kind != CORE_NODE_MAP) {
            rc = tel_cfg_error(e, labels, err, "labels must be a map of name: value");
            goto fail;
        }
        h->labels = core_calloc(labels->n + 1, sizeof(*h->labels));
        for (size_t i = 0; h->labels && i < labels->n; i++) {
            const struct core_node *v = labels->items[i];
            if (!label_name_ok(labels->keys[i]) || v->kind != CORE_NODE_SCALAR) {
                rc = tel_cfg_error(e, labels->key_nodes[i], err,
                                   "label '%s' needs a name of [a-zA-Z0-9_] and a string value",
                                   labels->keys[i]);
                goto fail;
            }
            h->labels[h->nlabels].name = core_strdup(labels->keys[i]);
            h->labels[h->nlabels++].value = core_strdup(v->value);
        }
        if (!h->labels) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    const struct core_node *hdrs = core_node_get(cfg, "headers");
    if (hdrs && hdrs->kind != CORE_NODE_MAP) {
        rc = tel_cfg_error(e, hdrs, err, "headers must be a map of name: value");
        goto fail;
    }
    for (size_t i = 0; hdrs && i < hdrs->n; i++) {
        const struct core_node *v = hdrs->items[i];
        if (v->kind != CORE_NODE_SCALAR || !header_ok(hdrs->keys[i], false) ||
            !header_ok(v->value, true)) {
            rc = tel_cfg_error(e, hdrs->key_nodes[i], err, "header '%s' is not valid",
                               hdrs->keys[i]);
            goto fail;
        }
        char line[1200];
        snprintf(line, sizeof(line), "%s: %s", hdrs->keys[i], v->value);
        h->hdrs = curl_slist_append(h->hdrs, line);
    }
    h->hdrs = curl_slist_append(h->hdrs, kind == H_HTTP && h->json_array
                                             ? "Content-Type: application/json"
                                         : kind == H_LOKI ? "Content-Type: application/json"
                                                          : "Content-Type: application/x-ndjson");
    h->hdrs = curl_slist_append(h->hdrs, "Expect:");
    pthread_once(&curl_once, curl_init_once);
    h->curl = curl_easy_init();
    if (!h->hdrs || !h->curl) {
        rc = core_err_set(err, CORE_E_NOMEM, "cannot create an HTTP client");
        goto fail;
    }
    *state = h;
    return 0;
fail:
    hsink_free(h);
    return rc;
}

static int loki_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                       struct core_err *err)
{
    return http_create(e, cfg, state, err, H_LOKI);
}

static int plain_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                        struct core_err *err)
{
    return http_create(e, cfg, state, err, H_HTTP);
}

static int es_create(struct tel_engine *e, const struct core_node *cfg, void **state,
                     struct core_err *err)
{
    return http_create(e, cfg, state, err, H_ES);
}

static void http_destroy(void *state)
{
    hsink_free(state);
}

/* ---- bodies ----------------------------------------------------------------------------- */

/* Appends s (n bytes, no NUL needed) as a JSON string literal. */
static int add_json_n(struct core_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = core_buf_addc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = core_buf_add(b, s + run, i - run);
        char esc[7] = {'\\', (char)c, 0};
        if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        if (!rc)
            rc = core_buf_adds(b, esc);
        run = i + 1;
    }
    if (!rc)
        rc = core_buf_add(b, s + run, n - run);
    return rc ? rc : core_buf_addc(b, '"');
}

static void lower_severity(int sev, char *out, size_t outsz)
{
    const char *n = tel_severity_name(sev);
    size_t i = 0;
    for (; n[i] && i + 1 < outsz; i++)
        out[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
    out[i] = 0;
}

static bool same_stream(const struct tel_event *a, const struct tel_event *b)
{
    char sa[16], sb[16];
    lower_severity(a->severity, sa, sizeof(sa));
    lower_severity(b->severity, sb, sizeof(sb));
    return strcmp(a->service, b->service) == 0 && strcmp(a->env, b->env) == 0 &&
           strcmp(a->team, b->team) == 0 && strcmp(sa, sb) == 0;
}

static int add_label(struct core_buf *b, bool *first, const char *name, const char *value)
{
    if (!value || !*value)
        return 0;
    int rc = core_buf_adds(b, *first ? "" : ",");
    *first = false;
    if (!rc)
        rc = core_buf_add_json_str(b, name);
    if (!rc)
        rc = core_buf_addc(b, ':');
    return rc ? rc : core_buf_add_json_str(b, value);
}

static int loki_body(const struct hsink *h, const struct tel_events *evs, struct core_buf *b)
{
    /* streams in order of first appearance; stream_of[i] numbers event i's stream */
    size_t *stream_of = core_calloc(evs->n + 1, sizeof(size_t));
    size_t *first = core_calloc(evs->n + 1, sizeof(size_t));
    size_t nstreams = 0;
    int rc = stream_of && first ? 0 : CORE_E_NOMEM;
    for (size_t i = 0; i < evs->n && !rc; i++) {
        size_t k = 0;
        while (k < nstreams && !same_stream(&evs->ev[first[k]], &evs->ev[i]))
            k++;
        if (k == nstreams)
            first[nstreams++] = i;
        stream_of[i] = k;
    }
    if (!rc)
        rc = core_buf_adds(b, "{\"streams\":[");
    for (size_t k = 0; k < nstreams && !rc; k++) {
        const struct tel_event *ev = &evs->ev[first[k]];
        char sev[16];
        lower_severity(ev->severity, sev, sizeof(sev));
        bool f = true;
        rc = core_buf_adds(b, k ? ",{\"stream\":{" : "{\"stream\":{");
        if (!rc)
            rc = add_label(b, &f, "service", ev->service);
        if (!rc)
            rc = add_label(b, &f, "env", ev->env);
        if (!rc)
            rc = add_label(b, &f, "team", ev->team);
        if (!rc)
            rc = add_label(b, &f, "severity", sev);
        for (size_t l = 0; l < h->nlabels && !rc; l++)
            rc = add_label(b, &f, h->labels[l].name, h->labels[l].value);
        if (!rc)
            rc = core_buf_adds(b, "},\"values\":[");
        bool fv = true;
        for (size_t i = first[k]; i < evs->n && !rc; i++) {
            if (stream_of[i] != k)
                continue;
            rc = core_buf_addf(b, "%s[\"%lld\",", fv ? "" : ",", (long long)evs->ev[i].time_ns);
            if (!rc)
                rc = add_json_n(b, evs->ev[i].line, evs->ev[i].len);
            if (!rc)
                rc = core_buf_addc(b, ']');
            fv = false;
        }
        if (!rc)
            rc = core_buf_adds(b, "]}");
    }
    if (!rc)
        rc = core_buf_adds(b, "]}");
    core_free(stream_of);
    core_free(first);
    return rc;
}

static int lines_body(const struct hsink *h, const struct tel_events *evs, struct core_buf *b)
{
    int rc = h->json_array ? core_buf_addc(b, '[') : 0;
    for (size_t i = 0; i < evs->n && !rc; i++) {
        if (h->json_array && i)
            rc = core_buf_addc(b, ',');
        if (!rc)
            rc = core_buf_add(b, evs->ev[i].line, evs->ev[i].len);
        if (!rc && !h->json_array)
            rc = core_buf_addc(b, '\n');
    }
    return rc || !h->json_array ? rc : core_buf_addc(b, ']');
}

static int es_body(const struct hsink *h, const struct tel_events *evs, struct core_buf *b)
{
    int rc = 0;
    for (size_t i = 0; i < evs->n && !rc; i++) {
        time_t t = (time_t)(evs->ev[i].time_ns / 1000000000);
        struct tm tm;
        char name[256];
        gmtime_r(&t, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        /* the pattern comes from the operator's config, checked for length at create */
        size_t nl = strftime(name, sizeof(name), h->index, &tm);
#pragma GCC diagnostic pop
        if (!nl)
            snprintf(name, sizeof(name), "pave-logs");
        rc = core_buf_adds(b, "{\"index\":{\"_index\":");
        if (!rc)
            rc = core_buf_add_json_str(b, name);
        if (!rc)
            rc = core_buf_adds(b, "}}\n");
        if (!rc)
            rc = core_buf_add(b, evs->ev[i].line, evs->ev[i].len);
        if (!rc)
            rc = core_buf_addc(b, '\n');
    }
    return rc;
}

/* ---- delivery --------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct core_buf *b = arg;
    /* keep what fits: only the start of an error message matters */
    size_t room = b->max > b->len ? b->max - b->len - 1 : 0;
    core_buf_add(b, p, size * n < room ? size * n : room);
    return size * n;
}

/* The first item error of an Elasticsearch bulk answer, into msg. */
static bool es_failed(const struct core_buf *resp, char *msg, size_t msgsz)
{
    json_error_t je;
    json_t *doc = json_loadb(resp->data, resp->len, 0, &je);
    bool failed = json_is_true(json_object_get(doc, "errors"));
    if (failed) {
        snprintf(msg, msgsz, "elasticsearch refused items");
        size_t i;
        json_t *it;
        json_array_foreach (json_object_get(doc, "items"), i, it) {
            json_t *op = json_object_get(it, "index");
            json_t *e = json_object_get(op ? op : json_object_get(it, "create"), "error");
            if (!e)
                continue;
            snprintf(msg, msgsz, "elasticsearch refused item %zu: %s: %s", i,
                     json_string_value(json_object_get(e, "type")) ?: "error",
                     json_string_value(json_object_get(e, "reason")) ?: "");
            break;
        }
    }
    json_decref(doc);
    return failed;
}

static enum tel_sink_result http_write(void *state, const struct tel_events *evs,
                                       struct core_err *err)
{
    struct hsink *h = state;
    struct core_buf body;
    core_buf_init(&body, BODY_MAX);
    int rc = h->kind == H_LOKI ? loki_body(h, evs, &body)
             : h->kind == H_ES ? es_body(h, evs, &body)
                               : lines_body(h, evs, &body);
    if (rc) {
        core_buf_release(&body);
        core_err_set(err, rc, "cannot encode the batch (%s)", core_errc_name(rc));
        /* too big for one request is not going to get better */
        return rc == CORE_E_TOO_BIG ? TEL_SINK_REJECT : TEL_SINK_RETRY;
    }
    pthread_mutex_lock(&h->mu);
    core_buf_clear(&h->resp);
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &h->resp);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pave-telemetry");
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    enum tel_sink_result res;
    char msg[400];
    if (cc != CURLE_OK) {
        core_err_set(err, CORE_E_IO, "POST %s: %s", h->shown, cerr[0] ? cerr : curl_easy_strerror(cc));
        res = TEL_SINK_RETRY;
    } else if (status >= 200 && status < 300) {
        res = TEL_SINK_OK;
        if (h->kind == H_ES && es_failed(&h->resp, msg, sizeof(msg))) {
            core_err_set(err, CORE_E_INVAL, "%s", msg);
            res = TEL_SINK_REJECT;
        }
    } else {
        /* the server's message, on one line */
        snprintf(msg, sizeof(msg), "%.300s", h->resp.data);
        for (char *p = msg; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        core_err_set(err, status == 429 || status == 408 || status >= 500 ? CORE_E_IO
                                                                          : CORE_E_INVAL,
                     "POST %s answered %ld: %s", h->shown, status, msg);
        res = status == 429 || status == 408 || status >= 500 ? TEL_SINK_RETRY : TEL_SINK_REJECT;
    }
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    pthread_mutex_unlock(&h->mu);
    core_buf_release(&body);
    return res;
}

const struct tel_sink_ops tel_sink_loki = {"loki", loki_create, http_write, http_destroy};
const struct tel_sink_ops tel_sink_http = {"http", plain_create, http_write, http_destroy};
const struct tel_sink_ops tel_sink_elasticsearch = {"elasticsearch", es_create, http_write,
                                                    http_destroy};
