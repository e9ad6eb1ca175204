/*
 * artifact: turns a pipeline run's output into a signed OCI image with build
 * provenance, and checks such images.
 *
 * artifact_publish() takes the run's gzip'd tarball as the single layer of an
 * OCI image (the service manifest supplies Entrypoint/Cmd, Env and
 * ExposedPorts; labels name the team, service, run and pipeline), pushes it
 * through the registry's in-process API to repository <service>, and attaches
 * two referrers to the image manifest (OCI 1.1 `subject`): an in-toto Statement
 * v1 with a SLSA provenance v1 predicate, and a signature document whose ECDSA
 * P-256 signature covers the canonical JSON payload naming the image and
 * provenance digests. The referrers carry their single layer inline as well
 * (descriptor `data`, base64), so verification needs only manifests. Tags
 * (`run-<id>` and the sanitized branch) are set last, so a tag never names an
 * image that is not yet signed. artifact_verify() resolves a tag or digest,
 * walks its referrers and reports "verified", "missing" (no signature) or
 * "invalid" (any signature that does not verify with the server's key, or that
 * names another digest). docs/artifacts.md describes the formats and how to
 * check a signature by hand with openssl.
 *
 * `struct artifact_signer` owns the server's signing key: a PEM (PKCS#8) EC
 * P-256 private key in a file created on first use with mode 0600; a key file
 * readable by group or others is refused. Lifecycle: artifact_signer_open() /
 * artifact_signer_free(). A signer is immutable after open and may be used from
 * several threads at once. The registry is borrowed by every call.
 */
#ifndef PAVE_ARTIFACT_H
#define PAVE_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct registry;
struct catalog_actor;
struct artifact_signer;

#define ARTIFACT_MEDIA_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define ARTIFACT_MEDIA_CONFIG "application/vnd.oci.image.config.v1+json"
#define ARTIFACT_MEDIA_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"
#define ARTIFACT_MEDIA_EMPTY "application/vnd.oci.empty.v1+json"
#define ARTIFACT_TYPE_PROVENANCE "application/vnd.in-toto+json"
#define ARTIFACT_TYPE_SIGNATURE "application/vnd.dev.pave.signature.v1+json"

/* ---- the signing key ---- */

/* Loads the key at path, or creates it (mode 0600, parent directory must exist)
 * when the file does not exist. returns: owned by caller
 * (artifact_signer_free), or NULL and err: CORE_E_PERM when the file is
 * readable or writable by group/others, CORE_E_INVAL when it holds no EC P-256
 * private key, CORE_E_IO, CORE_E_NOMEM. */
struct artifact_signer *artifact_signer_open(const char *path, struct core_err *err);
void artifact_signer_free(struct artifact_signer *s);
/* The public key as PEM (SubjectPublicKeyInfo). returns: borrowed, lives as
 * long as s. */
const char *artifact_signer_public_pem(const struct artifact_signer *s);
/* "sha256:<hex>" of the public key's DER encoding. returns: borrowed, lives as
 * long as s. */
const char *artifact_signer_key_id(const struct artifact_signer *s);

/* ---- publishing ---- */

/* What a finished run produced. Strings are borrowed for the call. */
struct artifact_input {
    const char *service;         /* repository name; a DNS label */
    const char *team;            /* owning team (label dev.pave.team) */
    const char *commit;          /* may be NULL (uploads without git) */
    const char *branch;          /* may be NULL; becomes a tag after sanitizing */
    int64_t run_id;              /* > 0 */
    const char *builder;         /* "pave/VERSION"; NULL = "pave/" PAVE_VERSION */
    const char *pipeline_digest; /* "sha256:<hex>" or hex of the pipeline file;
                                    may be NULL */
    const char *tarball_path;    /* the run's artifact.tar.gz: becomes the image
                                    layer as is */
    const char *manifest_json;   /* the service's canonical manifest JSON
                                    (catalog_service_get) */
    const char *source_uri;      /* e.g. the hosted repository URL; NULL = source was
                                    uploaded */
    const char *started_at;      /* RFC 3339, may be NULL */
    const char *finished_at;     /* RFC 3339, may be NULL (= now) */
};

#define ARTIFACT_TAG_MAX 128

struct artifact_result {
    char image_digest[72]; /* "sha256:<hex>" of the image manifest */
    char layer_digest[72];
    char config_digest[72];
    char tags[2][ARTIFACT_TAG_MAX + 1];
    int ntags;
    char provenance_digest[72]; /* manifest digest of the provenance referrer */
    char signature_digest[72];  /* manifest digest of the signature referrer */
    int64_t size;               /* config + layer + manifest bytes */
};

/*
 * Builds, pushes and signs the image of one run (see the header comment). actor
 * must be allowed to push to repository in->service (use catalog_actor_system
 * from the runner). returns: 0 and *out filled; CORE_E_INVAL (missing field,
 * tarball not gzip, manifest not JSON), CORE_E_IO, CORE_E_PERM /
 * CORE_E_NOTFOUND from the registry, CORE_E_NOMEM. On failure blobs already
 * pushed stay until the registry's garbage collection; no tag is set.
 */
int artifact_publish(struct registry *reg, struct artifact_signer *signer,
                     const struct catalog_actor *actor, const struct artifact_input *in,
                     struct artifact_result *out, struct core_err *err);

/* Writes `branch` as a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}): other
 * characters become '-', a leading '.' or '-' becomes '_', long names are cut.
 * out: at least ARTIFACT_TAG_MAX + 1 bytes. returns: false when nothing usable
 * is left (empty input). */
bool artifact_tag_sanitize(const char *branch, char *out, size_t outsz);

/* ---- verification ---- */

enum artifact_sig_status {
    ARTIFACT_SIG_MISSING = 0, /* no signature referrer */
    ARTIFACT_SIG_VERIFIED,    /* every signature verifies and names this digest */
    ARTIFACT_SIG_INVALID,     /* at least one signature is bad, foreign or names
                                 another image */
};
const char *artifact_sig_status_name(enum artifact_sig_status s); /* "missing" ... */

struct artifact_verification {
    char digest[72]; /* the resolved image manifest digest */
    enum artifact_sig_status status;
    bool is_signed;      /* a signature referrer exists */
    bool is_valid;       /* status == ARTIFACT_SIG_VERIFIED */
    bool has_provenance; /* a provenance referrer exists */
    int nsignatures;
    char reason[256]; /* why invalid/missing, "" when verified */
    char key_id[80];  /* from the (last) signature checked */
    char signature_digest[72];
    char provenance_digest[72];
    char commit[64]; /* from the provenance statement, "" when unknown */
    char run[32];    /* invocationId, e.g. "run-42" */
    char builder[64];
    int64_t size;     /* manifest + config + layers bytes */
    char created[40]; /* org.opencontainers.image.created */
};

/*
 * Resolves ref (a tag or "sha256:<hex>") in repo and checks its signatures with
 * signer's public key. A signature that fails is not an error: it is reported
 * in v (status INVALID). returns: 0 and *v filled; CORE_E_NOTFOUND when the
 * image does not exist; CORE_E_NOMEM; other registry errors.
 */
int artifact_verify(struct registry *reg, const struct artifact_signer *signer, const char *repo,
                    const char *ref, struct artifact_verification *v, struct core_err *err);

/* v as a JSON object appended to out:
 * {"digest","status","signed","valid","provenance",
 * "signatures","reason","key_id","signature_digest","provenance_digest","commit","run",
 * "builder"}. */
int artifact_verification_json(const struct artifact_verification *v, struct core_buf *out);

/* Describes one image (tag or digest) as a JSON object appended to out:
 * {"repo","digest",
 * "media_type","tags":[…],"size","created","manifest":{…},"config":{…} or
 * null,"labels":{…},
 * "referrers":[{"digest","artifact_type","size","created_at"}],"verification":{…}}.
 * returns: 0, CORE_E_NOTFOUND, CORE_E_NOMEM or a registry error. */
int artifact_show(struct registry *reg, const struct artifact_signer *signer, const char *repo,
                  const char *ref, struct core_buf *out, struct core_err *err);

/* One image of a repository, as listed by artifact_list(); borrowed for the
 * callback. */
struct artifact_image {
    const char *repo;
    const char *digest;
    const char *tags; /* comma-separated, "" for untagged */
    int64_t size;     /* manifest + config + layers */
    const char *created_at;
    const struct artifact_verification *v;
};
typedef int (*artifact_image_fn)(void *arg, const struct artifact_image *img);

/* Calls fn for each image (not the signature/provenance referrers) of repo,
 * newest first, with its verification. At most `limit` images (0 = 100). A
 * non-zero return from fn stops the walk and is returned. */
int artifact_list(struct registry *reg, const struct artifact_signer *signer, const char *repo,
                  int limit, artifact_image_fn fn, void *arg, struct core_err *err);

#endif
