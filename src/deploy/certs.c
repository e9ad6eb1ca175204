/* Service certificates: one per deployed target (service, environment), issued
 * by the platform CA with SANs for the target's public host and internal names,
 * short-lived, renewed by the reconciler at two thirds of their lifetime,
 * served by HAProxy's TLS frontend (hitless, through the Runtime API) and
 * handed to new replicas for mutual TLS. Everything runs on the reconciler
 * thread; the only state that matters across restarts is
 * DATA/deploy/certs/<backend>.pem and the CA's inventory. See deploy_int.h for
 * the contract and docs/deploy.md "Certificates". */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "deploy/deploy.h"
#include "deploy/deploy_int.h"
#include "ingress/ingress.h"
#include "pki/pki.h"

#define RETRY_MS 10000      /* after a failed issuance */
#define REASON_SUPERSEDED 4 /* RFC 5280 */
#define REASON_CESSATION 5  /* cessationOfOperation: the target is gone */
#define MAX_NAMES 8

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *w = s;
    while (*w)
        *w++ = 0;
    core_free(s);
}

static void cert_clear(struct deploy_cert *c)
{
    wipe_free(c->chain_pem);
    wipe_free(c->key_pem);
    memset(c, 0, sizeof(*c));
}

static int64_t lifetime(const struct deploy_controller *dc)
{
    return dc->cfg.cert_lifetime_ms > 0 ? dc->cfg.cert_lifetime_ms : DEPLOY_CERT_LIFETIME_MS;
}

/* Two thirds of the certificate's own lifetime have passed (or it is gone). */
static bool renewal_due(const struct deploy_cert *c, int64_t now)
{
    if (!c->serial[0])
        return true;
    return now >= c->issued_ms + (c->not_after_ms - c->issued_ms) * 2 / 3;
}

static void file_of(const struct deploy_controller *dc, const char *backend, char *out,
                    size_t outsz)
{
    snprintf(out, outsz, "%s/%s.pem", dc->certs.dir, backend);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a,b,c" of the names, sorted, so issued and parsed sets compare equal. */
static void join_sorted(const char **names, size_t n, char *out, size_t outsz)
{
    qsort(names, n, sizeof(*names), cmp_str);
    out[0] = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + len, outsz - len, "%s%s", i ? "," : "", names[i]);
        if (w < 0 || (size_t)w >= outsz - len)
            break;
        len += (size_t)w;
    }
}

/* Serial, SANs and validity of the first certificate of pem. */
static int parse_cert(const char *pem, struct deploy_cert *c)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    int rc = CORE_E_INVAL;
    GENERAL_NAMES *gens = NULL;
    char *hex = NULL;
    BIGNUM *bn = NULL;
    if (!x)
        goto out;
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;
    if (!hex || strlen(hex) >= sizeof(c->serial))
        goto out;
    snprintf(c->serial, sizeof(c->serial), "%s", hex);
    struct tm tm;
    if (!ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        goto out;
    c->not_after_ms = (int64_t)timegm(&tm) * 1000;
    if (!ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm))
        goto out;
    /* the CA backdates notBefore by a minute for clock skew (docs/pki.md) */
    c->issued_ms = (int64_t)timegm(&tm) * 1000 + 60000;
    if (c->issued_ms >= c->not_after_ms)
        c->issued_ms = c->not_after_ms - 1000;
    char buf[MAX_NAMES][256];
    const char *names[MAX_NAMES];
    size_t n = 0;
    gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && n < MAX_NAMES; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            snprintf(buf[n], sizeof(buf[n]), "%.*s", ASN1_STRING_length(g->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 4) {
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
            snprintf(buf[n], sizeof(buf[n]), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        } else {
            continue;
        }
        names[n] = buf[n];
        n++;
    }
    join_sorted(names, n, c->sans, sizeof(c->sans));
    rc = 0;
out:
    GENERAL_NAMES_free(gens);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);
    BIO_free(b);
    return rc;
}

/* Splits a cert+chain+key file into c->chain_pem and c->key_pem. */
static int split_pem(const char *pem, struct deploy_cert *c)
{
    const char *k = strstr(pem, "PRIVATE KEY-----");
    if (!k)
        return CORE_E_INVAL;
    while (k > pem && strncmp(k, "-----BEGIN", 10) != 0)
        k--;
    if (strncmp(k, "-----BEGIN", 10) != 0)
        return CORE_E_INVAL;
    c->chain_pem = core_malloc((size_t)(k - pem) + 1);
    c->key_pem = core_strdup(k);
    if (!c->chain_pem || !c->key_pem)
        return CORE_E_NOMEM;
    memcpy(c->chain_pem, pem, (size_t)(k - pem));
    c->chain_pem[k - pem] = 0;
    return 0;
}

static char *file_pem(const struct deploy_cert *c)
{
    size_t n = strlen(c->chain_pem) + strlen(c->key_pem) + 2;
    char *pem = core_malloc(n);
    if (pem)
        snprintf(pem, n, "%s%s%s", c->chain_pem,
                 c->chain_pem[0] && c->chain_pem[strlen(c->chain_pem) - 1] != '\n' ? "\n" : "",
                 c->key_pem);
    return pem;
}

static void revoke_serial(struct deploy_controller *dc, const char *serial, int reason,
                          const char *why)
{
    struct core_err err = {0};
    if (!dc->cfg.pki || !serial[0])
        return;
    if (pki_revoke(dc->cfg.pki, serial, reason, &err) && err.code != CORE_E_CONFLICT)
        log_warn("deploy", "cannot revoke a service certificate", LOG_STR("serial", serial),
                 LOG_STR("error", err.msg));
    else
        log_info("deploy", "service certificate revoked", LOG_STR("serial", serial),
                 LOG_STR("reason", why));
}

/* The DNS names (for SNI) and all SANs of a target. Returns the number of DNS
 * names. */
static size_t target_names(const char *service, const char *env, const char *host,
                           char buf[MAX_NAMES][256], const char *dns[MAX_NAMES])
{
    size_t n = 0;
    if (host && *host && strlen(host) < 254)
        snprintf(buf[n++], 256, "%s", host);
    snprintf(buf[n++], 256, "%s.%s.pave.internal", service, env);
    snprintf(buf[n++], 256, "%s.pave.internal", service);
    snprintf(buf[n++], 256, "localhost");
    for (size_t i = 0; i < n; i++)
        dns[i] = buf[i];
    return n;
}

/* Issues a certificate for names/ip into c (replacing what it held). */
static int issue(struct deploy_controller *dc, struct deploy_cert *c, const char *owner,
                 const char *profile, const char *const *dns, size_t ndns, struct core_err *err)
{
    static const char *const ips[] = {"127.0.0.1"};
    struct pki_issue_request req = {.dns_names = dns,
                                    .ndns = ndns,
                                    .ips = ips,
                                    .nips = 1,
                                    .lifetime_ms = lifetime(dc),
                                    .owner = owner,
                                    .profile = profile};
    struct pki_issued out = {0};
    int64_t now = core_now_ms();
    int rc = pki_issue(dc->cfg.pki, &req, PKI_KEY_EC_P256, &out, err);
    if (rc)
        goto out;
    char *chain = core_strdup(out.chain_pem), *key = core_strdup(out.key_pem);
    if (!chain || !key) {
        wipe_free(key);
        core_free(chain);
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    wipe_free(c->chain_pem);
    wipe_free(c->key_pem);
    c->chain_pem = chain;
    c->key_pem = key;
    snprintf(c->serial, sizeof(c->serial), "%s", out.serial);
    c->issued_ms = now;
    c->not_after_ms = out.not_after_ms;
    const char *names[MAX_NAMES + 1];
    for (size_t i = 0; i < ndns && i < MAX_NAMES; i++)
        names[i] = dns[i];
    names[ndns] = ips[0];
    join_sorted(names, ndns + 1, c->sans, sizeof(c->sans));
out:
    pki_issued_release(&out);
    return rc;
}

static bool tls_on(const struct deploy_controller *dc)
{
    return dc->ing && ingress_tls_port(dc->ing) > 0;
}

/* Writes the target's file and, with a TLS frontend, serves it for its DNS
 * names (not "localhost", which every target has). */
static int publish(struct deploy_controller *dc, struct deploy_cert *c, const char *const *dns,
                   size_t ndns, struct core_err *err)
{
    char file[4400];
    file_of(dc, c->backend, file, sizeof(file));
    char *pem = file_pem(c);
    if (!pem)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    int rc;
    if (tls_on(dc)) {
        const char *sni[MAX_NAMES];
        size_t nsni = 0;
        for (size_t i = 0; i < ndns; i++)
            if (strcmp(dns[i], "localhost") != 0)
                sni[nsni++] = dns[i];
        rc = ingress_tls_cert_set(dc->ing, file, pem, sni, nsni, err);
    } else {
        rc = core_file_write_atomic(file, pem, strlen(pem), 0600, err);
    }
    wipe_free(pem);
    if (rc == 0)
        c->served = true;
    return rc;
}

static struct deploy_cert *find(struct deploy_controller *dc, const char *backend)
{
    for (size_t i = 0; i < dc->certs.n; i++)
        if (strcmp(dc->certs.v[i].backend, backend) == 0)
            return &dc->certs.v[i];
    return NULL;
}

static void remove_at(struct deploy_controller *dc, size_t idx)
{
    cert_clear(&dc->certs.v[idx]);
    memmove(&dc->certs.v[idx], &dc->certs.v[idx + 1],
            (dc->certs.n - idx - 1) * sizeof(*dc->certs.v));
    dc->certs.n--;
}

/* Revokes everything the entry holds, stops serving it, deletes its file and
 * the entry. */
static void drop(struct deploy_controller *dc, struct deploy_cert *c, const char *why)
{
    struct core_err err = {0};
    char file[4400];
    file_of(dc, c->backend, file, sizeof(file));
    revoke_serial(dc, c->serial, REASON_CESSATION, why);
    for (size_t i = 0; i < DEPLOY_CERT_SUPERSEDED; i++)
        revoke_serial(dc, c->superseded[i], REASON_CESSATION, why);
    if (tls_on(dc) && ingress_tls_cert_remove(dc->ing, file, &err) && err.code != CORE_E_NOTFOUND)
        log_warn("deploy", "cannot stop serving a certificate", LOG_STR("backend", c->backend),
                 LOG_STR("error", err.msg));
    unlink(file);
    log_info("deploy", "service certificate dropped", LOG_STR("backend", c->backend),
             LOG_STR("reason", why));
    remove_at(dc, (size_t)(c - dc->certs.v));
}

static struct deploy_cert *add(struct deploy_controller *dc, const char *backend)
{
    struct deploy_cert *v = core_realloc(dc->certs.v, (dc->certs.n + 1) * sizeof(*v));
    if (!v)
        return NULL;
    dc->certs.v = v;
    struct deploy_cert *c = &v[dc->certs.n++];
    memset(c, 0, sizeof(*c));
    snprintf(c->backend, sizeof(c->backend), "%s", backend);
    return c;
}

/* Loads DATA/deploy/certs/<backend>.pem files an earlier run left; unreadable
 * ones go. */
static void load_dir(struct deploy_controller *dc)
{
    DIR *d = opendir(dc->certs.dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n < 5 || n - 4 >= 64 || strcmp(e->d_name + n - 4, ".pem"))
            continue;
        char backend[64], file[4400], *text = NULL;
        size_t len = 0;
        snprintf(backend, sizeof(backend), "%.*s", (int)(n - 4), e->d_name);
        file_of(dc, backend, file, sizeof(file));
        struct core_err err = {0};
        struct deploy_cert tmp = {0};
        if (core_file_read(file, 256 * 1024, &text, &len, &err) == 0 &&
            parse_cert(text, &tmp) == 0 && split_pem(text, &tmp) == 0 && !find(dc, backend)) {
            struct deploy_cert *c = add(dc, backend);
            if (c) {
                snprintf(tmp.backend, sizeof(tmp.backend), "%s", backend);
                *c = tmp;
                memset(&tmp, 0, sizeof(tmp));
            }
        } else {
            log_warn("deploy", "unreadable service certificate file; removing it",
                     LOG_STR("file", file));
            unlink(file);
        }
        cert_clear(&tmp);
        wipe_free(text);
    }
    closedir(d);
}

static const char *const ingress_names[] = {"localhost", "ingress.pave.internal"};

int deploy_certs_start(struct deploy_controller *dc, bool tls, char **default_pem,
                       struct core_err *err)
{
    *default_pem = NULL;
    snprintf(dc->certs.dir, sizeof(dc->certs.dir), "%s/deploy/certs", dc->data_dir);
    int rc = core_mkdir_p(dc->certs.dir, 0700, err);
    if (rc || !dc->cfg.pki)
        return rc;
    load_dir(dc);
    if (!tls)
        return 0;
    /* the default certificate HAProxy needs to start: keep the one on disk while
     * it is fresh */
    char path[4400], *text = NULL;
    size_t len = 0;
    struct deploy_cert *c = &dc->certs.ingress;
    snprintf(path, sizeof(path), "%s/ingress/tls-default.pem", dc->data_dir);
    if (core_file_read(path, 256 * 1024, &text, &len, NULL) == 0 && parse_cert(text, c) == 0 &&
        split_pem(text, c) == 0 && !renewal_due(c, core_now_ms())) {
        wipe_free(text);
        return 0;
    }
    wipe_free(text);
    cert_clear(c);
    if ((rc = issue(dc, c, "ingress:default", "server", ingress_names, 2, err))) {
        core_err_wrap(err, "issuing the load balancer's default certificate");
        return rc;
    }
    if (!(*default_pem = file_pem(c)))
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    return 0;
}

void deploy_certs_release(struct deploy_controller *dc)
{
    for (size_t i = 0; i < dc->certs.n; i++)
        cert_clear(&dc->certs.v[i]);
    core_free(dc->certs.v);
    dc->certs.v = NULL;
    dc->certs.n = 0;
    cert_clear(&dc->certs.ingress);
}

static bool serial_in(const char *serial, const char *const *in_use, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (in_use[i] && strcmp(in_use[i], serial) == 0)
            return true;
    return false;
}

void deploy_certs_target(struct deploy_controller *dc, const char *service, const char *env,
                         const char *backend, const char *host, bool wanted,
                         const char *const *in_use, size_t nin_use)
{
    struct deploy_cert *c = find(dc, backend);
    if (!wanted) {
        if (c)
            drop(dc, c, "no replicas wanted");
        return;
    }
    if (!dc->cfg.pki)
        return;
    char buf[MAX_NAMES][256], want[1200];
    const char *dns[MAX_NAMES], *sorted[MAX_NAMES + 1];
    size_t ndns = target_names(service, env, host, buf, dns);
    for (size_t i = 0; i < ndns; i++)
        sorted[i] = dns[i];
    sorted[ndns] = "127.0.0.1";
    join_sorted(sorted, ndns + 1, want, sizeof(want));
    if (!c && !(c = add(dc, backend)))
        return;
    c->seen = true;
    int64_t now = core_now_ms();
    struct core_err err = {0};
    bool due = renewal_due(c, now) || strcmp(c->sans, want) != 0;
    if (due && now >= c->retry_ms) {
        char owner[160], old[64];
        snprintf(owner, sizeof(owner), "service:%s/%s", service, env);
        snprintf(old, sizeof(old), "%s", c->serial);
        if (issue(dc, c, owner, "server+client", dns, ndns, &err)) {
            c->retry_ms = now + RETRY_MS;
            log_warn("deploy", "cannot issue a service certificate", LOG_STR("backend", backend),
                     LOG_STR("error", err.msg));
            return;
        }
        log_info("deploy", old[0] ? "service certificate renewed" : "service certificate issued",
                 LOG_STR("backend", backend), LOG_STR("serial", c->serial),
                 LOG_STR("previous", old));
        c->served = false;
        if (old[0]) {
            /* replicas may still hold the old one: revoked once none does (below) */
            size_t slot = 0;
            while (slot < DEPLOY_CERT_SUPERSEDED && c->superseded[slot][0])
                slot++;
            if (slot == DEPLOY_CERT_SUPERSEDED) {
                revoke_serial(dc, c->superseded[0], REASON_SUPERSEDED, "too many superseded");
                memmove(c->superseded[0], c->superseded[1],
                        sizeof(c->superseded[0]) * (DEPLOY_CERT_SUPERSEDED - 1));
                slot = DEPLOY_CERT_SUPERSEDED - 1;
            }
            snprintf(c->superseded[slot], sizeof(c->superseded[slot]), "%s", old);
        }
    }
    if (c->serial[0] && !c->served && publish(dc, c, dns, ndns, &err))
        log_warn("deploy", "cannot publish a service certificate", LOG_STR("backend", backend),
                 LOG_STR("error", err.msg));
    for (size_t i = 0; i < DEPLOY_CERT_SUPERSEDED; i++) {
        if (!c->superseded[i][0] || serial_in(c->superseded[i], in_use, nin_use))
            continue;
        revoke_serial(dc, c->superseded[i], REASON_SUPERSEDED, "superseded, no replica holds it");
        c->superseded[i][0] = 0;
    }
}

const struct deploy_cert *deploy_certs_get(struct deploy_controller *dc, const char *backend)
{
    struct deploy_cert *c = find(dc, backend);
    return c && c->serial[0] && c->chain_pem && c->key_pem ? c : NULL;
}

void deploy_certs_sweep(struct deploy_controller *dc)
{
    for (size_t i = dc->certs.n; i-- > 0;) {
        if (dc->certs.v[i].seen)
            continue;
        if (dc->certs.v[i].serial[0])
            drop(dc, &dc->certs.v[i], "service gone");
        else
            remove_at(dc, i);
    }
    for (size_t i = 0; i < dc->certs.n; i++)
        dc->certs.v[i].seen = false;
    struct deploy_cert *c = &dc->certs.ingress;
    int64_t now = core_now_ms();
    if (!dc->cfg.pki || !tls_on(dc) || !c->serial[0] || !renewal_due(c, now) || now < c->retry_ms)
        return;
    struct core_err err = {0};
    char old[64];
    snprintf(old, sizeof(old), "%s", c->serial);
    char *pem = NULL;
    if (issue(dc, c, "ingress:default", "server", ingress_names, 2, &err) || !(pem = file_pem(c)) ||
        ingress_tls_default_set(dc->ing, pem, &err)) {
        c->retry_ms = now + RETRY_MS;
        log_warn("deploy", "cannot renew the load balancer's default certificate",
                 LOG_STR("error", err.msg));
    } else {
        revoke_serial(dc, old, REASON_SUPERSEDED, "default certificate renewed");
    }
    wipe_free(pem);
}
