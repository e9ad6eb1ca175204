/* `pave policy`: the organization's guard rails from the command line (docs/policy.md): apply,
 * list, show and delete policies; check manifests, Terraform plans and resource exports (on the
 * server, or locally against a policy file with --policy); exceptions; scans and reports. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "policy/policy.h"

#define FILE_MAX (64u << 20)
#define MAX_FILES 64

static const char policy_usage[] =
    "usage: pave policy <verb> [flags]\n\n"
    "Policies are YAML documents (kind: Policy) of rules every gate asks: catalog apply,\n"
    "pipelines, registry pushes, deploys, and 'pave policy check'. See docs/policy.md.\n\n"
    "verbs:\n"
    "  apply -f FILE...        store new versions of the policies in FILEs (admin)\n"
    "  list                    the active policies\n"
    "  show NAME               one policy: its YAML, rules and version history\n"
    "  delete NAME             stop enforcing a policy (admin; its history is kept)\n"
    "  check -f FILE...        check manifests, Terraform plans or resource exports\n"
    "  exceptions VERB         request, approve, reject, revoke and list exceptions\n"
    "  report                  compliance by team, service or rule from the newest scan\n"
    "  scan                    scan every service of the catalog now (admin)\n"
    "  decisions list|show     what the gates decided, and why\n\n"
    "Every verb takes --help; listings take -o table|json|yaml.\n";

static const char apply_usage[] =
    "usage: pave policy apply -f FILE... [-o json|yaml]\n\n"
    "Stores a new version of every policy in the FILEs (each may hold several '---'-separated\n"
    "Policy documents). The whole new set is compiled first: any problem (reported with\n"
    "file:line:column) leaves every policy as it was. Applying an identical policy changes\n"
    "nothing. Admins only.\n";
static const char list_usage[] =
    "usage: pave policy list [-o table|json|yaml]\n\nLists the active policies: name, version, "
    "number of rules, who applied them and when.\n";
static const char show_usage[] =
    "usage: pave policy show NAME [-o table|json|yaml]\n\nShows a policy: its rules (id, kind, "
    "mode, severity), its YAML and its version history.\n";
static const char delete_usage[] =
    "usage: pave policy delete NAME\n\nDeletes a policy: its rules stop applying at once. Its "
    "versions stay in the history. Admins only.\n";
static const char check_usage[] =
    "usage: pave policy check -f FILE... [--kind auto|manifest|terraform|resources] [--env ENV]\n"
    "                         [--policy RULES.yaml]... [--all] [-o table|json|yaml]\n\n"
    "Checks every subject in the FILEs: a pave.yaml manifest (one service), a Terraform plan\n"
    "('terraform show -json plan.out') or a cloud resource export (a JSON array or\n"
    "{\"resources\":[...]}); --kind auto detects which. Without --policy the server checks them\n"
    "against the active policies with their approved exceptions and records the decisions;\n"
    "with --policy the check runs here, against those files only, without a server.\n"
    "Each subject is printed as soon as it is checked, with its failing and excepted rules\n"
    "(every failing rule with its remediation); --all prints the passing rules too. -o json\n"
    "writes one document as it goes: {\"subjects\":[...one subject per line...], \"total\",\n"
    "\"blocked\", \"subjects_blocked\", \"subjects_warned\", \"failed\", \"excepted\"}.\n"
    "Exits 1 when an enforce rule fails.\n\n"
    "flags:\n"
    "  -f, --file FILE     a file to check (repeat for more; '-' reads stdin)\n"
    "  --kind KIND         auto (default), manifest, terraform or resources\n"
    "  --env ENV           the target environment (env-scoped rules); default: all envs\n"
    "  --policy FILE       evaluate locally against this policy file (repeatable)\n"
    "  --all               print the rules that pass too\n";
static const char exc_usage[] =
    "usage: pave policy exceptions request SUBJECT RULE --justification TEXT --expires WHEN\n"
    "       (or --subject SUBJECT --rule RULE instead of the two names)\n"
    "       pave policy exceptions approve|reject|revoke ID [--comment TEXT]\n"
    "       pave policy exceptions list [--state STATE] [--subject NAME] [-o table|json|yaml]\n\n"
    "An exception lets SUBJECT (a service or resource address) fail RULE until it expires.\n"
    "Anyone in the subject's team may request one, with a justification and an expiry (a\n"
    "duration such as 30d or an RFC 3339 time, at most 1 year ahead). An admin other than the\n"
    "requester approves or rejects it; the requester or an admin may revoke it. Expired\n"
    "exceptions stop applying everywhere at once. Every step is in the audit log.\n"
    "States: requested, approved, rejected, revoked; --state also takes active and expired.\n";
static const char report_usage[] =
    "usage: pave policy report [--group team|service|rule] [--team T] [--service S]\n"
    "                          [-o table|json|yaml|csv]\n\n"
    "Compliance from the newest scan: pass, fail and excepted counts per group, and the trend\n"
    "over the last 30 scans. -o csv prints every row of the scan (scan, time, team, service,\n"
    "rule, severity, mode, outcome, message). Scans run every 5 minutes; 'pave policy scan'\n"
    "runs one now.\n";
static const char scan_usage[] =
    "usage: pave policy scan [-o json|yaml]\n\nScans every service of the catalog against the "
    "active policies now and prints the totals. Admins only.\n";

/* Takes every "-f X", "--file X", "--file=X" (or with `flag` for --policy) out of argv. */
static int take_repeated(int *argc, char **argv, const char *long_name, char short_name,
                         const char **out, int *nout)
{
    int w = 1;
    size_t ln = strlen(long_name);
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        bool hit = false;
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[w++] = argv[i++];
            break;
        }
        if ((short_name && a[0] == '-' && a[1] == short_name && a[2] == 0) ||
            (a[0] == '-' && a[1] == '-' && strcmp(a + 2, long_name) == 0)) {
            hit = true;
            if (i + 1 >= *argc) {
                cli_error("flag '--%s' needs a value", long_name);
                return CLI_USAGE;
            }
            val = argv[++i];
        } else if (a[0] == '-' && a[1] == '-' && strncmp(a + 2, long_name, ln) == 0 &&
                   a[2 + ln] == '=') {
            hit = true;
            val = a + 3 + ln;
        }
        if (!hit) {
            argv[w++] = argv[i];
            continue;
        }
        if (*nout >= MAX_FILES) {
            cli_error("at most %d files per command", MAX_FILES);
            return CLI_USAGE;
        }
        out[(*nout)++] = val;
    }
    *argc = w;
    return CLI_OK;
}

static int read_input(const char *path, char **text, size_t *len)
{
    struct core_err err = {0};
    if (strcmp(path, "-") == 0) {
        struct core_buf b;
        core_buf_init(&b, FILE_MAX);
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
            if (core_buf_add(&b, chunk, n)) {
                core_buf_release(&b);
                cli_error("standard input is larger than %u bytes", FILE_MAX);
                return CLI_FAIL;
            }
        *text = core_buf_detach(&b, len);
        return *text ? CLI_OK : CLI_FAIL;
    }
    if (core_file_read(path, FILE_MAX, text, len, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ---- apply, list, show, delete ------------------------------------------------------------- */

static int cmd_apply(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(apply_usage, stdout);
        return CLI_OK;
    }
    const char *files[MAX_FILES];
    int nfiles = 0;
    int rc = take_repeated(&argc, argv, "file", 'f', files, &nfiles);
    char *pos[MAX_FILES];
    int npos = 0;
    if (!rc)
        rc = cli_parse(ctx, argc, argv, NULL, pos, MAX_FILES, &npos);
    if (rc)
        return rc;
    for (int i = 0; i < npos && nfiles < MAX_FILES; i++)
        files[nfiles++] = pos[i]; /* `apply -f a.yaml b.yaml` (shell globs) */
    if (nfiles == 0) {
        cli_error("apply needs -f FILE (see 'pave policy apply --help')");
        return CLI_USAGE;
    }
    json_t *docs = json_array();
    for (int i = 0; i < nfiles; i++) {
        char *text = NULL;
        size_t len = 0;
        if (read_input(files[i], &text, &len)) {
            json_decref(docs);
            return CLI_FAIL;
        }
        json_array_append_new(docs, json_pack("{s:s,s:s%}", "name",
                                              strcmp(files[i], "-") ? files[i] : "<stdin>",
                                              "text", text, len));
        core_free(text);
    }
    json_t *body = json_pack("{s:o}", "documents", docs);
    char *btext = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_t *resp = NULL;
    rc = btext ? cli_api(ctx, "POST", "/api/v1/policies", btext, strlen(btext),
                         "application/json", &resp)
               : CLI_FAIL;
    free(btext);
    if (rc)
        return rc;
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, resp);
    } else {
        size_t i;
        json_t *a;
        json_array_foreach (json_object_get(resp, "applied"), i, a)
            printf("policy %s %s (version %lld)\n",
                   json_string_value(json_object_get(a, "name")),
                   json_string_value(json_object_get(a, "change")),
                   (long long)json_integer_value(json_object_get(a, "version")));
        json_array_foreach (json_object_get(resp, "warnings"), i, a)
            fprintf(stderr, "warning: %s\n", json_string_value(a));
    }
    json_decref(resp);
    return CLI_OK;
}

static int cmd_list(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(list_usage, stdout);
        return CLI_OK;
    }
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 0, &npos);
    json_t *resp = NULL;
    if (rc || (rc = cli_api(ctx, "GET", "/api/v1/policies", NULL, 0, NULL, &resp)))
        return rc;
    static const struct cli_column cols[] = {{"NAME", "name"},         {"VERSION", "version"},
                                             {"RULES", "rules"},       {"BY", "created_by"},
                                             {"APPLIED", "created_at"}, {NULL, NULL}};
    const char *lerr = json_string_value(json_object_get(resp, "load_error"));
    if (lerr)
        fprintf(stderr, "pave: the stored policies do not compile, no rule applies: %s\n", lerr);
    if (ctx->format == CLI_TABLE)
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
    else
        cli_print_object(ctx, resp);
    json_decref(resp);
    return CLI_OK;
}

static int named_call(struct cli_ctx *ctx, int argc, char **argv, const char *usage,
                      const char *method, json_t **resp)
{
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    struct core_buf path;
    core_buf_init(&path, 0);
    core_buf_adds(&path, "/api/v1/policies/");
    core_buf_add_urlenc(&path, pos[0]);
    rc = cli_api(ctx, method, path.data, NULL, 0, NULL, resp);
    core_buf_release(&path);
    return rc;
}

static int cmd_show(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(show_usage, stdout);
        return CLI_OK;
    }
    json_t *resp = NULL;
    int rc = named_call(ctx, argc, argv, show_usage, "GET", &resp);
    if (rc)
        return rc;
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, resp);
        json_decref(resp);
        return CLI_OK;
    }
    printf("policy %s version %lld (applied by %s at %s)\n",
           json_string_value(json_object_get(resp, "name")),
           (long long)json_integer_value(json_object_get(resp, "version")),
           json_string_value(json_object_get(resp, "created_by")),
           json_string_value(json_object_get(resp, "created_at")));
    static const struct cli_column cols[] = {{"RULE", "id"},         {"KIND", "kind"},
                                             {"MODE", "mode"},       {"SEVERITY", "severity"},
                                             {"DESCRIPTION", "description"}, {NULL, NULL}};
    printf("\n");
    cli_print_list(ctx, json_object_get(resp, "rules"), cols);
    printf("\n%s", json_string_value(json_object_get(resp, "yaml")));
    json_decref(resp);
    return CLI_OK;
}

static int cmd_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(delete_usage, stdout);
        return CLI_OK;
    }
    json_t *resp = NULL;
    int rc = named_call(ctx, argc, argv, delete_usage, "DELETE", &resp);
    if (rc)
        return rc;
    if (ctx->format != CLI_TABLE)
        cli_print_object(ctx, resp);
    else
        printf("policy %s deleted\n", json_string_value(json_object_get(resp, "name")));
    json_decref(resp);
    return CLI_OK;
}

/* ---- check --------------------------------------------------------------------------------- */

/*
 * The check's output is streamed: each subject is written as soon as it is evaluated, into one
 * reused buffer that goes to stdout with fwrite() whenever it holds OUT_CHUNK bytes, so a
 * 100 000-resource export never exists as one results document in memory. Per subject only the
 * failing and excepted rules are written (--all: every rule in scope); a passing subject is one
 * line (table) or an object with an empty results list (json, yaml).
 *
 * -o json is still one JSON document, written as it goes: {"subjects":[ one subject object per
 * line ], "total", "blocked", "subjects_blocked", "subjects_warned", "failed", "excepted"}. The
 * totals follow the list because they are known only at the end. -o yaml is the same document
 * in block style. The human explanation (and its exception-request hint) is in the table output
 * only; json and yaml carry the same facts in each result's message and remediation.
 */
#define OUT_CHUNK (1u << 20)
#define OUT_MAX (64u << 20) /* one subject's output never comes close */

struct check_out {
    enum cli_format format;
    bool all;
    struct core_buf buf;
    size_t total, nblocked, nwarned;
    long long failures, excepted;
    bool blocked;
    int rc; /* first append error (CORE_E_TOO_BIG, CORE_E_NOMEM); later appends are skipped */
    bool io_error;
};

static void out_init(struct check_out *o, enum cli_format format, bool all)
{
    memset(o, 0, sizeof(*o));
    o->format = format;
    o->all = all;
    core_buf_init(&o->buf, OUT_MAX);
}

static void out_flush(struct check_out *o)
{
    if (o->buf.len && fwrite(o->buf.data, 1, o->buf.len, stdout) != o->buf.len)
        o->io_error = true;
    o->buf.len = 0;
    o->buf.data[0] = 0;
}

static void put(struct check_out *o, const char *s, size_t n)
{
    struct core_buf *b = &o->buf;
    if (b->len + n < b->cap) {
        /* the common case, without a call: room for the bytes and the NUL */
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = 0;
    } else if (!o->rc) {
        o->rc = core_buf_add(b, s, n);
    }
}

/* lit must be a string literal ("" lit does not compile otherwise) */
#define PUTL(o, lit) put((o), "" lit, sizeof(lit) - 1)

static void puts_(struct check_out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_int(struct check_out *o, long long v)
{
    char tmp[24], *e = tmp + sizeof(tmp), *p = e;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(o, p, (size_t)(e - p));
}

/* Length of the valid UTF-8 sequence at p (NUL-terminated), 0 when invalid. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n;
    uint32_t cp, min;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2, cp = p[0] & 0x1fu, min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3, cp = p[0] & 0x0fu, min = 0x800;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4, cp = p[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : n;
}

/* s as a JSON string literal (NULL: null), as core_buf_add_json_str() writes it, but copying
 * runs of plain characters at once: this is most of what a check writes. */
static void put_json_str(struct check_out *o, const char *s)
{
    if (!s) {
        PUTL(o, "null");
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    PUTL(o, "\"");
    for (;;) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        put(o, s + run, i - run);
        if (!c)
            break;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(o, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[8];
            int n = c == '\n'   ? snprintf(esc, sizeof(esc), "\\n")
                    : c == '\r' ? snprintf(esc, sizeof(esc), "\\r")
                    : c == '\t' ? snprintf(esc, sizeof(esc), "\\t")
                                : snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(o, esc, (size_t)n);
            i++;
        } else {
            size_t l = utf8_len(p + i);
            if (l) {
                put(o, s + i, l);
                i += l;
            } else {
                PUTL(o, "\\ufffd");
                i++;
            }
        }
        run = i;
    }
    PUTL(o, "\"");
}

static void out_begin(struct check_out *o)
{
    if (o->format == CLI_JSON)
        PUTL(o, "{\"subjects\":[");
}

static void json_result(struct check_out *o, const struct policy_result *x)
{
    PUTL(o, "{\"rule\":");
    put_json_str(o, x->rule);
    PUTL(o, ",\"policy\":");
    put_json_str(o, x->policy);
    PUTL(o, ",\"kind\":");
    put_json_str(o, x->kind);
    PUTL(o, ",\"mode\":\"");
    puts_(o, policy_mode_name(x->mode));
    PUTL(o, "\",\"severity\":\"");
    puts_(o, policy_severity_name(x->severity));
    PUTL(o, "\",\"outcome\":\"");
    puts_(o, policy_outcome_name(x->outcome));
    PUTL(o, "\",\"message\":");
    put_json_str(o, x->message);
    PUTL(o, ",\"remediation\":");
    put_json_str(o, x->remediation);
    PUTL(o, ",\"exception\":");
    if (x->outcome == POLICY_EXCEPTED)
        put_int(o, x->exception_id);
    else
        PUTL(o, "null");
    PUTL(o, "}");
}

static void yaml_result(struct check_out *o, const struct policy_result *x)
{
    /* JSON string literals are YAML double-quoted scalars */
    PUTL(o, "  - rule: ");
    put_json_str(o, x->rule);
    PUTL(o, "\n    policy: ");
    put_json_str(o, x->policy);
    PUTL(o, "\n    kind: ");
    put_json_str(o, x->kind);
    PUTL(o, "\n    mode: ");
    puts_(o, policy_mode_name(x->mode));
    PUTL(o, "\n    severity: ");
    puts_(o, policy_severity_name(x->severity));
    PUTL(o, "\n    outcome: ");
    puts_(o, policy_outcome_name(x->outcome));
    PUTL(o, "\n    message: ");
    put_json_str(o, x->message);
    PUTL(o, "\n    remediation: ");
    put_json_str(o, x->remediation);
    PUTL(o, "\n    exception: ");
    if (x->outcome == POLICY_EXCEPTED)
        put_int(o, x->exception_id);
    else
        PUTL(o, "null");
    PUTL(o, "\n");
}

static void table_result(struct check_out *o, const char *name, const struct policy_result *x)
{
    PUTL(o, "      ");
    puts_(o, x->rule);
    PUTL(o, " (");
    puts_(o, policy_mode_name(x->mode));
    PUTL(o, ", ");
    puts_(o, policy_severity_name(x->severity));
    PUTL(o, "): ");
    if (x->outcome == POLICY_PASS) {
        PUTL(o, "pass\n");
        return;
    }
    if (x->outcome == POLICY_EXCEPTED) {
        PUTL(o, "excepted (exception ");
        put_int(o, x->exception_id);
        PUTL(o, "): ");
    }
    puts_(o, x->message ? x->message : "failed");
    PUTL(o, ".");
    if (x->outcome == POLICY_FAIL && x->remediation && *x->remediation) {
        PUTL(o, " Fix: ");
        puts_(o, x->remediation);
    }
    PUTL(o, "\n");
    if (x->outcome == POLICY_FAIL) {
        PUTL(o, "        To ask for an exception: pave policy exceptions request --subject ");
        puts_(o, name);
        PUTL(o, " --rule ");
        puts_(o, x->rule);
        PUTL(o, " --expires 30d --justification '...'\n");
    }
}

/* Writes one evaluated subject. kind: "resource", "service"... */
static void out_subject(struct check_out *o, const char *name, const char *kind,
                        const char *team, const char *env, const struct policy_results *r)
{
    name = name ? name : "";
    o->total++;
    o->blocked = o->blocked || r->blocked;
    o->nblocked += r->blocked;
    o->nwarned += !r->blocked && r->failed;
    o->failures += r->failed;
    for (size_t i = 0; i < r->n; i++)
        o->excepted += r->v[i].outcome == POLICY_EXCEPTED;
    switch (o->format) {
    case CLI_JSON: {
        puts_(o, o->total > 1 ? ",\n{\"name\":" : "\n{\"name\":");
        put_json_str(o, name);
        PUTL(o, ",\"subject\":\"");
        puts_(o, kind);
        PUTL(o, "\",\"team\":");
        put_json_str(o, team);
        PUTL(o, ",\"env\":");
        put_json_str(o, env);
        puts_(o, r->blocked ? ",\"blocked\":true,\"failed\":" : ",\"blocked\":false,\"failed\":");
        put_int(o, r->failed);
        PUTL(o, ",\"warned\":");
        put_int(o, r->warned);
        PUTL(o, ",\"rules\":");
        put_int(o, (long long)r->n);
        PUTL(o, ",\"results\":[");
        bool first = true;
        for (size_t i = 0; i < r->n; i++) {
            if (!o->all && r->v[i].outcome == POLICY_PASS)
                continue;
            if (!first)
                PUTL(o, ",");
            first = false;
            json_result(o, &r->v[i]);
        }
        PUTL(o, "]}");
        break;
    }
    case CLI_YAML: {
        if (o->total == 1)
            PUTL(o, "subjects:\n");
        PUTL(o, "- name: ");
        put_json_str(o, name);
        PUTL(o, "\n  subject: ");
        puts_(o, kind);
        PUTL(o, "\n  team: ");
        put_json_str(o, team);
        PUTL(o, "\n  env: ");
        put_json_str(o, env);
        puts_(o, r->blocked ? "\n  blocked: true\n  failed: " : "\n  blocked: false\n  failed: ");
        put_int(o, r->failed);
        PUTL(o, "\n  warned: ");
        put_int(o, r->warned);
        PUTL(o, "\n  rules: ");
        put_int(o, (long long)r->n);
        size_t nshown = 0;
        for (size_t i = 0; i < r->n; i++)
            nshown += o->all || r->v[i].outcome != POLICY_PASS;
        puts_(o, nshown ? "\n  results:\n" : "\n  results: []\n");
        for (size_t i = 0; i < r->n; i++)
            if (o->all || r->v[i].outcome != POLICY_PASS)
                yaml_result(o, &r->v[i]);
        break;
    }
    case CLI_TABLE:
        puts_(o, r->blocked ? "FAIL  " : r->failed ? "WARN  " : "PASS  ");
        puts_(o, name);
        PUTL(o, " (");
        puts_(o, kind);
        PUTL(o, "): ");
        put_int(o, (long long)r->n);
        puts_(o, r->n == 1 ? " rule, " : " rules, ");
        put_int(o, r->failed);
        PUTL(o, " failed, ");
        put_int(o, r->warned);
        puts_(o, r->warned == 1 ? " warning\n" : " warnings\n");
        for (size_t i = 0; i < r->n; i++)
            if (o->all || r->v[i].outcome != POLICY_PASS)
                table_result(o, name, &r->v[i]);
        break;
    }
    if (o->buf.len >= OUT_CHUNK)
        out_flush(o);
}

/* Writes the totals and flushes. returns: CLI_OK, or CLI_FAIL when the output failed. */
static int out_end(struct check_out *o)
{
    switch (o->format) {
    case CLI_JSON:
        puts_(o, o->total ? "\n],\"total\":" : "],\"total\":");
        put_int(o, (long long)o->total);
        puts_(o, o->blocked ? ",\"blocked\":true" : ",\"blocked\":false");
        PUTL(o, ",\"subjects_blocked\":");
        put_int(o, (long long)o->nblocked);
        PUTL(o, ",\"subjects_warned\":");
        put_int(o, (long long)o->nwarned);
        PUTL(o, ",\"failed\":");
        put_int(o, o->failures);
        PUTL(o, ",\"excepted\":");
        put_int(o, o->excepted);
        PUTL(o, "}\n");
        break;
    case CLI_YAML:
        if (!o->total)
            PUTL(o, "subjects: []\n");
        PUTL(o, "total: ");
        put_int(o, (long long)o->total);
        puts_(o, o->blocked ? "\nblocked: true" : "\nblocked: false");
        PUTL(o, "\nsubjects_blocked: ");
        put_int(o, (long long)o->nblocked);
        PUTL(o, "\nsubjects_warned: ");
        put_int(o, (long long)o->nwarned);
        PUTL(o, "\nfailed: ");
        put_int(o, o->failures);
        PUTL(o, "\nexcepted: ");
        put_int(o, o->excepted);
        PUTL(o, "\n");
        break;
    case CLI_TABLE:
        put_int(o, (long long)o->total);
        puts_(o, o->total == 1 ? " subject checked: " : " subjects checked: ");
        put_int(o, (long long)o->nblocked);
        PUTL(o, " blocked, ");
        put_int(o, (long long)o->nwarned);
        PUTL(o, " with findings that do not block (");
        put_int(o, o->failures);
        puts_(o, o->failures == 1 ? " failing rule, " : " failing rules, ");
        put_int(o, o->excepted);
        PUTL(o, " excepted)\n");
        break;
    }
    out_flush(o);
    if (fflush(stdout) != 0)
        o->io_error = true;
    if (o->rc)
        cli_error("the check's output is too large");
    else if (o->io_error)
        cli_error("cannot write the check's output");
    return o->rc || o->io_error ? CLI_FAIL : CLI_OK;
}

static void out_release(struct check_out *o)
{
    core_buf_release(&o->buf);
}

struct local_ctx {
    const struct policy_set *set;
    const char *env;
    struct check_out *out;
    struct core_err *err;
};

static int local_subject(void *arg, struct policy_input *in)
{
    struct local_ctx *c = arg;
    in->gate = POLICY_GATE_CHECK;
    if (c->env)
        in->env = c->env;
    in->now_ms = core_now_ms();
    struct policy_results res;
    int rc = policy_evaluate(c->set, in, &res, c->err);
    if (rc)
        return rc;
    out_subject(c->out, in->name, policy_subject_name(in->subject), in->team, in->env, &res);
    policy_results_free(&res);
    return 0;
}

static enum policy_inventory inventory_kind(const char *kind, bool *ok)
{
    *ok = true;
    if (!kind || !strcmp(kind, "auto"))
        return POLICY_INV_AUTO;
    if (!strcmp(kind, "manifest"))
        return POLICY_INV_MANIFEST;
    if (!strcmp(kind, "terraform"))
        return POLICY_INV_TERRAFORM;
    if (!strcmp(kind, "resources"))
        return POLICY_INV_RESOURCES;
    *ok = false;
    return POLICY_INV_AUTO;
}

static int check_local(const char **policies, int npolicies, const char **files, int nfiles,
                       const char *kind, const char *env, struct check_out *out)
{
    struct core_err err = {0};
    struct policy_doc docs[MAX_FILES];
    char *texts[MAX_FILES] = {0};
    struct policy_set *set = NULL;
    json_t *warnings = NULL;
    int rc = CLI_FAIL;
    bool ok;
    enum policy_inventory inv = inventory_kind(kind, &ok);
    for (int i = 0; i < npolicies; i++) {
        size_t len = 0;
        if (read_input(policies[i], &texts[i], &len))
            goto out;
        docs[i] = (struct policy_doc){policies[i], texts[i], len};
    }
    if (!(set = policy_set_parse(docs, (size_t)npolicies, &warnings, &err))) {
        cli_error("the policies are invalid:\n%s", err.msg);
        goto out;
    }
    size_t i;
    json_t *w;
    json_array_foreach (warnings, i, w)
        fprintf(stderr, "warning: %s\n", json_string_value(w));
    struct local_ctx c = {.set = set, .env = env, .out = out, .err = &err};
    for (int f = 0; f < nfiles; f++) {
        char *text = NULL;
        size_t len = 0;
        if (read_input(files[f], &text, &len))
            goto out;
        int irc = policy_inventory_each(strcmp(files[f], "-") ? files[f] : "<stdin>", text, len,
                                        inv, local_subject, &c, &err);
        core_free(text);
        if (irc) {
            out_flush(out); /* what was checked before the error */
            fflush(stdout);
            cli_error("%s", err.msg);
            goto out;
        }
    }
    rc = CLI_OK;
out:
    json_decref(warnings);
    policy_set_free(set);
    for (int p = 0; p < npolicies; p++)
        core_free(texts[p]);
    return rc;
}

static int enum_by_name(const char *s, const char *(*name)(int), int lo, int hi)
{
    for (int v = lo; s && v <= hi; v++)
        if (!strcmp(name(v), s))
            return v;
    return 0;
}

static const char *mode_name(int v) { return policy_mode_name((enum policy_mode)v); }
static const char *severity_name(int v) { return policy_severity_name((enum policy_severity)v); }
static const char *outcome_name(int v) { return policy_outcome_name((enum policy_outcome)v); }

/* One subject of the server's answer, written like a local one (strings borrowed from s). */
static int remote_subject(struct check_out *o, json_t *s)
{
    json_t *arr = json_object_get(s, "results");
    struct policy_results r = {0};
    size_t i;
    json_t *x;
    if (json_array_size(arr) &&
        !(r.v = core_calloc(json_array_size(arr), sizeof(*r.v)))) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    json_array_foreach (arr, i, x) {
        struct policy_result *e = &r.v[r.n++];
        e->rule = json_string_value(json_object_get(x, "rule"));
        e->policy = json_string_value(json_object_get(x, "policy"));
        e->kind = json_string_value(json_object_get(x, "kind"));
        e->mode = (enum policy_mode)enum_by_name(json_string_value(json_object_get(x, "mode")),
                                                 mode_name, POLICY_AUDIT, POLICY_ENFORCE);
        e->severity = (enum policy_severity)enum_by_name(
            json_string_value(json_object_get(x, "severity")), severity_name, POLICY_LOW,
            POLICY_CRITICAL);
        e->outcome = (enum policy_outcome)enum_by_name(
            json_string_value(json_object_get(x, "outcome")), outcome_name, POLICY_PASS,
            POLICY_SKIPPED);
        e->message = (char *)json_string_value(json_object_get(x, "message"));
        e->remediation = json_string_value(json_object_get(x, "remediation"));
        e->exception_id = (int64_t)json_integer_value(json_object_get(x, "exception"));
        if (!e->rule)
            e->rule = "";
    }
    r.blocked = json_is_true(json_object_get(s, "blocked"));
    r.failed = (int)json_integer_value(json_object_get(s, "failed"));
    r.warned = (int)json_integer_value(json_object_get(s, "warned"));
    const char *kind = json_string_value(json_object_get(s, "subject"));
    out_subject(o, json_string_value(json_object_get(s, "name")), kind ? kind : "subject",
                json_string_value(json_object_get(s, "team")),
                json_string_value(json_object_get(s, "env")), &r);
    core_free(r.v); /* the messages are the answer's */
    return CLI_OK;
}

static int check_remote(struct cli_ctx *ctx, const char **files, int nfiles, const char *kind,
                        const char *env, struct check_out *out)
{
    for (int f = 0; f < nfiles; f++) {
        char *text = NULL;
        size_t len = 0;
        if (read_input(files[f], &text, &len))
            return CLI_FAIL;
        struct core_buf path;
        core_buf_init(&path, 0);
        core_buf_adds(&path, "/api/v1/policy/check?gate=check&kind=");
        core_buf_add_urlenc(&path, kind ? kind : "auto");
        core_buf_adds(&path, "&name=");
        core_buf_add_urlenc(&path, strcmp(files[f], "-") ? files[f] : "<stdin>");
        if (env) {
            core_buf_adds(&path, "&env=");
            core_buf_add_urlenc(&path, env);
        }
        json_t *resp = NULL;
        int rc = cli_api(ctx, "POST", path.data, text, len, "application/octet-stream", &resp);
        core_buf_release(&path);
        core_free(text);
        if (rc)
            return rc;
        size_t i;
        json_t *s;
        json_array_foreach (json_object_get(resp, "subjects"), i, s)
            if ((rc = remote_subject(out, s)))
                break;
        /* a blocked answer counts even if the server sent no subject for it */
        out->blocked = out->blocked || json_is_true(json_object_get(resp, "blocked"));
        json_decref(resp);
        if (rc)
            return rc;
    }
    return CLI_OK;
}

static int cmd_check(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(check_usage, stdout);
        return CLI_OK;
    }
    const char *files[MAX_FILES], *policies[MAX_FILES];
    int nfiles = 0, npolicies = 0;
    int rc = take_repeated(&argc, argv, "file", 'f', files, &nfiles);
    if (!rc)
        rc = take_repeated(&argc, argv, "policy", 0, policies, &npolicies);
    const char *kind = NULL, *env = NULL;
    bool all = false;
    const struct cli_opt opts[] = {{"kind", 'k', &kind, NULL},
                                   {"env", 'e', &env, NULL},
                                   {"all", 0, NULL, &all},
                                   {NULL, 0, NULL, NULL}};
    char *pos[MAX_FILES];
    int npos = 0;
    if (!rc)
        rc = cli_parse(ctx, argc, argv, opts, pos, MAX_FILES, &npos);
    if (rc)
        return rc;
    for (int i = 0; i < npos && nfiles < MAX_FILES; i++)
        files[nfiles++] = pos[i];
    bool ok;
    inventory_kind(kind, &ok);
    if (!ok) {
        cli_error("unknown --kind '%s': use auto, manifest, terraform or resources", kind);
        return CLI_USAGE;
    }
    if (nfiles == 0) {
        cli_error("check needs -f FILE (see 'pave policy check --help')");
        return CLI_USAGE;
    }
    struct check_out out;
    out_init(&out, ctx->format, all);
    out_begin(&out);
    rc = npolicies ? check_local(policies, npolicies, files, nfiles, kind, env, &out)
                   : check_remote(ctx, files, nfiles, kind, env, &out);
    if (!rc)
        rc = out_end(&out);
    if (!rc)
        rc = out.blocked ? CLI_FAIL : CLI_OK;
    out_release(&out);
    return rc;
}

/* ---- exceptions ---------------------------------------------------------------------------- */

static int exc_list(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *state = NULL, *subject = NULL;
    const struct cli_opt opts[] = {
        {"state", 0, &state, NULL}, {"subject", 0, &subject, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    struct core_buf path;
    core_buf_init(&path, 0);
    core_buf_adds(&path, "/api/v1/policy/exceptions?state=");
    core_buf_add_urlenc(&path, state ? state : "");
    core_buf_adds(&path, "&subject=");
    core_buf_add_urlenc(&path, subject ? subject : "");
    json_t *resp = NULL;
    rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
    core_buf_release(&path);
    if (rc)
        return rc;
    static const struct cli_column cols[] = {
        {"ID", "id"},       {"SUBJECT", "subject"},     {"RULE", "rule"},
        {"STATE", "state"}, {"ACTIVE", "active"},       {"EXPIRES", "expires_at"},
        {"BY", "requester"}, {"APPROVER", "approver"},  {NULL, NULL}};
    cli_print_list(ctx, json_object_get(resp, "items"), cols);
    json_decref(resp);
    return CLI_OK;
}

static int exc_request(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *justification = NULL, *expires = NULL, *subject = NULL, *rule = NULL;
    const struct cli_opt opts[] = {{"justification", 'j', &justification, NULL},
                                   {"expires", 0, &expires, NULL},
                                   {"subject", 0, &subject, NULL},
                                   {"rule", 0, &rule, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[2];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 2, &npos);
    if (rc)
        return rc;
    /* SUBJECT RULE, or --subject and --rule (as the check's explanation prints them) */
    if (npos == 0 && subject && rule) {
        pos[0] = (char *)subject;
        pos[1] = (char *)rule;
        npos = 2;
    }
    if (npos != 2 || !justification || !expires) {
        cli_error("usage: pave policy exceptions request SUBJECT RULE --justification TEXT "
                  "--expires WHEN");
        return CLI_USAGE;
    }
    json_t *body = json_pack("{s:s,s:s,s:s,s:s}", "subject", pos[0], "rule", pos[1],
                             "justification", justification, "expires", expires);
    json_t *resp = NULL;
    rc = body ? cli_api_json(ctx, "POST", "/api/v1/policy/exceptions", body, &resp) : CLI_FAIL;
    if (rc)
        return rc;
    if (ctx->format != CLI_TABLE)
        cli_print_object(ctx, resp);
    else
        printf("exception %lld requested for %s, rule %s, until %s; an admin other than you "
               "must approve it ('pave policy exceptions approve %lld')\n",
               (long long)json_integer_value(json_object_get(resp, "id")), pos[0], pos[1],
               json_string_value(json_object_get(resp, "expires_at")),
               (long long)json_integer_value(json_object_get(resp, "id")));
    json_decref(resp);
    return CLI_OK;
}

static int exc_decide(struct cli_ctx *ctx, const char *verb, int argc, char **argv)
{
    const char *comment = NULL;
    const struct cli_opt opts[] = {{"comment", 'm', &comment, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos);
    if (rc)
        return rc;
    char *end = NULL;
    long long id = npos == 1 ? strtoll(pos[0], &end, 10) : 0;
    if (npos != 1 || *end || id <= 0) {
        cli_error("usage: pave policy exceptions %s ID [--comment TEXT]", verb);
        return CLI_USAGE;
    }
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/policy/exceptions/%lld/%s", id, verb);
    return cli_post_state_change(ctx, path, comment, "exception", id);
}

static int cmd_exceptions(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(exc_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    if (!strcmp(verb, "list"))
        return exc_list(ctx, argc - 1, argv + 1);
    if (!strcmp(verb, "request"))
        return exc_request(ctx, argc - 1, argv + 1);
    if (!strcmp(verb, "approve") || !strcmp(verb, "reject") || !strcmp(verb, "revoke"))
        return exc_decide(ctx, verb, argc - 1, argv + 1);
    cli_error("unknown verb 'policy exceptions %s' (use request, approve, reject, revoke or "
              "list)",
              verb);
    return CLI_USAGE;
}

/* ---- report and scan ----------------------------------------------------------------------- */

/* Takes "-o csv" (which cli_parse does not know) out of argv. */
static bool take_csv(int *argc, char **argv)
{
    bool csv = false;
    int w = 1;
    for (int i = 1; i < *argc; i++) {
        if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < *argc &&
            !strcmp(argv[i + 1], "csv")) {
            csv = true;
            i++;
            continue;
        }
        if (!strcmp(argv[i], "-o=csv") || !strcmp(argv[i], "--output=csv")) {
            csv = true;
            continue;
        }
        argv[w++] = argv[i];
    }
    *argc = w;
    return csv;
}

static int cmd_report(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(report_usage, stdout);
        return CLI_OK;
    }
    bool csv = take_csv(&argc, argv);
    const char *group = NULL, *team = NULL, *service = NULL;
    const struct cli_opt opts[] = {{"group", 'g', &group, NULL},
                                   {"team", 't', &team, NULL},
                                   {"service", 's', &service, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos);
    if (rc)
        return rc;
    struct core_buf path;
    core_buf_init(&path, 0);
    core_buf_adds(&path, "/api/v1/policy/report?format=");
    core_buf_adds(&path, csv ? "csv" : "json");
    const char *keys[] = {"group", "team", "service"};
    const char *vals[] = {group, team, service};
    for (int i = 0; i < 3; i++)
        if (vals[i]) {
            core_buf_addf(&path, "&%s=", keys[i]);
            core_buf_add_urlenc(&path, vals[i]);
        }
    if (csv) {
        struct core_buf resp;
        core_buf_init(&resp, 0);
        char msg[256];
        int status = cli_http(ctx, "GET", path.data, NULL, 0, NULL, &resp, msg, sizeof(msg));
        if (status != 200) {
            core_buf_release(&resp);
            /* once more through cli_api, which prints the server's message and details */
            if (status > 0)
                cli_api(ctx, "GET", path.data, NULL, 0, NULL, NULL);
            else
                cli_error("%s", msg);
            core_buf_release(&path);
            return CLI_FAIL;
        }
        core_buf_release(&path);
        fwrite(resp.data, 1, resp.len, stdout);
        core_buf_release(&resp);
        return CLI_OK;
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
    json_t *scan = json_object_get(resp, "scan");
    if (!json_is_object(scan)) {
        printf("no scan yet: scans run every 5 minutes, or run one with 'pave policy scan'\n");
        json_decref(resp);
        return CLI_OK;
    }
    json_t *tot = json_object_get(resp, "totals");
    printf("scan %lld at %s: %lld pass, %lld fail, %lld excepted (%.1f%% compliant)\n\n",
           (long long)json_integer_value(json_object_get(scan, "id")),
           json_string_value(json_object_get(scan, "ts")),
           (long long)json_integer_value(json_object_get(tot, "pass")),
           (long long)json_integer_value(json_object_get(tot, "fail")),
           (long long)json_integer_value(json_object_get(tot, "excepted")),
           json_number_value(json_object_get(tot, "compliance")));
    static const struct cli_column cols[] = {{"GROUP", "key"},       {"PASS", "pass"},
                                             {"FAIL", "fail"},       {"EXCEPTED", "excepted"},
                                             {"COMPLIANCE", "compliance"}, {NULL, NULL}};
    cli_print_list(ctx, json_object_get(resp, "groups"), cols);
    json_t *trend = json_object_get(resp, "trend");
    if (json_array_size(trend) > 1) {
        printf("\ntrend (oldest first):");
        size_t i;
        json_t *t;
        json_array_foreach (trend, i, t)
            printf(" %.1f%%", json_number_value(json_object_get(t, "compliance")));
        printf("\n");
    }
    json_decref(resp);
    return CLI_OK;
}

static int cmd_scan(struct cli_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(scan_usage, stdout);
        return CLI_OK;
    }
    char *pos[1];
    int npos;
    int rc = cli_parse(ctx, argc, argv, NULL, pos, 0, &npos);
    json_t *resp = NULL;
    if (rc || (rc = cli_api(ctx, "POST", "/api/v1/policy/scans", "{}", 2, "application/json",
                            &resp)))
        return rc;
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, resp);
    } else {
        json_t *tot = json_object_get(resp, "totals");
        printf("scan %lld: %lld pass, %lld fail, %lld excepted (%.1f%% compliant); see 'pave "
               "policy report'\n",
               (long long)json_integer_value(json_object_get(resp, "scan")),
               (long long)json_integer_value(json_object_get(tot, "pass")),
               (long long)json_integer_value(json_object_get(tot, "fail")),
               (long long)json_integer_value(json_object_get(tot, "excepted")),
               json_number_value(json_object_get(tot, "compliance")));
    }
    json_decref(resp);
    return CLI_OK;
}

static const char decisions_usage[] =
    "usage: pave policy decisions list [--subject NAME] [--limit N] [-o table|json|yaml]\n"
    "       pave policy decisions show ID [-o table|json|yaml]\n\n"
    "Every gate's answer is recorded as a decision: when, which gate, the subject, whether it\n"
    "was blocked, and each failing rule with its message and remediation.\n";

static void print_decision(const struct cli_ctx *ctx, json_t *d)
{
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, d);
        return;
    }
    printf("decision %lld at %s: gate %s, %s %s%s%s -> %s\n",
           (long long)json_integer_value(json_object_get(d, "id")),
           json_string_value(json_object_get(d, "ts")),
           json_string_value(json_object_get(d, "gate")),
           json_string_value(json_object_get(d, "subject_kind")),
           json_string_value(json_object_get(d, "subject")),
           json_is_string(json_object_get(d, "env")) ? " in " : "",
           json_is_string(json_object_get(d, "env"))
               ? json_string_value(json_object_get(d, "env"))
               : "",
           json_is_true(json_object_get(d, "blocked")) ? "blocked" : "allowed");
    size_t i;
    json_t *f;
    json_array_foreach (json_object_get(d, "failed"), i, f) {
        const char *msg = json_string_value(json_object_get(f, "message"));
        const char *fix = json_string_value(json_object_get(f, "remediation"));
        printf("  %s (%s, %s): %s\n", json_string_value(json_object_get(f, "rule")),
               json_string_value(json_object_get(f, "mode")),
               json_string_value(json_object_get(f, "severity")), msg ? msg : "failed");
        if (fix && *fix)
            printf("    Fix: %s\n", fix);
    }
}

static int cmd_decisions(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(decisions_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *subject = NULL, *limit = NULL;
    const struct cli_opt opts[] = {
        {"subject", 0, &subject, NULL}, {"limit", 'n', &limit, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos;
    bool show = !strcmp(argv[1], "show");
    if (!show && strcmp(argv[1], "list")) {
        cli_error("unknown verb 'policy decisions %s' (use list or show)", argv[1]);
        return CLI_USAGE;
    }
    int rc = cli_parse(ctx, argc - 1, argv + 1, opts, pos, show ? 1 : 0, &npos);
    if (rc)
        return rc;
    struct core_buf path;
    core_buf_init(&path, 0);
    if (show) {
        char *end = NULL;
        long long id = npos == 1 ? strtoll(pos[0], &end, 10) : 0;
        if (npos != 1 || *end || id <= 0) {
            cli_error("usage: pave policy decisions show ID");
            return CLI_USAGE;
        }
        core_buf_addf(&path, "/api/v1/policy/decisions/%lld", id);
    } else {
        core_buf_adds(&path, "/api/v1/policy/decisions?limit=");
        core_buf_add_urlenc(&path, limit ? limit : "50");
        core_buf_adds(&path, "&subject=");
        core_buf_add_urlenc(&path, subject ? subject : "");
    }
    json_t *resp = NULL;
    rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
    core_buf_release(&path);
    if (rc)
        return rc;
    static const struct cli_column cols[] = {
        {"ID", "id"},           {"TIME", "ts"},   {"GATE", "gate"}, {"SUBJECT", "subject"},
        {"KIND", "subject_kind"}, {"ENV", "env"}, {"BLOCKED", "blocked"}, {NULL, NULL}};
    if (show)
        print_decision(ctx, resp);
    else
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
    json_decref(resp);
    return CLI_OK;
}

int cli_cmd_policy(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct cli_verb verbs[] = {
        {"apply", cmd_apply},   {"list", cmd_list},     {"show", cmd_show},
        {"delete", cmd_delete}, {"check", cmd_check},   {"exceptions", cmd_exceptions},
        {"report", cmd_report}, {"scan", cmd_scan},     {"decisions", cmd_decisions},
        {NULL, NULL}};
    return cli_run_verb(ctx, argc, argv, "policy", policy_usage, verbs);
}
