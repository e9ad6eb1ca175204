/*
 * pki: the platform's internal certificate authority (OpenSSL 3). `pave ca init` creates a root
 * and an intermediate; the intermediate signs every certificate (service certificates on deploy,
 * ACME orders, `pave ca issue`). Private keys at rest are encrypted (PKCS#8 with AES-256 under a
 * passphrase or a key file, mode 0600); the root key can be exported and removed from the server,
 * which then keeps issuing with the intermediate. ECDSA P-256 by default, RSA 2048/3072/4096 on
 * request. Every issued certificate is in an inventory (serial, subject, SANs, not-after, owner,
 * profile, state) in the store; revocation updates a CRL published at a stable URL (/pki/crl.der
 * and .pem). docs/pki.md.
 *
 * The ACME server (RFC 8555, acme.c) is a client of this API: it validates orders and calls
 * pki_issue_csr(). Service certificates (service_certs.c) are issued on deploy with SANs for the
 * service's names and hosts, short-lived (default 24 h), renewed at two thirds of their lifetime
 * and revoked when the service or replica goes away.
 *
 * Threading: a struct pki may be used from several threads (issuance is serialized inside).
 * Ownership: strings and JSON returned are the caller's.
 */
#ifndef PAVE_PKI_H
#define PAVE_PKI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct store;
struct catalog_actor;
struct pki;

enum pki_key_type { PKI_KEY_EC_P256 = 0, PKI_KEY_RSA2048, PKI_KEY_RSA3072, PKI_KEY_RSA4096 };

struct pki_config {
    const char *data_dir;        /* keys and CA certs in DATA/pki (mode 0700) */
    struct store *st;            /* inventory (borrowed) */
    const char *passphrase;      /* protects private keys at rest; NULL: DATA/pki/key.pass
                                  * (32 random bytes, created on init, mode 0600) */
    int64_t default_lifetime_ms; /* 0: 24 h */
    const char *crl_url;         /* put in issued certificates' CRL distribution point; may be NULL */
};

/* Opens the CA in DATA/pki. CORE_E_NOTFOUND when `pave ca init` has not run yet. */
struct pki *pki_open(const struct pki_config *cfg, struct core_err *err);
void pki_close(struct pki *p);
/* Sets (or clears with NULL) the CRL distribution point put in certificates issued from now on,
 * e.g. once the server knows its bound port. Added by the CA helper. */
int pki_set_crl_url(struct pki *p, const char *url, struct core_err *err);

/* Creates a root (10 years) and an intermediate (5 years, pathlen 0) in DATA/pki; refuses when
 * they exist (CORE_E_CONFLICT) unless force. Audited by the caller. */
int pki_init(const struct pki_config *cfg, const char *org, enum pki_key_type kt, bool force,
             struct core_err *err);
/* Writes the root private key (encrypted PEM under export_pass) to out, and, when remove is set,
 * deletes it from the server (issuance keeps working with the intermediate). */
int pki_export_root_key(struct pki *p, const char *export_pass, bool remove, struct core_buf *out,
                        struct core_err *err);

/* PEM of the chain to serve with a leaf (intermediate, then root) and of the root alone. */
const char *pki_chain_pem(const struct pki *p);
const char *pki_root_pem(const struct pki *p);

struct pki_issue_request {
    const char *const *dns_names; /* SANs; at least one (or ips) */
    size_t ndns;
    const char *const *ips;
    size_t nips;
    int64_t lifetime_ms;          /* 0: the config default */
    const char *owner;            /* "service:payments-api", "acme:account/12", "user:alice" */
    const char *profile;          /* "server" (default), "client", "server+client" (mTLS) */
};

struct pki_issued {
    char serial[64];       /* hex */
    char *cert_pem;        /* leaf */
    char *chain_pem;       /* leaf + intermediate */
    char *key_pem;         /* only when the key was generated here (pki_issue) */
    int64_t not_before_ms, not_after_ms;
};
void pki_issued_release(struct pki_issued *i);

/* Generates a key (kt) and issues a certificate for it. */
int pki_issue(struct pki *p, const struct pki_issue_request *req, enum pki_key_type kt,
              struct pki_issued *out, struct core_err *err);
/* Issues for a PEM or DER CSR (its signature is checked; the names come from req, which the
 * caller has authorized — names in the CSR that are not in req are refused: CORE_E_PERM). */
int pki_issue_csr(struct pki *p, const void *csr, size_t len, const struct pki_issue_request *req,
                  struct pki_issued *out, struct core_err *err);

/* RFC 5280 reason code of a name ("keyCompromise", case-insensitive; NULL or "": 0), or -1 when
 * unknown; and the name of a code. Added by the CA helper for the CLI and the API. */
int pki_reason_code(const char *name);
const char *pki_reason_name(int code);

/* Revokes by serial (reason: RFC 5280 code; 0 unspecified) and regenerates the CRL. */
int pki_revoke(struct pki *p, const char *serial, int reason, struct core_err *err);
/* The current CRL (regenerated on revocation and at least daily), DER or PEM. */
int pki_crl(struct pki *p, bool pem, struct core_buf *out, struct core_err *err);

/* Inventory: {"items":[{serial, subject, sans[], owner, profile, state (valid|revoked|expired),
 * not_before, not_after, revoked_at}], "total"}; filter by owner prefix / state (NULL: all);
 * expiring_within_ms > 0 keeps only valid certificates expiring within that time. */
json_t *pki_list(struct pki *p, const char *owner_prefix, const char *state,
                 int64_t expiring_within_ms, struct core_err *err);
json_t *pki_show(struct pki *p, const char *serial, struct core_err *err);

/* Appends the inventory's Prometheus metrics (text format 0.0.4) to out:
 * pave_certificate_expiry_timestamp_seconds{serial,owner} and
 * pave_certificate_not_before_timestamp_seconds{serial,owner} for every valid, unexpired
 * certificate, and pave_certificates_total{state} (valid, expired, revoked). metrics.c; the
 * alert rules that use them are in docs/monitoring.md.
 * returns: 0, or CORE_E_NOMEM / CORE_E_TOO_BIG / the store's error. */
int pki_metrics(struct pki *p, struct core_buf *out);

/* ---- ACME server (acme.c, RFC 8555; docs/pki.md "ACME") ----
 *
 * Served by the API server under /acme/ without a platform token: every POST is a JWS signed by
 * the account key (ES256 or RS256). Resources: GET /acme/directory, HEAD|GET /acme/new-nonce,
 * POST /acme/new-account, /acme/new-order, /acme/acct/<id>[/orders], /acme/order/<id>[/finalize],
 * /acme/authz/<id>, /acme/chall/<id>, /acme/cert/<id>, /acme/revoke-cert. Every response carries
 * a fresh Replay-Nonce; nonces are single-use, expire after 30 minutes, at most 10000 live.
 * Identifiers are DNS names validated with http-01 (GET http://<name>:<http_port>/.well-known/
 * acme-challenge/<token>, on worker threads); finalize issues with pki_issue_csr() for exactly
 * the order's names. Thread safe; acme_free() waits for validations in progress.
 */
struct acme;

/* Policy hook: may `account` ("acme:account/<id>") get a certificate for `name` (lowercase)? */
typedef bool (*acme_name_allowed_fn)(void *arg, const char *account, const char *name);

/* The default policy: *.localhost, *.internal and *.<arg> when arg (the platform domain, a
 * const char *) is not NULL. */
bool acme_default_name_allowed(void *arg, const char *account, const char *name);

struct acme_config {
    struct pki *pki;                      /* borrowed */
    struct store *st;                     /* borrowed */
    int http_port;                        /* http-01 validation port; 0: 80 */
    const char *platform_domain;          /* for the default policy; may be NULL */
    const char *const *loopback_names;    /* names validated on 127.0.0.1 besides *.localhost */
    size_t nloopback;
    acme_name_allowed_fn name_allowed;    /* NULL: acme_default_name_allowed(platform_domain) */
    void *name_allowed_arg;
    int64_t cert_lifetime_ms;             /* 0: the CA's default */
    int workers;                          /* validation threads; 0: 4 */
    const char *base_url;                 /* e.g. "https://pave.example/acme"; NULL: built from
                                           * the request's Host header ("http://HOST/acme") */
};

/* returns: owned by caller (acme_free), or NULL and err. */
struct acme *acme_new(const struct acme_config *cfg, struct core_err *err);
void acme_free(struct acme *a);

#define ACME_MAX_BODY (64 * 1024)
#define ACME_MAX_HEADERS 8

typedef const char *(*acme_header_fn)(void *arg, const char *name);

struct acme_request {
    const char *method;
    const char *path;           /* below /acme, e.g. "/directory" */
    acme_header_fn header;      /* request header lookup (case-insensitive), may return NULL */
    void *header_arg;
    const char *body;
    size_t body_len;
    bool body_too_big;          /* the server dropped a body over ACME_MAX_BODY */
};

struct acme_response {
    int status;
    struct {
        char name[32];
        char value[700];
    } headers[ACME_MAX_HEADERS];
    int nheaders;
    struct core_buf body; /* initialized by the caller */
};

/* Handles one /acme request; always fills resp (errors as application/problem+json with an
 * urn:ietf:params:acme:error: type). returns: 0. */
int acme_handle(struct acme *a, const struct acme_request *req, struct acme_response *resp);

#endif
