/* `pave org`: the organization (accounts, OUs, service control and tag
 * policies) in the local store: import, tree, policies, can, tags check
 * (src/cloud/org*.c, docs/org.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cloud/cloud.h"
#include "store/store.h"

#define CONTEXT_MAX 64

static const char org_usage[] =
    "usage: pave org <verb> [flags]\n\n"
    "AWS-Organizations-style accounts, OUs and organization policies in the local store\n"
    "(see docs/org.md).\n\n"
    "verbs:\n"
    "  import FILE...                  import an organization file or AWS CLI outputs\n"
    "  tree                            the root, OUs and accounts with attached policies\n"
    "  policies [show NAME]            list the policies, or show one\n"
    "  can ACCOUNT ACTION [RESOURCE]   does the SCPs allow it? names the deciding statement\n"
    "  tags check                      resources against the tag policies\n\n"
    "Every verb takes --help, --data-dir DIR (default .pave) and --store URL.\n";

static const char import_usage[] =
    "usage: pave org import FILE... [--parent ID] [--policy ID] [--data-dir DIR] [--store URL]\n\n"
    "Imports Paved's organization file (YAML or JSON: root, ous, accounts, policies; it\n"
    "replaces the whole stored organization) or outputs of the AWS CLI: list-roots,\n"
    "list-accounts[-for-parent], list-organizational-units-for-parent, describe-policy and\n"
    "list-targets-for-policy (these update the objects they name). The AWS list outputs do not\n"
    "say their parent or policy: add \"ParentId\" / \"PolicyId\" at the top of the file, or\n"
    "give --parent / --policy. Every policy document is compiled first; a bad one refuses\n"
    "the file with the path of the problem. All FILEs are checked before anything is stored.\n";
static const char tree_usage[] =
    "usage: pave org tree [-o table|json|yaml] [--data-dir DIR] [--store URL]\n\n"
    "Shows the root, the OUs and the accounts with the policies attached to each.\n";
static const char policies_usage[] =
    "usage: pave org policies [-o table|json|yaml] [--data-dir DIR] [--store URL]\n"
    "       pave org policies show NAME|ID [-o table|json|yaml]\n\n"
    "Lists the organization policies (name, id, type, targets), or shows one with its\n"
    "document.\n";
static const char can_usage[] =
    "usage: pave org can ACCOUNT ACTION [RESOURCE] [--context KEY=VALUE]... [-o table|json|yaml]\n"
    "                    [--data-dir DIR] [--store URL]\n\n"
    "Evaluates the service control policies from the root down to ACCOUNT (id or name) for\n"
    "ACTION (service:action) on RESOURCE (an ARN; default \"*\"). Prints allow or deny with\n"
    "the deciding statement (policy, Sid or index, and where it is attached) or, for an\n"
    "implicit deny, the level where no Allow matched. --context gives condition keys; repeat\n"
    "a key for several values.\n"
    "Exit codes: 0 allow, 1 deny (or an error), 2 usage error.\n";
static const char tags_usage[] =
    "usage: pave org tags check [--account ACCOUNT] [--resources FILE] [-o table|json|csv]\n"
    "                           [--data-dir DIR] [--store URL]\n\n"
    "Checks resources against their account's effective tag policy (inherited from the root\n"
    "down, per key) with the policy engine: the distinct resources of the imported billing\n"
    "data ('pave cost import'), or the resources of FILE (a JSON list or {\"resources\": [...]}\n"
    "of {id, type, account, tags}). Lists the non-compliant resources with the reasons and\n"
    "sums up compliant, non-compliant and not enforced (no tag policy applies) resources.\n"
    "Exit codes: 0 all compliant, 1 some resource is non-compliant (or an error), 2 usage.\n";

static int load(const char *data_dir, const char *store_url, struct store **st,
                struct org_data *d)
{
    int rc = cli_open_store(data_dir, store_url, st);
    if (rc)
        return rc;
    struct core_err err = {0};
    if (org_store_load(*st, d, &err)) {
        cli_error("%s", err.msg);
        store_close(*st);
        *st = NULL;
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int org_import(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *store_url = NULL, *parent = NULL, *policy = NULL;
    const struct cli_opt opts[] = {{"data-dir", 'd', &data_dir, NULL},
                                   {"store", 0, &store_url, NULL},
                                   {"parent", 0, &parent, NULL},
                                   {"policy", 0, &policy, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[64];
    int npos, rc;
    if (cli_wants_help(argc, argv)) {
        fputs(import_usage, stdout);
        return CLI_OK;
    }
    if ((rc = cli_parse(ctx, argc, argv, opts, pos, 64, &npos)))
        return rc;
    if (npos == 0) {
        cli_error("org import needs at least one FILE (see 'pave org import --help')");
        return CLI_USAGE;
    }
    struct org_data *ds = core_calloc((size_t)npos, sizeof(*ds));
    if (!ds) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    struct org_import_opts o = {parent, policy};
    rc = CLI_OK;
    for (int i = 0; i < npos && rc == CLI_OK; i++) {
        struct core_err err = {0};
        char *text = NULL;
        size_t len = 0;
        if (core_file_read(pos[i], ORG_FILE_MAX, &text, &len, &err) ||
            org_import_parse(&ds[i], pos[i], text, len, &o, &err)) {
            cli_error("%s", err.msg);
            rc = CLI_FAIL;
        }
        core_free(text);
    }
    struct store *st = NULL;
    if (rc == CLI_OK && (rc = cli_open_store(data_dir, store_url, &st)) == CLI_OK) {
        for (int i = 0; i < npos && rc == CLI_OK; i++) {
            struct core_err err = {0};
            if (org_store_save(st, &ds[i], &err)) {
                cli_error("%s: %s", pos[i], err.msg);
                rc = CLI_FAIL;
                break;
            }
            size_t accts = 0, ous = 0;
            for (size_t k = 0; k < ds[i].nnodes; k++) {
                accts += strcmp(ds[i].nodes[k].kind, "account") == 0;
                ous += strcmp(ds[i].nodes[k].kind, "ou") == 0;
            }
            printf("%s: %zu accounts, %zu OUs, %zu policies, %zu attachments%s\n", pos[i], accts,
                   ous, ds[i].npolicies, ds[i].natt,
                   ds[i].whole ? " (replaced the organization)" : "");
        }
        store_close(st);
    }
    for (int i = 0; i < npos; i++)
        org_data_release(&ds[i]);
    core_free(ds);
    return rc;
}

static void print_tree(json_t *n, int depth)
{
    json_t *pols = json_object_get(n, "policies");
    printf("%*s%s %s (%s)", depth * 2, "", json_string_value(json_object_get(n, "kind")),
           json_string_value(json_object_get(n, "name")),
           json_string_value(json_object_get(n, "id")));
    for (size_t i = 0; i < json_array_size(pols); i++) {
        json_t *p = json_array_get(pols, i);
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *type = json_string_value(json_object_get(p, "type"));
        printf("%s%s%s%s", i ? ", " : "  [", name ? name : json_string_value(json_object_get(p, "id")),
               type && strcmp(type, "scp") ? " (tag)" : "", name ? "" : " (missing)");
    }
    printf("%s\n", json_array_size(pols) ? "]" : "");
    json_t *kids = json_object_get(n, "children");
    for (size_t i = 0; i < json_array_size(kids); i++)
        print_tree(json_array_get(kids, i), depth + 1);
}

static int org_tree(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *store_url = NULL;
    const struct cli_opt opts[] = {{"data-dir", 'd', &data_dir, NULL},
                                   {"store", 0, &store_url, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos, rc;
    if (cli_wants_help(argc, argv)) {
        fputs(tree_usage, stdout);
        return CLI_OK;
    }
    if ((rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos)))
        return rc;
    struct store *st = NULL;
    struct org_data d;
    if ((rc = load(data_dir, store_url, &st, &d)))
        return rc;
    json_t *t = org_tree_json(&d);
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, t);
    } else if (json_array_size(json_object_get(t, "roots")) == 0) {
        printf("no organization imported yet (see 'pave org import --help')\n");
    } else {
        json_t *roots = json_object_get(t, "roots"), *orph = json_object_get(t, "orphans");
        for (size_t i = 0; i < json_array_size(roots); i++)
            print_tree(json_array_get(roots, i), 0);
        for (size_t i = 0; i < json_array_size(orph); i++)
            printf("(no parent imported) %s %s (%s)\n",
                   json_string_value(json_object_get(json_array_get(orph, i), "kind")),
                   json_string_value(json_object_get(json_array_get(orph, i), "name")),
                   json_string_value(json_object_get(json_array_get(orph, i), "id")));
    }
    json_decref(t);
    org_data_release(&d);
    store_close(st);
    return CLI_OK;
}

static json_t *policy_targets(const struct org_data *d, const char *pid)
{
    json_t *a = json_array();
    for (size_t i = 0; i < d->natt; i++) {
        if (strcmp(d->att[i].policy_id, pid))
            continue;
        const struct org_node *n = NULL;
        for (size_t k = 0; k < d->nnodes && !n; k++)
            if (strcmp(d->nodes[k].id, d->att[i].target_id) == 0)
                n = &d->nodes[k];
        json_array_append_new(a, n ? json_pack("{s:s, s:s, s:s}", "kind", n->kind, "id", n->id,
                                               "name", n->name)
                                   : json_pack("{s:n, s:s, s:n}", "kind", "id",
                                               d->att[i].target_id, "name"));
    }
    return a;
}

static int org_policies(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *store_url = NULL;
    const struct cli_opt opts[] = {{"data-dir", 'd', &data_dir, NULL},
                                   {"store", 0, &store_url, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[2];
    int npos, rc;
    if (cli_wants_help(argc, argv)) {
        fputs(policies_usage, stdout);
        return CLI_OK;
    }
    if ((rc = cli_parse(ctx, argc, argv, opts, pos, 2, &npos)))
        return rc;
    if (npos > 0 && (strcmp(pos[0], "show") || npos != 2)) {
        cli_error(strcmp(pos[0], "show") ? "unknown verb 'org policies %s' (use show NAME)"
                                         : "org policies %s needs a NAME",
                  pos[0]);
        return CLI_USAGE;
    }
    struct store *st = NULL;
    struct org_data d;
    if ((rc = load(data_dir, store_url, &st, &d)))
        return rc;
    if (npos == 2) {
        const struct org_policy_rec *p = NULL;
        for (size_t i = 0; i < d.npolicies && !p; i++)
            if (strcmp(d.policies[i].name, pos[1]) == 0 || strcmp(d.policies[i].id, pos[1]) == 0)
                p = &d.policies[i];
        if (!p) {
            cli_error("no organization policy '%s' (see 'pave org policies')", pos[1]);
            rc = CLI_FAIL;
        } else {
            json_t *doc = json_loads(p->document, 0, NULL);
            json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", p->id, "name", p->name,
                                  "type", p->type, "targets", policy_targets(&d, p->id),
                                  "document", doc ? doc : json_string(p->document));
            if (ctx->format != CLI_TABLE) {
                cli_print_object(ctx, o);
            } else {
                printf("name: %s\nid: %s\ntype: %s\ntargets:", p->name, p->id, p->type);
                json_t *t = json_object_get(o, "targets");
                for (size_t i = 0; i < json_array_size(t); i++)
                    printf(" %s (%s)%s",
                           json_string_value(json_object_get(json_array_get(t, i), "name"))
                               ? json_string_value(json_object_get(json_array_get(t, i), "name"))
                               : "?",
                           json_string_value(json_object_get(json_array_get(t, i), "id")),
                           i + 1 < json_array_size(t) ? "," : "");
                char *txt = json_dumps(json_object_get(o, "document"), JSON_INDENT(2));
                printf("\ndocument:\n%s\n", txt ? txt : "");
                free(txt);
            }
            json_decref(o);
        }
    } else {
        json_t *items = json_array();
        for (size_t i = 0; i < d.npolicies; i++) {
            json_t *t = policy_targets(&d, d.policies[i].id);
            struct core_buf names;
            core_buf_init(&names, 0);
            for (size_t k = 0; k < json_array_size(t); k++) {
                const char *nm = json_string_value(json_object_get(json_array_get(t, k), "name"));
                core_buf_addf(&names, "%s%s", k ? "," : "",
                              nm ? nm
                                 : json_string_value(
                                       json_object_get(json_array_get(t, k), "id")));
            }
            json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:o, s:s}", "name",
                                                   d.policies[i].name, "id", d.policies[i].id,
                                                   "type", d.policies[i].type, "targets", t,
                                                   "attached_to", names.data));
            core_buf_release(&names);
        }
        if (ctx->format == CLI_JSON) {
            json_t *o = json_pack("{s:O}", "items", items);
            cli_print_object(ctx, o);
            json_decref(o);
        } else {
            const struct cli_column cols[] = {{"NAME", "name"},
                                              {"ID", "id"},
                                              {"TYPE", "type"},
                                              {"ATTACHED TO", "attached_to"},
                                              {NULL, NULL}};
            cli_print_list(ctx, items, cols);
        }
        json_decref(items);
    }
    org_data_release(&d);
    store_close(st);
    return rc;
}

static void print_stmt(json_t *s)
{
    const char *sid = json_string_value(json_object_get(s, "sid"));
    printf("%s statement ", json_string_value(json_object_get(s, "effect")));
    if (sid)
        printf("'%s' (#%lld)", sid, (long long)json_integer_value(json_object_get(s, "index")));
    else
        printf("#%lld", (long long)json_integer_value(json_object_get(s, "index")));
    printf(" of %s (%s)", json_string_value(json_object_get(s, "policy")),
           json_string_value(json_object_get(s, "policy_id")));
}

static int org_can_cmd(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *store_url = NULL;
    struct org_kv kv[CONTEXT_MAX];
    size_t nkv = 0;
    char *args[256];
    int nargs = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(can_usage, stdout);
        return CLI_OK;
    }
    /* --context repeats, which the shared parser does not do: take it here */
    for (int i = 0; i < argc && nargs < 256; i++) {
        const char *val = NULL;
        if (strcmp(argv[i], "--context") == 0 || strcmp(argv[i], "-c") == 0) {
            if (i + 1 >= argc) {
                cli_error("flag '--context' needs KEY=VALUE");
                return CLI_USAGE;
            }
            val = argv[++i];
        } else if (strncmp(argv[i], "--context=", 10) == 0) {
            val = argv[i] + 10;
        } else {
            args[nargs++] = argv[i];
            continue;
        }
        char *eq = strchr(val, '=');
        if (!eq || eq == val) {
            cli_error("--context wants KEY=VALUE (e.g. aws:RequestedRegion=eu-west-1), not '%s'",
                      val);
            return CLI_USAGE;
        }
        if (nkv == CONTEXT_MAX) {
            cli_error("more than %d --context values", CONTEXT_MAX);
            return CLI_USAGE;
        }
        *eq = 0;
        kv[nkv++] = (struct org_kv){val, eq + 1};
    }
    const struct cli_opt opts[] = {{"data-dir", 'd', &data_dir, NULL},
                                   {"store", 0, &store_url, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[3];
    int npos, rc;
    if ((rc = cli_parse(ctx, nargs, args, opts, pos, 3, &npos)))
        return rc;
    if (npos < 2) {
        cli_error("org can needs ACCOUNT and ACTION (e.g. 'pave org can prod s3:GetObject')");
        return CLI_USAGE;
    }
    struct store *st = NULL;
    struct org_data d;
    if ((rc = load(data_dir, store_url, &st, &d)))
        return rc;
    struct org_request req = {pos[1], npos > 2 ? pos[2] : NULL, kv, nkv};
    json_t *out = NULL;
    struct core_err err = {0};
    if (org_can(&d, pos[0], &req, &out, &err)) {
        cli_error("%s", err.msg);
        rc = CLI_FAIL;
    } else {
        bool allowed = strcmp(json_string_value(json_object_get(out, "decision")), "allow") == 0;
        if (ctx->format != CLI_TABLE) {
            cli_print_object(ctx, out);
        } else {
            printf("%s\n%s\n", allowed ? "allow" : "deny",
                   json_string_value(json_object_get(out, "reason")));
            json_t *lv = json_object_get(out, "levels");
            for (size_t i = 0; i < json_array_size(lv); i++) {
                json_t *l = json_array_get(lv, i), *a = json_object_get(l, "allowed_by");
                printf("  %-7s %s (%s): ", json_string_value(json_object_get(l, "kind")),
                       json_string_value(json_object_get(l, "name")),
                       json_string_value(json_object_get(l, "id")));
                if (json_is_object(a))
                    print_stmt(a);
                else
                    printf(json_array_size(json_object_get(l, "policies")) ? "no Allow matches"
                                                                           : "no SCP attached");
                putchar('\n');
            }
        }
        rc = allowed ? CLI_OK : CLI_FAIL;
    }
    json_decref(out);
    org_data_release(&d);
    store_close(st);
    return rc;
}

static int org_tags(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *store_url = NULL, *account = NULL, *file = NULL;
    bool csv = false;
    char *args[128];
    int nargs = 0;
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(tags_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "check")) {
        cli_error("unknown verb 'org tags %s' (use check)", argv[1]);
        return CLI_USAGE;
    }
    /* -o csv is this command's own; the shared parser knows table, json and yaml */
    for (int i = 1; i < argc && nargs < 128; i++) {
        if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc &&
            strcmp(argv[i + 1], "csv") == 0) {
            csv = true;
            i++;
            continue;
        }
        if (strcmp(argv[i], "-o=csv") == 0 || strcmp(argv[i], "--output=csv") == 0) {
            csv = true;
            continue;
        }
        args[nargs++] = argv[i];
    }
    const struct cli_opt opts[] = {{"data-dir", 'd', &data_dir, NULL},
                                   {"store", 0, &store_url, NULL},
                                   {"account", 'a', &account, NULL},
                                   {"resources", 'f', &file, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos, rc;
    if ((rc = cli_parse(ctx, nargs, args, opts, pos, 0, &npos)))
        return rc;
    char *text = NULL;
    size_t len = 0;
    struct core_err err = {0};
    if (file && core_file_read(file, ORG_FILE_MAX, &text, &len, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    struct store *st = NULL;
    struct org_data d;
    if ((rc = load(data_dir, store_url, &st, &d))) {
        core_free(text);
        return rc;
    }
    json_t *out = NULL;
    if (org_tags_check(st, &d, account, text, len, &out, &err)) {
        cli_error("%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    json_t *items = json_object_get(out, "items"), *sum = json_object_get(out, "summary");
    if (csv) {
        printf("resource,account,type,enforced,reasons\n");
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *it = json_array_get(items, i), *rs = json_object_get(it, "reasons");
            struct core_buf b;
            core_buf_init(&b, 0);
            for (size_t k = 0; k < json_array_size(rs); k++)
                core_buf_addf(&b, "%s%s", k ? "; " : "", json_string_value(json_array_get(rs, k)));
            cli_csv_field(json_string_value(json_object_get(it, "resource")));
            putchar(',');
            cli_csv_field(json_string_value(json_object_get(it, "account")));
            putchar(',');
            cli_csv_field(json_string_value(json_object_get(it, "type")));
            printf(",%s,", json_is_true(json_object_get(it, "enforced")) ? "true" : "false");
            cli_csv_field(b.data);
            putchar('\n');
            core_buf_release(&b);
        }
    } else if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, out);
    } else {
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *it = json_array_get(items, i), *rs = json_object_get(it, "reasons");
            printf("%s  account %s  %s%s\n", json_string_value(json_object_get(it, "resource")),
                   json_string_value(json_object_get(it, "account")),
                   json_string_value(json_object_get(it, "type")),
                   json_is_true(json_object_get(it, "enforced")) ? "  (enforced)" : "");
            for (size_t k = 0; k < json_array_size(rs); k++)
                printf("    %s\n", json_string_value(json_array_get(rs, k)));
        }
        printf("%lld resources: %lld compliant, %lld non-compliant (%lld of an enforced type), "
               "%lld not enforced\n",
               (long long)json_integer_value(json_object_get(sum, "resources")),
               (long long)json_integer_value(json_object_get(sum, "compliant")),
               (long long)json_integer_value(json_object_get(sum, "non_compliant")),
               (long long)json_integer_value(json_object_get(sum, "enforced_violations")),
               (long long)json_integer_value(json_object_get(sum, "not_enforced")));
    }
    rc = json_integer_value(json_object_get(sum, "non_compliant")) ? CLI_FAIL : CLI_OK;
out:
    json_decref(out);
    core_free(text);
    org_data_release(&d);
    store_close(st);
    return rc;
}

int cli_cmd_org(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct cli_verb verbs[] = {
        {"import", org_import},     {"tree", org_tree}, {"policies", org_policies},
        {"can", org_can_cmd},       {"tags", org_tags}, {NULL, NULL}};
    return cli_run_verb(ctx, argc, argv, "org", org_usage, verbs);
}
