/* Fuzzes the CSR reader ACME finalize uses (jws_csr_names in src/pki/jws.c):
 * DER PKCS#10 parsing, signature check, CN and subjectAltName extraction.
 * Invariant: every name returned is a valid lowercase DNS name and the list has
 * no duplicates. */
#include <stdint.h>
#include <string.h>

#include "pki/acme_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct core_err err = {0};
    char **names = NULL;
    size_t n = 0;
    if (jws_csr_names(data, size, &names, &n, &err) == 0) {
        if (n == 0 || n > JWS_MAX_NAMES)
            __builtin_trap();
        for (size_t i = 0; i < n; i++) {
            if (!jws_dns_name_ok(names[i]))
                __builtin_trap();
            for (size_t k = 0; k < i; k++)
                if (strcmp(names[i], names[k]) == 0)
                    __builtin_trap();
        }
        jws_names_free(names, n);
    }
    return 0;
}
