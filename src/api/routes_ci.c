/* /api/v1 routes for pipelines: builds, runs, logs, artifacts and secrets. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "ci/ci.h"
#include "secret/secret.h"
#include "store/store.h"

static bool need_runner(struct api_req *r)
{
    if (api_ctx(r)->runner)
        return true;
    api_reply_error(r, CORE_E_NOMEM, "pipelines are not enabled on this server", NULL);
    return false;
}

/* Loads a service and checks the caller may change it; replies and returns false otherwise. */
static bool service_rights(struct api_req *r, const char *name, bool change,
                           struct catalog_service *s)
{
    struct core_err err = {0};
    if (!core_is_dns_label(name)) {
        api_reply_error(r, CORE_E_INVAL, "invalid service name", NULL);
        return false;
    }
    if (catalog_service_get(api_ctx(r)->cat, name, s, &err)) {
        api_reply_err(r, &err);
        return false;
    }
    if (change && !api_can_change_team(r, s->team)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "service '%s' belongs to team '%s'; user '%s' cannot do this",
                 name, s->team, r->who.user);
        api_reply_error(r, CORE_E_PERM, msg, NULL);
        catalog_service_release(s);
        return false;
    }
    return true;
}

static bool parse_id(struct api_req *r, const char *text, int64_t *id)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || v <= 0) {
        api_reply_error(r, CORE_E_INVAL, "run id must be a positive integer", NULL);
        return false;
    }
    *id = v;
    return true;
}

static json_t *run_json(const struct ci_run *run)
{
    char logurl[64];
    snprintf(logurl, sizeof(logurl), "/api/v1/runs/%lld/log", (long long)run->id);
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s?,s:s?,s:s,s:s,s:s?,s:s?,s:s?,s:s}", "id",
                          (json_int_t)run->id, "service", run->service, "team", run->team,
                          "state", run->state, "trigger", run->trigger, "branch", run->branch,
                          "commit", run->commit, "actor", run->actor, "queued_at", run->queued_at,
                          "started_at", run->started_at, "finished_at", run->finished_at, "error",
                          run->error, "log", logurl);
    if (o && run->artifact_digest)
        json_object_set_new(o, "artifact",
                            json_pack("{s:s,s:I}", "digest", run->artifact_digest, "size",
                                      (json_int_t)run->artifact_size));
    if (o && run->retry_of)
        json_object_set_new(o, "retry_of", json_integer(run->retry_of));
    return o;
}

static int run_item(void *arg, const struct ci_run *run)
{
    return json_array_append_new(arg, run_json(run)) ? CORE_E_NOMEM : 0;
}

static int step_item(void *arg, const struct ci_step_info *s)
{
    return json_array_append_new(arg, json_pack("{s:I,s:s,s:s,s:I,s:I,s:s?}", "index",
                                                 (json_int_t)s->idx, "name", s->name, "state",
                                                 s->state, "exit_code", (json_int_t)s->exit_code,
                                                 "duration_ms", (json_int_t)s->duration_ms,
                                                 "detail", s->detail))
               ? CORE_E_NOMEM
               : 0;
}

static void h_build(struct api_req *r)
{
    struct catalog_service s;
    if (!need_runner(r) || !service_rights(r, r->params[0], true, &s))
        return;
    char branch[256], commit[64];
    const char *b = api_query(r, "branch", branch, sizeof(branch));
    const char *c = api_query(r, "commit", commit, sizeof(commit));
    if (r->upload_fd < 0 || r->upload_len == 0) {
        api_reply_error(r, CORE_E_INVAL,
                        "send the working tree as a tar body (pave build does this for you)",
                        NULL);
        catalog_service_release(&s);
        return;
    }
    if ((b && !core_utf8_valid(b, strlen(b))) || (c && !core_utf8_valid(c, strlen(c)))) {
        api_reply_error(r, CORE_E_INVAL, "branch and commit must be UTF-8 text", NULL);
        catalog_service_release(&s);
        return;
    }
    char source[1300];
    snprintf(source, sizeof(source), "tar:%s", r->upload_path);
    struct ci_submit sub = {.service = s.name, .actor = r->who.user, .trigger = "build",
                            .branch = b, .commit = c, .source = source};
    int64_t id = 0;
    struct core_err err = {0};
    if (ci_run_submit(api_ctx(r)->runner, &sub, &id, &err)) {
        api_reply_err(r, &err);
    } else {
        r->upload_path[0] = 0; /* the runner took the file */
        char logurl[64];
        snprintf(logurl, sizeof(logurl), "/api/v1/runs/%lld/log", (long long)id);
        api_reply_json(r, 201,
                       json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)id, "service", s.name,
                                 "state", "queued", "log", logurl));
    }
    catalog_service_release(&s);
}

static void h_runs_list(struct api_req *r)
{
    char svc[128], lim[16], before[24];
    const char *service = api_query(r, "service", svc, sizeof(svc));
    const char *l = api_query(r, "limit", lim, sizeof(lim));
    const char *b = api_query(r, "before", before, sizeof(before));
    long limit = l ? strtol(l, NULL, 10) : 50;
    long long bid = b ? strtoll(b, NULL, 10) : 0;
    if (limit < 1 || limit > 500 || bid < 0) {
        api_reply_error(r, CORE_E_INVAL, "limit must be 1 to 500 and before a run id", NULL);
        return;
    }
    if (service && !core_is_dns_label(service)) {
        api_reply_error(r, CORE_E_INVAL, "invalid service name", NULL);
        return;
    }
    json_t *items = json_array();
    struct core_err err = {0};
    if (ci_run_list(api_ctx(r)->st, service, bid, (int)limit, run_item, items, &err)) {
        json_decref(items);
        api_reply_err(r, &err);
        return;
    }
    size_t n = json_array_size(items);
    json_t *last = n == (size_t)limit ? json_array_get(items, n - 1) : NULL;
    api_reply_json(r, 200,
                   json_pack("{s:o,s:i,s:o}", "items", items, "limit", (int)limit, "next_before",
                             last ? json_incref(json_object_get(last, "id")) : json_null()));
}

static int one_run(void *arg, const struct ci_run *run)
{
    json_t **out = arg;
    *out = run_json(run);
    return 0;
}

static void h_run_get(struct api_req *r)
{
    int64_t id;
    if (!parse_id(r, r->params[0], &id))
        return;
    json_t *run = NULL;
    struct core_err err = {0};
    if (ci_run_get(api_ctx(r)->st, id, one_run, &run, &err)) {
        api_reply_err(r, &err);
        return;
    }
    json_t *steps = json_array();
    ci_run_steps(api_ctx(r)->st, id, step_item, steps, &err);
    json_object_set_new(run, "steps", steps);
    api_reply_json(r, 200, run);
}

struct state_out {
    char state[32];
    char service[128];
    char team[128];
    char artifact[1200];
    char digest[80];
};

static int state_row(void *arg, const struct ci_run *run)
{
    struct state_out *o = arg;
    snprintf(o->state, sizeof(o->state), "%s", run->state);
    snprintf(o->service, sizeof(o->service), "%s", run->service);
    snprintf(o->team, sizeof(o->team), "%s", run->team);
    snprintf(o->artifact, sizeof(o->artifact), "%s", run->artifact_path ? run->artifact_path : "");
    snprintf(o->digest, sizeof(o->digest), "%s", run->artifact_digest ? run->artifact_digest : "");
    return 0;
}

/* Streams a run's log; with follow, keeps the response open until the run ends. */
struct log_stream {
    struct store *st;
    struct api_server *srv;
    struct MHD_Connection *conn;
    int64_t id;
    int fd;
    bool follow;
};

static ssize_t log_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct log_stream *ls = cls;
    ssize_t n;
    do
        n = pread(ls->fd, buf, max, (off_t)pos);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return n;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (!ls->follow)
        return MHD_CONTENT_READER_END_OF_STREAM;
    struct state_out st = {{0}};
    if (ci_run_get(ls->st, ls->id, state_row, &st, NULL) || ci_state_is_final(st.state)) {
        /* one last read: the final lines may have landed after the previous one */
        n = pread(ls->fd, buf, max, (off_t)pos);
        return n > 0 ? n : MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Nothing new yet: park the connection until the next tick instead of holding a thread. */
    if (!api_stream_park(ls->srv, ls->conn))
        return MHD_CONTENT_READER_END_OF_STREAM;
    return 0;
}

static void log_free(void *cls)
{
    struct log_stream *ls = cls;
    if (ls->fd >= 0)
        close(ls->fd);
    core_free(ls);
}

static void h_run_log(struct api_req *r)
{
    int64_t id;
    if (!need_runner(r) || !parse_id(r, r->params[0], &id))
        return;
    struct state_out st = {{0}};
    struct core_err err = {0};
    if (ci_run_get(api_ctx(r)->st, id, state_row, &st, &err)) {
        api_reply_err(r, &err);
        return;
    }
    char f[8], path[1200];
    const char *follow = api_query(r, "follow", f, sizeof(f));
    ci_run_log_path(api_ctx(r)->runner, id, path, sizeof(path));
    struct log_stream *ls = core_calloc(1, sizeof(*ls));
    if (!ls) {
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    ls->st = api_ctx(r)->st;
    ls->srv = api_server_of(r);
    ls->conn = r->conn;
    ls->id = id;
    ls->follow = follow && (strcmp(follow, "1") == 0 || strcmp(follow, "true") == 0);
    ls->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (ls->fd < 0) {
        /* queued runs have no log yet: create it empty so a follower can wait on it */
        int wfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (wfd >= 0)
            close(wfd);
        ls->fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (ls->fd < 0) {
        core_free(ls);
        api_reply_error(r, CORE_E_NOTFOUND, "this run has no log", NULL);
        return;
    }
    r->resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, log_read, ls,
                                                log_free);
    if (!r->resp) {
        log_free(ls);
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    MHD_add_response_header(r->resp, "Content-Type", "text/plain; charset=utf-8");
    r->status = 200;
}

static void h_run_artifact(struct api_req *r)
{
    int64_t id;
    if (!parse_id(r, r->params[0], &id))
        return;
    struct state_out st = {{0}};
    struct core_err err = {0};
    if (ci_run_get(api_ctx(r)->st, id, state_row, &st, &err)) {
        api_reply_err(r, &err);
        return;
    }
    if (!st.artifact[0]) {
        api_reply_error(r, CORE_E_NOTFOUND, "this run has no artifact", NULL);
        return;
    }
    int fd = open(st.artifact, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0)
            close(fd);
        api_reply_error(r, CORE_E_NOTFOUND, "the artifact file is gone", NULL);
        return;
    }
    r->resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (!r->resp) {
        close(fd);
        api_reply_error(r, CORE_E_NOMEM, "out of memory", NULL);
        return;
    }
    MHD_add_response_header(r->resp, "Content-Type", "application/gzip");
    MHD_add_response_header(r->resp, "X-Pave-Digest", st.digest);
    r->status = 200;
}

static void h_run_cancel(struct api_req *r)
{
    int64_t id;
    if (!need_runner(r) || !parse_id(r, r->params[0], &id))
        return;
    struct core_err err = {0};
    if (ci_run_cancel(api_ctx(r)->runner, &r->who.actor, id, &err))
        api_reply_err(r, &err);
    else
        api_reply_json(r, 200, json_pack("{s:I,s:s}", "id", (json_int_t)id, "change", "cancelled"));
}

static void h_run_retry(struct api_req *r)
{
    int64_t id, nid = 0;
    if (!need_runner(r) || !parse_id(r, r->params[0], &id))
        return;
    struct core_err err = {0};
    if (ci_run_retry(api_ctx(r)->runner, &r->who.actor, id, &nid, &err))
        api_reply_err(r, &err);
    else
        api_reply_json(r, 201,
                       json_pack("{s:I,s:I,s:s}", "id", (json_int_t)nid, "retry_of",
                                 (json_int_t)id, "state", "queued"));
}

static int secret_item(void *arg, const struct secret_info *s)
{
    return json_array_append_new(arg, json_pack("{s:s,s:s,s:s}", "name", s->name, "created_at",
                                                 s->created_at, "updated_at", s->updated_at))
               ? CORE_E_NOMEM
               : 0;
}

static void h_secrets_list(struct api_req *r)
{
    struct catalog_service s;
    if (!service_rights(r, r->params[0], true, &s))
        return;
    json_t *items = json_array();
    struct core_err err = {0};
    if (secret_list(api_ctx(r)->st, s.name, secret_item, items, &err)) {
        json_decref(items);
        api_reply_err(r, &err);
    } else {
        api_reply_json(r, 200, json_pack("{s:o,s:I}", "items", items, "total",
                                         (json_int_t)json_array_size(items)));
    }
    catalog_service_release(&s);
}

static void h_secret_put(struct api_req *r)
{
    struct core_err err = {0};
    if (!api_ctx(r)->secrets) {
        api_reply_error(r, CORE_E_NOMEM, "the secret store is not enabled on this server", NULL);
        return;
    }
    if (!core_is_dns_label(r->params[0])) {
        api_reply_error(r, CORE_E_INVAL, "invalid service name", NULL);
        return;
    }
    if (secret_put(api_ctx(r)->st, api_ctx(r)->cat, api_ctx(r)->secrets, &r->who.actor,
                   r->params[0], r->params[1], r->body.data, r->body.len, &err))
        api_reply_err(r, &err);
    else
        api_reply_json(r, 200, json_pack("{s:s,s:s,s:s}", "service", r->params[0], "name",
                                         r->params[1], "change", "set"));
}

static void h_secret_delete(struct api_req *r)
{
    struct core_err err = {0};
    if (!core_is_dns_label(r->params[0])) {
        api_reply_error(r, CORE_E_INVAL, "invalid service name", NULL);
        return;
    }
    if (secret_delete(api_ctx(r)->st, api_ctx(r)->cat, &r->who.actor, r->params[0], r->params[1],
                      &err))
        api_reply_err(r, &err);
    else
        api_reply_json(r, 200, json_pack("{s:s,s:s,s:s}", "service", r->params[0], "name",
                                         r->params[1], "change", "deleted"));
}

const struct api_route api_ci_routes[] = {
    {"POST", "/api/v1/services/{name}/builds", h_build, true, true},
    {"GET", "/api/v1/runs", h_runs_list, true, false},
    {"GET", "/api/v1/runs/{id}", h_run_get, true, false},
    {"GET", "/api/v1/runs/{id}/log", h_run_log, true, false},
    {"GET", "/api/v1/runs/{id}/artifact", h_run_artifact, true, false},
    {"POST", "/api/v1/runs/{id}/cancel", h_run_cancel, true, false},
    {"POST", "/api/v1/runs/{id}/retry", h_run_retry, true, false},
    {"GET", "/api/v1/services/{name}/secrets", h_secrets_list, true, false},
    {"PUT", "/api/v1/services/{name}/secrets/{secret}", h_secret_put, true, false},
    {"DELETE", "/api/v1/services/{name}/secrets/{secret}", h_secret_delete, true, false},
};
const size_t api_ci_nroutes = sizeof(api_ci_routes) / sizeof(api_ci_routes[0]);
