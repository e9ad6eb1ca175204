/*
 * The pipeline file (.pave/pipeline.yml): its schema tables, the cross-checks between steps and
 * caches, the typed `struct ci_pipeline` copied out of a valid tree, and the glob matching that
 * decides which pushes queue a run and which steps run.
 *
 * Validation is the schema module's (schema_parse()): every problem at once, each with
 * file:line:column and a hint. Nothing here touches the runner, the store or the sandbox, so the
 * parser can be fuzzed on its own.
 */
#include "ci/ci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

#define PIPELINE_API_VERSION "pave/v1"
#define DEFAULT_BRANCH "main"
#define DEFAULT_TIMEOUT_MS (10 * 60 * 1000)
#define MAX_TIMEOUT_MS (6 * 60 * 60 * 1000)
#define DEFAULT_CPU_MILLICORES 1000
#define DEFAULT_MEMORY_BYTES (512 * 1024 * 1024)
#define DEFAULT_PIDS 256
/* Longest glob pattern, in characters; ci_glob_match() keeps one state per character. */
#define GLOB_MAX 1024

/* ---- the schema ------------------------------------------------------------------------ */

static void check_steps(struct schema_ctx *ctx, const struct schema_field *f,
                        const struct core_node *n, const char *path);
static void check_step(struct schema_ctx *ctx, const struct schema_field *f,
                       const struct core_node *n, const char *path);
static void check_caches(struct schema_ctx *ctx, const struct schema_field *f,
                         const struct core_node *n, const char *path);
static void check_pipeline(struct schema_ctx *ctx, const struct schema_field *f,
                           const struct core_node *n, const char *path);

static const char *const api_versions[] = {PIPELINE_API_VERSION, NULL};
static const char *const kinds[] = {"Pipeline", NULL};

static const struct schema_field branch_item = {
    .noun = "branch pattern", .type = SCHEMA_STRING, .min = 1, .max = GLOB_MAX,
    .doc = "branch name or glob pattern ('*' within a segment, '**' across segments)",
};

static const struct schema_field push_fields[] = {
    {.key = "branches", .type = SCHEMA_LIST, .min = 1, .max = 64, .item = &branch_item,
     .check = schema_check_unique, .dflt = "[main]",
     .doc = "pushes to these branches (names or globs such as \"release/*\") queue a run"},
    {0},
};

static const struct schema_field on_fields[] = {
    {.key = "push", .type = SCHEMA_MAP, .sub = push_fields, .doc = "runs triggered by git push"},
    {0},
};

static const struct schema_field relpath_item = {
    .noun = "path", .type = SCHEMA_STRING, .max = 1024, .check = schema_check_relpath,
    .doc = "a path relative to the workspace",
};

static const struct schema_field cache_fields[] = {
    {.key = "name", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
     .check = schema_check_dns_label, .example = "name: deps",
     .doc = "cache name, unique in the pipeline; a DNS label"},
    {.key = "paths", .type = SCHEMA_LIST, .flags = SCHEMA_REQUIRED, .min = 1, .max = 64,
     .item = &relpath_item, .check = schema_check_unique, .example = "paths: [.deps]",
     .doc = "workspace-relative directories saved after a step and restored before it"},
    {.key = "key", .type = SCHEMA_LIST, .max = 64, .item = &relpath_item,
     .check = schema_check_unique,
     .doc = "workspace-relative files whose contents key the cache (a change starts it afresh)"},
    {0},
};

static const struct schema_field cache_item = {
    .noun = "cache", .type = SCHEMA_MAP, .sub = cache_fields, .doc = "one cache",
};

static const struct schema_field command_item = {
    .noun = "command", .type = SCHEMA_STRING, .flags = SCHEMA_MULTILINE, .min = 1, .max = 16384,
    .doc = "a shell command, run with /bin/sh -ec",
};

static const struct schema_field env_value = {
    .noun = "env value", .type = SCHEMA_STRING, .flags = SCHEMA_MULTILINE, .max = 4096,
    .doc = "value: a string (quote numbers and booleans: \"8080\", \"true\")",
};

static const struct schema_field path_glob_item = {
    .noun = "path pattern", .type = SCHEMA_STRING, .min = 1, .max = GLOB_MAX,
    .doc = "glob over changed paths ('*' within a segment, '**' across segments)",
};

static const struct schema_field when_fields[] = {
    {.key = "branch", .type = SCHEMA_LIST, .min = 1, .max = 64, .item = &branch_item,
     .check = schema_check_unique, .doc = "run only for these branches (names or globs)"},
    {.key = "paths", .type = SCHEMA_LIST, .min = 1, .max = 64, .item = &path_glob_item,
     .check = schema_check_unique,
     .doc = "run only when a changed path matches one of these globs (\"src/**\")"},
    {0},
};

static const struct schema_field cache_ref_item = {
    .noun = "cache name", .type = SCHEMA_STRING, .check = schema_check_dns_label,
    .doc = "name of a cache declared under caches",
};

static const struct schema_field secret_item = {
    .noun = "secret name", .type = SCHEMA_STRING, .check = schema_check_env_name,
    .doc = "name of a secret exposed as an environment variable",
};

static const struct schema_field resources_fields[] = {
    {.key = "cpu", .type = SCHEMA_CPU, .dflt = "1",
     .doc = "CPU limit in cores (0.5, 2) or millicores (\"500m\")"},
    {.key = "memory", .type = SCHEMA_BYTES, .dflt = "512Mi",
     .doc = "memory limit in bytes with an optional unit (\"256Mi\", \"1Gi\")"},
    {.key = "pids", .type = SCHEMA_INT, .min = 1, .max = 4096, .dflt = "256",
     .doc = "most processes the step may run at once"},
    {0},
};

static const struct schema_field step_fields[] = {
    {.key = "name", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
     .check = schema_check_dns_label, .example = "name: build",
     .doc = "step name, unique in the pipeline; a DNS label"},
    {.key = "commands", .type = SCHEMA_LIST, .flags = SCHEMA_REQUIRED, .min = 1, .max = 256,
     .item = &command_item, .example = "commands: [\"make\"]",
     .doc = "shell commands run in order; the step fails at the first that fails"},
    {.key = "env", .type = SCHEMA_DICT, .max = 256, .key_check = schema_check_env_name,
     .item = &env_value, .doc = "environment variables; names match `[A-Za-z_][A-Za-z0-9_]*`"},
    {.key = "workdir", .type = SCHEMA_STRING, .max = 1024, .check = schema_check_relpath,
     .dflt = ".", .doc = "directory the commands run in, relative to the workspace"},
    {.key = "timeout", .type = SCHEMA_DURATION, .min = 1, .max = MAX_TIMEOUT_MS, .dflt = "10m",
     .doc = "time the step may take, at most 6h"},
    {.key = "network", .type = SCHEMA_BOOL, .dflt = "false",
     .doc = "whether the step may reach the network"},
    {.key = "when", .type = SCHEMA_MAP, .sub = when_fields,
     .doc = "conditions for running the step; without them it always runs"},
    {.key = "cache", .type = SCHEMA_LIST, .max = 16, .item = &cache_ref_item,
     .check = schema_check_unique, .doc = "caches the step restores and saves; each declared"},
    {.key = "secrets", .type = SCHEMA_LIST, .max = 64, .item = &secret_item,
     .check = schema_check_unique,
     .doc = "secret names exposed as environment variables (masked in logs); not also in env"},
    {.key = "resources", .type = SCHEMA_MAP, .sub = resources_fields,
     .doc = "limits for the step's sandbox"},
    {0},
};

static const struct schema_field step_item = {
    .noun = "step", .type = SCHEMA_MAP, .sub = step_fields, .check = check_step,
    .doc = "one step",
};

static const struct schema_field artifact_fields[] = {
    {.key = "paths", .type = SCHEMA_LIST, .flags = SCHEMA_REQUIRED, .min = 1, .max = 64,
     .item = &relpath_item, .check = schema_check_unique, .example = "paths: [bin/]",
     .doc = "workspace-relative files and directories packed into the artifact tarball"},
    {0},
};

static const struct schema_field root_fields[] = {
    {.key = "apiVersion", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED,
     .choices = api_versions, .example = "apiVersion: " PIPELINE_API_VERSION,
     .doc = "pipeline format version"},
    {.key = "kind", .type = SCHEMA_STRING, .flags = SCHEMA_REQUIRED, .choices = kinds,
     .example = "kind: Pipeline", .doc = "kind of object described"},
    {.key = "on", .type = SCHEMA_MAP, .sub = on_fields, .doc = "what queues a run"},
    {.key = "caches", .type = SCHEMA_LIST, .max = 16, .item = &cache_item, .check = check_caches,
     .doc = "directories kept between runs; names must be unique"},
    {.key = "steps", .type = SCHEMA_LIST, .flags = SCHEMA_REQUIRED, .min = 1, .max = 100,
     .item = &step_item, .check = check_steps,
     .example = "steps: [{ name: build, commands: [make] }]",
     .doc = "what to run, in order; names must be unique"},
    {.key = "artifact", .type = SCHEMA_MAP, .sub = artifact_fields,
     .doc = "what a successful run keeps; without it the run leaves no artifact"},
    /* the document itself (see struct schema_field) */
    {.noun = "pipeline file", .example = "apiVersion: " PIPELINE_API_VERSION,
     .doc = "keep the pipeline file small; move long scripts into the repository",
     .check = check_pipeline},
};

/* ---- cross-checks ---------------------------------------------------------------------- */

/* A valid DNS label, or NULL: the cross-checks only look at values that passed their own. */
static const char *label_value(const struct core_node *n)
{
    return schema_is_string(n) && core_is_dns_label(n->value) ? n->value : NULL;
}

/* Reports items of a list of maps whose `name` repeats an earlier one. */
static void unique_names(struct schema_ctx *ctx, const struct core_node *n, const char *path,
                         const char *what)
{
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF], ipath[SCHEMA_PATH_BUF];
    for (size_t i = 1; i < n->n && !schema_stopped(ctx); i++) {
        const struct core_node *a = schema_map_get(n->items[i], "name", NULL);
        if (!label_value(a))
            continue;
        for (size_t j = 0; j < i; j++) {
            const struct core_node *b = schema_map_get(n->items[j], "name", NULL);
            if (!label_value(b) || strcmp(a->value, b->value) != 0)
                continue;
            snprintf(ipath, sizeof(ipath), "%s[%zu].name", path, i);
            snprintf(hint, sizeof(hint), "%s names must be unique; first used at line %d", what,
                     b->line);
            schema_report(ctx, a, ipath, hint, "duplicate %s name '%s'", what,
                          schema_show(s, sizeof(s), a->value));
            break;
        }
    }
}

static void check_steps(struct schema_ctx *ctx, const struct schema_field *f,
                        const struct core_node *n, const char *path)
{
    unique_names(ctx, n, path, "step");
}

static void check_caches(struct schema_ctx *ctx, const struct schema_field *f,
                         const struct core_node *n, const char *path)
{
    unique_names(ctx, n, path, "cache");
}

/* A secret and an env variable of the same name: which one the step sees would be a guess. */
static void check_step(struct schema_ctx *ctx, const struct schema_field *f,
                       const struct core_node *n, const char *path)
{
    const struct core_node *env = schema_map_get(n, "env", NULL);
    const struct core_node *secrets = schema_map_get(n, "secrets", NULL);
    char s[SCHEMA_SHOW_BUF], ipath[SCHEMA_PATH_BUF];
    if (!env || env->kind != CORE_NODE_MAP || !secrets || secrets->kind != CORE_NODE_SEQ)
        return;
    for (size_t i = 0; i < secrets->n && !schema_stopped(ctx); i++) {
        const struct core_node *sn = secrets->items[i];
        bool seen = !schema_is_string(sn);
        for (size_t j = 0; j < i && !seen; j++)
            seen = schema_is_string(secrets->items[j]) &&
                   !strcmp(secrets->items[j]->value, sn->value);
        if (seen || !core_node_get(env, sn->value))
            continue; /* a repeated secret is reported as a duplicate already */
        snprintf(ipath, sizeof(ipath), "%s.secrets[%zu]", path, i);
        schema_report(ctx, sn, ipath,
                      "remove it from env; secret values never go in the pipeline file",
                      "'%s' is both in env and in secrets", schema_show(s, sizeof(s), sn->value));
    }
}

/* Every cache a step names must be declared under `caches`. */
static void check_pipeline(struct schema_ctx *ctx, const struct schema_field *f,
                           const struct core_node *n, const char *path)
{
    const struct core_node *caches = schema_map_get(n, "caches", NULL);
    const struct core_node *steps = schema_map_get(n, "steps", NULL);
    const char *names[17];
    size_t nnames = 0;
    char s[SCHEMA_SHOW_BUF], hint[SCHEMA_HINT_BUF], ipath[SCHEMA_PATH_BUF];

    if (!steps || steps->kind != CORE_NODE_SEQ)
        return;
    if (caches && caches->kind == CORE_NODE_SEQ)
        for (size_t i = 0; i < caches->n && nnames + 1 < sizeof(names) / sizeof(*names); i++) {
            const char *name = label_value(schema_map_get(caches->items[i], "name", NULL));
            if (name)
                names[nnames++] = name;
        }
    names[nnames] = NULL;
    for (size_t i = 0; i < steps->n && !schema_stopped(ctx); i++) {
        const struct core_node *refs = schema_map_get(steps->items[i], "cache", NULL);
        if (!refs || refs->kind != CORE_NODE_SEQ)
            continue;
        for (size_t j = 0; j < refs->n && !schema_stopped(ctx); j++) {
            const struct core_node *r = refs->items[j];
            bool found = false;
            if (!label_value(r))
                continue;
            for (size_t k = 0; k < nnames && !found; k++)
                found = strcmp(names[k], r->value) == 0;
            if (found)
                continue;
            const char *best = core_did_you_mean(r->value, names);
            if (best)
                snprintf(hint, sizeof(hint), "did you mean '%s'?", best);
            else
                snprintf(hint, sizeof(hint), "declare it under 'caches' with its paths");
            snprintf(ipath, sizeof(ipath), "steps[%zu].cache[%zu]", i, j);
            schema_report(ctx, r, ipath, hint, "unknown cache '%s'",
                          schema_show(s, sizeof(s), r->value));
        }
    }
}

/* ---- the typed pipeline ---------------------------------------------------------------- */

static void free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        core_free(items[i]);
    core_free(items);
}

static void step_release(struct ci_step *s)
{
    core_free(s->name);
    free_list(s->commands, s->ncommands);
    for (size_t i = 0; i < s->nenv; i++) {
        core_free(s->env[i].key);
        core_free(s->env[i].value);
    }
    core_free(s->env);
    core_free(s->workdir);
    free_list(s->when_branches, s->nwhen_branches);
    free_list(s->when_paths, s->nwhen_paths);
    free_list(s->caches, s->ncaches);
    free_list(s->secrets, s->nsecrets);
    memset(s, 0, sizeof(*s));
}

static void cache_release(struct ci_cache *c)
{
    core_free(c->name);
    free_list(c->paths, c->npaths);
    free_list(c->key_files, c->nkey_files);
    memset(c, 0, sizeof(*c));
}

void ci_pipeline_init(struct ci_pipeline *p)
{
    memset(p, 0, sizeof(*p));
}

void ci_pipeline_release(struct ci_pipeline *p)
{
    core_free(p->file);
    free_list(p->branches, p->nbranches);
    for (size_t i = 0; i < p->nsteps; i++)
        step_release(&p->steps[i]);
    core_free(p->steps);
    for (size_t i = 0; i < p->ncaches; i++)
        cache_release(&p->caches[i]);
    core_free(p->caches);
    free_list(p->artifact_paths, p->nartifact_paths);
    ci_pipeline_init(p);
}

/*
 * Copies a list of strings (a validated SEQ, or NULL for absent) into *out. With dflt and an
 * absent list, the list is { dflt }. On failure *out holds what was copied so far (*n counts it),
 * so the owner's release frees it. returns: 0 or CORE_E_NOMEM.
 */
static int copy_list(const struct core_node *seq, const char *dflt, char ***out, size_t *n)
{
    size_t want = seq ? seq->n : dflt ? 1 : 0;
    *out = NULL;
    *n = 0;
    if (want == 0)
        return 0;
    if (!(*out = core_calloc(want, sizeof(**out))))
        return CORE_E_NOMEM;
    for (size_t i = 0; i < want; i++) {
        if (!((*out)[i] = core_strdup(seq ? seq->items[i]->value : dflt)))
            return CORE_E_NOMEM;
        (*n)++;
    }
    return 0;
}

static int fill_step(struct ci_step *s, const struct core_node *n)
{
    const struct core_node *workdir = core_node_get(n, "workdir");
    const struct core_node *timeout = core_node_get(n, "timeout");
    const struct core_node *network = core_node_get(n, "network");
    const struct core_node *when = core_node_get(n, "when");
    const struct core_node *env = core_node_get(n, "env");
    const struct core_node *res = core_node_get(n, "resources");
    const struct core_node *cpu = core_node_get(res, "cpu");
    const struct core_node *mem = core_node_get(res, "memory");
    const struct core_node *pids = core_node_get(res, "pids");
    int rc = CORE_E_NOMEM;

    s->line = n->line;
    s->timeout_ms = DEFAULT_TIMEOUT_MS;
    s->cpu_millicores = DEFAULT_CPU_MILLICORES;
    s->memory_bytes = DEFAULT_MEMORY_BYTES;
    s->pids = DEFAULT_PIDS;
    /* the values were validated, so the parsers cannot fail here */
    if (timeout)
        core_parse_duration_ms(timeout->value, &s->timeout_ms);
    if (network)
        core_scalar_is_bool(network, &s->network);
    if (cpu)
        core_parse_millicores(cpu->value, &s->cpu_millicores);
    if (mem)
        core_parse_bytes(mem->value, &s->memory_bytes);
    if (pids)
        core_scalar_is_int(pids, &s->pids);
    if (!(s->name = core_strdup(core_node_get(n, "name")->value)) ||
        !(s->workdir = core_strdup(workdir ? workdir->value : ".")))
        goto out;
    if ((rc = copy_list(core_node_get(n, "commands"), NULL, &s->commands, &s->ncommands)) ||
        (rc = copy_list(core_node_get(when, "branch"), NULL, &s->when_branches,
                        &s->nwhen_branches)) ||
        (rc = copy_list(core_node_get(when, "paths"), NULL, &s->when_paths, &s->nwhen_paths)) ||
        (rc = copy_list(core_node_get(n, "cache"), NULL, &s->caches, &s->ncaches)) ||
        (rc = copy_list(core_node_get(n, "secrets"), NULL, &s->secrets, &s->nsecrets)))
        goto out;
    rc = CORE_E_NOMEM;
    if (env && env->n) {
        if (!(s->env = core_calloc(env->n, sizeof(*s->env))))
            goto out;
        for (size_t i = 0; i < env->n; i++) {
            struct ci_kv *kv = &s->env[s->nenv++];
            if (!(kv->key = core_strdup(env->keys[i])) ||
                !(kv->value = core_strdup(env->items[i]->value)))
                goto out;
        }
    }
    rc = 0;
out:
    return rc;
}

static int fill_cache(struct ci_cache *c, const struct core_node *n)
{
    int rc;
    if (!(c->name = core_strdup(core_node_get(n, "name")->value)))
        return CORE_E_NOMEM;
    if ((rc = copy_list(core_node_get(n, "paths"), NULL, &c->paths, &c->npaths)))
        return rc;
    return copy_list(core_node_get(n, "key"), NULL, &c->key_files, &c->nkey_files);
}

/* Copies a validated tree into *p; on failure *p holds a partial copy for the caller to
 * release. */
static int fill(struct ci_pipeline *p, const char *file, const struct core_node *root)
{
    const struct core_node *push = core_node_get(core_node_get(root, "on"), "push");
    const struct core_node *caches = core_node_get(root, "caches");
    const struct core_node *steps = core_node_get(root, "steps");
    const struct core_node *artifact = core_node_get(root, "artifact");
    int rc;

    if (!(p->file = core_strdup(file)))
        return CORE_E_NOMEM;
    if ((rc = copy_list(core_node_get(push, "branches"), DEFAULT_BRANCH, &p->branches,
                        &p->nbranches)) ||
        (rc = copy_list(core_node_get(artifact, "paths"), NULL, &p->artifact_paths,
                        &p->nartifact_paths)))
        return rc;
    if (caches && caches->n) {
        if (!(p->caches = core_calloc(caches->n, sizeof(*p->caches))))
            return CORE_E_NOMEM;
        for (size_t i = 0; i < caches->n; i++)
            if ((rc = fill_cache(&p->caches[p->ncaches++], caches->items[i])))
                return rc;
    }
    if (!(p->steps = core_calloc(steps->n, sizeof(*p->steps))))
        return CORE_E_NOMEM;
    for (size_t i = 0; i < steps->n; i++)
        if ((rc = fill_step(&p->steps[p->nsteps++], steps->items[i])))
            return rc;
    return 0;
}

int ci_pipeline_parse(const char *file, const char *text, size_t len, struct ci_pipeline *p,
                      struct schema_diags *diags, struct core_err *err)
{
    struct core_doc doc = {0};
    const char *name = file ? file : "<input>";
    int rc;

    ci_pipeline_init(p);
    rc = schema_parse(name, text, len, CI_PIPELINE_MAX, root_fields, &doc, diags, err);
    if (rc)
        goto out;
    if ((rc = fill(p, name, doc.root))) {
        core_err_set(err, rc, "pipeline file '%s': out of memory", name);
        goto out;
    }
    core_sha256_hex(text ? text : "", len, p->digest);
out:
    core_doc_release(&doc);
    if (rc)
        ci_pipeline_release(p);
    return rc;
}

int ci_pipeline_schema_markdown(struct core_buf *out)
{
    return schema_markdown(root_fields, out);
}

/* ---- matching -------------------------------------------------------------------------- */

enum glob_tok {
    GLOB_LIT = 1,    /* one character, spelled by `lit`/`len` */
    GLOB_ONE,        /* '?': one character other than '/' */
    GLOB_STAR,       /* '*': any run of characters other than '/' */
    GLOB_DSTAR,      /* '**': any run of characters */
    GLOB_DSTAR_DIR,  /* '**' + '/' at a segment start: zero or more whole directories */
};

struct glob_item {
    enum glob_tok tok;
    const char *lit;
    size_t len;
};

/* Length of the UTF-8 character at s (1 for an invalid byte), at most n. */
static size_t char_len(const char *s, size_t n)
{
    unsigned cp;
    size_t l = core_utf8_decode(s, n, &cp);
    return l ? l : 1;
}

/* Adds state i and what it reaches without consuming a character. */
static void glob_add(bool *set, const struct glob_item *items, size_t n, size_t i)
{
    while (i <= n && !set[i]) {
        set[i] = true;
        if (i == n || (items[i].tok != GLOB_STAR && items[i].tok != GLOB_DSTAR &&
                       items[i].tok != GLOB_DSTAR_DIR))
            break;
        i++;
    }
}

/*
 * Runs the pattern as a small NFA over the text's characters: one state per pattern item, so the
 * cost is O(pattern x text) whatever the pattern (no backtracking blow-up on "*a*a*a*b").
 */
bool ci_glob_match(const char *pattern, const char *text)
{
    struct glob_item items[GLOB_MAX];
    bool cur[GLOB_MAX + 1], next[GLOB_MAX + 1];
    size_t n = 0, plen, tlen;

    if (!pattern || !text)
        return false;
    plen = strlen(pattern);
    for (size_t i = 0; i < plen;) {
        if (n == GLOB_MAX)
            return false;
        struct glob_item *it = &items[n++];
        if (pattern[i] == '*' && pattern[i + 1] == '*') {
            bool at_start = i == 0 || pattern[i - 1] == '/';
            if (at_start && pattern[i + 2] == '/') {
                it->tok = GLOB_DSTAR_DIR;
                i += 3;
            } else {
                it->tok = GLOB_DSTAR;
                i += 2;
            }
            while (pattern[i] == '*') /* "***" is "**" */
                i++;
        } else if (pattern[i] == '*') {
            it->tok = GLOB_STAR;
            i++;
        } else if (pattern[i] == '?') {
            it->tok = GLOB_ONE;
            i += char_len(pattern + i, plen - i);
        } else {
            it->tok = GLOB_LIT;
            it->lit = pattern + i;
            it->len = char_len(pattern + i, plen - i);
            i += it->len;
        }
    }
    memset(cur, 0, sizeof(cur));
    glob_add(cur, items, n, 0);
    tlen = strlen(text);
    for (size_t t = 0; t < tlen;) {
        size_t cl = char_len(text + t, tlen - t);
        bool slash = text[t] == '/', any = false;
        memset(next, 0, sizeof(next));
        for (size_t i = 0; i < n; i++) {
            if (!cur[i])
                continue;
            const struct glob_item *it = &items[i];
            switch (it->tok) {
            case GLOB_LIT:
                if (it->len == cl && memcmp(it->lit, text + t, cl) == 0)
                    glob_add(next, items, n, i + 1);
                break;
            case GLOB_ONE:
                if (!slash)
                    glob_add(next, items, n, i + 1);
                break;
            case GLOB_STAR:
                if (!slash)
                    glob_add(next, items, n, i);
                break;
            case GLOB_DSTAR:
                glob_add(next, items, n, i);
                break;
            case GLOB_DSTAR_DIR:
                glob_add(next, items, n, i);
                if (slash)
                    glob_add(next, items, n, i + 1);
                break;
            }
        }
        memcpy(cur, next, sizeof(cur));
        for (size_t i = 0; i <= n && !any; i++)
            any = cur[i];
        if (!any)
            return false;
        t += cl;
    }
    return cur[n];
}

static bool any_match(char *const *patterns, size_t npatterns, const char *text)
{
    for (size_t i = 0; i < npatterns; i++)
        if (ci_glob_match(patterns[i], text))
            return true;
    return false;
}

/* A NULL branch is unknown (a build without one): branch conditions then pass, as path
 * conditions do for an unknown change list. */
bool ci_step_wanted(const struct ci_step *s, const char *branch, const char *const *changed,
                    size_t nchanged)
{
    if (s->nwhen_branches && branch && !any_match(s->when_branches, s->nwhen_branches, branch))
        return false;
    if (!s->nwhen_paths || !changed)
        return true;
    for (size_t i = 0; i < nchanged; i++)
        if (changed[i] && any_match(s->when_paths, s->nwhen_paths, changed[i]))
            return true;
    return false;
}

bool ci_pipeline_watches(const struct ci_pipeline *p, const char *branch)
{
    if (!branch)
        return false;
    if (!p->nbranches)
        return strcmp(branch, DEFAULT_BRANCH) == 0;
    return any_match(p->branches, p->nbranches, branch);
}
