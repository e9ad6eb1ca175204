/* Output of listings and objects as table, JSON or YAML. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pave: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

int cli_run_verb(struct cli_ctx *ctx, int argc, char **argv, const char *what,
                 const char *usage, const struct cli_verb *verbs)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    size_t n = 0;
    for (; verbs[n].name; n++)
        if (!strcmp(argv[1], verbs[n].name))
            return verbs[n].run(ctx, argc - 1, argv + 1);
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    const char *names[64];
    size_t k = 0;
    for (; k < n && k < 63; k++)
        names[k] = verbs[k].name;
    names[k] = NULL;
    const char *hint = core_did_you_mean(argv[1], names);
    if (hint) {
        cli_error("unknown verb '%s %s'; did you mean '%s'?", what, argv[1], hint);
        return CLI_USAGE;
    }
    char list[512] = "";
    size_t at = 0;
    for (size_t i = 0; i < k && at < sizeof(list); i++)
        at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s",
                               i == 0 ? "" : i + 1 == k ? " or " : ", ", names[i]);
    cli_error("unknown verb '%s %s' (use %s; see 'pave %s --help')", what, argv[1], list,
              what);
    return CLI_USAGE;
}

int cli_parse_output(struct cli_ctx *ctx, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *v = NULL;
    if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
        if (*i + 1 >= argc) {
            cli_error("%s needs a value: table, json or yaml", a);
            return -1;
        }
        v = argv[++*i];
    } else if (strncmp(a, "-o=", 3) == 0) {
        v = a + 3;
    } else if (strncmp(a, "--output=", 9) == 0) {
        v = a + 9;
    } else {
        return 0;
    }
    if (strcmp(v, "table") == 0)
        ctx->format = CLI_TABLE;
    else if (strcmp(v, "json") == 0)
        ctx->format = CLI_JSON;
    else if (strcmp(v, "yaml") == 0)
        ctx->format = CLI_YAML;
    else {
        cli_error("unknown output format '%s': use table, json or yaml", v);
        return -1;
    }
    return 1;
}

static json_t *dig(json_t *obj, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = obj;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, tok);
    return cur;
}

static void cell_text(json_t *v, char *out, size_t outsz)
{
    if (!v || json_is_null(v)) {
        snprintf(out, outsz, "-");
    } else if (json_is_string(v)) {
        snprintf(out, outsz, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(out, outsz, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(out, outsz, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(out, outsz, "%s", json_is_true(v) ? "yes" : "no");
    } else if (json_is_array(v)) {
        size_t i, off = 0;
        json_t *x;
        out[0] = 0;
        json_array_foreach(v, i, x)
        {
            char one[128];
            cell_text(x, one, sizeof(one));
            int n = snprintf(out + off, outsz - off, "%s%s", i ? "," : "", one);
            if (n < 0 || (size_t)n >= outsz - off)
                break;
            off += (size_t)n;
        }
        if (!out[0])
            snprintf(out, outsz, "-");
    } else {
        char *s = json_dumps(v, JSON_COMPACT);
        snprintf(out, outsz, "%s", s ? s : "?");
        free(s);
    }
    /* Keep tables on one line per row. */
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
}

static bool yaml_plain_ok(const char *s)
{
    if (!*s)
        return false;
    static const char *const reserved[] = {"true", "false", "null", "yes", "no", "on", "off",
                                           "~", "True", "False", "Null", "NULL", NULL};
    for (size_t i = 0; reserved[i]; i++)
        if (strcmp(s, reserved[i]) == 0)
            return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]))
        return false;
    char *end;
    strtod(s, &end);
    if (*end == 0)
        return false; /* looks like a number */
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == '#' || (*p == ':' && (p[1] == ' ' || !p[1])))
            return false;
    }
    return s[strlen(s) - 1] != ' ';
}

static void yaml_scalar(json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (yaml_plain_ok(s)) {
            fputs(s, stdout);
        } else {
            char *q = json_dumps(v, JSON_ENCODE_ANY);
            fputs(q ? q : "\"\"", stdout);
            free(q);
        }
    } else if (json_is_null(v)) {
        fputs("null", stdout);
    } else {
        char *q = json_dumps(v, JSON_ENCODE_ANY);
        fputs(q ? q : "null", stdout);
        free(q);
    }
}

void cli_print_yaml(json_t *v, int indent, bool in_seq)
{
    if (json_is_object(v)) {
        if (json_object_size(v) == 0) {
            fputs("{}\n", stdout);
            return;
        }
        const char *k;
        json_t *x;
        bool first = true;
        json_object_foreach(v, k, x)
        {
            if (!(first && in_seq))
                printf("%*s", indent, "");
            first = false;
            json_t *ks = json_string(k);
            yaml_scalar(ks);
            json_decref(ks);
            fputc(':', stdout);
            if ((json_is_object(x) && json_object_size(x)) || (json_is_array(x) && json_array_size(x))) {
                fputc('\n', stdout);
                cli_print_yaml(x, indent + 2, false);
            } else {
                fputc(' ', stdout);
                if (json_is_object(x))
                    fputs("{}\n", stdout);
                else if (json_is_array(x))
                    fputs("[]\n", stdout);
                else {
                    yaml_scalar(x);
                    fputc('\n', stdout);
                }
            }
        }
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0) {
            printf("%*s[]\n", indent, "");
            return;
        }
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            printf("%*s- ", indent, "");
            if (json_is_object(x) && json_object_size(x)) {
                cli_print_yaml(x, indent + 2, true);
            } else if (json_is_array(x) && json_array_size(x)) {
                fputc('\n', stdout);
                cli_print_yaml(x, indent + 2, false);
            } else {
                yaml_scalar(x);
                fputc('\n', stdout);
            }
        }
    } else {
        printf("%*s", indent, "");
        yaml_scalar(v);
        fputc('\n', stdout);
    }
}

static void print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
}

void cli_print_list(const struct cli_ctx *ctx, json_t *items, const struct cli_column *cols)
{
    if (ctx->format == CLI_JSON) {
        print_json(items);
        return;
    }
    if (ctx->format == CLI_YAML) {
        cli_print_yaml(items, 0, false);
        return;
    }
    size_t ncols = 0;
    while (cols[ncols].header)
        ncols++;
    size_t nrows = json_array_size(items);
    size_t width[16] = {0};
    for (size_t c = 0; c < ncols && c < 16; c++)
        width[c] = strlen(cols[c].header);
    char cell[256];
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols && c < 16; c++) {
            cell_text(dig(json_array_get(items, r), cols[c].field), cell, sizeof(cell));
            size_t w = strlen(cell) > 60 ? 60 : strlen(cell);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t c = 0; c < ncols && c < 16; c++) {
        if (c + 1 < ncols)
            printf("%-*s  ", (int)width[c], cols[c].header);
        else
            printf("%s\n", cols[c].header);
    }
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols && c < 16; c++) {
            cell_text(dig(json_array_get(items, r), cols[c].field), cell, sizeof(cell));
            if (strlen(cell) > 60)
                memcpy(cell + 57, "...", 4);
            if (c + 1 < ncols)
                printf("%-*s  ", (int)width[c], cell);
            else
                printf("%s\n", cell);
        }
}

void cli_print_object(const struct cli_ctx *ctx, json_t *obj)
{
    if (ctx->format == CLI_JSON)
        print_json(obj);
    else
        cli_print_yaml(obj, 0, false);
}

void cli_csv_field(const char *s)
{
    if (!s)
        return;
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}
