/* `pave audit list`: the append-only audit log. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char audit_usage[] =
    "usage: pave audit list [--kind K] [--object NAME] [--actor USER] [--limit N] [--before ID]\n"
    "\n"
    "Lists audit events, newest first. Every change records who made it, when, the action,\n"
    "the object and SHA-256 digests of the object before and after. --before pages back from\n"
    "an event id. Takes -o table|json|yaml.\n";

int cli_cmd_audit(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(audit_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "list") != 0) {
        cli_error("unknown verb 'audit %s' (use 'audit list')", argv[1]);
        return CLI_USAGE;
    }
    const char *kind = NULL, *object = NULL, *actor = NULL, *limit = NULL, *before = NULL;
    const struct cli_opt opts[] = {
        {"kind", 'k', &kind, NULL},   {"object", 0, &object, NULL}, {"actor", 0, &actor, NULL},
        {"limit", 'n', &limit, NULL}, {"before", 0, &before, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc - 1, argv + 1, opts, pos, 0, &npos);
    if (rc)
        return rc;
    struct core_buf path;
    core_buf_init(&path, 0);
    core_buf_adds(&path, "/api/v1/audit?limit=");
    core_buf_add_urlenc(&path, limit ? limit : "50");
    const char *keys[] = {"kind", "object", "actor", "before"};
    const char *vals[] = {kind, object, actor, before};
    for (int i = 0; i < 4; i++)
        if (vals[i]) {
            core_buf_addf(&path, "&%s=", keys[i]);
            core_buf_add_urlenc(&path, vals[i]);
        }
    json_t *resp = NULL;
    rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
    core_buf_release(&path);
    if (rc)
        return rc;
    static const struct cli_column cols[] = {
        {"ID", "id"},       {"TIME", "ts"},       {"ACTOR", "actor"}, {"ACTION", "action"},
        {"OBJECT", "object"}, {"BEFORE", "before"}, {"AFTER", "after"}, {NULL, NULL}};
    json_t *items = json_object_get(resp, "items");
    if (ctx->format == CLI_TABLE) {
        /* Digests are long; a 12-character prefix identifies them in a table. */
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *k[] = {"before", "after"};
            for (int j = 0; j < 2; j++) {
                const char *d = json_string_value(json_object_get(it, k[j]));
                if (d && strlen(d) > 12) {
                    char s[13];
                    memcpy(s, d, 12);
                    s[12] = 0;
                    json_object_set_new(it, k[j], json_string(s));
                }
            }
        }
    }
    cli_print_list(ctx, items, cols);
    json_decref(resp);
    return CLI_OK;
}
