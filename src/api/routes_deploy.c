/* /api/v1 routes of the deploy controller: deploy, rollback, scale, status and the history of
 * deployments. Requests only record desired state; the controller's reconciler acts on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "deploy/deploy.h"

static struct deploy_controller *controller(struct api_req *r)
{
    struct deploy_controller *dc = api_ctx(r)->deploy;
    if (!dc)
        api_reply_error(r, CORE_E_NOMEM,
                        "deployments are not enabled on this server (it runs without a load "
                        "balancer: start it with --ingress or install haproxy)",
                        NULL);
    return dc;
}

/* Parses the JSON body; replies 400 and returns NULL when it is not an object. */
static json_t *body_object(struct api_req *r)
{
    json_error_t jerr;
    json_t *b = r->body.len ? json_loadb(r->body.data, r->body.len, 0, &jerr) : json_object();
    if (!json_is_object(b)) {
        json_decref(b);
        api_reply_error(r, CORE_E_INVAL, "the body must be a JSON object", NULL);
        return NULL;
    }
    return b;
}

static const char *str_field(json_t *b, const char *k)
{
    const char *s = json_string_value(json_object_get(b, k));
    return s && *s ? s : NULL;
}

/* Replies 202 with the deployment just recorded. */
static void reply_created(struct api_req *r, int64_t id)
{
    struct core_err err = {0};
    json_t *d = deploy_get(api_ctx(r)->st, id, &err);
    if (!d)
        api_reply_err(r, &err);
    else
        api_reply_json(r, 202, d);
}

static bool check_name(struct api_req *r)
{
    if (core_is_dns_label(r->params[0]))
        return true;
    api_reply_error(r, CORE_E_INVAL, "invalid service name", NULL);
    return false;
}

/* POST /api/v1/services/{name}/deployments {"env","image","replicas","health_deadline"} */
static void h_deploy(struct api_req *r)
{
    struct deploy_controller *dc = controller(r);
    json_t *b = dc && check_name(r) ? body_object(r) : NULL;
    if (!b)
        return;
    struct core_err err = {0};
    struct deploy_request req = {.service = r->params[0], .env = str_field(b, "env"),
                                 .image = str_field(b, "image"), .replicas = -1};
    json_t *rep = json_object_get(b, "replicas");
    const char *deadline = str_field(b, "health_deadline");
    if (rep && !json_is_integer(rep)) {
        api_reply_error(r, CORE_E_INVAL, "replicas must be an integer 0..100", NULL);
        goto out;
    }
    if (rep)
        req.replicas = (int)json_integer_value(rep);
    if (deadline && (core_parse_duration_ms(deadline, &req.health_deadline_ms) ||
                     req.health_deadline_ms <= 0)) {
        api_reply_error(r, CORE_E_INVAL, "health_deadline must be a duration such as 30s or 2m",
                        NULL);
        goto out;
    }
    if (!req.env) {
        api_reply_error(r, CORE_E_INVAL, "env is required (see GET /api/v1/environments)", NULL);
        goto out;
    }
    int64_t id = 0;
    if (deploy_create(dc, &r->who.actor, &req, &id, &err))
        api_reply_err(r, &err);
    else
        reply_created(r, id);
out:
    json_decref(b);
}

/* POST /api/v1/services/{name}/rollback {"env","to"} */
static void h_rollback(struct api_req *r)
{
    struct deploy_controller *dc = controller(r);
    json_t *b = dc && check_name(r) ? body_object(r) : NULL;
    if (!b)
        return;
    struct core_err err = {0};
    const char *env = str_field(b, "env");
    json_t *to = json_object_get(b, "to");
    int64_t id = 0;
    if (!env)
        api_reply_error(r, CORE_E_INVAL, "env is required", NULL);
    else if (to && !json_is_integer(to))
        api_reply_error(r, CORE_E_INVAL, "to must be a deployment id", NULL);
    else if (deploy_rollback(dc, &r->who.actor, r->params[0], env,
                             to ? json_integer_value(to) : 0, &id, &err))
        api_reply_err(r, &err);
    else
        reply_created(r, id);
    json_decref(b);
}

/* POST /api/v1/services/{name}/scale {"env","replicas"} */
static void h_scale(struct api_req *r)
{
    struct deploy_controller *dc = controller(r);
    json_t *b = dc && check_name(r) ? body_object(r) : NULL;
    if (!b)
        return;
    struct core_err err = {0};
    const char *env = str_field(b, "env");
    json_t *n = json_object_get(b, "replicas");
    int64_t id = 0;
    if (!env)
        api_reply_error(r, CORE_E_INVAL, "env is required", NULL);
    else if (!json_is_integer(n))
        api_reply_error(r, CORE_E_INVAL, "replicas must be an integer 0..100", NULL);
    else if (deploy_scale(dc, &r->who.actor, r->params[0], env, (int)json_integer_value(n), &id,
                          &err))
        api_reply_err(r, &err);
    else
        reply_created(r, id);
    json_decref(b);
}

/* GET /api/v1/services/{name}/status[?env=ENV] */
static void h_status(struct api_req *r)
{
    struct deploy_controller *dc = controller(r);
    if (!dc || !check_name(r))
        return;
    char envbuf[128];
    const char *env = api_query(r, "env", envbuf, sizeof(envbuf));
    struct core_err err = {0};
    json_t *st = deploy_status(dc, r->params[0], env && *env ? env : NULL, &err);
    api_reply_result(r, st, &err);
}

static void list(struct api_req *r, const char *service)
{
    char envbuf[128], svcbuf[128];
    const char *env = api_query(r, "env", envbuf, sizeof(envbuf));
    if (!service) {
        service = api_query(r, "service", svcbuf, sizeof(svcbuf));
        if (service && !*service)
            service = NULL;
    }
    long limit, offset;
    if (!api_query_long(r, "limit", 1, 500, 50, &limit) ||
        !api_query_long(r, "offset", 0, 1L << 40, 0, &offset))
        return;
    struct core_err err = {0};
    json_t *out = deploy_list(api_ctx(r)->st, service, env && *env ? env : NULL, limit, offset,
                              &err);
    api_reply_result(r, out, &err);
}

/* GET /api/v1/services/{name}/deployments */
static void h_list_service(struct api_req *r)
{
    if (check_name(r))
        list(r, r->params[0]);
}

/* GET /api/v1/deployments[?service=&env=] */
static void h_list_all(struct api_req *r)
{
    list(r, NULL);
}

/* GET /api/v1/deployments/{id} */
static void h_get(struct api_req *r)
{
    char *end = NULL;
    long long id = strtoll(r->params[0], &end, 10);
    struct core_err err = {0};
    if (*end || id <= 0) {
        api_reply_error(r, CORE_E_INVAL, "deployment id must be a positive integer", NULL);
        return;
    }
    json_t *d = deploy_get(api_ctx(r)->st, id, &err);
    api_reply_result(r, d, &err);
}

const struct api_route api_deploy_routes[] = {
    {"POST", "/api/v1/services/{name}/deployments", h_deploy, true, false},
    {"GET", "/api/v1/services/{name}/deployments", h_list_service, true, false},
    {"POST", "/api/v1/services/{name}/rollback", h_rollback, true, false},
    {"POST", "/api/v1/services/{name}/scale", h_scale, true, false},
    {"GET", "/api/v1/services/{name}/status", h_status, true, false},
    {"GET", "/api/v1/deployments", h_list_all, true, false},
    {"GET", "/api/v1/deployments/{id}", h_get, true, false},
};
const size_t api_deploy_nroutes = sizeof(api_deploy_routes) / sizeof(api_deploy_routes[0]);
