/* Fuzzes the ACME JWS layer (src/pki/jws.c): flattened-JWS parsing, JWK → key
 * conversion, signature verification and the RFC 7638 thumbprint, plus
 * base64url decoding of the raw input. Invariants checked: a parsed JWS has
 * alg, nonce, url and exactly one of jwk/kid; a base64url round trip gives back
 * the decoded bytes. */
#include <stdint.h>
#include <string.h>

#include "pki/acme_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct core_err err = {0};
    const char *ptype = NULL;
    struct jws j;
    jws_init(&j);
    if (jws_parse((const char *)data, size, &j, &ptype, &err) == 0) {
        if (!j.alg[0] || !j.nonce || !j.url || (!j.jwk == !j.kid))
            __builtin_trap();
        if (j.jwk) {
            char tp[64];
            jws_thumbprint(j.jwk, tp, &err);
            EVP_PKEY *key = jws_jwk_key(j.jwk, &err);
            if (key) {
                jws_verify(&j, key, &ptype, &err);
                json_t *back = jws_key_to_jwk(key);
                json_decref(back);
                EVP_PKEY_free(key);
            }
        }
    } else if (!ptype) {
        __builtin_trap(); /* every failure names its problem type */
    }
    jws_release(&j);

    struct core_buf dec, enc, again;
    core_buf_init(&dec, 1 << 20);
    core_buf_init(&enc, 0);
    core_buf_init(&again, 0);
    if (jws_b64url_decode((const char *)data, size, &dec) == 0) {
        if (jws_b64url_encode(dec.data, dec.len, &enc) || enc.len != size ||
            memcmp(enc.data, data, size) != 0)
            __builtin_trap(); /* strict decoding accepts only canonical encodings */
        if (jws_b64url_decode(enc.data, enc.len, &again) || again.len != dec.len)
            __builtin_trap();
    }
    core_buf_release(&dec);
    core_buf_release(&enc);
    core_buf_release(&again);
    return 0;
}
