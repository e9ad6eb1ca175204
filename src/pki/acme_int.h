/*
 * Internal to src/pki: the JSON Web Signature layer of the ACME server (RFC
 * 7515 as profiled by RFC 8555 §6.2) and the CSR reader finalize uses.
 * Everything here is pure parsing and cryptography (OpenSSL 3, jansson): no
 * store, no network, no globals, so the fuzzers and unit tests link jws.c with
 * the core alone.
 *
 * A request body is a flattened JWS {"protected","payload","signature"}.
 * jws_parse() decodes it and checks its shape (alg, nonce, url, exactly one of
 * jwk/kid); jws_verify() checks the signature against a key (the embedded jwk,
 * or the account's key the caller looked up by kid). Failures carry the ACME
 * problem type to answer with (`*ptype`, e.g. "malformed",
 * "badSignatureAlgorithm") and a message in `err`.
 *
 * Ownership: struct jws owns everything it points to; release it with
 * jws_release().
 */
#ifndef PAVE_ACME_INT_H
#define PAVE_ACME_INT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

/* Limits on untrusted input. */
#define JWS_MAX_BODY (64 * 1024)
#define JWS_MAX_NAMES 100 /* identifiers in one order / names in one CSR */

/* Base64url without padding (RFC 7515 §2). Decoding is strict: no padding, no
 * whitespace, only the URL-safe alphabet, and no length that cannot come from
 * encoding (len % 4 == 1). returns: 0, or CORE_E_INVAL / CORE_E_NOMEM /
 * CORE_E_TOO_BIG (the output holds its own cap). */
int jws_b64url_decode(const char *s, size_t len, struct core_buf *out);
int jws_b64url_encode(const void *data, size_t len, struct core_buf *out);

struct jws {
    char alg[16]; /* "ES256" or "RS256" */
    char *nonce;  /* protected "nonce" */
    char *url;    /* protected "url" */
    char *kid;    /* protected "kid" (account URL), or NULL */
    json_t *jwk;  /* protected "jwk", or NULL */
    struct core_buf payload;
    bool post_as_get; /* payload was the empty string */
    /* what the signature covers: ASCII(protected || '.' || payload) */
    struct core_buf signing_input;
    struct core_buf sig; /* decoded signature */
};

void jws_init(struct jws *j);
void jws_release(struct jws *j);

/* Parses a flattened JWS body (at most JWS_MAX_BODY bytes). Checks: the three
 * members are strings of valid base64url, the protected header is a JSON object
 * with alg (ES256/RS256; any other → "badSignatureAlgorithm"), nonce, url, and
 * exactly one of jwk/kid; the payload is empty or a JSON object. returns: 0, or
 * an error with *ptype set ("malformed", "badSignatureAlgorithm", "badNonce"
 * when the nonce is missing). */
int jws_parse(const char *body, size_t len, struct jws *j, const char **ptype,
              struct core_err *err);
/* Flags for jws_parse_ex. JWS_INNER: the inner JWS of a keyChange, which must carry a jwk and no
 * nonce (j->nonce is then ""). */
#define JWS_INNER 1u
int jws_parse_ex(const char *body, size_t len, unsigned flags, struct jws *j, const char **ptype,
                 struct core_err *err);

/* Builds a public key from a JWK: EC P-256 (crv, x, y of 32 bytes, point on the
 * curve) or RSA (n of 2048 to 8192 bits, e). returns: owned by caller
 * (EVP_PKEY_free), or NULL and err. */
EVP_PKEY *jws_jwk_key(const json_t *jwk, struct core_err *err);

/* Whether the algorithm fits the key: ES256 with a P-256 key, RS256 with an RSA
 * key. */
bool jws_alg_matches(const char *alg, const EVP_PKEY *key);

/* Verifies j's signature with key. returns: 0; CORE_E_INVAL with *ptype
 * "malformed" for a bad signature, "badSignatureAlgorithm" when alg does not
 * fit the key. */
int jws_verify(const struct jws *j, EVP_PKEY *key, const char **ptype, struct core_err *err);

/* RFC 7638 JWK thumbprint: base64url(SHA-256(canonical JSON of the required
 * members)). */
int jws_thumbprint(const json_t *jwk, char out[64], struct core_err *err);

/* A JWK (canonical members only) for a public key; used by tests and the bench
 * client. returns: owned by caller, or NULL. */
json_t *jws_key_to_jwk(const EVP_PKEY *key);

/* The DNS names a CSR asks for: the subject CN and every SAN dNSName,
 * lowercased, duplicates removed (at most JWS_MAX_NAMES). The CSR (DER) must
 * carry a valid self-signature; any IP or other SAN type, or no name at all, is
 * refused. returns: 0 and *names (each and the array owned by caller:
 * jws_names_free), or CORE_E_INVAL with a message for "badCSR". */
int jws_csr_names(const void *der, size_t len, char ***names, size_t *nnames, struct core_err *err);
void jws_names_free(char **names, size_t n);

/* Whether s is an acceptable DNS identifier: 1..253 chars, labels of [a-z0-9-]
 * (1..63, no leading or trailing hyphen), at least two labels, lowercase. No
 * wildcards. */
bool jws_dns_name_ok(const char *s);

#endif
