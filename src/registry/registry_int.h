/*
 * registry internals: the pure parsers of the registry (names, references, digests, the
 * Content-Range and Range headers, manifest validation). They touch no store and no file, so the
 * fuzzer (fuzz/fuzz_registry_manifest.c) and the unit tests drive them directly. registry.c does
 * the storage, rights and HTTP on top of them.
 *
 * Everything here takes untrusted input and never aborts: bad input is an error code.
 */
#ifndef PAVE_REGISTRY_INT_H
#define PAVE_REGISTRY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct registry;

#define REGISTRY_NAME_MAX 255
#define REGISTRY_TAG_MAX 128
#define REGISTRY_DIGEST_LEN 71 /* "sha256:" + 64 hex */
#define REGISTRY_MEDIA_TYPE_MAX 128
#define REGISTRY_DESCRIPTORS_MAX 10000

#define REGISTRY_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define REGISTRY_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define REGISTRY_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define REGISTRY_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

/* A repository name: 1..255 chars, DNS labels (lowercase) joined by single '/'.
 */
bool registry_name_valid(const char *name);
/* A tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
bool registry_tag_valid(const char *tag);
/* A digest this registry supports: "sha256:" + 64 lowercase hex. */
bool registry_digest_valid(const char *digest);
/* Whether media_type is one of the four manifest media types; *is_index tells which kind. */
bool registry_manifest_type_known(const char *media_type, bool *is_index);

/* Parses a PATCH Content-Range: "<start>-<end>" (also "bytes <start>-<end>[/<total>|*]" and
 * "bytes=<start>-<end>"). end is inclusive. returns: 0, or CORE_E_INVAL. */
int registry_content_range_parse(const char *s, uint64_t *start, uint64_t *end);
/* Parses a GET Range header against a blob of `size` bytes: "bytes=a-b", "bytes=a-", "bytes=-n".
 * returns: 0 with the range to send; CORE_E_INVAL for a header to ignore (malformed or several
 * ranges: send the whole blob); CORE_E_TOO_BIG when unsatisfiable (416). */
int registry_range_parse(const char *s, uint64_t size, uint64_t *start, uint64_t *len);

/* What a manifest says, once validated. */
struct registry_manifest_info {
    bool is_index;
    char media_type[REGISTRY_MEDIA_TYPE_MAX];
    /* artifactType, or config.mediaType of an image manifest; empty if neither */
    char artifact_type[REGISTRY_MEDIA_TYPE_MAX];
    char subject[REGISTRY_DIGEST_LEN + 1];  /* empty if no subject */
    char *annotations;                      /* compact JSON object, or NULL; owned */
    char (*blobs)[REGISTRY_DIGEST_LEN + 1]; /* config then layers (image manifests); owned */
    size_t nblobs;
    char (*manifests)[REGISTRY_DIGEST_LEN + 1]; /* entries (indexes); owned */
    size_t nmanifests;
};

/*
 * Validates a manifest of the given Content-Type: one of the four known media types, a JSON object,
 * schemaVersion 2, a mediaType field (if any) equal to media_type, well-formed descriptors
 * (mediaType string, sha256 digest, size >= 0) for config, layers, manifests and subject. Whether
 * the referenced blobs exist is the caller's business. Input over REGISTRY_MANIFEST_MAX is refused
 * with CORE_E_TOO_BIG. *out is filled only on success (release it after). returns: 0, CORE_E_INVAL,
 * CORE_E_UNSUPPORTED (unknown media type), CORE_E_TOO_BIG, NOMEM.
 */
int registry_manifest_parse(const char *media_type, const void *data, size_t len,
                            struct registry_manifest_info *out, struct core_err *err);
void registry_manifest_info_release(struct registry_manifest_info *m);

/* Test hook: blobs younger than grace_ms are never swept by registry_gc (default one hour), and
 * uploads idle for longer than upload_ttl_ms are removed (default one day). */
void registry_set_gc_grace(struct registry *reg, int64_t grace_ms, int64_t upload_ttl_ms);

#endif
