/* `pave ca`: the internal certificate authority (docs/pki.md). `init` and `export-root-key` work
 * on the data directory of this machine (the keys never travel over HTTP); the other verbs talk
 * to the server. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "pki/pki.h"
#include "store/store.h"

static const char ca_usage[] =
    "usage: pave ca <verb> [flags]\n\n"
    "verbs:\n"
    "  init [--org NAME] [--rsa] [--force] [--data-dir DIR]\n"
    "        create the root (10 years) and intermediate (5 years) CA in DIR/pki (default\n"
    "        ./.pave); keys are encrypted at rest; restart the server to use it\n"
    "  list [--expiring 72h] [--owner PREFIX] [--state valid|expired|revoked]\n"
    "        the certificate inventory\n"
    "  show SERIAL\n"
    "  issue --dns NAME... [--ip ADDR...] [--lifetime 24h] [--profile server|client|"
    "server+client]\n"
    "        [--rsa] [--out-dir DIR]\n"
    "        issue a certificate and a new key (admin); writes cert.pem, chain.pem, ca.pem and\n"
    "        key.pem (mode 0600) to DIR (default .)\n"
    "  revoke SERIAL [--reason keyCompromise]   revoke (admin); the CRL is regenerated\n"
    "  crl [-o pem|der]                         print the current CRL (default pem)\n"
    "  export-root-key --out FILE [--remove] [--passphrase-file F] [--data-dir DIR]\n"
    "        write the root key encrypted under a passphrase (from F, else a new one is\n"
    "        printed); --remove deletes it from this server, which keeps issuing with the\n"
    "        intermediate\n\n"
    "The CRL and the root are public: GET /pki/crl.der, /pki/crl.pem, /pki/ca.pem.\n"
    "Listings take -o table|json|yaml.\n";

static int open_local_store(const char *data_dir, const char *store_url, struct store **st)
{
    char url[4200];
    struct core_err err = {0};
    if (store_url)
        snprintf(url, sizeof(url), "%s", store_url);
    else
        snprintf(url, sizeof(url), "sqlite:%s/pave.db", data_dir);
    if (store_open(st, url, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int ca_init(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *org = "Paved", *store_url = NULL;
    bool rsa = false, force = false;
    const struct cli_opt opts[] = {{"data-dir", 'd', &data_dir, NULL},
                                   {"org", 0, &org, NULL},
                                   {"store", 0, &store_url, NULL},
                                   {"rsa", 0, NULL, &rsa},
                                   {"force", 0, NULL, &force},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos, rc;
    if ((rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos)))
        return rc;
    struct core_err err = {0};
    if (core_mkdir_p(data_dir, 0700, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    struct store *st = NULL;
    if ((rc = open_local_store(data_dir, store_url, &st)))
        return rc;
    struct pki_config cfg = {.data_dir = data_dir, .st = st};
    if (pki_init(&cfg, org, rsa ? PKI_KEY_RSA3072 : PKI_KEY_EC_P256, force, &err)) {
        cli_error("%s", err.msg);
        store_close(st);
        return CLI_FAIL;
    }
    struct store_audit_event ev = {.actor = "cli", .action = "pki.init", .kind = "ca",
                                   .object = org, .detail = rsa ? "rsa-3072" : "ec-p256"};
    store_audit_append(st, &ev, NULL);
    store_close(st);
    printf("Certificate authority for '%s' created in %s/pki\n", org, data_dir);
    printf("  Root:         %s/pki/root.pem (install it where clients need to trust the CA)\n",
           data_dir);
    printf("  Intermediate: %s/pki/intermediate.pem (signs every certificate)\n", data_dir);
    printf("  Keys are encrypted under %s/pki/key.pass (mode 0600). Move the root key offline\n"
           "  with 'pave ca export-root-key --out FILE --remove'. Restart the server to use the\n"
           "  CA.\n",
           data_dir);
    return CLI_OK;
}

static int ca_list(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *expiring = NULL, *owner = NULL, *state = NULL;
    const struct cli_opt opts[] = {{"expiring", 0, &expiring, NULL},
                                   {"owner", 0, &owner, NULL},
                                   {"state", 0, &state, NULL},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos, rc;
    if ((rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos)))
        return rc;
    int64_t ms;
    if (expiring && (core_parse_duration_ms(expiring, &ms) || ms <= 0)) {
        cli_error("--expiring takes a duration such as 72h");
        return CLI_USAGE;
    }
    struct core_buf path;
    core_buf_init(&path, 4096);
    core_buf_adds(&path, "/api/v1/ca/certificates?");
    const char *keys[] = {"expiring", "owner", "state"};
    const char *vals[] = {expiring, owner, state};
    for (int i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        if (core_buf_addf(&path, "%s=", keys[i]) || core_buf_add_urlenc(&path, vals[i]) ||
            core_buf_addc(&path, '&')) {
            cli_error("filters are too long");
            core_buf_release(&path);
            return CLI_USAGE;
        }
    }
    json_t *resp = NULL;
    rc = cli_api(ctx, "GET", path.data, NULL, 0, NULL, &resp);
    core_buf_release(&path);
    if (rc)
        return rc;
    static const struct cli_column cols[] = {
        {"SERIAL", "serial"},      {"SUBJECT", "subject"},     {"OWNER", "owner"},
        {"PROFILE", "profile"},    {"STATE", "state"},         {"NOT AFTER", "not_after"},
        {NULL, NULL}};
    cli_print_list(ctx, json_object_get(resp, "items"), cols);
    json_decref(resp);
    return CLI_OK;
}

static bool serial_ok(const char *s)
{
    if (!*s || strlen(s) > 100)
        return false;
    for (const char *c = s; *c; c++)
        if (!strchr("0123456789abcdefABCDEF:xX", *c))
            return false;
    return true;
}

static int ca_show(struct cli_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos, rc;
    if ((rc = cli_parse(ctx, argc, argv, NULL, pos, 1, &npos)))
        return rc;
    if (npos != 1 || !serial_ok(pos[0])) {
        cli_error("ca show needs a serial in hex (see 'pave ca list')");
        return CLI_USAGE;
    }
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/ca/certificates/%s", pos[0]);
    json_t *resp = NULL;
    if ((rc = cli_api(ctx, "GET", path, NULL, 0, NULL, &resp)))
        return rc;
    if (ctx->format == CLI_TABLE) {
        json_t *pem = json_incref(json_object_get(resp, "cert_pem"));
        json_object_del(resp, "cert_pem");
        cli_print_object(ctx, resp);
        if (pem)
            printf("\n%s", json_string_value(pem));
        json_decref(pem);
    } else {
        cli_print_object(ctx, resp);
    }
    json_decref(resp);
    return CLI_OK;
}

/* Writes one output file; key files get 0600, the others 0644. */
static int write_out(const char *dir, const char *name, const char *text, int mode)
{
    char path[4200];
    struct core_err err = {0};
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (core_file_write_atomic(path, text, strlen(text), mode, &err)) {
        cli_error("%s", err.msg);
        return CLI_FAIL;
    }
    chmod(path, (mode_t)mode);
    return CLI_OK;
}

static int ca_issue(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *lifetime = NULL, *profile = NULL, *out_dir = ".";
    bool rsa = false;
    const struct cli_opt opts[] = {{"lifetime", 0, &lifetime, NULL},
                                   {"profile", 0, &profile, NULL},
                                   {"out-dir", 0, &out_dir, NULL},
                                   {"rsa", 0, NULL, &rsa},
                                   {NULL, 0, NULL, NULL}};
    /* --dns and --ip repeat (and take comma-separated lists), which cli_parse does not do:
     * collect them here and hand the rest over */
    json_t *dns = json_array(), *ips = json_array();
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0, rc = CLI_USAGE;
    json_t *body = NULL, *resp = NULL;
    char *text = NULL;
    if (!dns || !ips || !rest) {
        cli_error("out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        json_t *into = NULL;
        const char *val = NULL;
        if (!strcmp(argv[i], "--dns") || !strcmp(argv[i], "--ip")) {
            into = argv[i][2] == 'd' ? dns : ips;
            if (i + 1 >= argc) {
                cli_error("flag '%s' needs a value", argv[i]);
                goto out;
            }
            val = argv[++i];
        } else if (!strncmp(argv[i], "--dns=", 6) || !strncmp(argv[i], "--ip=", 5)) {
            into = argv[i][2] == 'd' ? dns : ips;
            val = strchr(argv[i], '=') + 1;
        } else if (!strcmp(argv[i], "--")) {
            break;
        } else {
            rest[nrest++] = argv[i];
            continue;
        }
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s", val);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(into, json_string(t));
    }
    char *pos[1];
    int npos;
    if ((rc = cli_parse(ctx, nrest, rest, opts, pos, 0, &npos)))
        goto out;
    if (json_array_size(dns) + json_array_size(ips) == 0) {
        cli_error("ca issue needs at least one --dns NAME or --ip ADDRESS");
        rc = CLI_USAGE;
        goto out;
    }
    struct stat sb;
    if (stat(out_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        cli_error("--out-dir '%s' is not a directory", out_dir);
        rc = CLI_USAGE;
        goto out;
    }
    body = json_pack("{s:O,s:O,s:s?,s:s?,s:s}", "dns", dns, "ips", ips, "lifetime", lifetime,
                     "profile", profile, "key", rsa ? "rsa2048" : "ec");
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text) {
        cli_error("out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    if ((rc = cli_api(ctx, "POST", "/api/v1/ca/certificates", text, strlen(text),
                      "application/json", &resp)))
        goto out;
    const char *key = json_string_value(json_object_get(resp, "key"));
    const char *cert = json_string_value(json_object_get(resp, "cert"));
    const char *chain = json_string_value(json_object_get(resp, "chain"));
    const char *root = json_string_value(json_object_get(resp, "ca"));
    if (!key || !cert || !chain || !root) {
        cli_error("the server's answer lacks the certificate or the key");
        rc = CLI_FAIL;
        goto out;
    }
    if ((rc = write_out(out_dir, "key.pem", key, 0600)) ||
        (rc = write_out(out_dir, "cert.pem", cert, 0644)) ||
        (rc = write_out(out_dir, "chain.pem", chain, 0644)) ||
        (rc = write_out(out_dir, "ca.pem", root, 0644)))
        goto out;
    if (ctx->format == CLI_TABLE) {
        printf("%s\n", json_string_value(json_object_get(resp, "serial")));
        fprintf(stderr,
                "certificate %s issued, valid until %s; wrote %s/cert.pem, chain.pem, ca.pem "
                "and key.pem (0600)\n",
                json_string_value(json_object_get(resp, "serial")),
                json_string_value(json_object_get(resp, "not_after")), out_dir);
    } else {
        json_object_del(resp, "key"); /* the key is in key.pem, not on the terminal */
        cli_print_object(ctx, resp);
    }
out:
    if (resp && json_is_string(json_object_get(resp, "key")))
        OPENSSL_cleanse((void *)json_string_value(json_object_get(resp, "key")),
                        json_string_length(json_object_get(resp, "key")));
    json_decref(resp);
    free(text);
    json_decref(body);
    json_decref(dns);
    json_decref(ips);
    free(rest);
    return rc;
}

static int ca_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *reason = NULL;
    const struct cli_opt opts[] = {{"reason", 0, &reason, NULL}, {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos, rc;
    if ((rc = cli_parse(ctx, argc, argv, opts, pos, 1, &npos)))
        return rc;
    if (npos != 1 || !serial_ok(pos[0])) {
        cli_error("ca revoke needs a serial in hex (see 'pave ca list')");
        return CLI_USAGE;
    }
    if (reason && pki_reason_code(reason) < 0) {
        cli_error("unknown reason '%s' (keyCompromise, superseded, cessationOfOperation, "
                  "affiliationChanged, privilegeWithdrawn, unspecified)",
                  reason);
        return CLI_USAGE;
    }
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/ca/certificates/%s/revoke", pos[0]);
    json_t *body = json_pack("{s:s}", "reason", reason ? reason : "unspecified");
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    json_t *resp = NULL;
    rc = cli_api(ctx, "POST", path, text, text ? strlen(text) : 0, "application/json", &resp);
    free(text);
    if (!rc) {
        if (ctx->format == CLI_TABLE)
            printf("certificate %s revoked; the CRL is updated\n",
                   json_string_value(json_object_get(resp, "serial"))
                       ? json_string_value(json_object_get(resp, "serial"))
                       : pos[0]);
        else
            cli_print_object(ctx, resp);
    }
    json_decref(resp);
    return rc;
}

static int ca_crl(struct cli_ctx *ctx, int argc, char **argv)
{
    /* -o here is pem|der, not the listing formats */
    bool der = false;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc)
            v = argv[++i];
        else if (!strncmp(argv[i], "--output=", 9))
            v = argv[i] + 9;
        if (v && (!strcmp(v, "pem") || !strcmp(v, "der"))) {
            der = !strcmp(v, "der");
            continue;
        }
        cli_error("usage: pave ca crl [-o pem|der]");
        return CLI_USAGE;
    }
    struct core_buf resp;
    char msg[512] = "";
    core_buf_init(&resp, 64 * 1024 * 1024);
    int st = cli_http(ctx, "GET", der ? "/pki/crl.der" : "/pki/crl.pem", NULL, 0, NULL, &resp,
                      msg, sizeof(msg));
    int rc = CLI_OK;
    if (st < 0) {
        cli_error("%s", msg);
        rc = CLI_FAIL;
    } else if (st != 200) {
        json_t *j = json_loadb(resp.data, resp.len, 0, NULL);
        const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        cli_error("%s", m ? m : "cannot fetch the CRL");
        json_decref(j);
        rc = CLI_FAIL;
    } else if (fwrite(resp.data, 1, resp.len, stdout) != resp.len) {
        cli_error("cannot write the CRL: %s", strerror(errno));
        rc = CLI_FAIL;
    }
    core_buf_release(&resp);
    return rc;
}

static int ca_export_root_key(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *data_dir = ".pave", *out = NULL, *pass_file = NULL;
    bool remove = false;
    const struct cli_opt opts[] = {{"data-dir", 'd', &data_dir, NULL},
                                   {"out", 0, &out, NULL},
                                   {"passphrase-file", 0, &pass_file, NULL},
                                   {"remove", 0, NULL, &remove},
                                   {NULL, 0, NULL, NULL}};
    char *pos[1];
    int npos, rc;
    if ((rc = cli_parse(ctx, argc, argv, opts, pos, 0, &npos)))
        return rc;
    if (!out) {
        cli_error("export-root-key needs --out FILE");
        return CLI_USAGE;
    }
    struct core_err err = {0};
    char pass[1100] = "";
    bool generated = false;
    if (pass_file) {
        char *text = NULL;
        size_t len = 0;
        if (core_file_read(pass_file, sizeof(pass) - 1, &text, &len, &err)) {
            cli_error("%s", err.msg);
            return CLI_FAIL;
        }
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            len--;
        memcpy(pass, text, len);
        pass[len] = 0;
        OPENSSL_cleanse(text, len);
        core_free(text);
    } else {
        if (core_random_hex(pass, 16)) {
            cli_error("cannot generate a passphrase");
            return CLI_FAIL;
        }
        generated = true;
    }
    struct pki_config cfg = {.data_dir = data_dir};
    struct pki *p = pki_open(&cfg, &err);
    struct core_buf pem;
    core_buf_init(&pem, 0);
    rc = CLI_FAIL;
    if (!p) {
        cli_error("%s", err.msg);
        goto out;
    }
    if (access(out, F_OK) == 0) {
        cli_error("'%s' exists; refusing to overwrite it", out);
        goto out;
    }
    /* export first and write the file, and only then remove the key from the server */
    if (pki_export_root_key(p, pass, false, &pem, &err) ||
        core_file_write_atomic(out, pem.data, pem.len, 0600, &err)) {
        cli_error("%s", err.msg);
        goto out;
    }
    if (remove) {
        struct core_buf again;
        core_buf_init(&again, 0);
        int r2 = pki_export_root_key(p, pass, true, &again, &err);
        OPENSSL_cleanse(again.data, again.len);
        core_buf_release(&again);
        if (r2) {
            cli_error("the root key was exported to %s but not removed: %s", out, err.msg);
            goto out;
        }
    }
    printf("Root key written to %s (encrypted PKCS#8, mode 0600).\n", out);
    if (generated)
        printf("Passphrase (shown once): %s\n", pass);
    if (remove)
        printf("The root key is no longer on this server; issuance continues with the "
               "intermediate.\n");
    rc = CLI_OK;
out:
    if (pem.data)
        OPENSSL_cleanse(pem.data, pem.len);
    core_buf_release(&pem);
    OPENSSL_cleanse(pass, sizeof(pass));
    pki_close(p);
    return rc;
}

int cli_cmd_ca(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        fputs(ca_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    if (!strcmp(verb, "init"))
        return ca_init(ctx, argc - 1, argv + 1);
    if (!strcmp(verb, "list"))
        return ca_list(ctx, argc - 1, argv + 1);
    if (!strcmp(verb, "show"))
        return ca_show(ctx, argc - 1, argv + 1);
    if (!strcmp(verb, "issue"))
        return ca_issue(ctx, argc - 1, argv + 1);
    if (!strcmp(verb, "revoke"))
        return ca_revoke(ctx, argc - 1, argv + 1);
    if (!strcmp(verb, "crl"))
        return ca_crl(ctx, argc - 1, argv + 1);
    if (!strcmp(verb, "export-root-key"))
        return ca_export_root_key(ctx, argc - 1, argv + 1);
    static const char *const verbs[] = {"init",   "list", "show", "issue",
                                        "revoke", "crl",  "export-root-key", NULL};
    const char *hint = core_did_you_mean(verb, verbs);
    cli_error("unknown verb 'ca %s'%s%s%s", verb, hint ? " (did you mean '" : "",
              hint ? hint : "", hint ? "'?)" : "");
    return CLI_USAGE;
}
