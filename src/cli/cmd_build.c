/* `pave build`, `pave runs list|show|log|cancel|retry`, `pave secret set|list|delete`. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "ci/ci.h"
#include "cli/cli.h"
#include "schema/schema.h"

extern char **environ;

#define BUILD_UPLOAD_MAX ((size_t)512 << 20)

static void print_chunk(void *arg, const char *data, size_t len)
{
    fwrite(data, 1, len, stdout);
    fflush(stdout);
}

/* Follows a run's log to stdout, then reports its final state. returns: CLI_OK if it
 * succeeded. */
static int follow_run(struct cli_ctx *ctx, long long id)
{
    char path[128], errmsg[512];
    snprintf(path, sizeof(path), "/api/v1/runs/%lld/log?follow=1", id);
    int status = cli_http_stream(ctx, path, print_chunk, NULL, errmsg, sizeof(errmsg));
    if (status != 200) {
        cli_error("cannot follow run %lld: %s", id, status < 0 ? errmsg : "the server refused");
        return CLI_FAIL;
    }
    snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
    json_t *run = NULL;
    if (cli_api(ctx, "GET", path, NULL, 0, NULL, &run))
        return CLI_FAIL;
    const char *state = json_string_value(json_object_get(run, "state"));
    const char *digest = json_string_value(json_object_get(json_object_get(run, "artifact"),
                                                           "digest"));
    fprintf(stderr, "run %lld %s%s%s\n", id, state ? state : "?", digest ? ": artifact " : "",
            digest ? digest : "");
    int rc = state && strcmp(state, "succeeded") == 0 ? CLI_OK : CLI_FAIL;
    json_decref(run);
    return rc;
}

/* Service name from DIR/pave.yaml (validated locally). */
static int service_of(const char *dir, char *out, size_t outsz)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/pave.yaml", dir);
    char *text = NULL;
    size_t len = 0;
    struct core_err err = {0};
    if (core_file_read(path, CATALOG_MANIFEST_MAX, &text, &len, &err)) {
        cli_error("%s (run pave build in a service directory or pass --service NAME)", err.msg);
        return CLI_FAIL;
    }
    struct catalog_manifest m;
    struct schema_diags d;
    catalog_manifest_init(&m);
    schema_diags_init(&d);
    int rc = catalog_manifest_parse(path, text, len, &m, &d, &err);
    if (rc) {
        struct core_buf b;
        core_buf_init(&b, 0);
        schema_diags_format(&d, &b);
        fputs(b.data, stderr);
        core_buf_release(&b);
        cli_error("%s is invalid; fix it first", path);
    } else {
        snprintf(out, outsz, "%s", m.name);
    }
    catalog_manifest_release(&m);
    schema_diags_release(&d);
    core_free(text);
    return rc ? CLI_FAIL : CLI_OK;
}

/* Validates DIR/.pave/pipeline.yml before uploading, so a broken file is reported at once with
 * every problem at file:line:column (the server checks it again before running anything). */
static int check_pipeline(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, CI_PIPELINE_PATH);
    char *text = NULL;
    size_t len = 0;
    struct core_err err = {0};
    if (core_file_read(path, CI_PIPELINE_MAX, &text, &len, &err)) {
        cli_error("%s (create it; see docs/pipelines.md, or start from 'pave init')", err.msg);
        return CLI_FAIL;
    }
    struct ci_pipeline p;
    struct schema_diags d;
    ci_pipeline_init(&p);
    schema_diags_init(&d);
    int rc = ci_pipeline_parse(CI_PIPELINE_PATH, text, len, &p, &d, &err);
    if (rc) {
        struct core_buf b;
        core_buf_init(&b, 0);
        if (d.n)
            schema_diags_format(&d, &b);
        else
            core_buf_addf(&b, "%s\n", err.msg);
        fputs(b.data, stderr);
        core_buf_release(&b);
        cli_error("%s is invalid; nothing was uploaded", CI_PIPELINE_PATH);
    }
    ci_pipeline_release(&p);
    schema_diags_release(&d);
    core_free(text);
    return rc ? CLI_FAIL : CLI_OK;
}

/* Tars the working tree: the files git knows (tracked and untracked, not ignored) in a git
 * checkout, else everything but .git. */
static int tar_tree(const char *dir, const char *tarpath)
{
    char script[8192];
    snprintf(script, sizeof(script),
             "cd \"$1\" && if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then "
             "git ls-files -z --cached --others --exclude-standard | "
             "tar --null --no-recursion -cf \"$2\" -T -; else tar --exclude=.git -cf \"$2\" .; fi");
    const char *argv[] = {"/bin/sh", "-c", script, "sh", dir, tarpath, NULL};
    pid_t pid;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, (char *const *)argv, environ) != 0)
        return -1;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static const char build_usage[] =
    "usage: pave build [--dir DIR] [--service NAME] [--branch B] [--no-follow] [-o json]\n\n"
    "Runs the pipeline (.pave/pipeline.yml) of a working tree on the platform without a push:\n"
    "the tree is uploaded (in a git checkout: the files git knows, untracked included), a run\n"
    "is queued, and its log is followed until it ends. Exits 0 when the run succeeded.\n";

int cli_cmd_build(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(build_usage, stdout);
        return CLI_OK;
    }
    const char *dir = ".", *service = NULL, *branch = NULL;
    bool no_follow = false;
    const struct cli_opt opts[] = {{"dir", 'C', &dir, NULL},
                                   {"service", 's', &service, NULL},
                                   {"branch", 'b', &branch, NULL},
                                   {"no-follow", 0, NULL, &no_follow},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    char name[128];
    if (service)
        snprintf(name, sizeof(name), "%s", service);
    else if ((rc = service_of(dir, name, sizeof(name))))
        return rc;
    if (!core_is_dns_label(name)) {
        cli_error("invalid service name '%s'", name);
        return CLI_USAGE;
    }
    if ((rc = check_pipeline(dir)))
        return rc;
    char tarpath[] = "/tmp/pave-build-XXXXXX";
    int fd = mkstemp(tarpath);
    if (fd < 0) {
        cli_error("cannot create a temporary file: %s", strerror(errno));
        return CLI_FAIL;
    }
    close(fd);
    if (tar_tree(dir, tarpath)) {
        unlink(tarpath);
        cli_error("cannot pack the working tree in '%s'", dir);
        return CLI_FAIL;
    }
    char *data = NULL;
    size_t len = 0;
    struct core_err err = {0};
    rc = core_file_read(tarpath, BUILD_UPLOAD_MAX, &data, &len, &err);
    unlink(tarpath);
    if (rc) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    struct core_buf path;
    core_buf_init(&path, 0);
    core_buf_addf(&path, "/api/v1/services/%s/builds", name);
    if (branch) {
        core_buf_adds(&path, "?branch=");
        core_buf_add_urlenc(&path, branch);
    }
    json_t *resp = NULL;
    fprintf(stderr, "uploading %zu KiB of %s for service '%s'\n", len / 1024, dir, name);
    rc = cli_api(ctx, "POST", path.data, data, len, "application/x-tar", &resp);
    core_buf_release(&path);
    core_free(data);
    if (rc)
        return rc;
    long long id = (long long)json_integer_value(json_object_get(resp, "id"));
    if (ctx->format != CLI_TABLE)
        cli_print_object(ctx, resp);
    else
        fprintf(stderr, "run %lld queued\n", id);
    json_decref(resp);
    if (no_follow)
        return CLI_OK;
    return follow_run(ctx, id);
}

static const char runs_usage[] =
    "usage: pave runs <verb> [flags]\n\n"
    "verbs:\n"
    "  list [--service S] [--limit N] [--before ID]   newest first\n"
    "  show ID                                        the run and its steps\n"
    "  log ID [-f]                                    the log; -f follows it until the run ends\n"
    "  cancel ID                                      cancel a queued or running run\n"
    "  retry ID [--no-follow]                         run the same source again\n\n"
    "Listings take -o table|json|yaml.\n";

int cli_cmd_runs(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(runs_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    const char *service = NULL, *limit = NULL, *before = NULL;
    bool follow = false, no_follow = false;
    const struct cli_opt opts[] = {{"service", 's', &service, NULL},
                                   {"limit", 'n', &limit, NULL},
                                   {"before", 0, &before, NULL},
                                   {"follow", 'f', NULL, &follow},
                                   {"no-follow", 0, NULL, &no_follow},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc - 1, argv + 1, opts, pos, 1, &npos);
    if (rc)
        return rc;
    if (strcmp(verb, "list") == 0) {
        struct core_buf path;
        core_buf_init(&path, 0);
        core_buf_adds(&path, "/api/v1/runs?limit=");
        core_buf_add_urlenc(&path, limit ? limit : "20");
        if (service) {
            core_buf_adds(&path, "&service=");
            core_buf_add_urlenc(&path, service);
        }
        if (before) {
            core_buf_adds(&path, "&before=");
            core_buf_add_urlenc(&path, before);
        }
        json_t *resp = NULL;
        rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
        core_buf_release(&path);
        if (rc)
            return rc;
        static const struct cli_column cols[] = {
            {"ID", "id"},           {"SERVICE", "service"}, {"STATE", "state"},
            {"TRIGGER", "trigger"}, {"BRANCH", "branch"},   {"QUEUED", "queued_at"},
            {"ARTIFACT", "artifact.digest"}, {NULL, NULL}};
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
        json_decref(resp);
        return CLI_OK;
    }
    if (npos != 1) {
        cli_error("runs %s needs a run ID (see 'pave runs list')", verb);
        return CLI_USAGE;
    }
    char *end = NULL;
    long long id = strtoll(pos[0], &end, 10);
    if (*end || id <= 0) {
        cli_error("invalid run ID '%s'", pos[0]);
        return CLI_USAGE;
    }
    char path[128];
    json_t *resp = NULL;
    if (strcmp(verb, "show") == 0) {
        snprintf(path, sizeof(path), "/api/v1/runs/%lld", id);
        if ((rc = cli_api(ctx, "GET", path, NULL, 0, NULL, &resp)))
            return rc;
        cli_print_object(ctx, resp);
        json_decref(resp);
        return CLI_OK;
    }
    if (strcmp(verb, "log") == 0) {
        if (follow)
            return follow_run(ctx, id);
        char errmsg[512];
        snprintf(path, sizeof(path), "/api/v1/runs/%lld/log", id);
        int status = cli_http_stream(ctx, path, print_chunk, NULL, errmsg, sizeof(errmsg));
        if (status != 200) {
            cli_error("cannot read the log of run %lld: %s", id,
                      status < 0 ? errmsg : "the server refused (does the run exist?)");
            return CLI_FAIL;
        }
        return CLI_OK;
    }
    if (strcmp(verb, "cancel") == 0 || strcmp(verb, "retry") == 0) {
        snprintf(path, sizeof(path), "/api/v1/runs/%lld/%s", id, verb);
        if ((rc = cli_api(ctx, "POST", path, "{}", 2, "application/json", &resp)))
            return rc;
        long long nid = (long long)json_integer_value(json_object_get(resp, "id"));
        json_decref(resp);
        if (verb[0] == 'c') {
            printf("run/%lld cancelled\n", id);
            return CLI_OK;
        }
        fprintf(stderr, "run %lld queued (retry of %lld)\n", nid, id);
        return no_follow ? CLI_OK : follow_run(ctx, nid);
    }
    cli_error("unknown verb 'runs %s' (see 'pave runs --help')", verb);
    return CLI_USAGE;
}

static const char secret_usage[] =
    "usage: pave secret <verb> SERVICE [NAME]\n\n"
    "verbs:\n"
    "  set SERVICE NAME      read the value from standard input (never from the command line)\n"
    "  list SERVICE          names and dates only; values are never shown\n"
    "  delete SERVICE NAME\n\n"
    "Pipeline steps receive the secrets they list as environment variables, masked in logs.\n"
    "Values are encrypted at rest (AES-256-GCM) with the server's key file.\n";

int cli_cmd_secret(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(secret_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    char *pos[2];
    int npos;
    int rc = cli_parse(ctx, argc - 1, argv + 1, NULL, pos, 2, &npos);
    if (rc)
        return rc;
    if (npos < 1 || !core_is_dns_label(pos[0])) {
        cli_error("secret %s needs a SERVICE name", verb);
        return CLI_USAGE;
    }
    char path[400];
    json_t *resp = NULL;
    if (strcmp(verb, "list") == 0) {
        snprintf(path, sizeof(path), "/api/v1/services/%s/secrets", pos[0]);
        if ((rc = cli_api(ctx, "GET", path, NULL, 0, NULL, &resp)))
            return rc;
        static const struct cli_column cols[] = {
            {"NAME", "name"}, {"CREATED", "created_at"}, {"UPDATED", "updated_at"}, {NULL, NULL}};
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
        json_decref(resp);
        return CLI_OK;
    }
    if (npos != 2 || strchr(pos[1], '/') || strchr(pos[1], '?') || strchr(pos[1], '%')) {
        cli_error("secret %s needs SERVICE and NAME", verb);
        return CLI_USAGE;
    }
    snprintf(path, sizeof(path), "/api/v1/services/%s/secrets/%s", pos[0], pos[1]);
    if (strcmp(verb, "delete") == 0) {
        if ((rc = cli_api(ctx, "DELETE", path, NULL, 0, NULL, &resp)))
            return rc;
        printf("secret/%s/%s deleted\n", pos[0], pos[1]);
        json_decref(resp);
        return CLI_OK;
    }
    if (strcmp(verb, "set") == 0) {
        if (isatty(0))
            fprintf(stderr, "value for %s (end with Ctrl-D): ", pos[1]);
        struct core_buf v;
        core_buf_init(&v, 64 * 1024);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
            if (core_buf_add(&v, buf, n)) {
                core_buf_release(&v);
                cli_error("the value is larger than 64 KiB");
                return CLI_FAIL;
            }
        /* one trailing newline from `echo` or a terminal is not part of the value */
        if (v.len && v.data[v.len - 1] == '\n')
            v.data[--v.len] = 0;
        rc = cli_api(ctx, "PUT", path, v.data, v.len, "application/octet-stream", &resp);
        core_buf_release(&v);
        if (!rc)
            printf("secret/%s/%s set\n", pos[0], pos[1]);
        json_decref(resp);
        return rc;
    }
    cli_error("unknown verb 'secret %s' (see 'pave secret --help')", verb);
    return CLI_USAGE;
}
