/* JWS parsing and verification for the ACME server (RFC 7515, RFC 7638, RFC
 * 8555 §6.2), and the CSR reader its finalize uses. See acme_int.h. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "pki/acme_int.h"

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int jws_b64url_decode(const char *s, size_t len, struct core_buf *out)
{
    if (len % 4 == 1)
        return CORE_E_INVAL;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return CORE_E_INVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            int rc = core_buf_addc(out, (char)((acc >> bits) & 0xff));
            if (rc)
                return rc;
        }
    }
    /* the leftover bits of the last character must be zero (canonical encoding)
     */
    if (bits && (acc & ((1u << bits) - 1)))
        return CORE_E_INVAL;
    return 0;
}

int jws_b64url_encode(const void *data, size_t len, struct core_buf *out)
{
    const unsigned char *p = data;
    char quad[4];
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t n = len - i >= 3 ? 3 : len - i;
        if (n > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (n > 2)
            v |= p[i + 2];
        quad[0] = b64url_alphabet[(v >> 18) & 63];
        quad[1] = b64url_alphabet[(v >> 12) & 63];
        quad[2] = b64url_alphabet[(v >> 6) & 63];
        quad[3] = b64url_alphabet[v & 63];
        int rc = core_buf_add(out, quad, n + 1);
        if (rc)
            return rc;
    }
    return 0;
}

void jws_init(struct jws *j)
{
    memset(j, 0, sizeof(*j));
    core_buf_init(&j->payload, JWS_MAX_BODY);
    core_buf_init(&j->signing_input, 2 * JWS_MAX_BODY);
    core_buf_init(&j->sig, 1024);
}

void jws_release(struct jws *j)
{
    core_free(j->nonce);
    core_free(j->url);
    core_free(j->kid);
    json_decref(j->jwk);
    core_buf_release(&j->payload);
    core_buf_release(&j->signing_input);
    core_buf_release(&j->sig);
    memset(j, 0, sizeof(*j));
}

static int fail(const char **ptype, const char *type, struct core_err *err, const char *msg)
{
    if (ptype)
        *ptype = type;
    return core_err_set(err, CORE_E_INVAL, "%s", msg);
}

int jws_parse(const char *body, size_t len, struct jws *j, const char **ptype, struct core_err *err)
{
    return jws_parse_ex(body, len, 0, j, ptype, err);
}

int jws_parse_ex(const char *body, size_t len, unsigned flags, struct jws *j, const char **ptype,
                 struct core_err *err)
{
    int rc = 0;
    json_t *root = NULL, *hdr = NULL;
    struct core_buf prot;
    core_buf_init(&prot, 16 * 1024);
    if (len > JWS_MAX_BODY) {
        rc = fail(ptype, "malformed", err, "request body is too large");
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        rc = fail(ptype, "malformed", err, "request body is not a JSON object (a flattened JWS)");
        goto out;
    }
    const char *p = json_string_value(json_object_get(root, "protected"));
    const char *pl = json_string_value(json_object_get(root, "payload"));
    const char *sg = json_string_value(json_object_get(root, "signature"));
    if (!p || !pl || !sg) {
        rc = fail(ptype, "malformed", err,
                  "the JWS needs the string members 'protected', 'payload' and "
                  "'signature'");
        goto out;
    }
    if (json_object_get(root, "header")) {
        rc = fail(ptype, "malformed", err, "unprotected JWS headers are not allowed");
        goto out;
    }
    if (!*p || jws_b64url_decode(p, strlen(p), &prot)) {
        rc = fail(ptype, "malformed", err, "'protected' is not valid base64url");
        goto out;
    }
    if (jws_b64url_decode(pl, strlen(pl), &j->payload)) {
        rc = fail(ptype, "malformed", err, "'payload' is not valid base64url");
        goto out;
    }
    if (!*sg || jws_b64url_decode(sg, strlen(sg), &j->sig)) {
        rc = fail(ptype, "malformed", err, "'signature' is not valid base64url");
        goto out;
    }
    hdr = json_loadb(prot.data, prot.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(hdr)) {
        rc = fail(ptype, "malformed", err, "the protected header is not a JSON object");
        goto out;
    }
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (!alg) {
        rc = fail(ptype, "malformed", err, "the protected header has no 'alg'");
        goto out;
    }
    if (strcmp(alg, "ES256") != 0 && strcmp(alg, "RS256") != 0) {
        rc = fail(ptype, "badSignatureAlgorithm", err,
                  "unsupported JWS algorithm: use ES256 or RS256");
        goto out;
    }
    snprintf(j->alg, sizeof(j->alg), "%s", alg);
    json_t *jwk = json_object_get(hdr, "jwk");
    json_t *kid = json_object_get(hdr, "kid");
    if ((jwk && kid) || (!jwk && !kid)) {
        rc = fail(ptype, "malformed", err,
                  "the protected header needs exactly one of 'jwk' and 'kid'");
        goto out;
    }
    if (jwk && !json_is_object(jwk)) {
        rc = fail(ptype, "malformed", err, "'jwk' is not a JSON object");
        goto out;
    }
    if (kid && (!json_is_string(kid) || !json_string_length(kid))) {
        rc = fail(ptype, "malformed", err, "'kid' is not a URL");
        goto out;
    }
    const char *url = json_string_value(json_object_get(hdr, "url"));
    if (!url || !*url) {
        rc = fail(ptype, "malformed", err, "the protected header has no 'url'");
        goto out;
    }
    const char *nonce = json_string_value(json_object_get(hdr, "nonce"));
    if (flags & JWS_INNER) {
        /* the inner JWS of a keyChange: the new key, no nonce (RFC 8555 §7.3.5) */
        if (json_object_get(hdr, "nonce") || !jwk) {
            rc = fail(ptype, "malformed", err,
                      "the inner JWS needs a 'jwk' and must not have a 'nonce'");
            goto out;
        }
        nonce = "";
    } else if (!nonce || !*nonce) {
        rc = fail(ptype, "badNonce", err, "the protected header has no 'nonce'");
        goto out;
    }
    j->payload.data[j->payload.len] = 0;
    j->post_as_get = j->payload.len == 0;
    if (!j->post_as_get) {
        json_t *pj = json_loadb(j->payload.data, j->payload.len, JSON_REJECT_DUPLICATES, &jerr);
        bool ok = json_is_object(pj);
        json_decref(pj);
        if (!ok) {
            rc = fail(ptype, "malformed", err, "the payload is not a JSON object");
            goto out;
        }
    }
    j->nonce = core_strdup(nonce);
    j->url = core_strdup(url);
    j->kid = kid ? core_strdup(json_string_value(kid)) : NULL;
    j->jwk = jwk ? json_incref(jwk) : NULL;
    if (!j->nonce || !j->url || (kid && !j->kid) || core_buf_adds(&j->signing_input, p) ||
        core_buf_addc(&j->signing_input, '.') || core_buf_adds(&j->signing_input, pl)) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        if (ptype)
            *ptype = "serverInternal";
        goto out;
    }
out:
    core_buf_release(&prot);
    json_decref(hdr);
    json_decref(root);
    return rc;
}

/* Decodes a base64url JWK member into buf; false when absent or invalid. */
static bool jwk_member(const json_t *jwk, const char *name, struct core_buf *buf)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    return s && *s && jws_b64url_decode(s, strlen(s), buf) == 0 && buf->len > 0;
}

static EVP_PKEY *key_fromdata(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

EVP_PKEY *jws_jwk_key(const json_t *jwk, struct core_err *err)
{
    EVP_PKEY *key = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    struct core_buf a, b;
    core_buf_init(&a, 1100);
    core_buf_init(&b, 1100);
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    if (!kty) {
        core_err_set(err, CORE_E_INVAL, "the JWK has no 'kty'");
        goto out;
    }
    if (strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        if (!crv || strcmp(crv, "P-256") != 0) {
            core_err_set(err, CORE_E_INVAL, "unsupported EC curve: use P-256");
            goto out;
        }
        unsigned char pt[65];
        if (!jwk_member(jwk, "x", &a) || !jwk_member(jwk, "y", &b) || a.len != 32 || b.len != 32) {
            core_err_set(err, CORE_E_INVAL, "the EC JWK needs 'x' and 'y' of 32 bytes");
            goto out;
        }
        pt[0] = 0x04;
        memcpy(pt + 1, a.data, 32);
        memcpy(pt + 33, b.data, 32);
        OSSL_PARAM p[] = {
            OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0),
            OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)),
            OSSL_PARAM_END,
        };
        key = key_fromdata("EC", p);
    } else if (strcmp(kty, "RSA") == 0) {
        if (!jwk_member(jwk, "n", &a) || !jwk_member(jwk, "e", &b) || b.len > 8) {
            core_err_set(err, CORE_E_INVAL, "the RSA JWK needs 'n' and 'e'");
            goto out;
        }
        n = BN_bin2bn((const unsigned char *)a.data, (int)a.len, NULL);
        e = BN_bin2bn((const unsigned char *)b.data, (int)b.len, NULL);
        if (!n || !e) {
            core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        int bits = BN_num_bits(n);
        if (bits < 2048 || bits > 8192 || !BN_is_odd(e) || BN_is_one(e)) {
            core_err_set(err, CORE_E_INVAL, "RSA keys must have 2048 to 8192 bits and an odd e");
            goto out;
        }
        bld = OSSL_PARAM_BLD_new();
        if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
            !(params = OSSL_PARAM_BLD_to_param(bld))) {
            core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
        key = key_fromdata("RSA", params);
    } else {
        core_err_set(err, CORE_E_INVAL, "unsupported JWK key type '%s': use EC or RSA", kty);
        goto out;
    }
    if (!key) {
        core_err_set(err, CORE_E_INVAL, "the JWK is not a valid public key");
        goto out;
    }
    /* fromdata does not insist that an EC point lies on the curve */
    EVP_PKEY_CTX *ck = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int ok = ck ? EVP_PKEY_public_check(ck) : 0;
    EVP_PKEY_CTX_free(ck);
    if (ok != 1) {
        EVP_PKEY_free(key);
        key = NULL;
        core_err_set(err, CORE_E_INVAL, "the JWK is not a valid public key");
    }
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    core_buf_release(&a);
    core_buf_release(&b);
    return key;
}

bool jws_alg_matches(const char *alg, const EVP_PKEY *key)
{
    if (strcmp(alg, "RS256") == 0)
        return EVP_PKEY_is_a(key, "RSA");
    if (strcmp(alg, "ES256") == 0) {
        char group[32] = "";
        size_t gl = 0;
        return EVP_PKEY_is_a(key, "EC") &&
               EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                              &gl) == 1 &&
               strcmp(group, "prime256v1") == 0;
    }
    return false;
}

int jws_verify(const struct jws *j, EVP_PKEY *key, const char **ptype, struct core_err *err)
{
    int rc = 0;
    unsigned char *der = NULL;
    int derlen = 0;
    ECDSA_SIG *es = NULL;
    EVP_MD_CTX *md = NULL;
    if (!jws_alg_matches(j->alg, key))
        return fail(ptype, "badSignatureAlgorithm", err,
                    "the JWS algorithm does not match the key (ES256 for P-256, "
                    "RS256 for RSA)");
    const unsigned char *sig = (const unsigned char *)j->sig.data;
    size_t siglen = j->sig.len;
    if (strcmp(j->alg, "ES256") == 0) {
        /* JWS carries R || S (32 bytes each); OpenSSL wants DER */
        if (siglen != 64)
            return fail(ptype, "malformed", err, "an ES256 signature is 64 bytes");
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        es = ECDSA_SIG_new();
        if (!r || !s || !es || ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            if (ptype)
                *ptype = "serverInternal";
            goto out;
        }
        derlen = i2d_ECDSA_SIG(es, &der);
        if (derlen <= 0) {
            rc = fail(ptype, "malformed", err, "invalid ES256 signature");
            goto out;
        }
        sig = der;
        siglen = (size_t)derlen;
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestVerify(md, sig, siglen, (const unsigned char *)j->signing_input.data,
                         j->signing_input.len) != 1) {
        rc = fail(ptype, "malformed", err, "JWS signature verification failed");
        goto out;
    }
out:
    EVP_MD_CTX_free(md);
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    return rc;
}

int jws_thumbprint(const json_t *jwk, char out[64], struct core_err *err)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    struct core_buf canon, enc;
    core_buf_init(&canon, 4096);
    core_buf_init(&enc, 64);
    int rc = 0;
    /* RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
     * The values are base64url (checked by jws_jwk_key) or fixed names, so they
     * need no escaping beyond what core_buf_add_json_str does. */
    if (kty && strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        const char *x = json_string_value(json_object_get(jwk, "x"));
        const char *y = json_string_value(json_object_get(jwk, "y"));
        if (!crv || !x || !y) {
            rc = core_err_set(err, CORE_E_INVAL, "incomplete EC JWK");
            goto out;
        }
        core_buf_adds(&canon, "{\"crv\":");
        core_buf_add_json_str(&canon, crv);
        core_buf_adds(&canon, ",\"kty\":\"EC\",\"x\":");
        core_buf_add_json_str(&canon, x);
        core_buf_adds(&canon, ",\"y\":");
        core_buf_add_json_str(&canon, y);
        rc = core_buf_addc(&canon, '}');
    } else if (kty && strcmp(kty, "RSA") == 0) {
        const char *e = json_string_value(json_object_get(jwk, "e"));
        const char *n = json_string_value(json_object_get(jwk, "n"));
        if (!e || !n) {
            rc = core_err_set(err, CORE_E_INVAL, "incomplete RSA JWK");
            goto out;
        }
        core_buf_adds(&canon, "{\"e\":");
        core_buf_add_json_str(&canon, e);
        core_buf_adds(&canon, ",\"kty\":\"RSA\",\"n\":");
        core_buf_add_json_str(&canon, n);
        rc = core_buf_addc(&canon, '}');
    } else {
        rc = core_err_set(err, CORE_E_INVAL, "unsupported JWK key type");
        goto out;
    }
    if (rc) {
        rc = core_err_set(err, rc, "JWK too large");
        goto out;
    }
    unsigned char h[32];
    unsigned hl = 0;
    if (EVP_Digest(canon.data, canon.len, h, &hl, EVP_sha256(), NULL) != 1 ||
        jws_b64url_encode(h, hl, &enc)) {
        rc = core_err_set(err, CORE_E_NOMEM, "cannot hash the JWK");
        goto out;
    }
    snprintf(out, 64, "%s", enc.data);
out:
    core_buf_release(&canon);
    core_buf_release(&enc);
    return rc;
}

static int add_bn_member(json_t *o, const char *name, const BIGNUM *bn, int pad)
{
    int len = pad ? pad : BN_num_bytes(bn);
    unsigned char buf[1100];
    if (len <= 0 || len > (int)sizeof(buf) || BN_bn2binpad(bn, buf, len) != len)
        return -1;
    struct core_buf b;
    core_buf_init(&b, 0);
    int rc = jws_b64url_encode(buf, (size_t)len, &b);
    if (!rc)
        rc = json_object_set_new(o, name, json_string(b.data));
    core_buf_release(&b);
    return rc;
}

json_t *jws_key_to_jwk(const EVP_PKEY *key)
{
    json_t *o = json_object();
    BIGNUM *x = NULL, *y = NULL, *n = NULL, *e = NULL;
    int rc = -1;
    if (!o)
        return NULL;
    if (EVP_PKEY_is_a(key, "EC")) {
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1) {
            json_object_set_new(o, "kty", json_string("EC"));
            json_object_set_new(o, "crv", json_string("P-256"));
            rc = add_bn_member(o, "x", x, 32) || add_bn_member(o, "y", y, 32) ? -1 : 0;
        }
    } else if (EVP_PKEY_is_a(key, "RSA")) {
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1) {
            json_object_set_new(o, "kty", json_string("RSA"));
            rc = add_bn_member(o, "n", n, 0) || add_bn_member(o, "e", e, 0) ? -1 : 0;
        }
    }
    BN_free(x);
    BN_free(y);
    BN_free(n);
    BN_free(e);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

bool jws_dns_name_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253)
        return false;
    int labels = 0;
    const char *p = s;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63 || p[0] == '-' || p[l - 1] == '-')
            return false;
        for (size_t i = 0; i < l; i++) {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                return false;
        }
        labels++;
        if (!dot)
            break;
        p = dot + 1;
        if (!*p)
            return false; /* trailing dot */
    }
    return labels >= 2;
}

/* Adds a lowercased copy of name (n bytes) unless present; false when it is not
 * a DNS name or there are too many. */
static bool add_name(char ***names, size_t *nn, const char *name, size_t n)
{
    if (n == 0 || n > 253 || memchr(name, 0, n))
        return false;
    char *c = core_strndup(name, n);
    if (!c)
        return false;
    for (char *q = c; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    if (!jws_dns_name_ok(c)) {
        core_free(c);
        return false;
    }
    for (size_t i = 0; i < *nn; i++)
        if (strcmp((*names)[i], c) == 0) {
            core_free(c);
            return true;
        }
    if (*nn >= JWS_MAX_NAMES) {
        core_free(c);
        return false;
    }
    char **grown = core_realloc(*names, (*nn + 1) * sizeof(char *));
    if (!grown) {
        core_free(c);
        return false;
    }
    *names = grown;
    (*names)[(*nn)++] = c;
    return true;
}

void jws_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        core_free(names[i]);
    core_free(names);
}

int jws_csr_names(const void *der, size_t len, char ***names, size_t *nnames, struct core_err *err)
{
    int rc = 0;
    char **out = NULL;
    size_t n = 0;
    const unsigned char *p = der;
    X509_REQ *req = NULL;
    EVP_PKEY *pub = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    GENERAL_NAMES *sans = NULL;
    *names = NULL;
    *nnames = 0;
    if (len == 0 || len > JWS_MAX_BODY || !(req = d2i_X509_REQ(NULL, &p, (long)len)) ||
        p != (const unsigned char *)der + len) {
        rc = core_err_set(err, CORE_E_INVAL, "the CSR is not a DER PKCS#10 request");
        goto out;
    }
    pub = X509_REQ_get_pubkey(req);
    if (!pub || X509_REQ_verify(req, pub) != 1) {
        rc = core_err_set(err, CORE_E_INVAL, "the CSR signature does not verify");
        goto out;
    }
    X509_NAME *subj = X509_REQ_get_subject_name(req);
    int idx = -1;
    while (subj && (idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) >= 0) {
        ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
        unsigned char *utf8 = NULL;
        int ul = ASN1_STRING_to_UTF8(&utf8, s);
        bool ok = ul > 0 && add_name(&out, &n, (const char *)utf8, (size_t)ul);
        OPENSSL_free(utf8);
        if (!ok) {
            rc = core_err_set(err, CORE_E_INVAL, "the CSR's common name is not a DNS name");
            goto out;
        }
    }
    exts = X509_REQ_get_extensions(req);
    int crit = 0;
    for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name)
            continue;
        if (sans) {
            rc = core_err_set(err, CORE_E_INVAL, "the CSR has two subjectAltName extensions");
            goto out;
        }
        sans = X509V3_EXT_d2i(ext);
        if (!sans) {
            rc = core_err_set(err, CORE_E_INVAL, "the CSR's subjectAltName does not parse");
            goto out;
        }
    }
    (void)crit;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != GEN_DNS) {
            rc = core_err_set(err, CORE_E_INVAL,
                              "the CSR asks for a subjectAltName that is not a DNS name");
            goto out;
        }
        const unsigned char *d = ASN1_STRING_get0_data(gn->d.dNSName);
        int dl = ASN1_STRING_length(gn->d.dNSName);
        if (dl <= 0 || !add_name(&out, &n, (const char *)d, (size_t)dl)) {
            rc = core_err_set(err, CORE_E_INVAL,
                              "the CSR asks for an invalid DNS name (or too many)");
            goto out;
        }
    }
    if (n == 0) {
        rc = core_err_set(err, CORE_E_INVAL, "the CSR names no DNS name");
        goto out;
    }
    *names = out;
    *nnames = n;
    out = NULL;
    n = 0;
out:
    jws_names_free(out, n);
    GENERAL_NAMES_free(sans);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    return rc;
}
