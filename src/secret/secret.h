/*
 * secret: the platform's secret store. Pipelines (and later workloads) get secrets by name; the
 * platform keeps them encrypted at rest and never returns or logs their values through the API.
 *
 * Values are sealed with AES-256-GCM under a 256-bit key kept in a key file (created on first use
 * with mode 0600 in the data directory, never in the database), with a fresh 96-bit nonce per
 * value and the "service/name" pair as associated data, so a ciphertext copied to another row
 * does not open. Secrets belong to a service; admins and members of the service's team may set,
 * list (names only) and delete them. Only the CI runner reads values (secret_get).
 *
 * Lifecycle: secret_box_open() loads or creates the key; secret_box_free() wipes it. Thread safe.
 */
#ifndef PAVE_SECRET_H
#define PAVE_SECRET_H

#include <stddef.h>

#include "catalog/catalog.h"
#include "core/core.h"

struct store;
struct secret_box;

#define SECRET_VALUE_MAX (64 * 1024)

/* returns: owned by caller (secret_box_free), NULL and err on failure. */
struct secret_box *secret_box_open(const char *key_path, struct core_err *err);
void secret_box_free(struct secret_box *box);

/* Sets (creates or replaces) a secret. Name: [A-Za-z_][A-Za-z0-9_]*, at most 64 characters. */
int secret_put(struct store *st, struct catalog *cat, struct secret_box *box,
               const struct catalog_actor *actor, const char *service, const char *name,
               const void *value, size_t len, struct core_err *err);
/* Reads a value for the runner. returns: 0 and *out (owned by caller; free with
 * secret_value_free, which wipes it), CORE_E_NOTFOUND. */
int secret_get(struct store *st, struct secret_box *box, const char *service, const char *name,
               char **out, size_t *len, struct core_err *err);
void secret_value_free(char *value, size_t len);
int secret_delete(struct store *st, struct catalog *cat, const struct catalog_actor *actor,
                  const char *service, const char *name, struct core_err *err);

struct secret_info {
    const char *name;
    const char *created_at;
    const char *updated_at;
};
typedef int (*secret_fn)(void *arg, const struct secret_info *s);
int secret_list(struct store *st, const char *service, secret_fn fn, void *arg,
                struct core_err *err);

#endif
