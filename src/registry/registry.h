/*
 * registry: an OCI Distribution Specification v1.1 registry over a content-addressed store on
 * disk, served by the API server under /v2/.
 *
 * Storage (DATA/registry): blobs/sha256/<2 hex>/<64 hex> hold every blob and manifest exactly once
 * whatever the number of repositories that reference them; repositories are rows in the state
 * store (repository → manifests, tags, blob links, referrers). Every write lands atomically: an
 * upload is written to uploads/<uuid>, its digest verified, then fsync'd and renamed into blobs/;
 * a mismatch deletes it and keeps nothing. Garbage collection removes blobs no manifest and no
 * in-flight upload references and is safe while the registry serves (it marks, then sweeps only
 * blobs older than the mark).
 *
 * Repository names are "<service>" or "<service>/<name>" (DNS labels joined by '/'); a
 * repository belongs to the team that owns <service> in the catalog. Anyone with a token may
 * pull; admins and the owning team's members may push and delete.
 *
 * The HTTP side is framework-neutral: the server hands registry_handle() a `struct
 * registry_request` (method, path below /v2, query, headers through a callback, the caller's
 * identity, and the body either in memory or spooled to a file) and sends the `struct
 * registry_response` it gets back (status, headers, and a body from memory or from a file range).
 * The in-process API (registry_put_blob, registry_put_manifest, registry_tag ...) is what the CI
 * packaging uses to publish pipeline output without going through HTTP.
 *
 * Lifecycle: registry_new() borrows the store and catalog; registry_free(). Thread safe.
 */
#ifndef PAVE_REGISTRY_H
#define PAVE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct store;
struct catalog;
struct catalog_actor;
struct registry;

#define REGISTRY_MANIFEST_MAX (4 * 1024 * 1024)

struct registry *registry_new(struct store *st, struct catalog *cat, const char *data_dir,
                              struct core_err *err);
void registry_free(struct registry *reg);

/* ---- HTTP ---- */

typedef const char *(*registry_header_fn)(void *arg, const char *name);

struct registry_request {
    const char *method;
    const char *path;  /* below /v2, e.g. "/" or "/payments-api/manifests/latest" */
    const char *query; /* raw query string without '?', may be NULL */
    registry_header_fn header; /* request header lookup (case-insensitive), may return NULL */
    void *header_arg;
    const struct catalog_actor *actor; /* NULL when the request carried no valid token */
    /* body: in memory (body, body_len) or spooled to a file (body_path, body_len) */
    const char *body;
    const char *body_path;
    size_t body_len;
    /* SHA-256 (hex) of a spooled body, computed by the server while it was received, or NULL.
     * With it a complete blob is moved into place without being copied or read again. */
    const char *body_sha256;
};

#define REGISTRY_MAX_HEADERS 12

struct registry_response {
    int status;
    struct {
        char name[64];
        char value[512];
    } headers[REGISTRY_MAX_HEADERS];
    int nheaders;
    struct core_buf body; /* initialized by the caller */
    /* or a file range to send (has_file): the caller sends and closes file_fd */
    bool has_file;
    int file_fd;
    uint64_t file_offset;
    uint64_t file_len;
};

/* Handles one /v2 request; always fills resp (errors as the spec's JSON error documents:
 * BLOB_UNKNOWN, BLOB_UPLOAD_INVALID, BLOB_UPLOAD_UNKNOWN, DIGEST_INVALID, MANIFEST_BLOB_UNKNOWN,
 * MANIFEST_INVALID, MANIFEST_UNKNOWN, NAME_INVALID, NAME_UNKNOWN, SIZE_INVALID, UNAUTHORIZED,
 * DENIED, UNSUPPORTED, TOO_MANY_REQUESTS). A request without identity gets 401 with
 * WWW-Authenticate: Basic realm="pave". returns: 0, or CORE_E_NOMEM. */
int registry_handle(struct registry *reg, const struct registry_request *req,
                    struct registry_response *resp);
/* Whether a /v2 request should be spooled to a file (blob uploads). */
bool registry_wants_spool(const char *method, const char *path);

/* ---- in-process API (CI packaging, portal, CLI through the API) ---- */

/* A guard-rail gate asked before an image manifest pushed over the distribution API (/v2) is
 * stored (the platform's own pushes through the functions below are judged at pipeline
 * packaging instead). manifest is the pushed JSON, digest its "sha256:<hex>". returns: 0 to
 * allow, an error (CORE_E_PERM with the reasons) to refuse with 403 DENIED. */
typedef int (*registry_gate_fn)(void *arg, const struct catalog_actor *actor, const char *repo,
                                const char *digest, const char *manifest, size_t len,
                                struct core_err *err);
void registry_set_gate(struct registry *reg, registry_gate_fn fn, void *arg);

/* Stores a blob from a file (digest "sha256:<hex>" verified) and links it into repo. */
int registry_put_blob_file(struct registry *reg, const struct catalog_actor *actor,
                           const char *repo, const char *path, const char *digest,
                           struct core_err *err);
int registry_put_blob(struct registry *reg, const struct catalog_actor *actor, const char *repo,
                      const void *data, size_t len, char digest_out[72], struct core_err *err);
/* Stores a manifest (validated: media type, referenced blobs present) under its digest and, if
 * tag is not NULL, tags it. digest_out receives "sha256:<hex>". */
int registry_put_manifest(struct registry *reg, const struct catalog_actor *actor,
                          const char *repo, const char *media_type, const void *data, size_t len,
                          const char *tag, char digest_out[72], struct core_err *err);
/* Writes the on-disk path of blob `digest` ("sha256:" + 64 lowercase hex) into out (outsz bytes;
 * 1100 is enough). The file is the blob itself: open it read-only, never write to it.
 * returns: 0; CORE_E_INVAL for a malformed digest or a too small out; CORE_E_NOTFOUND when the
 * blob is not in the store. */
int registry_blob_path(struct registry *reg, const char *digest, char *out, size_t outsz,
                       struct core_err *err);
/* Reads a manifest by tag or digest. returns: 0 and *out (owned by caller) or CORE_E_NOTFOUND. */
int registry_get_manifest(struct registry *reg, const char *repo, const char *ref, char **out,
                          size_t *len, char media_type[128], char digest[72],
                          struct core_err *err);

struct registry_image {
    const char *repo;
    const char *tag;    /* NULL for untagged */
    const char *digest;
    const char *media_type;
    const char *artifact_type; /* for referrers */
    const char *subject;       /* digest this manifest refers to, or NULL */
    int64_t size;
    const char *created_at;
};
typedef int (*registry_image_fn)(void *arg, const struct registry_image *img);
/* Manifests of a repository (newest first), with their tags. */
int registry_list(struct registry *reg, const char *repo, registry_image_fn fn, void *arg,
                  struct core_err *err);
/* Manifests whose subject is `digest` (signatures, provenance). */
int registry_referrers(struct registry *reg, const char *repo, const char *digest,
                       registry_image_fn fn, void *arg, struct core_err *err);

/* Removes blobs no manifest references (and expired uploads). *freed receives bytes removed. */
int registry_gc(struct registry *reg, int64_t *freed, struct core_err *err);
/* Sets how old an unreferenced blob must be before GC removes it (default 1 hour; a blob pushed
 * just before its manifest is not yet referenced). */
void registry_gc_grace_set(struct registry *reg, int64_t grace_ms);

/* Retention: in `repo` (or every repository when NULL) keeps the newest `keep` images and every
 * image that carries a tag other than "run-<n>" (branch tags mark what is current and what a
 * rollback goes back to); deletes the other images with their referrers (signatures,
 * provenance). Their blobs go at the next registry_gc. *removed receives the images deleted. */
int registry_retain(struct registry *reg, const char *repo, int keep, int64_t *removed,
                    struct core_err *err);

#endif
