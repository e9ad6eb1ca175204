/* `pave login`, `pave whoami`, `pave token create|list|revoke`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char token_usage[] =
    "usage: pave token <verb> [flags]\n\n"
    "verbs:\n"
    "  create [--name N] [--user U] [--ttl 30d]   prints the new token once; only its hash is\n"
    "                                             stored (admins may create for other users)\n"
    "  list                                       tokens you may see (never their values)\n"
    "  revoke ID                                  revoke a token by id (tok_...)\n\n"
    "Listings take -o table|json|yaml.\n";

int cli_cmd_token(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(token_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    char *pos[1];
    int npos, rc;
    if (strcmp(verb, "create") == 0) {
        const char *name = NULL, *user = NULL, *ttl = NULL;
        const struct cli_opt opts[] = {{"name", 'n', &name, NULL},
                                       {"user", 'u', &user, NULL},
                                       {"ttl", 0, &ttl, NULL},
                                       {NULL, 0, NULL, NULL}};
        if ((rc = cli_parse(ctx, argc - 1, argv + 1, opts, pos, 0, &npos)))
            return rc;
        json_t *body = json_pack("{s:s,s:s?,s:s?}", "name", name ? name : "cli", "user", user,
                                 "ttl", ttl);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        json_t *resp = NULL;
        rc = cli_api(ctx, "POST", "/api/v1/tokens", text, text ? strlen(text) : 0,
                     "application/json", &resp);
        free(text);
        if (!rc) {
            if (ctx->format == CLI_TABLE) {
                printf("%s\n", json_string_value(json_object_get(resp, "token")));
                fprintf(stderr, "token %s for user '%s' created; it is shown only now\n",
                        json_string_value(json_object_get(resp, "id")),
                        json_string_value(json_object_get(resp, "user")));
            } else {
                cli_print_object(ctx, resp);
            }
        }
        json_decref(resp);
        return rc;
    }
    if (strcmp(verb, "list") == 0) {
        if ((rc = cli_parse(ctx, argc - 1, argv + 1, NULL, pos, 0, &npos)))
            return rc;
        json_t *resp = NULL;
        if ((rc = cli_api(ctx, "GET", "/api/v1/tokens", NULL, 0, NULL, &resp)))
            return rc;
        static const struct cli_column cols[] = {
            {"ID", "id"},           {"NAME", "name"},          {"USER", "user"},
            {"CREATED", "created_at"}, {"LAST USED", "last_used_at"},
            {"EXPIRES", "expires_at"}, {"REVOKED", "revoked_at"}, {NULL, NULL}};
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
        json_decref(resp);
        return CLI_OK;
    }
    if (strcmp(verb, "revoke") == 0) {
        if ((rc = cli_parse(ctx, argc - 1, argv + 1, NULL, pos, 1, &npos)))
            return rc;
        if (npos != 1) {
            cli_error("token revoke needs a token ID (see 'pave token list')");
            return CLI_USAGE;
        }
        if (strchr(pos[0], '/') || strchr(pos[0], '?')) {
            cli_error("invalid token id '%s'", pos[0]);
            return CLI_FAIL;
        }
        char path[256];
        snprintf(path, sizeof(path), "/api/v1/tokens/%s", pos[0]);
        json_t *resp = NULL;
        rc = cli_api(ctx, "DELETE", path, NULL, 0, NULL, &resp);
        if (!rc)
            printf("token/%s revoked\n", pos[0]);
        json_decref(resp);
        return rc;
    }
    cli_error("unknown verb 'token %s' (see 'pave token --help')", verb);
    return CLI_USAGE;
}

int cli_cmd_whoami(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: pave whoami [-o table|json|yaml]\n\nShows the user, teams and admin flag "
               "behind the current token, and the server.\n");
        return CLI_OK;
    }
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 0, &npos);
    if (rc)
        return rc;
    json_t *resp = NULL;
    if ((rc = cli_api(ctx, "GET", "/api/v1/whoami", NULL, 0, NULL, &resp)))
        return rc;
    json_object_set_new(resp, "server", json_string(ctx->server));
    cli_print_object(ctx, resp);
    json_decref(resp);
    return CLI_OK;
}

int cli_cmd_login(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: pave login [--server URL] [--token TOKEN | --token-stdin]\n\n"
               "Checks the token against the server and saves both to ~/.config/pave/config\n"
               "(mode 0600). Without --token the token is read from standard input.\n"
               "PAVE_SERVER and PAVE_TOKEN still override the saved values.\n");
        return CLI_OK;
    }
    const char *server = NULL, *token = NULL;
    bool from_stdin = false;
    const struct cli_opt opts[] = {{"server", 's', &server, NULL},
                                   {"token", 't', &token, NULL},
                                   {"token-stdin", 0, NULL, &from_stdin},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    char buf[256];
    if (!token) {
        if (isatty(0))
            fprintf(stderr, "token: ");
        if (!fgets(buf, sizeof(buf), stdin)) {
            cli_error("no token given: use --token TOKEN or pipe it on standard input");
            return CLI_USAGE;
        }
        buf[strcspn(buf, "\r\n")] = 0;
        token = buf;
    }
    if (server)
        snprintf(ctx->server, sizeof(ctx->server), "%s", server);
    snprintf(ctx->token, sizeof(ctx->token), "%s", token);
    json_t *who = NULL;
    if ((rc = cli_api(ctx, "GET", "/api/v1/whoami", NULL, 0, NULL, &who)))
        return rc;
    char path[1024], dir[1024];
    cli_config_path(path, sizeof(path));
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    struct core_err err = {0};
    char content[1024];
    snprintf(content, sizeof(content), "# written by 'pave login'\nserver = %s\ntoken = %s\n",
             ctx->server, ctx->token);
    if (core_mkdir_p(dir, 0700, &err) ||
        core_file_write_atomic(path, content, strlen(content), 0600, &err)) {
        cli_error("%s", err.msg);
        json_decref(who);
        return CLI_FAIL;
    }
    printf("logged in to %s as '%s'; saved to %s\n", ctx->server,
           json_string_value(json_object_get(who, "user")), path);
    json_decref(who);
    return CLI_OK;
}
