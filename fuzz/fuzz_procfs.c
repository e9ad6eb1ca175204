/* Fuzzes the /proc parsers of the workload watch (src/security/procfs.c): a process chooses its
 * own name and command line, so /proc/PID/stat, a /proc/PID/net/tcp line and a cmdline are
 * input. The first byte picks the parser; nothing crashes, reads past the input or writes past
 * the output, and what comes back stays within its documented bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "security/security.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0] % 3;
    data++;
    size--;
    /* an exact-size copy: ASan catches any read past the end */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    if (which == 0) {
        struct security_proc_stat st;
        (void)security_proc_stat_parse(text, size, &st);
    } else if (which == 1) {
        int port = 0;
        unsigned long long ino = 0;
        bool tcp = size && (data[0] & 1);
        if (security_proc_net_parse(text, tcp, &port, &ino) && (port < 1 || port > 65535))
            __builtin_trap();
    } else {
        char out[SECURITY_CMDLINE_MAX + 1];
        char small[8];
        security_proc_cmdline_clean(text, size, out, sizeof(out));
        security_proc_cmdline_clean(text, size, small, sizeof(small));
        size_t n = strlen(out);
        if (n > SECURITY_CMDLINE_MAX || strlen(small) > 7)
            __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
                __builtin_trap();
    }
    free(text);
    return 0;
}
