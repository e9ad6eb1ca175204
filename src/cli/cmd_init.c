/* `pave init` (scaffold a service from a golden-path template and register it) and
 * `pave templates list|show`. Templates themselves: template/template.h and docs/templates.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "cli/cli.h"
#include "template/template.h"

#define MAX_VARS 64

static const char init_usage[] =
    "usage: pave init NAME --template T [--team TEAM] [--dir DIR] [--var K=V ...]\n"
    "                 [--no-register] [-o table|json|yaml]\n\n"
    "Scaffolds a working service from a golden-path template into ./NAME (or DIR): the code,\n"
    "a Makefile with `make` and `make test`, pave.yaml, .pave/pipeline.yml, README.md,\n"
    "docs/index.md and .gitignore. Then registers it in the catalog by applying NAME/pave.yaml.\n\n"
    "  NAME               service name, a DNS label (1-63 of a-z, 0-9, '-')\n"
    "  -t, --template T   template to use (see 'pave templates list')\n"
    "  --team TEAM        owning team; default: your team, when you belong to exactly one\n"
    "  -d, --dir DIR      where to write (default ./NAME); must not exist or be empty\n"
    "  --var K=V          set a template variable (repeatable; see 'pave templates show T')\n"
    "  --no-register      only write the files; register later with\n"
    "                     'pave catalog apply -f NAME/pave.yaml'\n\n"
    "Exit codes: 0 scaffolded and registered; 1 failed (nothing written, or written but not\n"
    "registered: the message says how to finish); 2 usage error (unknown flag or variable).\n"
    "Templates are searched in $PAVE_TEMPLATES, <pave binary dir>/../templates, ./templates,\n"
    "then /usr/share/pave/templates. See docs/templates.md.\n";

static const char templates_usage[] =
    "usage: pave templates <verb> [flags]\n\n"
    "verbs:\n"
    "  list [-o table|json|yaml]        the golden-path templates 'pave init' can use\n"
    "  show NAME [-o table|json|yaml]   a template's description, variables and files\n\n"
    "Templates are searched in $PAVE_TEMPLATES, <pave binary dir>/../templates, ./templates,\n"
    "then /usr/share/pave/templates. See docs/templates.md.\n";

/* Prints the known templates after an unknown-template error. */
static void print_available(const char *root, const char *wrong)
{
    char **names = NULL;
    size_t n = 0;
    if (template_names(root, &names, &n, NULL) || n == 0) {
        fprintf(stderr, "  (no templates in %s)\n", root);
        template_names_free(names, n);
        return;
    }
    const char **choices = core_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; choices && i < n; i++)
        choices[i] = names[i];
    const char *hint = choices && wrong ? core_did_you_mean(wrong, choices) : NULL;
    if (hint)
        fprintf(stderr, "  did you mean '%s'?\n", hint);
    fprintf(stderr, "  available templates (in %s):", root);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s %s", i ? "," : "", names[i]);
    fputc('\n', stderr);
    core_free(choices);
    template_names_free(names, n);
}

/* Finds the root and loads template `name`; prints the error. returns: CLI_OK or CLI_FAIL. */
static int load_template(struct template *t, char *root, size_t rootsz, const char *name)
{
    struct core_err err = {0};
    if (template_root(root, rootsz, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    int rc = template_load(t, root, name, &err);
    if (rc == CORE_E_NOTFOUND) {
        cli_error("unknown template '%s'", name);
        print_available(root, name);
        return CLI_FAIL;
    }
    if (rc) {
        cli_error("template '%s' is broken: %s", name, err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Team of the caller when they belong to exactly one; else prints why not and returns NULL.
 * returns: owned by caller. */
static char *default_team(struct cli_ctx *ctx)
{
    struct core_buf resp;
    core_buf_init(&resp, 1024 * 1024);
    char msg[256] = "";
    int status = cli_http(ctx, "GET", "/api/v1/whoami", NULL, 0, NULL, &resp, msg, sizeof(msg));
    char *team = NULL;
    json_t *who = status == 200 ? json_loadb(resp.data, resp.len, 0, NULL) : NULL;
    json_t *teams = json_object_get(who, "teams");
    if (json_array_size(teams) == 1)
        team = core_strdup(json_string_value(json_array_get(teams, 0)));
    else if (status != 200)
        cli_error("--team is required (could not ask the server which team you are in: %s)",
                  status < 0 ? msg : "not signed in");
    else
        cli_error("--team is required: you belong to %zu teams", json_array_size(teams));
    json_decref(who);
    core_buf_release(&resp);
    return team;
}

/* Moves every --var K=V / --var=K=V out of argv into vars; returns the new argc or -1. */
static int take_vars(int argc, char **argv, const char **vars, size_t *nvars)
{
    int out = 1;
    *nvars = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!only_pos && strcmp(argv[i], "--") == 0)
            only_pos = true;
        if (!only_pos && strcmp(argv[i], "--var") == 0) {
            if (i + 1 >= argc) {
                cli_error("flag '--var' needs a value: --var KEY=VALUE");
                return -1;
            }
            v = argv[++i];
        } else if (!only_pos && strncmp(argv[i], "--var=", 6) == 0) {
            v = argv[i] + 6;
        }
        if (!v) {
            argv[out++] = argv[i];
            continue;
        }
        if (*nvars >= MAX_VARS) {
            cli_error("too many --var flags (at most %d)", MAX_VARS);
            return -1;
        }
        vars[(*nvars)++] = v;
    }
    argv[out] = NULL;
    return out;
}

/* Validates the rendered pave.yaml locally, so a bad variable never reaches the disk. */
static int check_manifest(const struct template_output *out, const char *dest)
{
    for (size_t i = 0; i < out->n; i++) {
        if (strcmp(out->files[i].path, "pave.yaml") != 0)
            continue;
        char file[4200];
        snprintf(file, sizeof(file), "%s/pave.yaml", dest);
        struct catalog_manifest m;
        struct schema_diags d;
        struct core_err err = {0};
        catalog_manifest_init(&m);
        schema_diags_init(&d);
        int rc = catalog_manifest_parse(file, out->files[i].data, out->files[i].len, &m, &d,
                                        &err);
        if (rc) {
            struct core_buf b;
            core_buf_init(&b, 0);
            if (d.n)
                schema_diags_format(&d, &b);
            else
                core_buf_addf(&b, "%s\n", err.msg);
            cli_error("the rendered manifest is not valid; nothing was written:");
            fputs(b.data, stderr);
            core_buf_release(&b);
        }
        catalog_manifest_release(&m);
        schema_diags_release(&d);
        return rc ? CLI_FAIL : CLI_OK;
    }
    return CLI_OK;
}

/* Applies DEST/pave.yaml. Sets *change ("created", "updated", "unchanged"). */
static int register_service(struct cli_ctx *ctx, const char *dest, char *change, size_t changesz)
{
    struct core_buf file, path;
    core_buf_init(&file, 0);
    core_buf_init(&path, 0);
    struct core_err err = {0};
    char *text = NULL;
    size_t len = 0;
    json_t *resp = NULL;
    int rc = CLI_FAIL;
    if (core_buf_addf(&file, "%s/pave.yaml", dest) ||
        core_buf_adds(&path, "/api/v1/services?source=") ||
        core_buf_add_urlenc(&path, file.data))
        goto out;
    if (core_file_read(file.data, CATALOG_MANIFEST_MAX, &text, &len, &err)) {
        cli_error("%s", err.msg);
        goto out;
    }
    rc = cli_api(ctx, "POST", path.data, text, len, "application/yaml", &resp);
    if (!rc) {
        const char *c = json_string_value(json_object_get(resp, "change"));
        snprintf(change, changesz, "%s", c ? c : "applied");
    }
out:
    json_decref(resp);
    core_free(text);
    core_buf_release(&file);
    core_buf_release(&path);
    return rc;
}

int cli_cmd_init(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(init_usage, stdout);
        return CLI_OK;
    }
    const char *vars[MAX_VARS];
    size_t nvars = 0;
    char **args = core_calloc((size_t)argc + 1, sizeof(char *));
    if (!args)
        return CLI_FAIL;
    memcpy(args, argv, (size_t)argc * sizeof(char *));
    int nargs = take_vars(argc, args, vars, &nvars);
    if (nargs < 0) {
        core_free(args);
        return CLI_USAGE;
    }
    const char *tname = NULL, *team_opt = NULL, *dir = NULL;
    bool no_register = false;
    const struct cli_opt opts[] = {
        {"template", 't', &tname, NULL},          {"team", 0, &team_opt, NULL},
        {"dir", 'd', &dir, NULL},                 {"no-register", 0, NULL, &no_register},
        {NULL, 0, NULL, NULL},
    };
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, nargs, args, opts, pos, 1, &npos);
    core_free(args);
    if (rc)
        return rc;
    if (npos != 1) {
        cli_error("init needs a service NAME (see --help)");
        return CLI_USAGE;
    }
    const char *name = pos[0];
    char root[4096];
    struct template t = {0};
    if (!tname) {
        cli_error("init needs --template T (see 'pave templates list')");
        if (!template_root(root, sizeof(root), NULL))
            print_available(root, NULL);
        return CLI_USAGE;
    }
    if (!core_is_dns_label(name)) {
        cli_error("bad service name '%s': use a DNS label (1-63 of a-z, 0-9 and '-', starting "
                  "and ending with a letter or digit)",
                  name);
        return CLI_FAIL;
    }
    if ((rc = load_template(&t, root, sizeof(root), tname)))
        return rc;

    char *team = NULL;
    const char **vals = core_calloc(t.nvars + 1, sizeof(char *));
    struct template_output out = {0};
    json_t *result = NULL;
    if (!vals) {
        rc = CLI_FAIL;
        goto out;
    }
    /* variables: every --var must be declared; required ones need a value */
    for (size_t i = 0; i < nvars; i++) {
        const char *eq = strchr(vars[i], '=');
        char key[128];
        if (!eq || eq == vars[i] || (size_t)(eq - vars[i]) >= sizeof(key)) {
            cli_error("bad --var '%s': use --var KEY=VALUE", vars[i]);
            rc = CLI_USAGE;
            goto out;
        }
        memcpy(key, vars[i], (size_t)(eq - vars[i]));
        key[eq - vars[i]] = 0;
        int k = template_var_index(&t, key);
        if (k < 0) {
            cli_error("unknown variable '%s' for template '%s'", key, t.name);
            fprintf(stderr, "  declared variables:");
            for (size_t j = 0; j < t.nvars; j++)
                fprintf(stderr, "%s %s", j ? "," : "", t.vars[j].name);
            fprintf(stderr, "%s\n", t.nvars ? "" : " (none)");
            rc = CLI_USAGE;
            goto out;
        }
        struct core_err err = {0};
        if (template_value_check(&t.vars[k], eq + 1, &err)) {
            cli_error("%s", err.msg);
            rc = CLI_USAGE;
            goto out;
        }
        vals[k] = eq + 1;
    }
    for (size_t i = 0; i < t.nvars; i++) {
        struct core_err err = {0};
        if (!vals[i] && !t.vars[i].default_value) {
            cli_error("template '%s' needs --var %s=VALUE (%s)", t.name, t.vars[i].name,
                      t.vars[i].description ? t.vars[i].description : "no description");
            rc = CLI_USAGE;
            goto out;
        }
        if (!vals[i] && template_value_check(&t.vars[i], t.vars[i].default_value, &err)) {
            cli_error("template '%s' is broken: default of %s", t.name, err.msg);
            rc = CLI_FAIL;
            goto out;
        }
    }

    /* team */
    if (team_opt)
        team = core_strdup(team_opt);
    else if (!no_register)
        team = default_team(ctx);
    else
        cli_error("--team is required with --no-register");
    if (!team) {
        rc = CLI_USAGE;
        goto out;
    }
    if (!core_is_dns_label(team)) {
        cli_error("bad team name '%s': use a DNS label (1-63 of a-z, 0-9 and '-')", team);
        rc = CLI_FAIL;
        goto out;
    }

    const char *dest = dir ? dir : name;
    if (!template_dest_free(dest)) {
        cli_error("'%s' already exists and is not empty; nothing was written (remove it or "
                  "choose another place with --dir)",
                  dest);
        rc = CLI_FAIL;
        goto out;
    }

    struct core_err err = {0};
    struct template_values v = {.name = name, .team = team, .vals = vals};
    if (template_render(&t, &v, &out, &err)) {
        cli_error("cannot render template '%s': %s", t.name, err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    if ((rc = check_manifest(&out, dest)))
        goto out;
    if (template_write(dest, &out, &err)) {
        cli_error("%s; nothing was written", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    if (ctx->format == CLI_TABLE)
        printf("created %s/ from template '%s' (%zu files) for service '%s', team '%s'\n", dest,
               t.name, out.n, name, team);

    char change[32] = "";
    bool registered = false;
    if (!no_register) {
        rc = register_service(ctx, dest, change, sizeof(change));
        registered = rc == CLI_OK;
        if (!registered) {
            fprintf(stderr,
                    "pave: the service was scaffolded in %s/ but not registered in the catalog\n"
                    "  register it once the server is reachable: pave catalog apply -f "
                    "%s/pave.yaml\n",
                    dest, dest);
        } else if (ctx->format == CLI_TABLE) {
            printf("service/%s %s\n", name, change);
        }
    }
    if (ctx->format == CLI_TABLE) {
        printf("\nnext steps:\n  cd %s && make && make test\n", dest);
        if (registered)
            printf("  pave catalog show %s\n", name);
        else if (no_register)
            printf("  pave catalog apply -f %s/pave.yaml\n", dest);
    } else {
        json_t *files = json_array();
        for (size_t i = 0; i < out.n; i++)
            json_array_append_new(files, json_string(out.files[i].path));
        result = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s?,s:o}", "name", name, "template", t.name,
                           "team", team, "dir", dest, "registered", registered, "change",
                           registered ? change : NULL, "files", files);
        if (result)
            cli_print_object(ctx, result);
    }
out:
    json_decref(result);
    template_output_release(&out);
    core_free(vals);
    core_free(team);
    template_release(&t);
    return rc;
}

/* ---- pave templates ------------------------------------------------------------------------ */

static json_t *var_json(const struct template_var *v)
{
    return json_pack("{s:s,s:s?,s:s?,s:b,s:s?}", "name", v->name, "description", v->description,
                     "default", v->default_value, "required", v->required, "pattern",
                     v->pattern);
}

static int do_list(struct cli_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 0, &npos);
    if (rc)
        return rc;
    char root[4096];
    struct core_err err = {0};
    char **names = NULL;
    size_t n = 0;
    if (template_root(root, sizeof(root), &err) || template_names(root, &names, &n, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        struct template t;
        if (template_load(&t, root, names[i], &err)) {
            cli_error("skipping broken template '%s': %s", names[i], err.msg);
            rc = CLI_FAIL;
            continue;
        }
        json_t *vars = json_array();
        for (size_t j = 0; j < t.nvars; j++)
            json_array_append_new(vars, json_string(t.vars[j].name));
        json_array_append_new(items, json_pack("{s:s,s:s?,s:s?,s:o}", "name", t.name, "language",
                                               t.language, "description", t.description,
                                               "variables", vars));
        template_release(&t);
    }
    static const struct cli_column cols[] = {
        {"NAME", "name"},
        {"LANGUAGE", "language"},
        {"VARIABLES", "variables"},
        {"DESCRIPTION", "description"},
        {NULL, NULL},
    };
    cli_print_list(ctx, items, cols);
    json_decref(items);
    template_names_free(names, n);
    return rc;
}

static int do_show(struct cli_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1) {
        cli_error("show needs a template name (see 'pave templates list')");
        return CLI_USAGE;
    }
    char root[4096];
    struct template t;
    if ((rc = load_template(&t, root, sizeof(root), pos[0])))
        return rc;
    /* the file list, rendered with placeholder values, shows what init will write */
    struct core_err err = {0};
    struct template_output out = {0};
    json_t *files = json_array();
    const char **vals = core_calloc(t.nvars + 1, sizeof(char *));
    for (size_t i = 0; vals && i < t.nvars; i++)
        vals[i] = t.vars[i].default_value ? t.vars[i].default_value : "VALUE";
    struct template_values v = {.name = "NAME", .team = "TEAM", .vals = vals};
    if (!vals || template_render(&t, &v, &out, &err)) {
        cli_error("template '%s' is broken: %s", t.name, vals ? err.msg : "out of memory");
        rc = CLI_FAIL;
    }
    for (size_t i = 0; i < out.n; i++)
        json_array_append_new(files, json_string(out.files[i].path));
    json_t *vars = json_array();
    for (size_t i = 0; i < t.nvars; i++)
        json_array_append_new(vars, var_json(&t.vars[i]));
    json_t *render = json_array();
    for (size_t i = 0; i < t.nrender; i++)
        json_array_append_new(render, json_string(t.render[i]));
    json_t *obj = json_pack("{s:s,s:s?,s:s?,s:s}", "name", t.name, "language", t.language,
                            "description", t.description, "path", t.dir);
    if (ctx->format == CLI_TABLE) {
        cli_print_object(ctx, obj);
        static const struct cli_column cols[] = {
            {"VARIABLE", "name"},       {"DEFAULT", "default"},
            {"REQUIRED", "required"},   {"DESCRIPTION", "description"},
            {NULL, NULL},
        };
        printf("\nvariables (set with --var NAME=VALUE):\n");
        if (json_array_size(vars))
            cli_print_list(ctx, vars, cols);
        else
            printf("  (none)\n");
        printf("\nfiles:\n");
        size_t i;
        json_t *f;
        json_array_foreach(files, i, f)
        {
            printf("  %s\n", json_string_value(f));
        }
    } else {
        json_object_set(obj, "variables", vars);
        json_object_set(obj, "render", render);
        json_object_set(obj, "files", files);
        cli_print_object(ctx, obj);
    }
    json_decref(obj);
    json_decref(vars);
    json_decref(render);
    json_decref(files);
    template_output_release(&out);
    core_free(vals);
    template_release(&t);
    return rc;
}

int cli_cmd_templates(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(templates_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (cli_wants_help(argc - 1, argv + 1)) {
        fputs(templates_usage, stdout);
        return CLI_OK;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0)
        return do_list(ctx, argc - 1, argv + 1);
    if (strcmp(verb, "show") == 0 || strcmp(verb, "get") == 0)
        return do_show(ctx, argc - 1, argv + 1);
    cli_error("unknown verb 'templates %s' (use list or show)", verb);
    return CLI_USAGE;
}
