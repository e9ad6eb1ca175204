/* `pave artifacts list|show|verify`: the signed images pipelines publish to the
 * registry. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char artifacts_usage[] =
    "usage: pave artifacts <verb> [flags]\n\n"
    "verbs:\n"
    "  gc [--keep N] [--service S] [--grace D]   (admin) keep the newest N images per repository\n"
    "                             (default 10) and every image with a tag other than run-N,\n"
    "                             delete the rest with their signatures and provenance, then\n"
    "                             remove blobs unreferenced for longer than D (default 1h)\n"
    "  list SERVICE [--limit N]   images of repository SERVICE, newest first, "
    "with their tags,\n"
    "                             size and signature status (verified, "
    "missing, invalid)\n"
    "  show SERVICE REF           one image (REF: a tag such as run-42 or "
    "main, or a digest):\n"
    "                             manifest, config labels, referrers and "
    "verification\n"
    "  verify SERVICE REF         checks the image's signature with the "
    "server's key and\n"
    "                             shows its provenance; exits 1 unless the "
    "signature verifies\n\n"
    "The server's public key: GET /api/v1/signing-key (see docs/artifacts.md "
    "to verify by\n"
    "hand with openssl). Output: -o table|json|yaml.\n";

/* Keeps URL path segments to the characters tags and digests may hold. */
static bool segment_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 128 + 8 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"
                     "789_.-:") == n;
}

static void print_verification(const struct cli_ctx *ctx, const char *service, const char *ref,
                               json_t *v)
{
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, v);
        return;
    }
    const char *status = json_string_value(json_object_get(v, "status"));
    printf("%s:%s %s\n", service, ref, status ? status : "?");
    static const char *const keys[][2] = {
        {"digest", "digest"},
        {"signatures", "signatures"},
        {"key_id", "key"},
        {"signature_digest", "signature"},
        {"provenance_digest", "provenance"},
        {"commit", "commit"},
        {"run", "run"},
        {"builder", "builder"},
        {"reason", "reason"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *f = json_object_get(v, keys[i][0]);
        if (json_is_integer(f))
            printf("  %-11s %lld\n", keys[i][1], (long long)json_integer_value(f));
        else if (json_string_value(f) && json_string_value(f)[0])
            printf("  %-11s %s\n", keys[i][1], json_string_value(f));
    }
}

static void print_show(const struct cli_ctx *ctx, json_t *doc)
{
    if (ctx->format != CLI_TABLE) {
        cli_print_object(ctx, doc);
        return;
    }
    printf("repo:        %s\n", json_string_value(json_object_get(doc, "repo")));
    printf("digest:      %s\n", json_string_value(json_object_get(doc, "digest")));
    printf("tags:        ");
    size_t i;
    json_t *t;
    json_array_foreach (json_object_get(doc, "tags"), i, t)
        printf("%s%s", i ? ", " : "", json_string_value(t));
    printf("\nsize:        %lld\n", (long long)json_integer_value(json_object_get(doc, "size")));
    printf("created:     %s\n", json_string_value(json_object_get(doc, "created")));
    json_t *v = json_object_get(doc, "verification");
    printf("signature:   %s\n", json_string_value(json_object_get(v, "status")));
    const char *reason = json_string_value(json_object_get(v, "reason"));
    if (reason && reason[0])
        printf("             %s\n", reason);
    printf("provenance:  %s\n",
           json_is_true(json_object_get(v, "provenance")) ? "present" : "none");
    printf("labels:\n");
    const char *k;
    json_object_foreach (json_object_get(doc, "labels"), k, t)
        printf("  %s=%s\n", k, json_string_value(t) ? json_string_value(t) : "");
    printf("referrers:\n");
    json_array_foreach (json_object_get(doc, "referrers"), i, t) {
        const char *type = json_string_value(json_object_get(t, "artifact_type"));
        printf("  %s  %s\n", json_string_value(json_object_get(t, "digest")), type ? type : "");
    }
}

int cli_cmd_artifacts(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(artifacts_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    const char *limit = NULL, *keep = NULL, *service = NULL, *grace = NULL;
    const struct cli_opt opts[] = {{"limit", 'n', &limit, NULL},
                                   {"keep", 0, &keep, NULL},
                                   {"service", 's', &service, NULL},
                                   {"grace", 0, &grace, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[2];
    int npos;
    int rc = cli_parse(ctx, argc - 1, argv + 1, opts, pos, 2, &npos);
    if (rc)
        return rc;
    if (strcmp(verb, "gc") == 0) {
        char *end = NULL;
        long k = keep ? strtol(keep, &end, 10) : 10;
        if (npos || (keep && (*end || k < 0))) {
            cli_error("usage: pave artifacts gc [--keep N] [--service S] [--grace DURATION]");
            return CLI_USAGE;
        }
        json_t *body = json_pack("{s:i,s:s?,s:s?}", "keep", (int)k, "service", service, "grace",
                                 grace);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        json_t *out = NULL;
        rc = cli_api(ctx, "POST", "/api/v1/registry/gc", text, text ? strlen(text) : 0,
                     "application/json", &out);
        free(text);
        if (!rc) {
            if (ctx->format == CLI_TABLE)
                printf("removed %lld image(s), freed %lld bytes\n",
                       (long long)json_integer_value(json_object_get(out, "images_removed")),
                       (long long)json_integer_value(json_object_get(out, "bytes_freed")));
            else
                cli_print_object(ctx, out);
        }
        json_decref(out);
        return rc;
    }
    if (npos < 1 || !core_is_dns_label(pos[0])) {
        cli_error("artifacts %s needs a SERVICE name", verb);
        return CLI_USAGE;
    }
    json_t *resp = NULL;
    if (strcmp(verb, "list") == 0) {
        if (npos != 1) {
            cli_error("artifacts list takes one SERVICE");
            return CLI_USAGE;
        }
        struct core_buf path;
        core_buf_init(&path, 0);
        core_buf_adds(&path, "/api/v1/artifacts?service=");
        core_buf_add_urlenc(&path, pos[0]);
        core_buf_adds(&path, "&limit=");
        core_buf_add_urlenc(&path, limit ? limit : "50");
        rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
        core_buf_release(&path);
        if (rc)
            return rc;
        static const struct cli_column cols[] = {{"TAGS", "tags"},
                                                 {"DIGEST", "digest_short"},
                                                 {"SIZE", "size"},
                                                 {"CREATED", "created_at"},
                                                 {"SIGNATURE", "signature"},
                                                 {"PROVENANCE", "provenance"},
                                                 {NULL, NULL}};
        cli_print_list(ctx, json_object_get(resp, "items"), cols);
        json_decref(resp);
        return CLI_OK;
    }
    if (strcmp(verb, "show") != 0 && strcmp(verb, "verify") != 0) {
        cli_error("unknown verb 'artifacts %s' (see 'pave artifacts --help')", verb);
        return CLI_USAGE;
    }
    if (npos != 2 || !segment_ok(pos[1])) {
        cli_error("artifacts %s needs SERVICE and REF (a tag or a sha256: digest)", verb);
        return CLI_USAGE;
    }
    char path[512];
    snprintf(path, sizeof(path), "/api/v1/artifacts/%s/%s%s", pos[0], pos[1],
             verb[0] == 'v' ? "/verify" : "");
    if ((rc = cli_api(ctx, "GET", path, NULL, 0, NULL, &resp)))
        return rc;
    if (verb[0] == 's') {
        print_show(ctx, resp);
        json_decref(resp);
        return CLI_OK;
    }
    print_verification(ctx, pos[0], pos[1], resp);
    rc = json_is_true(json_object_get(resp, "valid")) ? CLI_OK : CLI_FAIL;
    if (rc)
        cli_error("the signature of %s:%s is %s", pos[0], pos[1],
                  json_string_value(json_object_get(resp, "status")));
    json_decref(resp);
    return rc;
}
