/* Leaf certificates: names and profiles, CSR checks, signing with the intermediate, and the
 * inventory of everything issued (table pki_certs). */
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pki/pki_int.h"
#include "store/store.h"

#define MAX_NAMES 100
#define CSR_MAX (64 * 1024)

void pki_issued_release(struct pki_issued *i)
{
    if (!i)
        return;
    core_free(i->cert_pem);
    core_free(i->chain_pem);
    if (i->key_pem)
        OPENSSL_cleanse(i->key_pem, strlen(i->key_pem));
    core_free(i->key_pem);
    memset(i, 0, sizeof(*i));
}

static const char *const reason_names[] = {
    "unspecified",          "keyCompromise",      "cACompromise", "affiliationChanged",
    "superseded",           "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL",        "privilegeWithdrawn", "aACompromise",
};

int pki_reason_code(const char *name)
{
    if (!name || !*name)
        return 0;
    for (size_t i = 0; i < sizeof(reason_names) / sizeof(reason_names[0]); i++)
        if (reason_names[i] && strcasecmp(reason_names[i], name) == 0)
            return (int)i;
    return -1;
}

const char *pki_reason_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof(reason_names) / sizeof(reason_names[0]) ||
        !reason_names[code])
        return "unspecified";
    return reason_names[code];
}

/* ---- names ---- */

/* Lowercase copy of a DNS name if it is a valid host name (optionally "*." + name). */
static int dns_normalize(const char *in, char out[256], struct core_err *err)
{
    size_t n = strlen(in);
    if (n == 0 || n > 253)
        return core_err_set(err, CORE_E_INVAL, "DNS name '%.80s' must be 1 to 253 characters",
                            in);
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    const char *p = out;
    if (p[0] == '*' && p[1] == '.')
        p += 2;
    char label[64];
    int labels = 0;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63)
            return core_err_set(err, CORE_E_INVAL, "invalid DNS name '%.80s'", in);
        memcpy(label, p, l);
        label[l] = 0;
        if (!core_is_dns_label(label))
            return core_err_set(err, CORE_E_INVAL, "invalid DNS name '%.80s'", in);
        labels++;
        p += l + (dot ? 1 : 0);
        if (dot && !*p)
            return core_err_set(err, CORE_E_INVAL, "invalid DNS name '%.80s'", in);
    }
    if (labels == 0 || (out[0] == '*' && labels < 2))
        return core_err_set(err, CORE_E_INVAL, "invalid DNS name '%.80s'", in);
    return 0;
}

/* Binary form (4 or 16 bytes) of an IP literal. */
static int ip_parse(const char *in, unsigned char out[16], size_t *len)
{
    if (inet_pton(AF_INET, in, out) == 1) {
        *len = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, in, out) == 1) {
        *len = 16;
        return 0;
    }
    return CORE_E_INVAL;
}

static int profile_eku(const char *profile, const char **eku, struct core_err *err)
{
    if (!profile || !*profile || strcmp(profile, "server") == 0)
        *eku = "serverAuth";
    else if (strcmp(profile, "client") == 0)
        *eku = "clientAuth";
    else if (strcmp(profile, "server+client") == 0)
        *eku = "serverAuth,clientAuth";
    else
        return core_err_set(err, CORE_E_INVAL,
                            "unknown profile '%.40s' (use server, client or server+client)",
                            profile);
    return 0;
}

/* Builds "DNS:a,IP:1.2.3.4" and a JSON array of the names (req validated here). */
static int build_sans(const struct pki_issue_request *req, struct core_buf *ext, json_t *names,
                      char first[256], struct core_err *err)
{
    if (req->ndns + req->nips == 0)
        return core_err_set(err, CORE_E_INVAL, "at least one DNS name or IP address is required");
    if (req->ndns + req->nips > MAX_NAMES)
        return core_err_set(err, CORE_E_INVAL, "at most %d names per certificate", MAX_NAMES);
    first[0] = 0;
    for (size_t i = 0; i < req->ndns; i++) {
        char dns[256];
        int rc = dns_normalize(req->dns_names[i] ? req->dns_names[i] : "", dns, err);
        if (rc)
            return rc;
        if (!first[0])
            snprintf(first, 256, "%s", dns);
        if (core_buf_addf(ext, "%sDNS:%s", ext->len ? "," : "", dns) ||
            json_array_append_new(names, json_string(dns)))
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < req->nips; i++) {
        unsigned char bin[16];
        size_t blen;
        char txt[INET6_ADDRSTRLEN];
        if (!req->ips[i] || ip_parse(req->ips[i], bin, &blen))
            return core_err_set(err, CORE_E_INVAL, "invalid IP address '%.60s'",
                                req->ips[i] ? req->ips[i] : "");
        inet_ntop(blen == 4 ? AF_INET : AF_INET6, bin, txt, sizeof(txt));
        if (!first[0])
            snprintf(first, 256, "%s", txt);
        if (core_buf_addf(ext, "%sIP:%s", ext->len ? "," : "", txt) ||
            json_array_append_new(names, json_string(txt)))
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    return 0;
}

static void key_type_name(EVP_PKEY *k, char *out, size_t outsz)
{
    if (EVP_PKEY_is_a(k, "RSA")) {
        snprintf(out, outsz, "rsa-%d", EVP_PKEY_get_bits(k));
        return;
    }
    char group[64] = "";
    size_t glen = 0;
    if (EVP_PKEY_is_a(k, "EC") &&
        EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &glen)) {
        snprintf(out, outsz, "ec-%s", strcmp(group, "prime256v1") == 0 ? "P-256" : group);
        return;
    }
    snprintf(out, outsz, "%s", EVP_PKEY_get0_type_name(k) ? EVP_PKEY_get0_type_name(k) : "?");
}

static int check_public_key(EVP_PKEY *k, struct core_err *err)
{
    if (EVP_PKEY_is_a(k, "RSA")) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits < 2048 || bits > 8192)
            return core_err_set(err, CORE_E_INVAL, "RSA keys must be 2048 to 8192 bits (got %d)",
                                bits);
        return 0;
    }
    if (EVP_PKEY_is_a(k, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &glen) &&
            (strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0))
            return 0;
        return core_err_set(err, CORE_E_INVAL, "EC keys must be on P-256 or P-384");
    }
    return core_err_set(err, CORE_E_INVAL, "only RSA and EC keys are accepted");
}

/* ---- signing and the inventory ---- */

static int inventory_insert(struct pki *p, const char *serial, const char *subject, json_t *names,
                            const char *owner, const char *profile, const char *key_type,
                            int64_t nb_ms, int64_t na_ms, const char *cert_pem,
                            struct core_err *err)
{
    if (!p->st)
        return 0;
    char *sans = json_dumps(names, JSON_COMPACT);
    char now[40];
    core_time_format(core_now_ms(), now, sizeof(now));
    if (!sans)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    struct store_value v[] = {
        STORE_V_TEXT(serial),  STORE_V_TEXT(subject),  STORE_V_TEXT(sans),
        STORE_V_TEXT(owner),   STORE_V_TEXT(profile),  STORE_V_TEXT(key_type),
        STORE_V_INT(nb_ms),    STORE_V_INT(na_ms),     STORE_V_TEXT(cert_pem),
        STORE_V_TEXT(now),
    };
    int rc = store_exec(p->st,
                        "INSERT INTO pki_certs (serial, subject, sans, owner, profile, key_type, "
                        "state, not_before_ms, not_after_ms, cert_pem, created_at) VALUES "
                        "(?, ?, ?, ?, ?, ?, 'valid', ?, ?, ?, ?)",
                        v, sizeof(v) / sizeof(v[0]), NULL, err);
    free(sans); /* jansson allocates with malloc */
    if (rc)
        core_err_wrap(err, "recording certificate %s", serial);
    return rc;
}

/* Issues for pub (already checked) with the names and profile of req. */
static int issue_for_key(struct pki *p, EVP_PKEY *pub, const struct pki_issue_request *req,
                         struct pki_issued *out, struct core_err *err)
{
    int rc = 0;
    const char *eku = NULL;
    struct core_buf san;
    core_buf_init(&san, 64 * 1024);
    json_t *names = json_array();
    X509 *x = X509_new();
    X509_NAME *subj = X509_NAME_new();
    char first[256], subject[300], kt[32];
    char *critical_san = NULL;
    memset(out, 0, sizeof(*out));
    if (!names || !x || !subj) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = profile_eku(req->profile, &eku, err)) || (rc = build_sans(req, &san, names, first,
                                                                        err)))
        goto out;
    int64_t life = req->lifetime_ms > 0 ? req->lifetime_ms : p->default_lifetime_ms;
    /* short-lived service certificates (deploy's --cert-lifetime) may go down to 10 seconds */
    if (req->lifetime_ms < 0 || life > PKI_MAX_LIFETIME_MS || life < 10 * 1000) {
        rc = core_err_set(err, CORE_E_INVAL, "the lifetime must be 10 seconds to 398 days");
        goto out;
    }
    pthread_mutex_lock(&p->lock);
    int64_t now = core_now_ms();
    int64_t nb = (now / 1000 - 60) * 1000, na = (now / 1000) * 1000 + life;
    /* a leaf never outlives its issuer */
    int64_t inter_na = pki_asn1_time_ms(X509_get0_notAfter(p->inter));
    if (inter_na && na > inter_na)
        na = inter_na;
    /* the subject CN is informational (clients match the SANs) and limited to 64 bytes */
    if (strlen(first) <= 64 &&
        !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)first, -1,
                                    -1, 0)) {
        rc = core_err_set(err, CORE_E_INTERNAL, "cannot build the subject");
        goto unlock;
    }
    if (!X509_set_version(x, X509_VERSION_3) || (rc = pki_serial_random(x, err)) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(nb / 1000)) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(na / 1000)) ||
        !X509_set_subject_name(x, subj) ||
        !X509_set_issuer_name(x, X509_get_subject_name(p->inter)) || !X509_set_pubkey(x, pub)) {
        rc = rc ? rc : core_err_set(err, CORE_E_INTERNAL, "cannot build the certificate");
        goto unlock;
    }
    bool rsa = EVP_PKEY_is_a(pub, "RSA");
    /* without a subject the SANs are the identity and must be critical (RFC 5280 4.2.1.6) */
    const char *sanext = san.data;
    if (!X509_NAME_entry_count(subj)) {
        size_t n = san.len + 10;
        if (!(critical_san = core_malloc(n))) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto unlock;
        }
        snprintf(critical_san, n, "critical,%s", san.data);
        sanext = critical_san;
    }
    char dp[600];
    if ((rc = pki_add_ext(x, p->inter, NID_basic_constraints, "critical,CA:FALSE", err)) ||
        (rc = pki_add_ext(x, p->inter, NID_key_usage,
                          rsa ? "critical,digitalSignature,keyEncipherment"
                              : "critical,digitalSignature",
                          err)) ||
        (rc = pki_add_ext(x, p->inter, NID_ext_key_usage, eku, err)) ||
        (rc = pki_add_ext(x, p->inter, NID_subject_alt_name, sanext, err)) ||
        (rc = pki_add_ext(x, p->inter, NID_subject_key_identifier, "hash", err)) ||
        (rc = pki_add_ext(x, p->inter, NID_authority_key_identifier, "keyid:always", err)))
        goto unlock;
    if (p->crl_url) {
        snprintf(dp, sizeof(dp), "URI:%s", p->crl_url);
        if ((rc = pki_add_ext(x, p->inter, NID_crl_distribution_points, dp, err)))
            goto unlock;
    }
    if (!X509_sign(x, p->inter_key, EVP_sha256())) {
        ERR_clear_error();
        rc = core_err_set(err, CORE_E_INTERNAL, "cannot sign the certificate");
        goto unlock;
    }
    if ((rc = pki_serial_hex(X509_get0_serialNumber(x), out->serial))) {
        core_err_set(err, rc, "cannot encode the serial");
        goto unlock;
    }
    out->cert_pem = pki_cert_pem(x);
    size_t clen = out->cert_pem ? strlen(out->cert_pem) + strlen(p->inter_pem) + 1 : 0;
    if (!out->cert_pem || !(out->chain_pem = core_malloc(clen))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto unlock;
    }
    snprintf(out->chain_pem, clen, "%s%s", out->cert_pem, p->inter_pem);
    out->not_before_ms = nb;
    out->not_after_ms = na;
    snprintf(subject, sizeof(subject), "CN=%s", first);
    key_type_name(pub, kt, sizeof(kt));
    rc = inventory_insert(p, out->serial, subject, names, req->owner,
                          req->profile && *req->profile ? req->profile : "server", kt, nb, na,
                          out->cert_pem, err);
unlock:
    pthread_mutex_unlock(&p->lock);
out:
    ERR_clear_error();
    if (rc)
        pki_issued_release(out);
    core_free(critical_san);
    X509_NAME_free(subj);
    X509_free(x);
    json_decref(names);
    core_buf_release(&san);
    return rc;
}

int pki_issue(struct pki *p, const struct pki_issue_request *req, enum pki_key_type kt,
              struct pki_issued *out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    EVP_PKEY *key = pki_keygen(kt, err);
    if (!key)
        return err ? err->code : CORE_E_INTERNAL;
    int rc = issue_for_key(p, key, req, out, err);
    if (!rc) {
        /* the generated key leaves unencrypted, once, to the caller who asked for it */
        BIO *bio = BIO_new(BIO_s_mem());
        char *pem = NULL;
        long n = 0;
        if (!bio || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) ||
            (n = BIO_get_mem_data(bio, &pem)) <= 0 ||
            !(out->key_pem = core_strndup(pem, (size_t)n))) {
            rc = core_err_set(err, CORE_E_NOMEM, "cannot encode the private key");
            pki_issued_release(out);
        }
        if (pem && n > 0)
            OPENSSL_cleanse(pem, (size_t)n);
        BIO_free(bio);
    }
    EVP_PKEY_free(key);
    return rc;
}

static bool dns_in_req(const struct pki_issue_request *req, const char *name, size_t len)
{
    for (size_t i = 0; i < req->ndns; i++)
        if (req->dns_names[i] && strlen(req->dns_names[i]) == len &&
            strncasecmp(req->dns_names[i], name, len) == 0)
            return true;
    return false;
}

static bool ip_in_req(const struct pki_issue_request *req, const unsigned char *ip, size_t len)
{
    for (size_t i = 0; i < req->nips; i++) {
        unsigned char bin[16];
        size_t blen;
        if (req->ips[i] && !ip_parse(req->ips[i], bin, &blen) && blen == len &&
            memcmp(bin, ip, len) == 0)
            return true;
    }
    return false;
}

/* Every name the CSR asks for must be one the caller authorized in req. */
static int check_csr_names(X509_REQ *csr, const struct pki_issue_request *req,
                           struct core_err *err)
{
    int rc = 0;
    X509_NAME *subj = X509_REQ_get_subject_name(csr);
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;) {
        ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
        unsigned char *cn = NULL;
        int n = ASN1_STRING_to_UTF8(&cn, d);
        bool ok = false;
        if (n > 0 && memchr(cn, 0, (size_t)n) == NULL) {
            unsigned char bin[16];
            size_t blen;
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "%.*s", n, (const char *)cn);
            ok = dns_in_req(req, (const char *)cn, (size_t)n) ||
                 (!ip_parse(tmp, bin, &blen) && ip_in_req(req, bin, blen));
        }
        if (!ok)
            rc = core_err_set(err, CORE_E_PERM,
                              "the CSR's common name '%.*s' is not an authorized name",
                              n > 0 && n < 200 ? n : 0, cn ? (const char *)cn : "");
        OPENSSL_free(cn);
        if (rc)
            return rc;
    }
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    GENERAL_NAMES *gens = NULL;
    int idx = exts ? X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1) : -1;
    if (idx >= 0)
        gens = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, idx));
    else if (exts && sk_X509_EXTENSION_num(exts) > 0)
        ERR_clear_error();
    if (idx >= 0 && !gens) {
        rc = core_err_set(err, CORE_E_INVAL, "the CSR's subjectAltName is malformed");
        goto out;
    }
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            const ASN1_IA5STRING *s = g->d.dNSName;
            if (!dns_in_req(req, (const char *)ASN1_STRING_get0_data(s),
                            (size_t)ASN1_STRING_length(s))) {
                rc = core_err_set(err, CORE_E_PERM, "the CSR asks for '%.*s', which is not an "
                                                    "authorized name",
                                  ASN1_STRING_length(s) < 200 ? ASN1_STRING_length(s) : 200,
                                  (const char *)ASN1_STRING_get0_data(s));
                goto out;
            }
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *s = g->d.iPAddress;
            if (!ip_in_req(req, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s))) {
                rc = core_err_set(err, CORE_E_PERM,
                                  "the CSR asks for an IP address that is not authorized");
                goto out;
            }
        } else {
            rc = core_err_set(err, CORE_E_PERM,
                              "the CSR asks for a name type other than DNS or IP");
            goto out;
        }
    }
out:
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rc;
}

int pki_issue_csr(struct pki *p, const void *csr, size_t len, const struct pki_issue_request *req,
                  struct pki_issued *out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!csr || len == 0 || len > CSR_MAX)
        return core_err_set(err, CORE_E_INVAL, "the CSR must be 1 byte to 64 KiB");
    int rc = 0;
    X509_REQ *r = NULL;
    BIO *bio = BIO_new_mem_buf(csr, (int)len);
    if (!bio)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    if (len > 10 && memcmp(csr, "-----BEGIN", 10) == 0) {
        r = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    } else {
        const unsigned char *d = csr;
        r = d2i_X509_REQ(NULL, &d, (long)len);
        if (r && d != (const unsigned char *)csr + len) { /* trailing garbage */
            X509_REQ_free(r);
            r = NULL;
        }
    }
    if (!r) {
        rc = core_err_set(err, CORE_E_INVAL, "cannot parse the CSR (PEM or DER PKCS#10)");
        goto out;
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(r);
    if (!pub) {
        rc = core_err_set(err, CORE_E_INVAL, "the CSR has no usable public key");
        goto out;
    }
    if ((rc = check_public_key(pub, err)))
        goto out;
    if (X509_REQ_verify(r, pub) != 1) {
        rc = core_err_set(err, CORE_E_INVAL, "the CSR's signature does not verify");
        goto out;
    }
    if ((rc = check_csr_names(r, req, err)))
        goto out;
    rc = issue_for_key(p, pub, req, out, err);
out:
    ERR_clear_error();
    X509_REQ_free(r);
    BIO_free(bio);
    return rc;
}

/* ---- inventory queries ---- */

struct list_ctx {
    json_t *items;
    int64_t now;
    bool with_pem;
};

static int list_row(void *arg, const struct store_row *row)
{
    struct list_ctx *c = arg;
    char nb[40], na[40], ra[40];
    int64_t na_ms = store_row_int(row, "not_after_ms");
    const char *state = store_row_text(row, "state");
    if (state && strcmp(state, "valid") == 0 && na_ms < c->now)
        state = "expired";
    core_time_format(store_row_int(row, "not_before_ms"), nb, sizeof(nb));
    core_time_format(na_ms, na, sizeof(na));
    json_t *sans = json_loads(store_row_text(row, "sans") ? store_row_text(row, "sans") : "[]",
                              0, NULL);
    const char *owner = store_row_text(row, "owner");
    json_t *o = json_pack("{s:s?,s:s?,s:o,s:s?,s:s?,s:s?,s:s?,s:s,s:s}", "serial",
                          store_row_text(row, "serial"), "subject",
                          store_row_text(row, "subject"), "sans", sans ? sans : json_array(),
                          "owner", owner, "profile", store_row_text(row, "profile"), "key_type",
                          store_row_text(row, "key_type"), "state", state, "not_before", nb,
                          "not_after", na);
    if (!o)
        return CORE_E_NOMEM;
    const struct store_value *rv = store_row_get(row, "revoked_ms");
    if (rv && rv->type == STORE_INT) {
        core_time_format(rv->i, ra, sizeof(ra));
        json_object_set_new(o, "revoked_at", json_string(ra));
        json_object_set_new(o, "reason",
                            json_string(pki_reason_name((int)store_row_int(row, "reason"))));
    } else {
        json_object_set_new(o, "revoked_at", json_null());
    }
    if (c->with_pem)
        json_object_set_new(o, "cert_pem", json_string(store_row_text(row, "cert_pem")));
    return json_array_append_new(c->items, o) ? CORE_E_NOMEM : 0;
}

json_t *pki_list(struct pki *p, const char *owner_prefix, const char *state,
                 int64_t expiring_within_ms, struct core_err *err)
{
    if (!p->st) {
        core_err_set(err, CORE_E_UNSUPPORTED, "the CA has no inventory store");
        return NULL;
    }
    struct core_buf where, like;
    core_buf_init(&where, 0);
    core_buf_init(&like, 1024);
    struct store_value v[4];
    size_t nv = 0;
    int64_t now = core_now_ms();
    json_t *out = NULL;
    core_buf_adds(&where, " WHERE 1 = 1");
    if (owner_prefix && *owner_prefix) {
        for (const char *c = owner_prefix; *c; c++)
            if ((*c == '%' || *c == '_' || *c == '\\') ? core_buf_addc(&like, '\\') ||
                                                             core_buf_addc(&like, *c)
                                                       : core_buf_addc(&like, *c)) {
                core_err_set(err, CORE_E_INVAL, "owner filter is too long");
                goto out;
            }
        if (core_buf_addc(&like, '%')) {
            core_err_set(err, CORE_E_INVAL, "owner filter is too long");
            goto out;
        }
        core_buf_adds(&where, " AND owner LIKE ? ESCAPE '\\'");
        v[nv++] = STORE_V_TEXT(like.data);
    }
    if (state && *state) {
        if (strcmp(state, "valid") == 0) {
            core_buf_adds(&where, " AND state = 'valid' AND not_after_ms >= ?");
            v[nv++] = STORE_V_INT(now);
        } else if (strcmp(state, "expired") == 0) {
            core_buf_adds(&where, " AND state = 'valid' AND not_after_ms < ?");
            v[nv++] = STORE_V_INT(now);
        } else if (strcmp(state, "revoked") == 0) {
            core_buf_adds(&where, " AND state = 'revoked'");
        } else {
            core_err_set(err, CORE_E_INVAL, "unknown state '%.40s' (valid, expired, revoked)",
                         state);
            goto out;
        }
    }
    if (expiring_within_ms > 0) {
        core_buf_adds(&where, " AND state = 'valid' AND not_after_ms >= ? AND not_after_ms <= ?");
        v[nv++] = STORE_V_INT(now);
        v[nv++] = STORE_V_INT(now + expiring_within_ms);
    }
    if (nv > 4) { /* state and expiring together use at most 4 */
        core_err_set(err, CORE_E_INVAL, "too many filters");
        goto out;
    }
    char sql[1024];
    int64_t total = 0;
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM pki_certs%s", where.data);
    if (store_query_int(p->st, sql, v, nv, &total, err))
        goto out;
    struct list_ctx c = {.items = json_array(), .now = now};
    snprintf(sql, sizeof(sql),
             "SELECT serial, subject, sans, owner, profile, key_type, state, not_before_ms, "
             "not_after_ms, revoked_ms, reason FROM pki_certs%s ORDER BY not_after_ms, serial "
             "LIMIT 1000",
             where.data);
    if (!c.items || store_query(p->st, sql, v, nv, list_row, &c, err)) {
        if (!c.items)
            core_err_set(err, CORE_E_NOMEM, "out of memory");
        json_decref(c.items);
        goto out;
    }
    out = json_pack("{s:o,s:I}", "items", c.items, "total", (json_int_t)total);
    if (!out)
        core_err_set(err, CORE_E_NOMEM, "out of memory");
out:
    core_buf_release(&where);
    core_buf_release(&like);
    return out;
}

json_t *pki_show(struct pki *p, const char *serial, struct core_err *err)
{
    char sn[64];
    if (!p->st) {
        core_err_set(err, CORE_E_UNSUPPORTED, "the CA has no inventory store");
        return NULL;
    }
    if (pki_serial_normalize(serial, sn, err))
        return NULL;
    struct list_ctx c = {.items = json_array(), .now = core_now_ms(), .with_pem = true};
    struct store_value v[] = {STORE_V_TEXT(sn)};
    if (!c.items) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    if (store_query(p->st,
                    "SELECT serial, subject, sans, owner, profile, key_type, state, "
                    "not_before_ms, not_after_ms, revoked_ms, reason, cert_pem FROM pki_certs "
                    "WHERE serial = ?",
                    v, 1, list_row, &c, err)) {
        json_decref(c.items);
        return NULL;
    }
    json_t *o = json_incref(json_array_get(c.items, 0));
    json_decref(c.items);
    if (!o)
        core_err_set(err, CORE_E_NOTFOUND, "no certificate with serial '%s'", sn);
    return o;
}
