/* Internal to src/artifact: the document builders and signing primitives,
 * exposed for the unit tests (tests/unit/artifact). */
#ifndef PAVE_ARTIFACT_INT_H
#define PAVE_ARTIFACT_INT_H

#include "artifact/artifact.h"

/* Reads the gzip'd tarball at path once: *size, the sha256 of the file (layer
 * digest) and the sha256 of its decompressed bytes (diff_id), both as
 * "sha256:<hex>". returns: 0, CORE_E_INVAL (not a complete gzip stream),
 * CORE_E_IO, CORE_E_NOMEM. */
int artifact_layer_digests(const char *path, int64_t *size, char layer_digest[72], char diff_id[72],
                           struct core_err *err);

/* The OCI image config for in, as canonical JSON appended to out. created: RFC
 * 3339. */
int artifact_config_build(const struct artifact_input *in, const char *diff_id, const char *created,
                          struct core_buf *out, struct core_err *err);

/* The in-toto Statement v1 (SLSA provenance v1) naming repo@image_digest,
 * appended to out. */
int artifact_provenance_build(const struct artifact_input *in, const char *repo,
                              const char *image_digest, struct core_buf *out, struct core_err *err);

/* The canonical payload bytes a signature covers. */
int artifact_payload_build(const char *manifest_digest, const char *provenance_digest,
                           const char *service, int64_t run_id, struct core_buf *out);

/* ECDSA-SHA256 over data; the DER signature base64-encoded into out. */
int artifact_sign(const struct artifact_signer *s, const void *data, size_t len,
                  struct core_buf *out, struct core_err *err);
/* Whether sig_b64 is a valid signature of data by s's key. */
bool artifact_signature_ok(const struct artifact_signer *s, const void *data, size_t len,
                           const char *sig_b64);

/* The signature document {"payload":…,"signature":…,"key_id":…} appended to
 * out. */
int artifact_signature_doc_build(const struct artifact_signer *s, const char *manifest_digest,
                                 const char *provenance_digest, const char *service, int64_t run_id,
                                 struct core_buf *out, struct core_err *err);

/* Checks a signature document against manifest_digest. returns: true when
 * valid; otherwise false with the reason in why. On success the signed
 * provenance digest goes to prov. */
bool artifact_signature_doc_check(const struct artifact_signer *s, const char *doc, size_t len,
                                  const char *manifest_digest, char *key_id, size_t key_idsz,
                                  char *prov, size_t provsz, char *why, size_t whysz);

#endif
