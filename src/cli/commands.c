/* The command table, dispatch, flag parsing, help, version and shell completion. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "deploy/deploy.h"

const struct cli_command cli_commands[] = {
    {"up", cli_cmd_up, "run the platform locally with embedded defaults and a demo organization",
     ""},
    {"server", cli_cmd_server, "run the platform server (API and portal)", ""},
    {"init", cli_cmd_init, "scaffold a service from a golden-path template and register it", ""},
    {"templates", cli_cmd_templates, "list and show the golden-path templates for 'pave init'",
     "list show"},
    {"login", cli_cmd_login, "save a server URL and token to ~/.config/pave/config", ""},
    {"whoami", cli_cmd_whoami, "show the user behind the current token", ""},
    {"catalog", cli_cmd_catalog, "apply, validate, list, show and delete services",
     "apply validate list show delete schema"},
    {"team", cli_cmd_team, "list, show, create and delete teams; manage members",
     "list show create delete add-member remove-member"},
    {"user", cli_cmd_user, "list and create users", "list create"},
    {"env", cli_cmd_env, "list and create environments", "list create"},
    {"token", cli_cmd_token, "create, list and revoke API tokens", "create list revoke"},
    {"audit", cli_cmd_audit, "list the audit log", "list"},
    {"build", cli_cmd_build, "run the pipeline of a working tree on the platform", ""},
    {"runs", cli_cmd_runs, "list, show, follow, cancel and retry pipeline runs",
     "list show log cancel retry"},
    {"secret", cli_cmd_secret, "set, list and delete a service's pipeline secrets",
     "set list delete"},
    {"artifacts", cli_cmd_artifacts, "list, show, verify and clean up the signed images",
     "list show verify gc"},
    {"render", cli_cmd_render,
     "render a service for Kubernetes (Deployment, Service, Ingress, PDB, NetworkPolicy)", ""},
    {"deploy", cli_cmd_deploy, "deploy an image of a service to an environment (rolling)", ""},
    {"status", cli_cmd_status, "show what runs for a service: deployments, replicas, health", ""},
    {"rollback", cli_cmd_rollback, "deploy again what an earlier deployment ran", ""},
    {"scale", cli_cmd_scale, "change the number of replicas of a deployed service", ""},
    {"deployments", cli_cmd_deployments, "list deployments: who, when, what, result",
     "list show"},
    {"logs", cli_cmd_logs, "show and follow a service's logs from the platform's log store",
     ""},
    {"agent", cli_cmd_agent, "run the observability pipeline alone, as a logging agent", ""},
    {"policy", cli_cmd_policy,
     "apply policies, check manifests and plans, exceptions, compliance reports",
     "apply list show delete check exceptions report scan decisions"},
    {"security", cli_cmd_security,
     "detection rules, security alerts (list, show, ack, close), file integrity",
     "rules alerts fim"},
    {"ca", cli_cmd_ca, "the internal certificate authority: issue, list, revoke, CRL",
     "init list show issue revoke crl export-root-key"},
    {"cost", cli_cmd_cost, "billing: import cost exports, report spend by team/service/env",
     "import report"},
    {"org", cli_cmd_org, "organization: accounts, OUs, SCPs ('can'), tag policy checks",
     "import tree policies can tags"},
    {"completion", cli_cmd_completion, "print a shell completion script (bash)", "bash"},
    {"version", cli_cmd_version, "print the version", ""},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: pave <command> [<verb>] [flags]\n\n"
               "Paved: an internal developer platform in one binary.\n\ncommands:\n");
    for (const struct cli_command *c = cli_commands; c->name; c++)
        fprintf(f, "  %-11s %s\n", c->name, c->summary);
    fprintf(f, "\nEvery command takes --help. Listings take -o table|json|yaml.\n"
               "Server and token: PAVE_SERVER, PAVE_TOKEN, ~/.config/pave/config (pave login),\n"
               "or the local defaults of 'pave up' (http://127.0.0.1:7070 and .pave/admin.token\n"
               "in this directory or the nearest parent that has one).\n"
               "Exit codes: 0 ok, 1 failure, 2 usage error.\n");
}

int cli_parse(struct cli_ctx *ctx, int argc, char **argv, const struct cli_opt *opts,
              char **pos, int maxpos, int *npos)
{
    *npos = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            if (*npos >= maxpos) {
                cli_error("unexpected argument '%s' (see --help)", a);
                return CLI_USAGE;
            }
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        int o = cli_parse_output(ctx, argc, argv, &i);
        if (o < 0)
            return CLI_USAGE;
        if (o > 0)
            continue;
        const struct cli_opt *hit = NULL;
        const char *inline_val = NULL;
        for (const struct cli_opt *op = opts; op && op->name; op++) {
            size_t n = strlen(op->name);
            if (a[1] == '-' && strncmp(a + 2, op->name, n) == 0 &&
                (a[2 + n] == 0 || a[2 + n] == '=')) {
                hit = op;
                inline_val = a[2 + n] == '=' ? a + 3 + n : NULL;
                break;
            }
            if (a[1] != '-' && op->short_name && a[1] == op->short_name && a[2] == 0) {
                hit = op;
                break;
            }
        }
        if (!hit) {
            cli_error("unknown flag '%s' (see --help)", a);
            return CLI_USAGE;
        }
        if (hit->flag) {
            if (inline_val) {
                cli_error("flag '--%s' takes no value", hit->name);
                return CLI_USAGE;
            }
            *hit->flag = true;
            continue;
        }
        if (!inline_val) {
            if (i + 1 >= argc) {
                cli_error("flag '--%s' needs a value", hit->name);
                return CLI_USAGE;
            }
            inline_val = argv[++i];
        }
        *hit->value = inline_val;
    }
    return CLI_OK;
}

int cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: pave version\n\nPrints the version of this pave binary.\n");
        return CLI_OK;
    }
    printf("pave %s\n", PAVE_VERSION);
    return CLI_OK;
}

int cli_cmd_completion(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 2 || strcmp(argv[1], "bash") != 0) {
        fprintf(argc >= 2 && !cli_wants_help(argc, argv) ? stderr : stdout,
                "usage: pave completion bash\n\n"
                "Prints a bash completion script. Install it with:\n"
                "  pave completion bash > /etc/bash_completion.d/pave\n"
                "or for one shell: source <(pave completion bash)\n");
        return cli_wants_help(argc, argv) ? CLI_OK : CLI_USAGE;
    }
    printf("# bash completion for pave (generated by 'pave completion bash')\n"
           "_pave() {\n"
           "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
           "  local cmds=\"");
    for (const struct cli_command *c = cli_commands; c->name; c++)
        printf("%s%s", c == cli_commands ? "" : " ", c->name);
    printf("\"\n"
           "  case \"$prev\" in\n"
           "    -o|--output) COMPREPLY=( $(compgen -W \"table json yaml\" -- \"$cur\") ); "
           "return ;;\n"
           "    -f|--file) COMPREPLY=( $(compgen -f -- \"$cur\") ); return ;;\n"
           "  esac\n"
           "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
           "    COMPREPLY=( $(compgen -W \"$cmds\" -- \"$cur\") ); return\n"
           "  fi\n"
           "  local verbs=\"\"\n"
           "  case \"${COMP_WORDS[1]}\" in\n");
    for (const struct cli_command *c = cli_commands; c->name; c++)
        if (c->verbs[0])
            printf("    %s) verbs=\"%s\" ;;\n", c->name, c->verbs);
    printf("  esac\n"
           "  if [ \"$COMP_CWORD\" -eq 2 ] && [ -n \"$verbs\" ]; then\n"
           "    COMPREPLY=( $(compgen -W \"$verbs --help\" -- \"$cur\") ); return\n"
           "  fi\n"
           "  COMPREPLY=( $(compgen -W \"--help -o\" -- \"$cur\") )\n"
           "}\n"
           "complete -F _pave pave\n");
    return CLI_OK;
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        if (argc >= 3 && strcmp(argv[1], "help") == 0) {
            char *hargv[] = {argv[2], "--help", NULL};
            for (const struct cli_command *c = cli_commands; c->name; c++)
                if (strcmp(c->name, argv[2]) == 0) {
                    struct cli_ctx hctx = {0};
                    return c->fn(&hctx, 2, hargv);
                }
        }
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "shim") == 0) /* internal: a deployed replica's keeper */
        return deploy_shim_main(argc, argv);
    if (strcmp(argv[1], "--version") == 0)
        return cli_cmd_version(NULL, 1, argv);
    for (const struct cli_command *c = cli_commands; c->name; c++) {
        if (strcmp(c->name, argv[1]) == 0) {
            struct cli_ctx ctx = {0};
            cli_ctx_load(&ctx);
            return c->fn(&ctx, argc - 1, argv + 1);
        }
    }
    const char *names[32];
    size_t n = 0;
    for (const struct cli_command *c = cli_commands; c->name && n < 31; c++)
        names[n++] = c->name;
    names[n] = NULL;
    const char *hint = core_did_you_mean(argv[1], names);
    if (hint)
        cli_error("unknown command '%s'; did you mean '%s'?", argv[1], hint);
    else
        cli_error("unknown command '%s' (see 'pave --help')", argv[1]);
    return CLI_USAGE;
}
