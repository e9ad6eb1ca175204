/* `pave catalog apply|validate|list|show|delete`. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog/catalog.h"
#include "cli/cli.h"

static const char catalog_usage[] =
    "usage: pave catalog <verb> [flags]\n\n"
    "verbs:\n"
    "  apply -f FILE|DIR      create or update services from pave.yaml manifests; applying\n"
    "                         an unchanged manifest reports 'unchanged' and records nothing\n"
    "  validate -f FILE|DIR   check manifests locally and print every problem (no server)\n"
    "  list [--team T] [-q TEXT] [--limit N] [--offset N] [--all]\n"
    "  show NAME              the service and its manifest\n"
    "  delete NAME            remove a service from the catalog\n"
    "  schema                 print the manifest reference table (Markdown), generated from\n"
    "                         the validator's own schema\n\n"
    "flags: -o table|json|yaml on list, show and apply. See docs/manifest.md.\n";

/* Collects manifest files: FILE itself, or the .yaml, .yml and .json files of DIR (sorted). */
static int collect_files(const char *path, char ***files, size_t *n)
{
    struct stat sb;
    *files = NULL;
    *n = 0;
    if (stat(path, &sb) != 0) {
        cli_error("cannot read '%s': no such file or directory", path);
        return CLI_FAIL;
    }
    if (!S_ISDIR(sb.st_mode)) {
        *files = core_calloc(1, sizeof(char *));
        if (!*files || !((*files)[0] = core_strdup(path)))
            return CLI_FAIL;
        *n = 1;
        return CLI_OK;
    }
    struct dirent **ents = NULL;
    int m = scandir(path, &ents, NULL, alphasort);
    if (m < 0) {
        cli_error("cannot list directory '%s'", path);
        return CLI_FAIL;
    }
    *files = core_calloc((size_t)m + 1, sizeof(char *));
    for (int i = 0; i < m; i++) {
        const char *nm = ents[i]->d_name;
        size_t l = strlen(nm);
        bool want = nm[0] != '.' && ((l > 5 && strcmp(nm + l - 5, ".yaml") == 0) ||
                                     (l > 4 && strcmp(nm + l - 4, ".yml") == 0) ||
                                     (l > 5 && strcmp(nm + l - 5, ".json") == 0));
        if (want && *files) {
            char full[4096];
            snprintf(full, sizeof(full), "%s/%s", path, nm);
            (*files)[(*n)++] = core_strdup(full);
        }
        free(ents[i]);
    }
    free(ents);
    if (!*files)
        return CLI_FAIL;
    if (*n == 0) {
        cli_error("no manifests (.yaml, .yml or .json files) in directory '%s'", path);
        core_free(*files);
        *files = NULL;
        return CLI_FAIL;
    }
    return CLI_OK;
}

static void free_files(char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        core_free(files[i]);
    core_free(files);
}

static int validate_one(const char *file, bool quiet)
{
    struct core_err err = {0};
    char *text = NULL;
    size_t len = 0;
    if (core_file_read(file, CATALOG_MANIFEST_MAX, &text, &len, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    struct catalog_manifest m;
    struct schema_diags d;
    catalog_manifest_init(&m);
    schema_diags_init(&d);
    int rc = catalog_manifest_parse(file, text, len, &m, &d, &err);
    if (rc) {
        struct core_buf out;
        core_buf_init(&out, 0);
        if (d.n)
            schema_diags_format(&d, &out);
        else
            core_buf_addf(&out, "%s\n", err.msg);
        fputs(out.data, stderr);
        core_buf_release(&out);
        fprintf(stderr, "%s: %zu problem%s\n", file, d.n ? d.n : 1, d.n == 1 ? "" : "s");
    } else if (!quiet) {
        printf("%s: ok (service '%s', team '%s')\n", file, m.name, m.team);
    }
    catalog_manifest_release(&m);
    schema_diags_release(&d);
    core_free(text);
    return rc ? CLI_FAIL : CLI_OK;
}

static int do_validate(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *file = NULL;
    const struct cli_opt opts[] = {{"file", 'f', &file, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos);
    if (rc)
        return rc;
    if (!file && npos)
        file = pos[0];
    if (!file) {
        cli_error("validate needs -f FILE|DIR");
        return CLI_USAGE;
    }
    char **files;
    size_t n;
    if ((rc = collect_files(file, &files, &n)))
        return rc;
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += validate_one(files[i], false) != CLI_OK;
    free_files(files, n);
    return bad ? CLI_FAIL : CLI_OK;
}

static int do_apply(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *file = NULL;
    const struct cli_opt opts[] = {{"file", 'f', &file, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    if (!file) {
        cli_error("apply needs -f FILE|DIR (a pave.yaml manifest or a directory of them)");
        return CLI_USAGE;
    }
    char **files;
    size_t n;
    if ((rc = collect_files(file, &files, &n)))
        return rc;
    int failed = 0;
    json_t *results = json_array();
    for (size_t i = 0; i < n; i++) {
        struct core_err err = {0};
        char *text = NULL;
        size_t len = 0;
        if (core_file_read(files[i], CATALOG_MANIFEST_MAX, &text, &len, &err)) {
            cli_error("%s", err.msg);
            failed++;
            continue;
        }
        struct core_buf path;
        core_buf_init(&path, 0);
        core_buf_adds(&path, "/api/v1/services?source=");
        core_buf_add_urlenc(&path, files[i]);
        json_t *resp = NULL;
        rc = cli_api(ctx, "POST", path.data, text, len, "application/yaml", &resp);
        core_buf_release(&path);
        core_free(text);
        if (rc) {
            fprintf(stderr, "%s: not applied\n", files[i]);
            failed++;
            continue;
        }
        const char *change = json_string_value(json_object_get(resp, "change"));
        json_t *svc = json_object_get(resp, "service");
        const char *name = json_string_value(json_object_get(svc, "name"));
        if (ctx->format == CLI_TABLE)
            printf("service/%s %s\n", name ? name : "?", change ? change : "?");
        json_array_append_new(results, json_pack("{s:s,s:s?,s:s?}", "file", files[i], "name",
                                                 name, "change", change));
        json_decref(resp);
    }
    if (ctx->format != CLI_TABLE)
        cli_print_list(ctx, results, NULL);
    json_decref(results);
    free_files(files, n);
    return failed ? CLI_FAIL : CLI_OK;
}

static int do_list(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *team = NULL, *q = NULL, *limit = NULL, *offset = NULL;
    bool all = false;
    const struct cli_opt opts[] = {
        {"team", 't', &team, NULL},     {"search", 'q', &q, NULL}, {"limit", 0, &limit, NULL},
        {"offset", 0, &offset, NULL},   {"all", 'A', NULL, &all},  {NULL, 0, NULL, NULL},
    };
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    json_t *items = json_array();
    long off = offset ? strtol(offset, NULL, 10) : 0;
    char *after = NULL; /* --all pages with the keyset cursor the server returns */
    for (;;) {
        struct core_buf path;
        core_buf_init(&path, 0);
        core_buf_addf(&path, "/api/v1/services?offset=%ld&limit=%s", after ? 0 : off,
                      limit ? limit : (all ? "500" : "50"));
        if (after) {
            core_buf_adds(&path, "&after=");
            core_buf_add_urlenc(&path, after);
        }
        if (team) {
            core_buf_adds(&path, "&team=");
            core_buf_add_urlenc(&path, team);
        }
        if (q) {
            core_buf_adds(&path, "&q=");
            core_buf_add_urlenc(&path, q);
        }
        json_t *resp = NULL;
        rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
        core_buf_release(&path);
        if (rc) {
            json_decref(items);
            core_free(after);
            return rc;
        }
        json_array_extend(items, json_object_get(resp, "items"));
        json_t *next = json_object_get(resp, "next_offset");
        const char *next_after = json_string_value(json_object_get(resp, "next_after"));
        bool more = all && next_after;
        core_free(after);
        after = more ? core_strdup(next_after) : NULL;
        if (!all && json_is_integer(next) && ctx->format == CLI_TABLE) {
            fprintf(stderr, "(showing %zu of %lld; use --all or --offset %lld for more)\n",
                    json_array_size(items),
                    (long long)json_integer_value(json_object_get(resp, "total")),
                    (long long)json_integer_value(next));
        }
        json_decref(resp);
        if (!after)
            break;
    }
    static const struct cli_column cols[] = {
        {"NAME", "name"}, {"TEAM", "team"}, {"TIER", "tier"}, {"REV", "revision"},
        {"UPDATED", "updated_at"}, {"DESCRIPTION", "description"}, {NULL, NULL},
    };
    cli_print_list(ctx, items, cols);
    json_decref(items);
    return CLI_OK;
}

static int do_show_delete(struct cli_ctx *ctx, int argc, char **argv, bool del)
{
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1) {
        cli_error("%s needs a service name", del ? "delete" : "show");
        return CLI_USAGE;
    }
    struct core_buf path;
    core_buf_init(&path, 0);
    core_buf_adds(&path, "/api/v1/services/");
    core_buf_add_urlenc(&path, pos[0]);
    json_t *resp = NULL;
    rc = cli_api(ctx, del ? "DELETE" : "GET", path.data, NULL, 0, NULL, &resp);
    core_buf_release(&path);
    if (!rc) {
        if (del && ctx->format == CLI_TABLE)
            printf("service/%s deleted\n", pos[0]);
        else
            cli_print_object(ctx, resp);
    }
    json_decref(resp);
    return rc;
}

int cli_cmd_catalog(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(catalog_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    if (cli_wants_help(argc - 1, argv + 1)) {
        fputs(catalog_usage, stdout);
        return CLI_OK;
    }
    if (strcmp(verb, "apply") == 0)
        return do_apply(ctx, argc - 1, argv + 1);
    if (strcmp(verb, "validate") == 0)
        return do_validate(ctx, argc - 1, argv + 1);
    if (strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0)
        return do_list(ctx, argc - 1, argv + 1);
    if (strcmp(verb, "show") == 0 || strcmp(verb, "get") == 0)
        return do_show_delete(ctx, argc - 1, argv + 1, false);
    if (strcmp(verb, "schema") == 0) {
        struct core_buf b;
        core_buf_init(&b, 0);
        int rc = catalog_manifest_schema_markdown(&b);
        if (!rc)
            fputs(b.data, stdout);
        core_buf_release(&b);
        return rc ? CLI_FAIL : CLI_OK;
    }
    if (strcmp(verb, "delete") == 0 || strcmp(verb, "rm") == 0)
        return do_show_delete(ctx, argc - 1, argv + 1, true);
    cli_error("unknown verb 'catalog %s' (use apply, validate, list, show or delete)", verb);
    return CLI_USAGE;
}
