/* Fuzzes reading findings out of a tagged record (src/telemetry/security_findings.c, the
 * `security` sink's parser): any input is either no finding or findings whose fields the alert
 * book accepts — a non-empty rule id, a known severity, a summary that is valid UTF-8 within
 * its bound. */
#include <stdint.h>
#include <string.h>

#include "security/security.h"
#include "telemetry/telemetry_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(void *arg, const struct security_finding *f)
{
    static const char *const levels[] = {"informational", "low", "medium", "high", "critical"};
    bool known = false;
    for (size_t i = 0; i < 5; i++)
        known |= strcmp(f->severity, levels[i]) == 0;
    size_t n = strlen(f->summary);
    if (!known || !f->rule_id[0] || !f->rule_title[0] || n > 810 ||
        !core_utf8_valid(f->summary, n) || !f->event_json)
        __builtin_trap();
    (*(int *)arg)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int n = 0;
    int rc = tel_security_findings((const char *)data, size, size & 1 ? "svc" : NULL, NULL, check,
                                   &n);
    if (rc != 0 && rc != CORE_E_NOMEM)
        __builtin_trap();
    if (n > 32)
        __builtin_trap();
    return 0;
}
