/* Internal to src/pki: the CA context shared by ca.c (keys, init, open), issue.c (leaf
 * certificates, inventory) and crl.c (revocation, the CRL). Nothing outside src/pki includes it. */
#ifndef PAVE_PKI_INT_H
#define PAVE_PKI_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>

#include "pki/pki.h"

#define PKI_KEY_FILE_MAX (64 * 1024)
#define PKI_PASS_MAX 1024
#define PKI_MAX_LIFETIME_MS ((int64_t)398 * 24 * 3600 * 1000) /* CA/B Forum ceiling */

struct pki {
    pthread_mutex_t lock; /* serializes issuance, revocation and CRL generation */
    char *dir;            /* DATA/pki */
    struct store *st;     /* borrowed; NULL: no inventory */
    char *crl_url;
    int64_t default_lifetime_ms;
    unsigned char pass[PKI_PASS_MAX];
    size_t passlen;
    X509 *root;
    X509 *inter;
    EVP_PKEY *inter_key;
    char *root_pem;
    char *chain_pem; /* intermediate, then root */
    char *inter_pem;
    /* the current CRL */
    unsigned char *crl_der;
    size_t crl_der_len;
    char *crl_pem;
    int64_t crl_ms;
    int64_t crl_number;
};

/* DATA/pki/<name> into out. */
void pki_path(const struct pki *p, const char *name, char *out, size_t outsz);
/* Generates a key of the given type. returns: owned by caller or NULL (err set). */
EVP_PKEY *pki_keygen(enum pki_key_type kt, struct core_err *err);
/* Writes key as encrypted PKCS#8 PEM (AES-256-CBC, PBKDF2) under pass, mode 0600, atomically. */
int pki_key_write(const char *path, EVP_PKEY *key, const unsigned char *pass, size_t passlen,
                  struct core_err *err);
/* Encrypted PKCS#8 PEM of key under pass into out (appended). */
int pki_key_pem(EVP_PKEY *key, const unsigned char *pass, size_t passlen, struct core_buf *out,
                struct core_err *err);
/* Reads an encrypted key file; refuses files that others can read (CORE_E_PERM), unencrypted
 * keys (CORE_E_INVAL) and a wrong passphrase (CORE_E_AUTH). CORE_E_NOTFOUND if absent. */
int pki_key_read(const char *path, const unsigned char *pass, size_t passlen, EVP_PKEY **out,
                 struct core_err *err);
/* PEM text of a certificate. returns: owned by caller (core_free) or NULL. */
char *pki_cert_pem(X509 *x);
/* Uppercase hex of a serial (no colons, no leading zero bytes) into out. */
int pki_serial_hex(const ASN1_INTEGER *sn, char out[64]);
/* Canonical form of a serial typed by a user ("3a:4f..", "0x3A4F"): uppercase hex, no colons,
 * no leading zeros. CORE_E_INVAL if it is not hex or too long. */
int pki_serial_normalize(const char *in, char out[64], struct core_err *err);
/* Milliseconds since the epoch of an ASN1_TIME. */
int64_t pki_asn1_time_ms(const ASN1_TIME *t);

/* A random positive 128-bit serial (first byte 0x40..0x7f, so always 16 bytes). */
int pki_serial_random(X509 *x, struct core_err *err);
/* Adds an extension in openssl.cnf syntax ("critical,CA:TRUE"); issuer NULL: self-signed. */
int pki_add_ext(X509 *x, X509 *issuer, int nid, const char *value, struct core_err *err);

/* Rebuilds the CRL from the inventory; caller holds p->lock. */
int pki_crl_rebuild_locked(struct pki *p, struct core_err *err);

#endif
