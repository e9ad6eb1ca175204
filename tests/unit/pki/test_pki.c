/*
 * The internal CA (src/pki: ca.c, issue.c, crl.c): init and open (a wrong passphrase fails),
 * keys at rest encrypted and mode 0600 (and refused when others can read them), EC and RSA
 * leaves that verify against root + intermediate, SANs and EKU per profile, CSRs (signature,
 * unauthorized names refused), revocation into a signed CRL, root key export and removal with
 * issuance continuing, and the inventory with its filters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../testutil.h"
#include "core/core.h"
#include "pki/pki.h"
#include "store/store.h"

struct fx {
    struct test_env env;
    struct pki_config cfg;
    struct pki *p;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(test_env_open(&f->env), 0);
    f->cfg = (struct pki_config){.data_dir = f->env.dir, .st = f->env.st,
                                 .crl_url = "http://127.0.0.1:7070/pki/crl.der"};
    struct core_err err = {0};
    if (pki_init(&f->cfg, "Unit Org", PKI_KEY_EC_P256, false, &err))
        fail_msg("pki_init: %s", err.msg);
    f->p = pki_open(&f->cfg, &err);
    if (!f->p)
        fail_msg("pki_open: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pki_close(f->p);
    test_env_close(&f->env);
    free(f);
    return 0;
}

static char *slurp(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/pki/%s", dir, name);
    char *text = NULL;
    size_t len;
    struct core_err err = {0};
    if (core_file_read(path, 1 << 20, &text, &len, &err))
        return NULL;
    return text;
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* Verifies leaf (PEM) against the CA's root, with the intermediate as untrusted. */
static int verify_leaf(struct pki *p, const char *leaf_pem, int purpose, X509_CRL *crl)
{
    X509 *leaf = pem_cert(leaf_pem);
    X509 *root = pem_cert(pki_root_pem(p));
    X509 *inter = pem_cert(pki_chain_pem(p)); /* the chain starts with the intermediate */
    assert_non_null(leaf);
    assert_non_null(root);
    assert_non_null(inter);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, root);
    if (crl) {
        X509_STORE_add_crl(store, crl);
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    sk_X509_push(untrusted, inter);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, untrusted);
    if (purpose)
        X509_STORE_CTX_set_purpose(ctx, purpose);
    int ok = X509_verify_cert(ctx);
    int e = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    X509_free(leaf);
    X509_free(root);
    X509_free(inter);
    return ok == 1 ? 0 : (e ? e : -1);
}

static void test_init_refuses_twice_and_keys_are_encrypted(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    assert_int_equal(pki_init(&f->cfg, "Unit Org", PKI_KEY_EC_P256, false, &err),
                     CORE_E_CONFLICT);
    const char *files[] = {"root.key", "intermediate.key", "key.pass"};
    for (int i = 0; i < 3; i++) {
        char path[512];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/pki/%s", f->env.dir, files[i]);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
    }
    for (int i = 0; i < 2; i++) {
        char *text = slurp(f->env.dir, files[i]);
        assert_non_null(text);
        assert_non_null(strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert_null(strstr(text, "-----BEGIN PRIVATE KEY-----"));
        core_free(text);
    }
    char dir[512];
    struct stat sb;
    snprintf(dir, sizeof(dir), "%s/pki", f->env.dir);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
}

static void test_open_with_wrong_passphrase_fails(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    struct pki_config c = f->cfg;
    c.passphrase = "not the passphrase";
    assert_null(pki_open(&c, &err));
    assert_int_equal(err.code, CORE_E_AUTH);
}

static void test_open_refuses_readable_key(void **state)
{
    struct fx *f = *state;
    char path[512];
    snprintf(path, sizeof(path), "%s/pki/intermediate.key", f->env.dir);
    assert_int_equal(chmod(path, 0640), 0);
    struct core_err err = {0};
    assert_null(pki_open(&f->cfg, &err));
    assert_int_equal(err.code, CORE_E_PERM);
    assert_int_equal(chmod(path, 0600), 0);
}

static void test_open_not_initialized(void **state)
{
    struct fx *f = *state;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/empty", f->env.dir);
    struct pki_config c = {.data_dir = dir, .st = f->env.st};
    struct core_err err = {0};
    assert_null(pki_open(&c, &err));
    assert_int_equal(err.code, CORE_E_NOTFOUND);
}

static void check_leaf(struct pki *p, const struct pki_issued *is, bool server, bool client,
                       bool rsa)
{
    X509 *x = pem_cert(is->cert_pem);
    assert_non_null(x);
    uint32_t xku = X509_get_extended_key_usage(x);
    assert_int_equal(!!(xku & XKU_SSL_SERVER), server);
    assert_int_equal(!!(xku & XKU_SSL_CLIENT), client);
    uint32_t ku = X509_get_key_usage(x);
    assert_true(ku & KU_DIGITAL_SIGNATURE);
    assert_int_equal(!!(ku & KU_KEY_ENCIPHERMENT), rsa);
    assert_int_equal(X509_check_ca(x), 0);
    assert_non_null(X509_get0_authority_key_id(x));
    assert_non_null(X509_get0_subject_key_id(x));
    STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
    assert_non_null(dps);
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    /* 128-bit random serial, not_before a minute in the past */
    assert_int_equal(strlen(is->serial), 32);
    assert_true(is->not_before_ms <= core_now_ms() - 59 * 1000);
    X509_free(x);
    assert_int_equal(verify_leaf(p, is->cert_pem, server ? X509_PURPOSE_SSL_SERVER
                                                         : X509_PURPOSE_SSL_CLIENT,
                                 NULL),
                     0);
}

static void test_issue_ec_server(void **state)
{
    struct fx *f = *state;
    const char *dns[] = {"api.example.test", "WWW.example.test"};
    const char *ips[] = {"127.0.0.1"};
    struct pki_issue_request req = {.dns_names = dns, .ndns = 2, .ips = ips, .nips = 1,
                                    .lifetime_ms = 3600 * 1000, .owner = "user:alice"};
    struct pki_issued is = {0};
    struct core_err err = {0};
    if (pki_issue(f->p, &req, PKI_KEY_EC_P256, &is, &err))
        fail_msg("pki_issue: %s", err.msg);
    assert_non_null(is.key_pem);
    assert_non_null(strstr(is.chain_pem, is.cert_pem));
    check_leaf(f->p, &is, true, false, false);
    X509 *x = pem_cert(is.cert_pem);
    assert_int_equal(X509_check_host(x, "api.example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "www.example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "other.example.test", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    /* the key matches */
    BIO *b = BIO_new_mem_buf(is.key_pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    assert_non_null(k);
    assert_int_equal(X509_check_private_key(x, k), 1);
    EVP_PKEY_free(k);
    BIO_free(b);
    X509_free(x);
    pki_issued_release(&is);
}

static void test_issue_rsa_and_profiles(void **state)
{
    struct fx *f = *state;
    const char *dns[] = {"mtls.example.test"};
    struct pki_issue_request req = {.dns_names = dns, .ndns = 1, .profile = "server+client"};
    struct pki_issued is = {0};
    struct core_err err = {0};
    if (pki_issue(f->p, &req, PKI_KEY_RSA2048, &is, &err))
        fail_msg("pki_issue: %s", err.msg);
    check_leaf(f->p, &is, true, true, true);
    pki_issued_release(&is);
    req.profile = "client";
    assert_int_equal(pki_issue(f->p, &req, PKI_KEY_EC_P256, &is, &err), 0);
    check_leaf(f->p, &is, false, true, false);
    /* a client certificate is not good for a server */
    assert_int_not_equal(verify_leaf(f->p, is.cert_pem, X509_PURPOSE_SSL_SERVER, NULL), 0);
    pki_issued_release(&is);
    req.profile = "code-signing";
    assert_int_equal(pki_issue(f->p, &req, PKI_KEY_EC_P256, &is, &err), CORE_E_INVAL);
}

static void test_issue_rejects_bad_input(void **state)
{
    struct fx *f = *state;
    struct pki_issued is = {0};
    struct core_err err = {0};
    struct pki_issue_request req = {0};
    assert_int_equal(pki_issue(f->p, &req, PKI_KEY_EC_P256, &is, &err), CORE_E_INVAL);
    const char *bad[] = {"bad name.example"};
    req = (struct pki_issue_request){.dns_names = bad, .ndns = 1};
    assert_int_equal(pki_issue(f->p, &req, PKI_KEY_EC_P256, &is, &err), CORE_E_INVAL);
    const char *ok[] = {"ok.example"};
    req = (struct pki_issue_request){.dns_names = ok, .ndns = 1,
                                     .lifetime_ms = (int64_t)400 * 24 * 3600 * 1000};
    assert_int_equal(pki_issue(f->p, &req, PKI_KEY_EC_P256, &is, &err), CORE_E_INVAL);
    const char *ips[] = {"300.1.1.1"};
    req = (struct pki_issue_request){.ips = ips, .nips = 1};
    assert_int_equal(pki_issue(f->p, &req, PKI_KEY_EC_P256, &is, &err), CORE_E_INVAL);
}

/* A PEM CSR for names (SANs) with a new EC key. */
static char *make_csr(const char *cn, const char *san)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *r = X509_REQ_new();
    X509_NAME *n = X509_REQ_get_subject_name(r);
    if (cn)
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_REQ_set_pubkey(r, k);
    if (san) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name, san);
        sk_X509_EXTENSION_push(exts, e);
        X509_REQ_add_extensions(r, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_REQ_sign(r, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(b, r);
    char *pem = NULL;
    long len = BIO_get_mem_data(b, &pem);
    char *out = strndup(pem, (size_t)len);
    BIO_free(b);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    return out;
}

static void test_issue_csr(void **state)
{
    struct fx *f = *state;
    const char *dns[] = {"a.example.test", "b.example.test"};
    struct pki_issue_request req = {.dns_names = dns, .ndns = 2, .owner = "acme:account/1"};
    struct pki_issued is = {0};
    struct core_err err = {0};
    char *csr = make_csr("a.example.test", "DNS:a.example.test,DNS:b.example.test");
    if (pki_issue_csr(f->p, csr, strlen(csr), &req, &is, &err))
        fail_msg("pki_issue_csr: %s", err.msg);
    assert_null(is.key_pem);
    check_leaf(f->p, &is, true, false, false);
    pki_issued_release(&is);
    free(csr);

    /* a name the caller did not authorize */
    csr = make_csr(NULL, "DNS:a.example.test,DNS:evil.example.test");
    assert_int_equal(pki_issue_csr(f->p, csr, strlen(csr), &req, &is, &err), CORE_E_PERM);
    free(csr);
    csr = make_csr("evil.example.test", NULL);
    assert_int_equal(pki_issue_csr(f->p, csr, strlen(csr), &req, &is, &err), CORE_E_PERM);
    free(csr);

    /* a broken signature */
    csr = make_csr("a.example.test", NULL);
    BIO *b = BIO_new_mem_buf(csr, -1);
    X509_REQ *r = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    BIO_free(b);
    unsigned char *der = NULL;
    int dlen = i2d_X509_REQ(r, &der);
    der[dlen - 5] ^= 0x01; /* inside the signature */
    assert_int_not_equal(pki_issue_csr(f->p, der, (size_t)dlen, &req, &is, &err), 0);
    OPENSSL_free(der);
    X509_REQ_free(r);
    free(csr);
    assert_int_equal(pki_issue_csr(f->p, "garbage", 7, &req, &is, &err), CORE_E_INVAL);
}

static X509_CRL *current_crl(struct pki *p, bool pem)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    struct core_err err = {0};
    assert_int_equal(pki_crl(p, pem, &b, &err), 0);
    X509_CRL *crl = NULL;
    if (pem) {
        BIO *bio = BIO_new_mem_buf(b.data, (int)b.len);
        crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
        BIO_free(bio);
    } else {
        const unsigned char *d = (const unsigned char *)b.data;
        crl = d2i_X509_CRL(NULL, &d, (long)b.len);
    }
    core_buf_release(&b);
    assert_non_null(crl);
    return crl;
}

static void test_revoke_puts_serial_in_crl(void **state)
{
    struct fx *f = *state;
    const char *dns[] = {"revoke-me.example.test"};
    struct pki_issue_request req = {.dns_names = dns, .ndns = 1};
    struct pki_issued is = {0};
    struct core_err err = {0};
    assert_int_equal(pki_issue(f->p, &req, PKI_KEY_EC_P256, &is, &err), 0);
    X509_CRL *crl = current_crl(f->p, false);
    assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0); /* NULL when empty */
    X509_CRL_free(crl);
    assert_int_equal(verify_leaf(f->p, is.cert_pem, 0, NULL), 0);

    assert_int_equal(pki_revoke(f->p, is.serial, 1, &err), 0);
    assert_int_equal(pki_revoke(f->p, is.serial, 1, &err), CORE_E_CONFLICT);
    assert_int_equal(pki_revoke(f->p, "ABCDEF", 0, &err), CORE_E_NOTFOUND);
    assert_int_equal(pki_revoke(f->p, "xyz", 0, &err), CORE_E_INVAL);

    crl = current_crl(f->p, true);
    /* signed by the intermediate */
    X509 *inter = pem_cert(pki_chain_pem(f->p));
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(inter)), 1);
    X509_free(inter);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
    X509 *leaf = pem_cert(is.cert_pem);
    X509_REVOKED *rev = NULL;
    assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(leaf)), 1);
    /* next update a day out */
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl),
                                    X509_CRL_get0_nextUpdate(crl)),
                     1);
    assert_int_equal(days, 1);
    X509_free(leaf);
    /* with CRL checking the chain now fails as revoked */
    assert_int_equal(verify_leaf(f->p, is.cert_pem, 0, crl), X509_V_ERR_CERT_REVOKED);
    X509_CRL_free(crl);

    json_t *shown = pki_show(f->p, is.serial, &err);
    assert_non_null(shown);
    assert_string_equal(json_string_value(json_object_get(shown, "state")), "revoked");
    assert_string_equal(json_string_value(json_object_get(shown, "reason")), "keyCompromise");
    json_decref(shown);
    pki_issued_release(&is);
}

static void test_export_root_key_then_issue(void **state)
{
    struct fx *f = *state;
    struct core_buf out;
    core_buf_init(&out, 0);
    struct core_err err = {0};
    assert_int_equal(pki_export_root_key(f->p, "short", false, &out, &err), CORE_E_INVAL);
    assert_int_equal(pki_export_root_key(f->p, "export passphrase", true, &out, &err), 0);
    assert_non_null(strstr(out.data, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    /* the export decrypts under its passphrase and matches the root */
    BIO *b = BIO_new_mem_buf(out.data, (int)out.len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, "export passphrase");
    BIO_free(b);
    assert_non_null(k);
    X509 *root = pem_cert(pki_root_pem(f->p));
    assert_int_equal(X509_check_private_key(root, k), 1);
    X509_free(root);
    EVP_PKEY_free(k);
    core_buf_release(&out);
    char path[512];
    snprintf(path, sizeof(path), "%s/pki/root.key", f->env.dir);
    assert_int_not_equal(access(path, F_OK), 0);
    core_buf_init(&out, 0);
    assert_int_equal(pki_export_root_key(f->p, "export passphrase", false, &out, &err),
                     CORE_E_NOTFOUND);
    core_buf_release(&out);

    /* reopen without the root key and keep issuing */
    pki_close(f->p);
    f->p = pki_open(&f->cfg, &err);
    assert_non_null(f->p);
    const char *dns[] = {"after-export.example.test"};
    struct pki_issue_request req = {.dns_names = dns, .ndns = 1};
    struct pki_issued is = {0};
    assert_int_equal(pki_issue(f->p, &req, PKI_KEY_EC_P256, &is, &err), 0);
    assert_int_equal(verify_leaf(f->p, is.cert_pem, X509_PURPOSE_SSL_SERVER, NULL), 0);
    pki_issued_release(&is);
}

static void test_inventory_filters(void **state)
{
    struct fx *f = *state;
    struct core_err err = {0};
    const char *a[] = {"short.example.test"}, *b[] = {"long.example.test"};
    struct pki_issue_request r1 = {.dns_names = a, .ndns = 1, .lifetime_ms = 3600 * 1000,
                                   .owner = "service:payments-api"};
    struct pki_issue_request r2 = {.dns_names = b, .ndns = 1,
                                   .lifetime_ms = (int64_t)30 * 24 * 3600 * 1000,
                                   .owner = "user:alice"};
    struct pki_issued i1 = {0}, i2 = {0};
    assert_int_equal(pki_issue(f->p, &r1, PKI_KEY_EC_P256, &i1, &err), 0);
    assert_int_equal(pki_issue(f->p, &r2, PKI_KEY_EC_P256, &i2, &err), 0);

    json_t *all = pki_list(f->p, NULL, NULL, 0, &err);
    assert_non_null(all);
    assert_int_equal(json_integer_value(json_object_get(all, "total")), 2);
    json_t *first = json_array_get(json_object_get(all, "items"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "state")), "valid");
    assert_string_equal(json_string_value(json_array_get(json_object_get(first, "sans"), 0)),
                        "short.example.test");
    json_decref(all);

    json_t *soon = pki_list(f->p, NULL, NULL, 72 * 3600 * 1000, &err);
    assert_int_equal(json_integer_value(json_object_get(soon, "total")), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(soon, "items"), 0),
                                          "serial")),
        i1.serial);
    json_decref(soon);

    json_t *svc = pki_list(f->p, "service:", NULL, 0, &err);
    assert_int_equal(json_integer_value(json_object_get(svc, "total")), 1);
    json_decref(svc);
    json_t *pct = pki_list(f->p, "%", NULL, 0, &err); /* LIKE wildcards are literal */
    assert_int_equal(json_integer_value(json_object_get(pct, "total")), 0);
    json_decref(pct);

    assert_int_equal(pki_revoke(f->p, i2.serial, 0, &err), 0);
    json_t *rev = pki_list(f->p, NULL, "revoked", 0, &err);
    assert_int_equal(json_integer_value(json_object_get(rev, "total")), 1);
    json_decref(rev);
    json_t *valid = pki_list(f->p, NULL, "valid", 0, &err);
    assert_int_equal(json_integer_value(json_object_get(valid, "total")), 1);
    json_decref(valid);
    assert_null(pki_list(f->p, NULL, "bogus", 0, &err));
    assert_int_equal(err.code, CORE_E_INVAL);

    /* serials are found however they are typed */
    char lower[80];
    snprintf(lower, sizeof(lower), "%s", i1.serial);
    for (char *c = lower; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
    json_t *one = pki_show(f->p, lower, &err);
    assert_non_null(one);
    assert_non_null(json_string_value(json_object_get(one, "cert_pem")));
    json_decref(one);
    assert_null(pki_show(f->p, "0A0B", &err));
    assert_int_equal(err.code, CORE_E_NOTFOUND);
    pki_issued_release(&i1);
    pki_issued_release(&i2);
}

static void test_rsa_ca(void **state)
{
    struct test_env env;
    assert_int_equal(test_env_open(&env), 0);
    struct pki_config cfg = {.data_dir = env.dir, .st = env.st, .passphrase = "a passphrase"};
    struct core_err err = {0};
    assert_int_equal(pki_init(&cfg, "RSA Org", PKI_KEY_RSA2048, false, &err), 0);
    struct pki *p = pki_open(&cfg, &err);
    assert_non_null(p);
    const char *dns[] = {"rsa.example.test"};
    struct pki_issue_request req = {.dns_names = dns, .ndns = 1};
    struct pki_issued is = {0};
    assert_int_equal(pki_issue(p, &req, PKI_KEY_EC_P256, &is, &err), 0);
    assert_int_equal(verify_leaf(p, is.cert_pem, X509_PURPOSE_SSL_SERVER, NULL), 0);
    pki_issued_release(&is);
    pki_close(p);
    char path[512];
    snprintf(path, sizeof(path), "%s/pki/key.pass", env.dir);
    assert_int_not_equal(access(path, F_OK), 0); /* an explicit passphrase writes no file */
    test_env_close(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_refuses_twice_and_keys_are_encrypted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_with_wrong_passphrase_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_readable_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_not_initialized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_ec_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_rsa_and_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_rejects_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_csr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_puts_serial_in_crl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_root_key_then_issue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inventory_filters, setup, teardown),
        cmocka_unit_test(test_rsa_ca),
    };
    return cmocka_run_group_tests_name("pki", tests, NULL, NULL);
}
