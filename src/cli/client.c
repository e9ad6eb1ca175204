/* HTTP client for the CLI (libcurl) and the server/token configuration. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/store.h"

void cli_config_path(char *out, size_t outsz)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(out, outsz, "%s/pave/config", xdg);
    else
        snprintf(out, outsz, "%s/.config/pave/config", home ? home : ".");
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    size_t i = 0;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    memmove(s, s + i, strlen(s + i) + 1);
}

static void read_config(struct cli_ctx *ctx)
{
    char path[1024];
    cli_config_path(path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq)
            continue;
        *eq = 0;
        char *k = line, *v = eq + 1;
        trim(k);
        trim(v);
        if (strcmp(k, "server") == 0 && !ctx->server[0])
            snprintf(ctx->server, sizeof(ctx->server), "%s", v);
        else if (strcmp(k, "token") == 0 && !ctx->token[0]) {
            snprintf(ctx->token, sizeof(ctx->token), "%s", v);
            ctx->token_source = "~/.config/pave/config";
        }
    }
    fclose(f);
}

void cli_ctx_load(struct cli_ctx *ctx)
{
    const char *s = getenv("PAVE_SERVER");
    const char *t = getenv("PAVE_TOKEN");
    if (s && *s)
        snprintf(ctx->server, sizeof(ctx->server), "%s", s);
    if (t && *t) {
        snprintf(ctx->token, sizeof(ctx->token), "%s", t);
        ctx->token_source = "PAVE_TOKEN";
    }
    read_config(ctx);
    if (!ctx->server[0])
        snprintf(ctx->server, sizeof(ctx->server), "http://127.0.0.1:7070");
    if (!ctx->token[0]) {
        /* The `pave up` token of this directory or the nearest parent that has one, so the CLI
         * also works inside a service checkout below the platform's directory. */
        char dir[4096], path[4200];
        if (getcwd(dir, sizeof(dir))) {
            for (;;) {
                snprintf(path, sizeof(path), "%s/.pave/admin.token", dir);
                FILE *f = fopen(path, "r");
                if (f) {
                    if (fgets(ctx->token, sizeof(ctx->token), f))
                        trim(ctx->token);
                    fclose(f);
                    ctx->token_source = ".pave/admin.token";
                    break;
                }
                char *slash = strrchr(dir, '/');
                if (!slash || slash == dir)
                    break;
                *slash = 0;
            }
        }
    }
    size_t n = strlen(ctx->server);
    while (n && ctx->server[n - 1] == '/')
        ctx->server[--n] = 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct core_buf *b = userdata;
    return core_buf_add(b, ptr, size * nmemb) ? 0 : size * nmemb;
}

int cli_http(struct cli_ctx *ctx, const char *method, const char *path, const char *body,
             size_t body_len, const char *content_type, struct core_buf *resp, char *errmsg,
             size_t errsz)
{
    static bool inited;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = true;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(errmsg, errsz, "cannot create an HTTP client");
        return -1;
    }
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", ctx->server, path);
    struct curl_slist *hdrs = NULL;
    char auth[200];
    if (ctx->token[0]) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ctx->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    char ct[200];
    if (body) {
        snprintf(ct, sizeof(ct), "Content-Type: %s",
                 content_type ? content_type : "application/json");
        hdrs = curl_slist_append(hdrs, ct);
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    char curlerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curlerr);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pave/" PAVE_VERSION);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(errmsg, errsz, "cannot reach %s: %s (is the server running? start it with "
                                "'make up' or set PAVE_SERVER)",
                 ctx->server, curlerr[0] ? curlerr : curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return (int)status;
}

static void print_error_body(struct cli_ctx *ctx, int status, const struct core_buf *resp)
{
    json_t *j = json_loadb(resp->data, resp->len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (msg)
        cli_error("%s", msg);
    else
        cli_error("server answered HTTP %d", status);
    json_t *details = json_object_get(e, "details");
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d)
    {
        const char *file = json_string_value(json_object_get(d, "file"));
        const char *hint = json_string_value(json_object_get(d, "hint"));
        fprintf(stderr, "  %s:%lld:%lld: %s%s%s%s\n", file ? file : "-",
                (long long)json_integer_value(json_object_get(d, "line")),
                (long long)json_integer_value(json_object_get(d, "column")),
                json_string_value(json_object_get(d, "message")) ? json_string_value(
                                                                      json_object_get(d, "message"))
                                                                 : "",
                hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
    }
    if (status == 401)
        fprintf(stderr, "  hint: %s; sign in with 'pave login --token TOKEN' or set PAVE_TOKEN\n",
                ctx->token[0] ? "the token was refused" : "no token is configured");
    json_decref(j);
}

int cli_api(struct cli_ctx *ctx, const char *method, const char *path, const char *body,
            size_t body_len, const char *content_type, json_t **out)
{
    struct core_buf resp;
    core_buf_init(&resp, 512u << 20);
    char errmsg[1024] = "";
    if (out)
        *out = NULL;
    int status = cli_http(ctx, method, path, body, body_len, content_type, &resp, errmsg,
                          sizeof(errmsg));
    int rc = CLI_OK;
    if (status < 0) {
        cli_error("%s", errmsg);
        rc = CLI_FAIL;
    } else if (status < 200 || status >= 300) {
        print_error_body(ctx, status, &resp);
        rc = CLI_FAIL;
    } else if (out) {
        json_error_t jerr;
        *out = json_loadb(resp.data, resp.len, 0, &jerr);
        if (!*out) {
            cli_error("server sent malformed JSON: %s", jerr.text);
            rc = CLI_FAIL;
        }
    }
    core_buf_release(&resp);
    return rc;
}

struct stream_ctx {
    cli_stream_fn fn;
    void *arg;
};

static size_t on_stream(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct stream_ctx *s = userdata;
    s->fn(s->arg, ptr, size * nmemb);
    return size * nmemb;
}

int cli_http_stream(struct cli_ctx *ctx, const char *path, cli_stream_fn fn, void *arg,
                    char *errmsg, size_t errsz)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(errmsg, errsz, "cannot create an HTTP client");
        return -1;
    }
    char url[2048], auth[200];
    snprintf(url, sizeof(url), "%s%s", ctx->server, path);
    struct curl_slist *hdrs = NULL;
    if (ctx->token[0]) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ctx->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    struct stream_ctx s = {fn, arg};
    char curlerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curlerr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pave/" PAVE_VERSION);
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(errmsg, errsz, "cannot reach %s: %s", ctx->server,
                 curlerr[0] ? curlerr : curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return (int)status;
}

int cli_api_json(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
                 json_t **out)
{
    if (!body)
        return cli_api(ctx, method, path, NULL, 0, NULL, out);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    int rc = cli_api(ctx, method, path, text, strlen(text), "application/json", out);
    free(text);
    return rc;
}

int cli_open_store(const char *data_dir, const char *store_url, struct store **st)
{
    char url[4200];
    struct core_err err = {0};
    if (store_url) {
        snprintf(url, sizeof(url), "%s", store_url);
    } else {
        if (core_mkdir_p(data_dir, 0700, &err)) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        snprintf(url, sizeof(url), "sqlite:%s/pave.db", data_dir);
    }
    if (store_open(st, url, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_post_state_change(struct cli_ctx *ctx, const char *path, const char *comment,
                          const char *what, long long id)
{
    json_t *body = comment ? json_pack("{s:s}", "comment", comment) : json_object();
    json_t *resp = NULL;
    int rc = body ? cli_api_json(ctx, "POST", path, body, &resp) : CLI_FAIL;
    if (rc)
        return rc;
    if (ctx->format != CLI_TABLE)
        cli_print_object(ctx, resp);
    else
        printf("%s %lld %s\n", what, id, json_string_value(json_object_get(resp, "state")));
    json_decref(resp);
    return CLI_OK;
}
