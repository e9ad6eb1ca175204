/* Revocation and the CRL: a version 2 CRL signed by the intermediate, valid for a day, rebuilt
 * from the inventory on every revocation and whenever it is older than 12 hours. */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pki/pki_int.h"
#include "store/store.h"

#define CRL_VALIDITY_S (24 * 3600)
#define CRL_REFRESH_MS ((int64_t)12 * 3600 * 1000)

struct crl_build {
    X509_CRL *crl;
    int rc;
};

static int add_revoked(void *arg, const struct store_row *row)
{
    struct crl_build *b = arg;
    const char *serial = store_row_text(row, "serial");
    int64_t when = store_row_int(row, "revoked_ms");
    int reason = (int)store_row_int(row, "reason");
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    ASN1_TIME *t = NULL;
    ASN1_ENUMERATED *e = NULL;
    X509_REVOKED *rev = X509_REVOKED_new();
    b->rc = CORE_E_NOMEM;
    if (!rev || !serial || !BN_hex2bn(&bn, serial) || !(ai = BN_to_ASN1_INTEGER(bn, NULL)) ||
        !X509_REVOKED_set_serialNumber(rev, ai) || !(t = ASN1_TIME_set(NULL, when / 1000)) ||
        !X509_REVOKED_set_revocationDate(rev, t))
        goto out;
    if (reason > 0) {
        if (!(e = ASN1_ENUMERATED_new()) || !ASN1_ENUMERATED_set(e, reason) ||
            !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, e, 0, 0))
            goto out;
    }
    if (!X509_CRL_add0_revoked(b->crl, rev))
        goto out;
    rev = NULL;
    b->rc = 0;
out:
    X509_REVOKED_free(rev);
    ASN1_ENUMERATED_free(e);
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return b->rc;
}

int pki_crl_rebuild_locked(struct pki *p, struct core_err *err)
{
    int rc = 0;
    struct crl_build b = {.crl = X509_CRL_new()};
    ASN1_TIME *last = NULL, *next = NULL;
    ASN1_INTEGER *num = NULL;
    X509_EXTENSION *aki = NULL;
    BIO *bio = NULL;
    unsigned char *der = NULL;
    time_t now = time(NULL);
    int64_t number = (int64_t)now > p->crl_number ? (int64_t)now : p->crl_number + 1;
    if (!b.crl || !X509_CRL_set_version(b.crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(b.crl, X509_get_subject_name(p->inter)) ||
        !(last = ASN1_TIME_set(NULL, now)) || !(next = ASN1_TIME_set(NULL, now + CRL_VALIDITY_S)) ||
        !X509_CRL_set1_lastUpdate(b.crl, last) || !X509_CRL_set1_nextUpdate(b.crl, next)) {
        rc = core_err_set(err, CORE_E_NOMEM, "cannot build the CRL");
        goto out;
    }
    if (p->st) {
        /* expired certificates no longer need to be listed (RFC 5280 3.3) */
        struct store_value v[] = {STORE_V_INT((int64_t)now * 1000)};
        rc = store_query(p->st,
                         "SELECT serial, revoked_ms, reason FROM pki_certs WHERE state = "
                         "'revoked' AND not_after_ms >= ? ORDER BY serial",
                         v, 1, add_revoked, &b, err);
        if (rc) {
            if (b.rc)
                core_err_set(err, rc, "cannot build the CRL");
            goto out;
        }
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, p->inter, NULL, NULL, b.crl, 0);
    if (!(aki = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) ||
        !X509_CRL_add_ext(b.crl, aki, -1) || !(num = ASN1_INTEGER_new()) ||
        !ASN1_INTEGER_set_int64(num, number) ||
        !X509_CRL_add1_ext_i2d(b.crl, NID_crl_number, num, 0, 0) || !X509_CRL_sort(b.crl) ||
        !X509_CRL_sign(b.crl, p->inter_key, EVP_sha256())) {
        rc = core_err_set(err, CORE_E_INTERNAL, "cannot sign the CRL");
        goto out;
    }
    int dlen = i2d_X509_CRL(b.crl, &der);
    char *pem = NULL;
    long plen = 0;
    if (dlen <= 0 || !(bio = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509_CRL(bio, b.crl) ||
        (plen = BIO_get_mem_data(bio, &pem)) <= 0) {
        rc = core_err_set(err, CORE_E_INTERNAL, "cannot encode the CRL");
        goto out;
    }
    unsigned char *dcopy = core_malloc((size_t)dlen);
    char *pcopy = core_strndup(pem, (size_t)plen);
    if (!dcopy || !pcopy) {
        core_free(dcopy);
        core_free(pcopy);
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(dcopy, der, (size_t)dlen);
    core_free(p->crl_der);
    core_free(p->crl_pem);
    p->crl_der = dcopy;
    p->crl_der_len = (size_t)dlen;
    p->crl_pem = pcopy;
    p->crl_ms = core_now_ms();
    p->crl_number = number;
out:
    ERR_clear_error();
    OPENSSL_free(der);
    BIO_free(bio);
    X509_EXTENSION_free(aki);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_CRL_free(b.crl);
    return rc;
}

int pki_revoke(struct pki *p, const char *serial, int reason, struct core_err *err)
{
    char sn[64];
    int rc = pki_serial_normalize(serial, sn, err);
    if (rc)
        return rc;
    /* 7 is unassigned; removeFromCRL only makes sense in delta CRLs */
    if (reason < 0 || reason > 10 || reason == 7 || reason == 8)
        return core_err_set(err, CORE_E_INVAL, "invalid revocation reason %d", reason);
    if (!p->st)
        return core_err_set(err, CORE_E_UNSUPPORTED, "the CA has no inventory store");
    pthread_mutex_lock(&p->lock);
    int64_t changes = 0;
    struct store_value v[] = {STORE_V_INT(core_now_ms()), STORE_V_INT(reason), STORE_V_TEXT(sn)};
    rc = store_exec(p->st,
                    "UPDATE pki_certs SET state = 'revoked', revoked_ms = ?, reason = ? WHERE "
                    "serial = ? AND state = 'valid'",
                    v, 3, &changes, err);
    if (!rc && changes == 0) {
        int64_t n = 0;
        rc = store_query_int(p->st, "SELECT COUNT(*) FROM pki_certs WHERE serial = ?", v + 2, 1,
                             &n, err);
        if (!rc)
            rc = n ? core_err_set(err, CORE_E_CONFLICT, "certificate %s is already revoked", sn)
                   : core_err_set(err, CORE_E_NOTFOUND, "no certificate with serial '%s'", sn);
    }
    if (!rc) {
        rc = pki_crl_rebuild_locked(p, err);
        if (rc) /* the revocation is stored: make the next pki_crl() try again */
            p->crl_ms = 0;
        log_info("pki", "certificate revoked", LOG_STR("serial", sn),
                 LOG_STR("reason", pki_reason_name(reason)));
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int pki_crl(struct pki *p, bool pem, struct core_buf *out, struct core_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    if (!p->crl_der || core_now_ms() - p->crl_ms > CRL_REFRESH_MS)
        rc = pki_crl_rebuild_locked(p, err);
    if (!rc && (pem ? core_buf_adds(out, p->crl_pem)
                    : core_buf_add(out, p->crl_der, p->crl_der_len)))
        rc = core_err_set(err, CORE_E_TOO_BIG, "the CRL does not fit the buffer");
    pthread_mutex_unlock(&p->lock);
    return rc;
}
