/* Fuzzes the Sigma rule loader: any input either loads or is rejected with a reason (recorded in
 * the rejected list), and a loaded rule evaluates against a syslog line and an auditd record
 * without crashing, with the same verdict with the literal prefilter and without it. */
#include <stdint.h>
#include <string.h>

#include "security/security.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct security_sigma_set *s = security_sigma_set_new();
    if (!s)
        return 0;
    struct core_err err = {0};
    int rc = security_sigma_add(s, "fuzz.yml", (const char *)data, size, &err);
    if (rc == 0 && security_sigma_count(s) != 1)
        __builtin_trap();
    if (rc != 0 && rc != CORE_E_NOMEM &&
        (security_sigma_rejected_count(s) != 1 || !security_sigma_rejected(s, 0)->reason[0]))
        __builtin_trap();
    if (rc == 0) {
        static const char *const lines[] = {
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; rhost=1.2.3.4",
            "type=EXECVE msg=audit(1.0:1): argc=3 a0=\"chattr\" a1=\"-i\" a2=2F746D702F2E78",
            "{\"msg\":\"x\",\"Image\":\"/tmp/a\",\"n\":5,\"ip\":\"10.0.0.1\"}",
        };
        for (size_t i = 0; i < 3; i++) {
            struct core_arena a;
            core_arena_init(&a, 16u << 20);
            struct tel_record rec;
            if (i == 0)
                tel_parse_syslog(lines[i], strlen(lines[i]), NULL, &a, &rec);
            else
                tel_parse_line(lines[i], strlen(lines[i]), NULL, &a, &rec);
            size_t hits[2];
            size_t n = security_sigma_match(s, &rec, &a, hits, 2);
            if (n > 1)
                __builtin_trap();
            security_sigma_set_prefilter(s, false);
            if (security_sigma_match(s, &rec, &a, hits, 2) != n)
                __builtin_trap(); /* the prefilter dropped a match */
            security_sigma_set_prefilter(s, true);
            core_arena_release(&a);
        }
    }
    security_sigma_set_free(s);
    return 0;
}
