/* /api/v1 routes for the runtime: rendering a service's manifest as Kubernetes objects. */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "runtime/runtime.h"

struct env_find {
    const char *name;
    bool found;
    json_t *names; /* every environment, for the error details */
};

static int env_match(void *arg, const struct catalog_env *e)
{
    struct env_find *f = arg;
    if (strcmp(e->name, f->name) == 0)
        f->found = true;
    json_array_append_new(f->names, json_string(e->name));
    return 0;
}

/* GET /api/v1/services/{name}/render?env=ENV&target=kubernetes[&image=REF]: a Kubernetes List
 * of the objects that would run the service in ENV. Pure rendering: nothing is applied. */
static void h_render(struct api_req *r)
{
    const char *name = r->params[0];
    char envbuf[128], targetbuf[64], imagebuf[1024];
    const char *env = api_query(r, "env", envbuf, sizeof(envbuf));
    const char *target = api_query(r, "target", targetbuf, sizeof(targetbuf));
    const char *image = api_query(r, "image", imagebuf, sizeof(imagebuf));
    struct env_find f = {.name = env, .found = false, .names = json_array()};
    struct catalog_service s = {0};
    bool have_service = false;
    struct core_err err = {0};
    json_t *items = NULL;

    if (!core_is_dns_label(name)) {
        api_reply_error(r, CORE_E_INVAL, "invalid service name", NULL);
        goto out;
    }
    if (!target || strcmp(target, "kubernetes") != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "unsupported render target '%.64s': the only target is "
                 "'kubernetes'", target ? target : "");
        api_reply_error(r, CORE_E_INVAL, msg, NULL);
        goto out;
    }
    if (!env || !*env) {
        api_reply_error(r, CORE_E_INVAL, "the env query parameter is required", NULL);
        goto out;
    }
    if (catalog_env_list(api_ctx(r)->cat, env_match, &f, &err)) {
        api_reply_err(r, &err);
        goto out;
    }
    if (!f.found) {
        char msg[200];
        snprintf(msg, sizeof(msg), "unknown environment '%.64s'", env);
        api_reply_error(r, CORE_E_INVAL, msg, f.names);
        f.names = NULL;
        goto out;
    }
    if (catalog_service_get(api_ctx(r)->cat, name, &s, &err)) {
        api_reply_err(r, &err);
        goto out;
    }
    have_service = true;
    items = runtime_render_k8s(s.manifest, s.team, env, image, &err);
    if (!items) {
        api_reply_err(r, &err);
        goto out;
    }
    api_reply_json(r, 200,
                   json_pack("{s:s,s:s,s:o}", "apiVersion", "v1", "kind", "List", "items", items));
    items = NULL;
out:
    if (have_service)
        catalog_service_release(&s);
    json_decref(f.names);
    f.names = NULL;
}

const struct api_route api_runtime_routes[] = {
    {"GET", "/api/v1/services/{name}/render", h_render, true},
};
const size_t api_runtime_nroutes = sizeof(api_runtime_routes) / sizeof(api_runtime_routes[0]);
