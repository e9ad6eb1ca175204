/* JWS parsing and verification for the ACME server (src/pki/jws.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "pki/acme_int.h"

static EVP_PKEY *ec_key, *rsa_key, *rsa_small;

static char *b64(const void *d, size_t n)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    assert_int_equal(jws_b64url_encode(d, n, &b), 0);
    return core_buf_detach(&b, NULL);
}

/* Signs a flattened JWS. hdr_extra is spliced into the protected header JSON;
 * the key's JWK is embedded when kid is NULL. alg overrides the header's alg
 * (the signature uses the key). */
static char *sign(EVP_PKEY *key, const char *alg, const char *nonce, const char *url,
                  const char *kid, const char *payload, bool corrupt)
{
    json_t *hdr = json_object();
    json_object_set_new(hdr, "alg", json_string(alg));
    if (nonce)
        json_object_set_new(hdr, "nonce", json_string(nonce));
    if (url)
        json_object_set_new(hdr, "url", json_string(url));
    if (kid)
        json_object_set_new(hdr, "kid", json_string(kid));
    else
        json_object_set_new(hdr, "jwk", jws_key_to_jwk(key));
    char *hs = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    char *p64 = b64(hs, strlen(hs));
    char *pl64 = b64(payload, strlen(payload));
    free(hs);
    struct core_buf in;
    core_buf_init(&in, 0);
    core_buf_addf(&in, "%s.%s", p64, pl64);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t sl = 0;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, NULL, &sl, (unsigned char *)in.data, in.len), 1);
    unsigned char *sig = malloc(sl);
    assert_int_equal(EVP_DigestSign(md, sig, &sl, (unsigned char *)in.data, in.len), 1);
    EVP_MD_CTX_free(md);
    unsigned char raw[64];
    const unsigned char *s = sig;
    size_t rl = sl;
    if (EVP_PKEY_is_a(key, "EC")) {
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &s, (long)sl);
        assert_non_null(es);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        ECDSA_SIG_free(es);
        s = raw;
        rl = 64;
    }
    unsigned char *copy = malloc(rl);
    memcpy(copy, s, rl);
    if (corrupt)
        copy[rl / 2] ^= 0x01;
    char *sg64 = b64(copy, rl);
    free(copy);
    free(sig);
    struct core_buf out;
    core_buf_init(&out, 0);
    core_buf_addf(&out, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", p64, pl64,
                  sg64);
    core_free(p64);
    core_free(pl64);
    core_free(sg64);
    core_buf_release(&in);
    return core_buf_detach(&out, NULL);
}

/* Parses and verifies with the embedded jwk (or `key` for kid requests).
 * returns: the error code; *ptype the problem type. */
static int check(const char *body, EVP_PKEY *key, const char **ptype, struct jws *j)
{
    struct core_err err = {0};
    jws_init(j);
    *ptype = NULL;
    int rc = jws_parse(body, strlen(body), j, ptype, &err);
    if (rc)
        return rc;
    EVP_PKEY *k = key;
    if (j->jwk) {
        k = jws_jwk_key(j->jwk, &err);
        if (!k)
            return CORE_E_INVAL;
    }
    rc = jws_verify(j, k, ptype, &err);
    if (k != key)
        EVP_PKEY_free(k);
    return rc;
}

static int setup(void **state)
{
    ec_key = EVP_EC_gen("P-256");
    rsa_key = EVP_RSA_gen(2048);
    rsa_small = EVP_RSA_gen(1024);
    return ec_key && rsa_key && rsa_small ? 0 : -1;
}

static int teardown(void **state)
{
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_small);
    return 0;
}

static void es256_and_rs256_verify_with_jwk(void **state)
{
    const char *ptype;
    struct jws j;
    char *b = sign(ec_key, "ES256", "n1", "http://h/acme/new-account", NULL, "{\"a\":1}", false);
    assert_int_equal(check(b, NULL, &ptype, &j), 0);
    assert_string_equal(j.nonce, "n1");
    assert_string_equal(j.url, "http://h/acme/new-account");
    assert_null(j.kid);
    assert_false(j.post_as_get);
    assert_string_equal(j.payload.data, "{\"a\":1}");
    jws_release(&j);
    free(b);
    b = sign(rsa_key, "RS256", "n2", "http://h/x", NULL, "{}", false);
    assert_int_equal(check(b, NULL, &ptype, &j), 0);
    jws_release(&j);
    free(b);
}

static void kid_requests_and_post_as_get(void **state)
{
    const char *ptype;
    struct jws j;
    char *b =
        sign(ec_key, "ES256", "n", "http://h/acme/order/1", "http://h/acme/acct/1", "", false);
    assert_int_equal(check(b, ec_key, &ptype, &j), 0);
    assert_string_equal(j.kid, "http://h/acme/acct/1");
    assert_null(j.jwk);
    assert_true(j.post_as_get);
    jws_release(&j);
    free(b);
    /* the account's key is another one: the signature fails */
    b = sign(ec_key, "ES256", "n", "http://h/acme/order/1", "http://h/acme/acct/1", "", false);
    EVP_PKEY *other = EVP_EC_gen("P-256");
    assert_int_not_equal(check(b, other, &ptype, &j), 0);
    assert_string_equal(ptype, "malformed");
    jws_release(&j);
    EVP_PKEY_free(other);
    free(b);
}

static void bad_signatures_fail(void **state)
{
    const char *ptype;
    struct jws j;
    char *b = sign(ec_key, "ES256", "n", "u", NULL, "{}", true);
    assert_int_equal(check(b, NULL, &ptype, &j), CORE_E_INVAL);
    assert_string_equal(ptype, "malformed");
    jws_release(&j);
    free(b);
    b = sign(rsa_key, "RS256", "n", "u", NULL, "{}", true);
    assert_int_equal(check(b, NULL, &ptype, &j), CORE_E_INVAL);
    jws_release(&j);
    free(b);
}

static void wrong_algorithms_are_refused(void **state)
{
    const char *ptype;
    struct jws j;
    /* alg says RS256 but the key is EC */
    char *b = sign(ec_key, "RS256", "n", "u", NULL, "{}", false);
    assert_int_equal(check(b, NULL, &ptype, &j), CORE_E_INVAL);
    assert_string_equal(ptype, "badSignatureAlgorithm");
    jws_release(&j);
    free(b);
    /* unsupported algorithms, including "none" */
    const char *algs[] = {"none", "HS256", "ES384", "PS256", ""};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        b = sign(ec_key, algs[i], "n", "u", NULL, "{}", false);
        assert_int_equal(check(b, NULL, &ptype, &j), CORE_E_INVAL);
        assert_string_equal(ptype, "badSignatureAlgorithm");
        jws_release(&j);
        free(b);
    }
    /* RSA keys under 2048 bits are not accepted as JWKs */
    b = sign(rsa_small, "RS256", "n", "u", NULL, "{}", false);
    assert_int_equal(check(b, NULL, &ptype, &j), CORE_E_INVAL);
    jws_release(&j);
    free(b);
}

static void missing_nonce_url_or_key(void **state)
{
    const char *ptype;
    struct jws j;
    char *b = sign(ec_key, "ES256", NULL, "u", NULL, "{}", false);
    assert_int_equal(check(b, NULL, &ptype, &j), CORE_E_INVAL);
    assert_string_equal(ptype, "badNonce");
    jws_release(&j);
    free(b);
    b = sign(ec_key, "ES256", "n", NULL, NULL, "{}", false);
    assert_int_equal(check(b, NULL, &ptype, &j), CORE_E_INVAL);
    assert_string_equal(ptype, "malformed");
    jws_release(&j);
    free(b);
    /* both jwk and kid */
    json_t *hdr = json_pack("{s:s, s:s, s:s, s:s, s:o}", "alg", "ES256", "nonce", "n", "url", "u",
                            "kid", "k", "jwk", jws_key_to_jwk(ec_key));
    char *hs = json_dumps(hdr, JSON_COMPACT);
    char *h64 = b64(hs, strlen(hs));
    char body[4096];
    snprintf(body, sizeof(body), "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"AAAA\"}",
             h64);
    jws_init(&j);
    struct core_err err = {0};
    assert_int_equal(jws_parse(body, strlen(body), &j, &ptype, &err), CORE_E_INVAL);
    assert_string_equal(ptype, "malformed");
    jws_release(&j);
    free(hs);
    core_free(h64);
    json_decref(hdr);
}

static void inner_jws_of_a_key_change(void **state)
{
    const char *ptype;
    struct core_err err = {0};
    struct jws j;
    /* an inner JWS must carry a jwk and no nonce */
    char *b = sign(ec_key, "ES256", NULL, "http://h/acme/key-change", NULL, "{}", false);
    jws_init(&j);
    assert_int_equal(jws_parse_ex(b, strlen(b), JWS_INNER, &j, &ptype, &err), 0);
    assert_string_equal(j.nonce, "");
    jws_release(&j);
    free(b);
    b = sign(ec_key, "ES256", "n", "http://h/acme/key-change", NULL, "{}", false);
    jws_init(&j);
    assert_int_equal(jws_parse_ex(b, strlen(b), JWS_INNER, &j, &ptype, &err), CORE_E_INVAL);
    assert_string_equal(ptype, "malformed");
    jws_release(&j);
    free(b);
    b = sign(ec_key, "ES256", NULL, "u", "http://h/acme/acct/1", "{}", false);
    jws_init(&j);
    assert_int_equal(jws_parse_ex(b, strlen(b), JWS_INNER, &j, &ptype, &err), CORE_E_INVAL);
    jws_release(&j);
    free(b);
}

static void malformed_bodies(void **state)
{
    const char *bodies[] = {
        "",
        "[]",
        "not json",
        "{\"protected\":1,\"payload\":\"\",\"signature\":\"AA\"}",
        "{\"payload\":\"\",\"signature\":\"AA\"}",
        "{\"protected\":\"e30\",\"payload\":\"\",\"signature\":\"AA\"}",  /* {} */
        "{\"protected\":\"e30=\",\"payload\":\"\",\"signature\":\"AA\"}", /* padding
                                                                           */
        "{\"protected\":\"e3+0\",\"payload\":\"\",\"signature\":\"AA\"}", /* alphabet
                                                                           */
        "{\"protected\":\"W10\",\"payload\":\"\",\"signature\":\"AA\"}",  /* [] */
        "{\"protected\":\"e30\",\"protected\":\"e30\",\"payload\":\"\","
        "\"signature\":\"AA\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct jws j;
        const char *ptype = NULL;
        struct core_err err = {0};
        jws_init(&j);
        assert_int_equal(jws_parse(bodies[i], strlen(bodies[i]), &j, &ptype, &err), CORE_E_INVAL);
        assert_string_equal(ptype, "malformed");
        jws_release(&j);
    }
    /* a payload that is not a JSON object */
    char *b = sign(ec_key, "ES256", "n", "u", NULL, "[1]", false);
    struct jws j;
    const char *ptype;
    assert_int_equal(check(b, NULL, &ptype, &j), CORE_E_INVAL);
    jws_release(&j);
    free(b);
}

static void b64url_edge_cases(void **state)
{
    struct core_buf b;
    core_buf_init(&b, 16);
    assert_int_equal(jws_b64url_decode("", 0, &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(jws_b64url_decode("QQ", 2, &b), 0); /* "A" */
    assert_memory_equal(b.data, "A", 1);
    core_buf_clear(&b);
    assert_int_equal(jws_b64url_decode("QUI", 3, &b), 0);
    assert_memory_equal(b.data, "AB", 2);
    core_buf_clear(&b);
    assert_int_equal(jws_b64url_decode("Q", 1, &b), CORE_E_INVAL);    /* impossible length */
    assert_int_equal(jws_b64url_decode("QR", 2, &b), CORE_E_INVAL);   /* non-zero spare bits */
    assert_int_equal(jws_b64url_decode("QQ==", 4, &b), CORE_E_INVAL); /* padding */
    assert_int_equal(jws_b64url_decode("Q Q", 3, &b), CORE_E_INVAL);  /* whitespace */
    core_buf_clear(&b);
    assert_int_equal(jws_b64url_decode("-w", 2, &b), 0); /* 0xfb */
    assert_int_equal((unsigned char)b.data[0], 0xfb);
    core_buf_clear(&b);
    assert_int_equal(jws_b64url_decode("+/", 2, &b), CORE_E_INVAL); /* standard alphabet */
    /* the cap holds */
    assert_int_equal(jws_b64url_decode("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", 32, &b), CORE_E_TOO_BIG);
    core_buf_release(&b);
    core_buf_init(&b, 0);
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t n = 0; n < 8; n++) {
        core_buf_clear(&b);
        assert_int_equal(jws_b64url_encode(all + 248, n, &b), 0);
        struct core_buf d;
        core_buf_init(&d, 0);
        assert_int_equal(jws_b64url_decode(b.data, b.len, &d), 0);
        assert_int_equal(d.len, n);
        if (n)
            assert_memory_equal(d.data, all + 248, n);
        core_buf_release(&d);
    }
    core_buf_release(&b);
}

static void thumbprint_matches_rfc7638(void **state)
{
    /* RFC 7638 §3.1 example */
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "RSA", "n",
                            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4"
                            "cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
                            "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-"
                            "5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
                            "65YGjQR0_"
                            "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL"
                            "5hajrn1n91CbOpbISD08qNLyrdkt-"
                            "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"
                            "xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
                            "e", "AQAB", "alg", "RS256");
    char tp[64];
    struct core_err err = {0};
    assert_int_equal(jws_thumbprint(jwk, tp, &err), 0);
    assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    EVP_PKEY *k = jws_jwk_key(jwk, &err);
    assert_non_null(k);
    EVP_PKEY_free(k);
    json_decref(jwk);
}

static void ec_points_off_the_curve_are_refused(void **state)
{
    json_t *jwk = jws_key_to_jwk(ec_key);
    struct core_err err = {0};
    EVP_PKEY *k = jws_jwk_key(jwk, &err);
    assert_non_null(k);
    EVP_PKEY_free(k);
    /* y := x moves the point off the curve */
    json_object_set(jwk, "y", json_object_get(jwk, "x"));
    assert_null(jws_jwk_key(jwk, &err));
    json_object_set_new(jwk, "crv", json_string("P-384"));
    assert_null(jws_jwk_key(jwk, &err));
    json_object_set_new(jwk, "kty", json_string("oct"));
    assert_null(jws_jwk_key(jwk, &err));
    json_decref(jwk);
}

static unsigned char *make_csr(const char *cn, const char *san, int *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_REQ_set_pubkey(req, ec_key);
    if (cn)
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   (const unsigned char *)cn, -1, -1, 0);
    if (san) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san));
        X509_REQ_add_extensions(req, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_REQ_sign(req, ec_key, EVP_sha256());
    unsigned char *der = NULL;
    *len = i2d_X509_REQ(req, &der);
    X509_REQ_free(req);
    return der;
}

static void csr_names(void **state)
{
    int len;
    char **names;
    size_t n;
    struct core_err err = {0};
    unsigned char *der = make_csr("A.localhost", "DNS:a.localhost, DNS:b.localhost", &len);
    assert_int_equal(jws_csr_names(der, (size_t)len, &names, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "a.localhost");
    assert_string_equal(names[1], "b.localhost");
    jws_names_free(names, n);
    /* a flipped byte breaks the signature or the structure */
    der[len - 5] ^= 0x40;
    assert_int_equal(jws_csr_names(der, (size_t)len, &names, &n, &err), CORE_E_INVAL);
    OPENSSL_free(der);
    der = make_csr(NULL, "IP:127.0.0.1", &len);
    assert_int_equal(jws_csr_names(der, (size_t)len, &names, &n, &err), CORE_E_INVAL);
    OPENSSL_free(der);
    der = make_csr(NULL, NULL, &len);
    assert_int_equal(jws_csr_names(der, (size_t)len, &names, &n, &err), CORE_E_INVAL);
    OPENSSL_free(der);
    der = make_csr("not a name", NULL, &len);
    assert_int_equal(jws_csr_names(der, (size_t)len, &names, &n, &err), CORE_E_INVAL);
    OPENSSL_free(der);
    assert_int_equal(jws_csr_names("junk", 4, &names, &n, &err), CORE_E_INVAL);
}

static void dns_names(void **state)
{
    assert_true(jws_dns_name_ok("test1.localhost"));
    assert_true(jws_dns_name_ok("a-b.c9.internal"));
    assert_false(jws_dns_name_ok("localhost"));
    assert_false(jws_dns_name_ok("*.localhost"));
    assert_false(jws_dns_name_ok("-a.localhost"));
    assert_false(jws_dns_name_ok("a..localhost"));
    assert_false(jws_dns_name_ok("a.localhost."));
    assert_false(jws_dns_name_ok("A.localhost"));
    assert_false(jws_dns_name_ok(""));
}

/* Every allocation the JWS layer makes may fail: the error comes back, nothing leaks, nothing
 * crashes (LeakSanitizer checks the leaks). */
static void allocation_failures_come_back_cleanly(void **state)
{
    char *es = sign(ec_key, "ES256", "n", "u", NULL, "{\"a\":[1,2,3]}", false);
    char *rs = sign(rsa_key, "RS256", "n", "u", NULL, "{}", false);
    int clen;
    unsigned char *csr = make_csr("a.localhost", "DNS:a.localhost, DNS:b.localhost", &clen);
    for (unsigned n = 1; n <= 60; n++) {
        const char *bodies[] = {es, rs};
        for (size_t b = 0; b < 2; b++) {
            struct jws j;
            struct core_err err = {0};
            const char *ptype = NULL;
            core_failmalloc_set(n);
            jws_init(&j);
            if (jws_parse(bodies[b], strlen(bodies[b]), &j, &ptype, &err) == 0) {
                EVP_PKEY *k = jws_jwk_key(j.jwk, &err);
                if (k)
                    jws_verify(&j, k, &ptype, &err);
                char tp[64];
                jws_thumbprint(j.jwk, tp, &err);
                EVP_PKEY_free(k);
            } else {
                assert_non_null(ptype);
            }
            jws_release(&j);
            char **names = NULL;
            size_t nn = 0;
            if (jws_csr_names(csr, (size_t)clen, &names, &nn, &err) == 0)
                jws_names_free(names, nn);
            core_failmalloc_set(0);
        }
    }
    OPENSSL_free(csr);
    free(es);
    free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(es256_and_rs256_verify_with_jwk),
        cmocka_unit_test(kid_requests_and_post_as_get),
        cmocka_unit_test(bad_signatures_fail),
        cmocka_unit_test(wrong_algorithms_are_refused),
        cmocka_unit_test(missing_nonce_url_or_key),
        cmocka_unit_test(inner_jws_of_a_key_change),
        cmocka_unit_test(malformed_bodies),
        cmocka_unit_test(b64url_edge_cases),
        cmocka_unit_test(thumbprint_matches_rfc7638),
        cmocka_unit_test(ec_points_off_the_curve_are_refused),
        cmocka_unit_test(csr_names),
        cmocka_unit_test(dns_names),
        cmocka_unit_test(allocation_failures_come_back_cleanly),
    };
    return cmocka_run_group_tests_name("jws", tests, setup, teardown);
}
