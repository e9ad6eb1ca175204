/* Fuzzes the Sigma condition parser alone: any text parses or fails with an error message,
 * nesting is bounded (no stack overflow), and no input crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "security/security.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const sels[] = {"selection", "selection_img", "selection_cli", "filter",
                                       "filter_main_1", "keywords", "_private"};
    char *cond = malloc(size + 1);
    if (!cond)
        return 0;
    memcpy(cond, data, size);
    cond[size] = 0; /* the condition is a C string: text after a NUL is not seen */
    struct core_err err = {0};
    int rc = security_sigma_condition_check(cond, sels, 7, &err);
    if (rc != 0 && rc != CORE_E_INVAL && rc != CORE_E_UNSUPPORTED && rc != CORE_E_NOMEM)
        __builtin_trap();
    if (rc != 0 && !err.msg[0])
        __builtin_trap();
    free(cond);
    return 0;
}
