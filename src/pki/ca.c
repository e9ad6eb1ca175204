/* The CA itself: creating the root and the intermediate, keys at rest (encrypted PKCS#8, mode
 * 0600), opening the CA, exporting and removing the root key. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pki/pki_int.h"

#define ROOT_YEARS 10
#define INTER_YEARS 5
#define YEAR_MS ((int64_t)365 * 24 * 3600 * 1000)

void pki_path(const struct pki *p, const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", p->dir, name);
}

EVP_PKEY *pki_keygen(enum pki_key_type kt, struct core_err *err)
{
    EVP_PKEY *k = NULL;
    switch (kt) {
    case PKI_KEY_EC_P256: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    case PKI_KEY_RSA2048: k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); break;
    case PKI_KEY_RSA3072: k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072); break;
    case PKI_KEY_RSA4096: k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096); break;
    default: core_err_set(err, CORE_E_INVAL, "unknown key type %d", (int)kt); return NULL;
    }
    if (!k)
        core_err_set(err, CORE_E_INTERNAL, "cannot generate a key");
    return k;
}

int pki_key_pem(EVP_PKEY *key, const unsigned char *pass, size_t passlen, struct core_buf *out,
                struct core_err *err)
{
    int rc = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    /* With a cipher, OpenSSL 3 writes PKCS#8 EncryptedPrivateKeyInfo (PBES2 with PBKDF2). */
    if (!bio || !PEM_write_bio_PrivateKey(bio, key, EVP_aes_256_cbc(), pass, (int)passlen, NULL,
                                          NULL)) {
        rc = core_err_set(err, CORE_E_INTERNAL, "cannot encrypt the private key");
        goto out;
    }
    char *pem = NULL;
    long n = BIO_get_mem_data(bio, &pem);
    if (core_buf_add(out, pem, (size_t)n))
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
    OPENSSL_cleanse(pem, (size_t)n);
out:
    BIO_free(bio);
    return rc;
}

int pki_key_write(const char *path, EVP_PKEY *key, const unsigned char *pass, size_t passlen,
                  struct core_err *err)
{
    struct core_buf b;
    core_buf_init(&b, 0);
    int rc = pki_key_pem(key, pass, passlen, &b, err);
    if (!rc)
        rc = core_file_write_atomic(path, b.data, b.len, 0600, err);
    if (!rc)
        chmod(path, 0600);
    core_buf_release(&b);
    return rc;
}

/* Reads a small secret file (a key or the passphrase) refusing group/other access. */
static int read_private_file(const char *path, const char *what, char **out, size_t *len,
                             struct core_err *err)
{
    int rc = 0;
    char *text = NULL;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return core_err_set(err, errno == ENOENT ? CORE_E_NOTFOUND : CORE_E_IO,
                            "cannot open the %s '%s': %s", what, path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = core_err_set(err, CORE_E_IO, "the %s '%s' is not a regular file", what, path);
        goto out;
    }
    if (sb.st_mode & 077) {
        rc = core_err_set(err, CORE_E_PERM,
                          "the %s '%s' is accessible by others (mode %03o); run 'chmod 600 %s'",
                          what, path, (unsigned)(sb.st_mode & 0777), path);
        goto out;
    }
    if (sb.st_size <= 0 || sb.st_size > PKI_KEY_FILE_MAX) {
        rc = core_err_set(err, CORE_E_INVAL, "the %s '%s' has an unexpected size", what, path);
        goto out;
    }
    if (!(text = core_malloc((size_t)sb.st_size + 1))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    ssize_t n = read(fd, text, (size_t)sb.st_size);
    if (n != (ssize_t)sb.st_size) {
        rc = core_err_set(err, CORE_E_IO, "cannot read the %s '%s'", what, path);
        goto out;
    }
    text[n] = 0;
    *out = text;
    *len = (size_t)n;
    text = NULL;
out:
    if (text)
        OPENSSL_cleanse(text, (size_t)sb.st_size);
    core_free(text);
    close(fd);
    return rc;
}

struct pass_arg {
    const unsigned char *pass;
    size_t len;
};

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    const struct pass_arg *a = u;
    if (!a || a->len > (size_t)size)
        return -1;
    memcpy(buf, a->pass, a->len);
    return (int)a->len;
}

int pki_key_read(const char *path, const unsigned char *pass, size_t passlen, EVP_PKEY **out,
                 struct core_err *err)
{
    char *text = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    *out = NULL;
    int rc = read_private_file(path, "CA key", &text, &len, err);
    if (rc)
        return rc;
    if (!strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
        rc = core_err_set(err, CORE_E_INVAL,
                          "the CA key '%s' is not an encrypted PKCS#8 key; refusing to use a key "
                          "stored in the clear",
                          path);
        goto out;
    }
    struct pass_arg a = {pass, passlen};
    if (!(bio = BIO_new_mem_buf(text, (int)len))) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    if (!(*out = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &a))) {
        ERR_clear_error();
        rc = core_err_set(err, CORE_E_AUTH,
                          "cannot decrypt the CA key '%s' (wrong passphrase or damaged file)",
                          path);
        goto out;
    }
out:
    BIO_free(bio);
    if (text)
        OPENSSL_cleanse(text, len);
    core_free(text);
    return rc;
}

char *pki_cert_pem(X509 *x)
{
    char *s = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio && PEM_write_bio_X509(bio, x)) {
        char *pem = NULL;
        long n = BIO_get_mem_data(bio, &pem);
        s = core_strndup(pem, (size_t)n);
    }
    BIO_free(bio);
    return s;
}

int pki_serial_hex(const ASN1_INTEGER *sn, char out[64])
{
    out[0] = 0;
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    int rc = hex && strlen(hex) < 64 ? 0 : CORE_E_INVAL;
    if (!rc)
        snprintf(out, 64, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    return rc;
}

int pki_serial_normalize(const char *in, char out[64], struct core_err *err)
{
    size_t n = 0;
    if (!in)
        return core_err_set(err, CORE_E_INVAL, "a serial is required");
    if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
        in += 2;
    bool leading = true;
    for (const char *c = in; *c; c++) {
        if (*c == ':')
            continue;
        char ch = *c;
        if (ch >= 'a' && ch <= 'f')
            ch = (char)(ch - 'a' + 'A');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F')))
            return core_err_set(err, CORE_E_INVAL, "serial '%.80s' is not hexadecimal", in);
        if (leading && ch == '0')
            continue;
        leading = false;
        if (n >= 62)
            return core_err_set(err, CORE_E_INVAL, "serial '%.80s' is too long", in);
        out[n++] = ch;
    }
    if (n == 0)
        return core_err_set(err, CORE_E_INVAL, "serial '%.80s' is empty or zero", in);
    /* BN_bn2hex prints whole bytes */
    if (n % 2) {
        memmove(out + 1, out, n);
        out[0] = '0';
        n++;
    }
    out[n] = 0;
    return 0;
}

int64_t pki_asn1_time_ms(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

int pki_serial_random(X509 *x, struct core_err *err)
{
    unsigned char b[16];
    if (core_random_bytes(b, sizeof(b)))
        return core_err_set(err, CORE_E_IO, "cannot generate a serial number");
    b[0] = (unsigned char)((b[0] & 0x3f) | 0x40);
    BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int rc = ai && X509_set_serialNumber(x, ai) ? 0 : CORE_E_NOMEM;
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return rc ? core_err_set(err, rc, "cannot set the serial number") : 0;
}

int pki_add_ext(X509 *x, X509 *issuer, int nid, const char *value, struct core_err *err)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (!ok) {
        ERR_clear_error();
        return core_err_set(err, CORE_E_INTERNAL, "cannot add the %s extension '%s'",
                            OBJ_nid2sn(nid), value);
    }
    return 0;
}

/* ---- passphrase ---- */

static int load_pass(struct pki *p, const struct pki_config *cfg, bool create,
                     struct core_err *err)
{
    if (cfg->passphrase) {
        size_t n = strlen(cfg->passphrase);
        if (n == 0 || n > PKI_PASS_MAX)
            return core_err_set(err, CORE_E_INVAL, "the CA passphrase must be 1 to %d bytes",
                                PKI_PASS_MAX);
        memcpy(p->pass, cfg->passphrase, n);
        p->passlen = n;
        return 0;
    }
    char path[4200];
    pki_path(p, "key.pass", path, sizeof(path));
    char *text = NULL;
    size_t len = 0;
    int rc = read_private_file(path, "CA passphrase file", &text, &len, err);
    if (rc == CORE_E_NOTFOUND && create) {
        /* 32 random bytes, written as hex so `openssl pkey -passin file:key.pass` reads it */
        char hex[65];
        if (core_random_hex(hex, 32))
            return core_err_set(err, CORE_E_IO, "cannot generate the CA passphrase");
        char line[66];
        snprintf(line, sizeof(line), "%s\n", hex);
        rc = core_file_write_atomic(path, line, 65, 0600, err);
        OPENSSL_cleanse(line, sizeof(line));
        if (!rc) {
            memcpy(p->pass, hex, 64);
            p->passlen = 64;
        }
        OPENSSL_cleanse(hex, sizeof(hex));
        return rc;
    }
    if (rc)
        return rc;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len == 0 || len > PKI_PASS_MAX) {
        rc = core_err_set(err, CORE_E_INVAL, "the CA passphrase file '%s' is empty or too long",
                          path);
    } else {
        memcpy(p->pass, text, len);
        p->passlen = len;
    }
    OPENSSL_cleanse(text, len);
    core_free(text);
    return rc;
}

/* ---- CA certificates ---- */

static X509 *make_ca_cert(const char *org, const char *cn, EVP_PKEY *key, X509 *issuer,
                          EVP_PKEY *issuer_key, int years, bool is_root, struct core_err *err)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (!x || !name) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto fail;
    }
    time_t now = time(NULL);
    if (!X509_set_version(x, X509_VERSION_3) || pki_serial_random(x, err) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), now - 60) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), now + (time_t)(years * (YEAR_MS / 1000))) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) ||
        !X509_set_pubkey(x, key)) {
        core_err_set(err, CORE_E_INTERNAL, "cannot build the %s certificate", cn);
        goto fail;
    }
    if (pki_add_ext(x, issuer, NID_basic_constraints,
                    is_root ? "critical,CA:TRUE" : "critical,CA:TRUE,pathlen:0", err) ||
        pki_add_ext(x, issuer, NID_key_usage,
                    is_root ? "critical,keyCertSign,cRLSign"
                            : "critical,digitalSignature,keyCertSign,cRLSign",
                    err) ||
        pki_add_ext(x, issuer, NID_subject_key_identifier, "hash", err) ||
        pki_add_ext(x, issuer, NID_authority_key_identifier, "keyid:always", err))
        goto fail;
    if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256())) {
        core_err_set(err, CORE_E_INTERNAL, "cannot sign the %s certificate", cn);
        goto fail;
    }
    X509_NAME_free(name);
    return x;
fail:
    ERR_clear_error();
    X509_NAME_free(name);
    X509_free(x);
    return NULL;
}

static int write_cert(const char *path, X509 *x, struct core_err *err)
{
    char *pem = pki_cert_pem(x);
    if (!pem)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    int rc = core_file_write_atomic(path, pem, strlen(pem), 0644, err);
    core_free(pem);
    return rc;
}

static X509 *read_cert(const char *path, struct core_err *err)
{
    char *text = NULL;
    size_t len = 0;
    X509 *x = NULL;
    int rc = core_file_read(path, PKI_KEY_FILE_MAX, &text, &len, err);
    if (rc)
        return NULL;
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (!bio || !(x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        ERR_clear_error();
        core_err_set(err, CORE_E_INVAL, "'%s' holds no PEM certificate", path);
    }
    BIO_free(bio);
    core_free(text);
    return x;
}

static int pki_dir(const struct pki_config *cfg, char *out, size_t outsz, struct core_err *err)
{
    if (!cfg || !cfg->data_dir || !*cfg->data_dir)
        return core_err_set(err, CORE_E_INVAL, "the CA needs a data directory");
    int n = snprintf(out, outsz, "%s/pki", cfg->data_dir);
    if (n < 0 || (size_t)n >= outsz)
        return core_err_set(err, CORE_E_INVAL, "the data directory path is too long");
    return 0;
}

int pki_init(const struct pki_config *cfg, const char *org, enum pki_key_type kt, bool force,
             struct core_err *err)
{
    char dir[4096], path[4200];
    int rc = pki_dir(cfg, dir, sizeof(dir), err);
    if (rc)
        return rc;
    if (!org || !*org || strlen(org) > 64 || !core_utf8_valid(org, strlen(org)))
        return core_err_set(err, CORE_E_INVAL, "the organization name must be 1 to 64 bytes");
    struct pki tmp = {.dir = dir};
    EVP_PKEY *rk = NULL, *ik = NULL;
    X509 *root = NULL, *inter = NULL;
    pki_path(&tmp, "intermediate.pem", path, sizeof(path));
    if (!force && access(path, F_OK) == 0)
        return core_err_set(err, CORE_E_CONFLICT,
                            "the CA in '%s' already exists (use --force to replace it; every "
                            "certificate it issued stops chaining to the new root)",
                            dir);
    if ((rc = core_mkdir_p(dir, 0700, err)))
        return rc;
    chmod(dir, 0700);
    if ((rc = load_pass(&tmp, cfg, true, err)))
        goto out;
    char cn[160];
    rc = CORE_E_INTERNAL;
    if (!(rk = pki_keygen(kt, err)) || !(ik = pki_keygen(kt, err)))
        goto out;
    snprintf(cn, sizeof(cn), "%s Root CA", org);
    if (!(root = make_ca_cert(org, cn, rk, NULL, NULL, ROOT_YEARS, true, err)))
        goto out;
    snprintf(cn, sizeof(cn), "%s Intermediate CA", org);
    if (!(inter = make_ca_cert(org, cn, ik, root, rk, INTER_YEARS, false, err)))
        goto out;
    /* Keys first, certificates last: intermediate.pem is what marks the CA as initialized. */
    pki_path(&tmp, "root.key", path, sizeof(path));
    if ((rc = pki_key_write(path, rk, tmp.pass, tmp.passlen, err)))
        goto out;
    pki_path(&tmp, "intermediate.key", path, sizeof(path));
    if ((rc = pki_key_write(path, ik, tmp.pass, tmp.passlen, err)))
        goto out;
    pki_path(&tmp, "root.pem", path, sizeof(path));
    if ((rc = write_cert(path, root, err)))
        goto out;
    pki_path(&tmp, "intermediate.pem", path, sizeof(path));
    if ((rc = write_cert(path, inter, err)))
        goto out;
    log_info("pki", "certificate authority created", LOG_STR("dir", dir), LOG_STR("org", org));
    rc = 0;
out:
    OPENSSL_cleanse(tmp.pass, sizeof(tmp.pass));
    EVP_PKEY_free(rk);
    EVP_PKEY_free(ik);
    X509_free(root);
    X509_free(inter);
    return rc;
}

struct pki *pki_open(const struct pki_config *cfg, struct core_err *err)
{
    char dir[4096], path[4200];
    if (pki_dir(cfg, dir, sizeof(dir), err))
        return NULL;
    struct pki *p = core_calloc(1, sizeof(*p));
    if (!p || !(p->dir = core_strdup(dir))) {
        core_free(p);
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->st = cfg->st;
    p->default_lifetime_ms =
        cfg->default_lifetime_ms > 0 ? cfg->default_lifetime_ms : (int64_t)24 * 3600 * 1000;
    pki_path(p, "intermediate.pem", path, sizeof(path));
    if (access(path, F_OK) != 0) {
        core_err_set(err, CORE_E_NOTFOUND,
                     "no certificate authority in '%s'; run 'pave ca init'", dir);
        goto fail;
    }
    if (cfg->crl_url && pki_set_crl_url(p, cfg->crl_url, err))
        goto fail;
    if (load_pass(p, cfg, false, err))
        goto fail;
    if (!(p->inter = read_cert(path, err)))
        goto fail;
    pki_path(p, "root.pem", path, sizeof(path));
    if (!(p->root = read_cert(path, err)))
        goto fail;
    pki_path(p, "intermediate.key", path, sizeof(path));
    if (pki_key_read(path, p->pass, p->passlen, &p->inter_key, err))
        goto fail;
    if (X509_check_private_key(p->inter, p->inter_key) != 1) {
        ERR_clear_error();
        core_err_set(err, CORE_E_INVAL, "the intermediate key does not match its certificate");
        goto fail;
    }
    p->root_pem = pki_cert_pem(p->root);
    p->inter_pem = pki_cert_pem(p->inter);
    if (!p->root_pem || !p->inter_pem) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto fail;
    }
    size_t n = strlen(p->inter_pem) + strlen(p->root_pem) + 1;
    if (!(p->chain_pem = core_malloc(n))) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto fail;
    }
    snprintf(p->chain_pem, n, "%s%s", p->inter_pem, p->root_pem);
    pthread_mutex_lock(&p->lock);
    int rc = pki_crl_rebuild_locked(p, err);
    pthread_mutex_unlock(&p->lock);
    if (rc)
        goto fail;
    return p;
fail:
    pki_close(p);
    return NULL;
}

void pki_close(struct pki *p)
{
    if (!p)
        return;
    OPENSSL_cleanse(p->pass, sizeof(p->pass));
    X509_free(p->root);
    X509_free(p->inter);
    EVP_PKEY_free(p->inter_key);
    core_free(p->root_pem);
    core_free(p->inter_pem);
    core_free(p->chain_pem);
    core_free(p->crl_der);
    core_free(p->crl_pem);
    core_free(p->crl_url);
    core_free(p->dir);
    pthread_mutex_destroy(&p->lock);
    core_free(p);
}

int pki_set_crl_url(struct pki *p, const char *url, struct core_err *err)
{
    char *copy = NULL;
    if (url) {
        /* it goes into an openssl.cnf-style value, so no separators */
        if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
            strlen(url) > 512 || strpbrk(url, ", \t\r\n\"'"))
            return core_err_set(err, CORE_E_INVAL, "invalid CRL URL '%.80s'", url);
        if (!(copy = core_strdup(url)))
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&p->lock);
    core_free(p->crl_url);
    p->crl_url = copy;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

const char *pki_chain_pem(const struct pki *p)
{
    return p->chain_pem;
}

const char *pki_root_pem(const struct pki *p)
{
    return p->root_pem;
}

int pki_export_root_key(struct pki *p, const char *export_pass, bool remove, struct core_buf *out,
                        struct core_err *err)
{
    char path[4200];
    EVP_PKEY *rk = NULL;
    if (!export_pass || strlen(export_pass) < 8 || strlen(export_pass) > PKI_PASS_MAX)
        return core_err_set(err, CORE_E_INVAL, "the export passphrase must be at least 8 bytes");
    pki_path(p, "root.key", path, sizeof(path));
    pthread_mutex_lock(&p->lock);
    int rc = pki_key_read(path, p->pass, p->passlen, &rk, err);
    if (rc == CORE_E_NOTFOUND) {
        core_err_set(err, CORE_E_NOTFOUND, "the root key is not on this server (exported and "
                                           "removed earlier)");
        goto out;
    }
    if (rc)
        goto out;
    if (X509_check_private_key(p->root, rk) != 1) {
        ERR_clear_error();
        rc = core_err_set(err, CORE_E_INVAL, "the root key does not match the root certificate");
        goto out;
    }
    if ((rc = pki_key_pem(rk, (const unsigned char *)export_pass, strlen(export_pass), out, err)))
        goto out;
    if (remove) {
        /* overwrite before unlinking so the encrypted bytes do not linger in the file's blocks
         * longer than needed (best effort: journaling filesystems may keep copies) */
        int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat sb;
        if (fd >= 0 && fstat(fd, &sb) == 0 && sb.st_size > 0) {
            char zero[4096] = {0};
            off_t left = sb.st_size;
            while (left > 0) {
                size_t n = left > (off_t)sizeof(zero) ? sizeof(zero) : (size_t)left;
                if (write(fd, zero, n) != (ssize_t)n)
                    break;
                left -= (off_t)n;
            }
            fsync(fd);
        }
        if (fd >= 0)
            close(fd);
        if (unlink(path) != 0) {
            rc = core_err_set(err, CORE_E_IO, "cannot remove the root key '%s': %s", path,
                              strerror(errno));
            goto out;
        }
        log_info("pki", "root key removed from the server", LOG_STR("dir", p->dir));
    }
out:
    pthread_mutex_unlock(&p->lock);
    EVP_PKEY_free(rk);
    return rc;
}
