/* `pave render SERVICE --env ENV --target kubernetes`: the Kubernetes objects that would run a
 * service, rendered by the server from the stored manifest (docs/kubernetes.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char render_usage[] =
    "usage: pave render SERVICE --env ENV [--target kubernetes] [--image REF] [-o yaml|json]\n\n"
    "Renders the service's stored manifest as Kubernetes objects for environment ENV, in the\n"
    "namespace <team>-<env>: a Deployment and a Service, plus an Ingress (spec.expose), a\n"
    "PodDisruptionBudget (replicas > 1) and a NetworkPolicy. Nothing is applied to a cluster.\n\n"
    "flags:\n"
    "  --env ENV, -e ENV      environment (must exist: see 'pave env list')\n"
    "  --target kubernetes    render target; kubernetes is the only one (default)\n"
    "  --image REF            container image (default pave-registry.local/SERVICE:ENV)\n"
    "  -o yaml|json           yaml (default): one YAML document per object, separated by\n"
    "                         '---'; json: a Kubernetes List object\n\n"
    "Example: pave render payments-api --env prod | kubectl apply --dry-run=client -f -\n";

int cli_cmd_render(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(render_usage, stdout);
        return CLI_OK;
    }
    const char *env = NULL, *target = NULL, *image = NULL;
    const struct cli_opt opts[] = {{"env", 'e', &env, NULL},
                                   {"target", 't', &target, NULL},
                                   {"image", 0, &image, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos = 0;
    json_t *resp = NULL;
    struct core_buf path;
    core_buf_init(&path, 0);
    int rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos);
    if (rc)
        goto out;
    rc = CLI_USAGE;
    if (npos != 1 || !core_is_dns_label(pos[0])) {
        cli_error("render needs one SERVICE name (see 'pave render --help')");
        goto out;
    }
    if (!env || !*env) {
        cli_error("render needs --env ENV (see 'pave env list')");
        goto out;
    }
    if (target && strcmp(target, "kubernetes") != 0) {
        cli_error("unsupported render target '%s': the only target is 'kubernetes'", target);
        goto out;
    }
    core_buf_adds(&path, "/api/v1/services/");
    core_buf_add_urlenc(&path, pos[0]);
    core_buf_adds(&path, "/render?target=kubernetes&env=");
    core_buf_add_urlenc(&path, env);
    if (image && *image) {
        core_buf_adds(&path, "&image=");
        core_buf_add_urlenc(&path, image);
    }
    if ((rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp)))
        goto out;
    if (ctx->format == CLI_JSON) {
        char *text = json_dumps(resp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        free(text);
    } else {
        size_t i;
        json_t *item;
        json_array_foreach (json_object_get(resp, "items"), i, item) {
            fputs("---\n", stdout);
            cli_print_yaml(item, 0, false);
        }
    }
    rc = CLI_OK;
out:
    json_decref(resp);
    resp = NULL;
    core_buf_release(&path);
    return rc;
}
