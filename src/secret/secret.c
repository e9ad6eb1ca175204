/* Secrets sealed with AES-256-GCM under a key file. */
#include "secret/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

struct secret_box {
    unsigned char key[32];
};

struct secret_box *secret_box_open(const char *key_path, struct core_err *err)
{
    struct secret_box *box = core_calloc(1, sizeof(*box));
    if (!box) {
        core_err_set(err, CORE_E_NOMEM, "out of memory");
        return NULL;
    }
    int fd = open(key_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (core_random_bytes(box->key, sizeof(box->key))) {
            core_err_set(err, CORE_E_IO, "cannot generate the secret key");
            goto fail;
        }
        fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, box->key, sizeof(box->key)) != (ssize_t)sizeof(box->key) ||
            fsync(fd) != 0) {
            core_err_set(err, CORE_E_IO, "cannot write the secret key '%s': %s", key_path,
                         strerror(errno));
            if (fd >= 0)
                close(fd);
            unlink(key_path);
            goto fail;
        }
        close(fd);
        return box;
    }
    if (fd < 0) {
        core_err_set(err, CORE_E_IO, "cannot open the secret key '%s': %s", key_path,
                     strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077)) {
        close(fd);
        core_err_set(err, CORE_E_PERM,
                     "secret key '%s' is readable by others; run 'chmod 600 %s'", key_path,
                     key_path);
        goto fail;
    }
    ssize_t n = read(fd, box->key, sizeof(box->key));
    close(fd);
    if (n != (ssize_t)sizeof(box->key)) {
        core_err_set(err, CORE_E_IO, "secret key '%s' is not 32 bytes", key_path);
        goto fail;
    }
    return box;
fail:
    secret_box_free(box);
    return NULL;
}

void secret_box_free(struct secret_box *box)
{
    if (!box)
        return;
    OPENSSL_cleanse(box->key, sizeof(box->key));
    core_free(box);
}

void secret_value_free(char *value, size_t len)
{
    if (!value)
        return;
    OPENSSL_cleanse(value, len);
    core_free(value);
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int from_hex(const char *in, unsigned char *out, size_t max, size_t *n)
{
    size_t l = strlen(in);
    if (l % 2 || l / 2 > max)
        return CORE_E_INVAL;
    for (size_t i = 0; i < l / 2; i++) {
        unsigned v;
        if (sscanf(in + 2 * i, "%2x", &v) != 1)
            return CORE_E_INVAL;
        out[i] = (unsigned char)v;
    }
    *n = l / 2;
    return 0;
}

/* Seals or opens with AES-256-GCM; aad binds the value to its service and name. */
static int gcm(const struct secret_box *box, bool seal, const unsigned char *nonce,
               const char *aad, const unsigned char *in, size_t n, unsigned char *out,
               unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c != NULL, len = 0;
    ok = ok && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, seal) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(c, NULL, NULL, box->key, nonce, seal) == 1;
    ok = ok && EVP_CipherUpdate(c, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1;
    ok = ok && EVP_CipherUpdate(c, out, &len, in, (int)n) == 1;
    if (ok && !seal)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + len, &len) == 1;
    if (ok && seal)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : CORE_E_INVAL;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

/* Admins and members of the service's team may manage its secrets. */
static int check_rights(struct catalog *cat, const struct catalog_actor *actor,
                        const char *service, struct core_err *err)
{
    struct catalog_service s;
    int rc = catalog_service_get(cat, service, &s, err);
    if (rc)
        return rc;
    if (!actor->is_admin && !catalog_actor_in_team(actor, s.team))
        rc = core_err_set(err, CORE_E_PERM,
                          "service '%s' belongs to team '%s'; user '%s' cannot manage its secrets",
                          service, s.team, actor->user);
    catalog_service_release(&s);
    return rc;
}

int secret_put(struct store *st, struct catalog *cat, struct secret_box *box,
               const struct catalog_actor *actor, const char *service, const char *name,
               const void *value, size_t len, struct core_err *err)
{
    if (!valid_name(name))
        return core_err_set(err, CORE_E_INVAL,
                            "invalid secret name '%.64s': use letters, digits and '_', not "
                            "starting with a digit",
                            name);
    if (len == 0 || len > SECRET_VALUE_MAX)
        return core_err_set(err, CORE_E_INVAL, "secret value must be 1 to %d bytes",
                            SECRET_VALUE_MAX);
    int rc = check_rights(cat, actor, service, err);
    if (rc)
        return rc;
    unsigned char nonce[12], tag[16];
    unsigned char *ct = core_malloc(len + 16);
    char *hex = core_malloc(2 * (len + 16) + 1);
    char nonce_hex[25], aad[200];
    if (!ct || !hex) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    snprintf(aad, sizeof(aad), "%s/%s", service, name);
    if (core_random_bytes(nonce, sizeof(nonce)) ||
        gcm(box, true, nonce, aad, value, len, ct, tag)) {
        rc = core_err_set(err, CORE_E_IO, "cannot encrypt the secret");
        goto out;
    }
    memcpy(ct + len, tag, 16);
    to_hex(ct, len + 16, hex);
    to_hex(nonce, sizeof(nonce), nonce_hex);
    char now[40];
    core_time_format(core_now_ms(), now, sizeof(now));
    if ((rc = store_txn_begin(st, err)))
        goto out;
    struct store_value del[] = {STORE_V_TEXT(service), STORE_V_TEXT(name)};
    int64_t existed = 0;
    rc = store_exec(st, "DELETE FROM secrets WHERE service = ? AND name = ?", del, 2, &existed,
                    err);
    struct store_value p[] = {STORE_V_TEXT(service), STORE_V_TEXT(name), STORE_V_TEXT(nonce_hex),
                              STORE_V_TEXT(hex), STORE_V_TEXT(now), STORE_V_TEXT(now)};
    if (!rc)
        rc = store_exec(st,
                        "INSERT INTO secrets (service, name, nonce, ciphertext, created_at, "
                        "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                        p, 6, NULL, err);
    if (!rc) {
        /* The audit names the secret, never its value or ciphertext. */
        struct store_audit_event ev = {.actor = actor->user,
                                       .action = existed ? "secret.update" : "secret.create",
                                       .kind = "secret", .object = aad};
        rc = store_audit_append(st, &ev, err);
    }
    if (rc)
        store_txn_rollback(st);
    else
        rc = store_txn_commit(st, err);
out:
    if (ct)
        OPENSSL_cleanse(ct, len + 16);
    core_free(ct);
    core_free(hex);
    return rc;
}

struct sealed {
    char nonce[32];
    char *ct;
    bool found;
};

static int sealed_row(void *arg, const struct store_row *row)
{
    struct sealed *s = arg;
    const char *n = store_row_text(row, "nonce");
    snprintf(s->nonce, sizeof(s->nonce), "%s", n ? n : "");
    s->ct = core_strdup(store_row_text(row, "ciphertext"));
    s->found = true;
    return s->ct ? 1 : CORE_E_NOMEM;
}

int secret_get(struct store *st, struct secret_box *box, const char *service, const char *name,
               char **out, size_t *len, struct core_err *err)
{
    *out = NULL;
    *len = 0;
    struct sealed s = {0};
    struct store_value p[] = {STORE_V_TEXT(service), STORE_V_TEXT(name)};
    int rc = store_query(st, "SELECT nonce, ciphertext FROM secrets WHERE service = ? AND name = ?",
                         p, 2, sealed_row, &s, err);
    if (rc == 1)
        rc = 0;
    if (!rc && !s.found)
        rc = core_err_set(err, CORE_E_NOTFOUND, "service '%s' has no secret '%s'", service, name);
    unsigned char nonce[12], *ct = NULL;
    size_t nn = 0, cn = 0;
    if (!rc) {
        ct = core_malloc(strlen(s.ct) / 2 + 1);
        if (!ct)
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    if (!rc && (from_hex(s.nonce, nonce, sizeof(nonce), &nn) || nn != 12 ||
                from_hex(s.ct, ct, strlen(s.ct) / 2 + 1, &cn) || cn < 16))
        rc = core_err_set(err, CORE_E_IO, "secret '%s' of '%s' is damaged", name, service);
    if (!rc) {
        char aad[200];
        snprintf(aad, sizeof(aad), "%s/%s", service, name);
        *out = core_malloc(cn - 16 + 1);
        if (!*out)
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        else if (gcm(box, false, nonce, aad, ct, cn - 16, (unsigned char *)*out, ct + cn - 16))
            rc = core_err_set(err, CORE_E_IO,
                              "secret '%s' of '%s' does not open with this key (wrong key file "
                              "or tampered data)",
                              name, service);
        if (rc) {
            secret_value_free(*out, cn - 16 + 1);
            *out = NULL;
        } else {
            (*out)[cn - 16] = 0;
            *len = cn - 16;
        }
    }
    core_free(ct);
    core_free(s.ct);
    return rc;
}

int secret_delete(struct store *st, struct catalog *cat, const struct catalog_actor *actor,
                  const char *service, const char *name, struct core_err *err)
{
    int rc = check_rights(cat, actor, service, err);
    if (rc)
        return rc;
    char obj[200];
    snprintf(obj, sizeof(obj), "%s/%s", service, name);
    if ((rc = store_txn_begin(st, err)))
        return rc;
    int64_t n = 0;
    struct store_value p[] = {STORE_V_TEXT(service), STORE_V_TEXT(name)};
    rc = store_exec(st, "DELETE FROM secrets WHERE service = ? AND name = ?", p, 2, &n, err);
    if (!rc && n == 0)
        rc = core_err_set(err, CORE_E_NOTFOUND, "service '%s' has no secret '%s'", service, name);
    if (!rc) {
        struct store_audit_event ev = {.actor = actor->user, .action = "secret.delete",
                                       .kind = "secret", .object = obj};
        rc = store_audit_append(st, &ev, err);
    }
    if (rc)
        store_txn_rollback(st);
    else
        rc = store_txn_commit(st, err);
    return rc;
}

struct list_cb {
    secret_fn fn;
    void *arg;
};

static int list_row(void *arg, const struct store_row *row)
{
    struct list_cb *c = arg;
    struct secret_info i = {store_row_text(row, "name"), store_row_text(row, "created_at"),
                            store_row_text(row, "updated_at")};
    return c->fn(c->arg, &i);
}

int secret_list(struct store *st, const char *service, secret_fn fn, void *arg,
                struct core_err *err)
{
    struct list_cb c = {fn, arg};
    struct store_value p[] = {STORE_V_TEXT(service)};
    return store_query(st,
                       "SELECT name, created_at, updated_at FROM secrets WHERE service = ? ORDER "
                       "BY name",
                       p, 1, list_row, &c, err);
}
