/* `pave deploy`, `status`, `rollback`, `scale` and `deployments`: the deploy controller from
 * the command line (docs/deploy.md). deploy, rollback and scale record the desired state and
 * then follow the rollout until it ends, unless --no-wait. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define WAIT_LIMIT_MS (30LL * 60 * 1000)

static bool terminal(const char *state)
{
    return state && (!strcmp(state, "succeeded") || !strcmp(state, "failed") ||
                     !strcmp(state, "rolled-back") || !strcmp(state, "superseded"));
}

static void service_path(struct core_buf *b, const char *service, const char *rest)
{
    core_buf_adds(b, "/api/v1/services/");
    core_buf_add_urlenc(b, service);
    core_buf_adds(b, rest);
}

/* "2/3 ready" of the replicas of the deployment's revision. */
static void progress_line(struct cli_ctx *ctx, const char *service, const char *env,
                          const char *revision, char *out, size_t outsz)
{
    struct core_buf path;
    core_buf_init(&path, 0);
    service_path(&path, service, "/status?env=");
    core_buf_add_urlenc(&path, env);
    struct core_buf resp;
    core_buf_init(&resp, 0);
    char msg[256];
    out[0] = 0;
    int status = cli_http(ctx, "GET", path.data, NULL, 0, NULL, &resp, msg, sizeof(msg));
    json_error_t jerr;
    json_t *doc = status == 200 ? json_loadb(resp.data, resp.len, 0, &jerr) : NULL;
    json_t *e = json_array_get(json_object_get(doc, "environments"), 0);
    if (e) {
        int ready = 0, starting = 0, old = 0;
        size_t i;
        json_t *r;
        json_array_foreach (json_object_get(e, "replicas"), i, r) {
            const char *rev = json_string_value(json_object_get(r, "revision"));
            bool is_new = rev && revision && !strcmp(rev, revision);
            if (is_new && json_is_true(json_object_get(r, "ready")))
                ready++;
            else if (is_new)
                starting++;
            else
                old++;
        }
        snprintf(out, outsz, "%d/%lld ready, %d starting, %d old", ready,
                 (long long)json_integer_value(json_object_get(e, "replicas_wanted")), starting,
                 old);
    }
    json_decref(doc);
    core_buf_release(&resp);
    core_buf_release(&path);
}

/* Follows deployment `d` until it ends; prints progress on change. */
static int follow(struct cli_ctx *ctx, json_t *d)
{
    long long id = (long long)json_integer_value(json_object_get(d, "id"));
    const char *service = json_string_value(json_object_get(d, "service"));
    const char *env = json_string_value(json_object_get(d, "env"));
    char *svc = core_strdup(service ? service : ""), *en = core_strdup(env ? env : "");
    char rev[32];
    snprintf(rev, sizeof(rev), "%s", json_string_value(json_object_get(d, "revision")) ?: "");
    char path[64], last[300] = "", line[200];
    snprintf(path, sizeof(path), "/api/v1/deployments/%lld", id);
    int64_t deadline = core_now_ms() + WAIT_LIMIT_MS;
    int rc = CLI_FAIL;
    json_t *cur = NULL;
    while (core_now_ms() < deadline) {
        json_decref(cur);
        cur = NULL;
        if (cli_api(ctx, "GET", path, NULL, 0, NULL, &cur))
            goto out;
        const char *state = json_string_value(json_object_get(cur, "state"));
        progress_line(ctx, svc, en, rev, line, sizeof(line));
        char now[260];
        snprintf(now, sizeof(now), "%s: %s", state ? state : "?", line);
        if (strcmp(now, last) != 0 && ctx->format == CLI_TABLE) {
            fprintf(stderr, "  deployment #%lld %s\n", id, now);
            snprintf(last, sizeof(last), "%s", now);
        }
        if (terminal(state)) {
            const char *m = json_string_value(json_object_get(cur, "message"));
            if (ctx->format != CLI_TABLE)
                cli_print_object(ctx, cur);
            else if (!strcmp(state, "succeeded"))
                printf("deployment #%lld of %s to %s succeeded\n", id, svc, en);
            else
                printf("deployment #%lld of %s to %s %s: %s\n", id, svc, en, state,
                       m && *m ? m : "(no reason recorded)");
            rc = !strcmp(state, "succeeded") ? CLI_OK : CLI_FAIL;
            goto out;
        }
        usleep(300 * 1000);
    }
    cli_error("gave up waiting for deployment #%lld; it goes on: see 'pave status %s --env %s'",
              id, svc, en);
out:
    json_decref(cur);
    core_free(svc);
    core_free(en);
    return rc;
}

static int submit(struct cli_ctx *ctx, const char *service, const char *verb, json_t *body,
                  bool wait)
{
    struct core_buf path;
    core_buf_init(&path, 0);
    service_path(&path, service, verb);
    char *text = json_dumps(body, JSON_COMPACT);
    json_t *resp = NULL;
    int rc = text ? cli_api(ctx, "POST", path.data, text, strlen(text), "application/json", &resp)
                  : CLI_FAIL;
    free(text);
    core_buf_release(&path);
    if (rc)
        return rc;
    long long id = (long long)json_integer_value(json_object_get(resp, "id"));
    const char *kind = json_string_value(json_object_get(resp, "kind"));
    if (!wait || terminal(json_string_value(json_object_get(resp, "state")))) {
        if (ctx->format != CLI_TABLE)
            cli_print_object(ctx, resp);
        else
            printf("%s #%lld of %s to %s recorded (%s); follow it with 'pave status %s --env "
                   "%s'\n",
                   kind ? kind : "deployment", id, service,
                   json_string_value(json_object_get(resp, "env")),
                   json_string_value(json_object_get(resp, "state")), service,
                   json_string_value(json_object_get(resp, "env")));
        json_decref(resp);
        return CLI_OK;
    }
    if (ctx->format == CLI_TABLE)
        fprintf(stderr, "%s #%lld of %s to %s: image %s\n", kind ? kind : "deployment", id,
                service, json_string_value(json_object_get(resp, "env")),
                json_string_value(json_object_get(resp, "image")));
    rc = follow(ctx, resp);
    json_decref(resp);
    return rc;
}

static bool need_service_env(const char *cmd, int npos, char **pos, const char *env)
{
    if (npos < 1 || !core_is_dns_label(pos[0])) {
        cli_error("%s needs one SERVICE name (see 'pave %s --help')", cmd, cmd);
        return false;
    }
    if (!env || !*env) {
        cli_error("%s needs --env ENV (see 'pave env list')", cmd);
        return false;
    }
    return true;
}

static const char deploy_usage[] =
    "usage: pave deploy SERVICE --env ENV [--image REF] [--replicas N]\n"
    "                   [--health-deadline DURATION] [--no-wait] [-o json|yaml]\n\n"
    "Deploys an image of SERVICE (built and signed by its pipeline) to environment ENV:\n"
    "records the desired state, then rolls replicas over one by one (spec.rollout maxSurge\n"
    "and maxUnavailable). A new replica gets traffic from the load balancer only after its\n"
    "health check (spec.run.health.path) passes; old replicas are drained before they stop.\n"
    "A new version that is not healthy within the deadline is rolled back automatically\n"
    "while the old one keeps serving. Waits for the result unless --no-wait; exits 1 if the\n"
    "rollout failed or was rolled back.\n\n"
    "flags:\n"
    "  --env ENV, -e ENV          environment (see 'pave env list')\n"
    "  --image REF                tag (main, run-42), @sha256:DIGEST or SERVICE:TAG\n"
    "                             (default: the newest tagged image, see 'pave artifacts list')\n"
    "  --replicas N               replicas (default: the manifest's spec.replicas)\n"
    "  --health-deadline D        how long a new replica may take to become healthy\n"
    "                             (default 60s)\n"
    "  --no-wait                  return once the deployment is recorded\n\n"
    "Example: pave deploy payments-api --env staging --image main\n";

int cli_cmd_deploy(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(deploy_usage, stdout);
        return CLI_OK;
    }
    const char *env = NULL, *image = NULL, *replicas = NULL, *deadline = NULL;
    bool no_wait = false;
    const struct cli_opt opts[] = {{"env", 'e', &env, NULL},
                                   {"image", 0, &image, NULL},
                                   {"replicas", 0, &replicas, NULL},
                                   {"health-deadline", 0, &deadline, NULL},
                                   {"no-wait", 0, NULL, &no_wait},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos);
    if (rc)
        return rc;
    if (!need_service_env("deploy", npos, pos, env))
        return CLI_USAGE;
    json_t *body = json_pack("{s:s}", "env", env);
    if (image)
        json_object_set_new(body, "image", json_string(image));
    if (replicas) {
        char *end = NULL;
        long n = strtol(replicas, &end, 10);
        if (!*replicas || *end || n < 0 || n > 100) {
            cli_error("--replicas must be 0..100");
            json_decref(body);
            return CLI_USAGE;
        }
        json_object_set_new(body, "replicas", json_integer(n));
    }
    if (deadline)
        json_object_set_new(body, "health_deadline", json_string(deadline));
    rc = submit(ctx, pos[0], "/deployments", body, !no_wait);
    json_decref(body);
    return rc;
}

static const char rollback_usage[] =
    "usage: pave rollback SERVICE --env ENV [--to ID] [--no-wait]\n\n"
    "Deploys again what an earlier deployment ran: by default the newest successful\n"
    "deployment of another revision than the current one; --to ID picks one from\n"
    "'pave deployments list SERVICE'. It is a rolling update like any deploy.\n";

int cli_cmd_rollback(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(rollback_usage, stdout);
        return CLI_OK;
    }
    const char *env = NULL, *to = NULL;
    bool no_wait = false;
    const struct cli_opt opts[] = {{"env", 'e', &env, NULL},
                                   {"to", 0, &to, NULL},
                                   {"no-wait", 0, NULL, &no_wait},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos);
    if (rc)
        return rc;
    if (!need_service_env("rollback", npos, pos, env))
        return CLI_USAGE;
    json_t *body = json_pack("{s:s}", "env", env);
    if (to) {
        char *end = NULL;
        long long n = strtoll(to, &end, 10);
        if (!*to || *end || n <= 0) {
            cli_error("--to needs a deployment id (see 'pave deployments list %s')", pos[0]);
            json_decref(body);
            return CLI_USAGE;
        }
        json_object_set_new(body, "to", json_integer(n));
    }
    rc = submit(ctx, pos[0], "/rollback", body, !no_wait);
    json_decref(body);
    return rc;
}

static const char scale_usage[] =
    "usage: pave scale SERVICE --env ENV N\n\n"
    "Sets the number of replicas of the running version (0..100). Replicas are added or\n"
    "drained and removed; nothing is replaced.\n";

int cli_cmd_scale(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(scale_usage, stdout);
        return CLI_OK;
    }
    const char *env = NULL, *replicas = NULL;
    const struct cli_opt opts[] = {{"env", 'e', &env, NULL},
                                   {"replicas", 0, &replicas, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[2];
    int npos = 0;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 2, &npos);
    if (rc)
        return rc;
    if (!need_service_env("scale", npos, pos, env))
        return CLI_USAGE;
    const char *n_text = npos == 2 ? pos[1] : replicas;
    char *end = NULL;
    long n = n_text ? strtol(n_text, &end, 10) : -1;
    if (!n_text || !*n_text || *end || n < 0 || n > 100) {
        cli_error("scale needs the number of replicas, 0..100: pave scale %s --env %s N", pos[0],
                  env);
        return CLI_USAGE;
    }
    json_t *body = json_pack("{s:s,s:i}", "env", env, "replicas", (int)n);
    rc = submit(ctx, pos[0], "/scale", body, false);
    json_decref(body);
    return rc;
}

static const char status_usage[] =
    "usage: pave status SERVICE [--env ENV] [-o table|json|yaml]\n\n"
    "What runs: per environment the desired and the stable deployment, the URL through the\n"
    "load balancer, the service-discovery address other services get as <NAME>_URL, and every\n"
    "replica with its port, health (ready), state (starting, running, backoff, crash-loop),\n"
    "restarts and isolation (bwrap+cgroup-v1/v2; a replica never runs unisolated).\n";

static void print_dep_line(const char *label, json_t *d)
{
    if (!json_is_object(d)) {
        printf("  %-9s -\n", label);
        return;
    }
    const char *msg = json_string_value(json_object_get(d, "message"));
    printf("  %-9s #%lld %s %s (%s by %s at %s)%s%s\n", label,
           (long long)json_integer_value(json_object_get(d, "id")),
           json_string_value(json_object_get(d, "image")),
           json_string_value(json_object_get(d, "revision")),
           json_string_value(json_object_get(d, "state")),
           json_string_value(json_object_get(d, "actor")),
           json_string_value(json_object_get(d, "created_at")), msg && *msg ? ": " : "",
           msg && *msg ? msg : "");
}

int cli_cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(status_usage, stdout);
        return CLI_OK;
    }
    const char *env = NULL;
    const struct cli_opt opts[] = {{"env", 'e', &env, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1 || !core_is_dns_label(pos[0])) {
        cli_error("status needs one SERVICE name (see 'pave status --help')");
        return CLI_USAGE;
    }
    struct core_buf path;
    core_buf_init(&path, 0);
    service_path(&path, pos[0], "/status");
    if (env) {
        core_buf_adds(&path, "?env=");
        core_buf_add_urlenc(&path, env);
    }
    json_t *resp = NULL;
    rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
    core_buf_release(&path);
    if (rc)
        return rc;
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, resp);
        json_decref(resp);
        return CLI_OK;
    }
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(resp, "environments"), i, e) {
        const char *url = json_string_value(json_object_get(e, "url"));
        printf("%s in %s: %lld replica(s) wanted\n", pos[0],
               json_string_value(json_object_get(e, "env")),
               (long long)json_integer_value(json_object_get(e, "replicas_wanted")));
        print_dep_line("desired", json_object_get(e, "desired"));
        print_dep_line("stable", json_object_get(e, "stable"));
        printf("  %-9s %s\n", "url", url && *url ? url : "(no spec.expose.host)");
        printf("  %-9s %s\n", "internal", json_string_value(json_object_get(e, "internal_url")));
        static const struct cli_column cols[] = {{"REPLICA", "name"},
                                                 {"REVISION", "revision"},
                                                 {"PORT", "port"},
                                                 {"READY", "ready"},
                                                 {"STATE", "state"},
                                                 {"RESTARTS", "restarts"},
                                                 {"DRAINING", "draining"},
                                                 {"ISOLATION", "isolation"},
                                                 {NULL, NULL}};
        cli_print_list(ctx, json_object_get(e, "replicas"), cols);
    }
    json_decref(resp);
    return CLI_OK;
}

static const char deployments_usage[] =
    "usage: pave deployments <verb> [flags]\n\n"
    "verbs:\n"
    "  list [SERVICE] [--env ENV] [--limit N] [--offset N]   deployments, rollbacks and\n"
    "                           scales, newest first: who, when, what image, result\n"
    "  show ID                  one deployment\n\n"
    "Output: -o table|json|yaml.\n";

int cli_cmd_deployments(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(deployments_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    const char *env = NULL, *limit = NULL, *offset = NULL;
    const struct cli_opt opts[] = {{"env", 'e', &env, NULL},
                                   {"limit", 0, &limit, NULL},
                                   {"offset", 0, &offset, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[2];
    int npos = 0;
    int rc = cli_parse(ctx, argc - 1, argv + 1, opts, pos, 1, &npos);
    if (rc)
        return rc;
    json_t *resp = NULL;
    struct core_buf path;
    core_buf_init(&path, 0);
    if (!strcmp(verb, "show")) {
        char *end = NULL;
        long long id = npos == 1 ? strtoll(pos[0], &end, 10) : 0;
        if (npos != 1 || *end || id <= 0) {
            cli_error("deployments show needs a deployment ID (see 'pave deployments list')");
            rc = CLI_USAGE;
            goto out;
        }
        core_buf_addf(&path, "/api/v1/deployments/%lld", id);
        if (!(rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp)))
            cli_print_object(ctx, resp);
        goto out;
    }
    if (strcmp(verb, "list") != 0) {
        cli_error("unknown verb '%s' for deployments: use list or show", verb);
        rc = CLI_USAGE;
        goto out;
    }
    core_buf_adds(&path, "/api/v1/deployments?limit=");
    core_buf_add_urlenc(&path, limit ? limit : "50");
    if (offset) {
        core_buf_adds(&path, "&offset=");
        core_buf_add_urlenc(&path, offset);
    }
    if (npos == 1) {
        core_buf_adds(&path, "&service=");
        core_buf_add_urlenc(&path, pos[0]);
    }
    if (env) {
        core_buf_adds(&path, "&env=");
        core_buf_add_urlenc(&path, env);
    }
    if ((rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp)))
        goto out;
    static const struct cli_column cols[] = {{"ID", "id"},           {"SERVICE", "service"},
                                             {"ENV", "env"},         {"KIND", "kind"},
                                             {"IMAGE", "image"},     {"REPLICAS", "replicas"},
                                             {"STATE", "state"},     {"BY", "actor"},
                                             {"CREATED", "created_at"}, {"MESSAGE", "message"},
                                             {NULL, NULL}};
    cli_print_list(ctx, json_object_get(resp, "items"), cols);
out:
    json_decref(resp);
    core_buf_release(&path);
    return rc;
}
