/* Parsers of the /proc texts the workload watch reads (watch.c). They are input: a process
 * names itself (the comm field of /proc/PID/stat may hold spaces, parentheses and newlines) and
 * writes its own command line, so every parser here takes any bytes without crashing and with
 * bounded output. Fuzzed by fuzz/fuzz_procfs.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "security/security.h"

bool security_proc_stat_parse(const char *text, size_t len, struct security_proc_stat *out)
{
    memset(out, 0, sizeof(*out));
    /* the name is "(...)" and may hold anything: the fields start after the last ')' */
    const char *close = NULL;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ')')
            close = text + i;
    if (!close)
        return false;
    const char *p = close + 1, *end = text + len;
    /* fields 3.. : state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice num_threads itrealvalue starttime */
    int field = 2;
    while (p < end && field < 22) {
        while (p < end && *p == ' ')
            p++;
        if (p >= end)
            break;
        field++;
        const char *tok = p;
        while (p < end && *p != ' ')
            p++;
        size_t n = (size_t)(p - tok);
        char buf[32];
        if (n >= sizeof(buf))
            return false;
        memcpy(buf, tok, n);
        buf[n] = 0;
        char *e = NULL;
        if (field == 3) {
            if (n != 1)
                return false;
            out->state = buf[0];
        } else if (field == 4) {
            out->ppid = strtol(buf, &e, 10);
            if (!n || *e)
                return false;
        } else if (field == 22) {
            out->start = strtoull(buf, &e, 10);
            if (!n || *e)
                return false;
        }
    }
    return field == 22;
}

bool security_proc_net_parse(const char *line, bool tcp, int *port, unsigned long long *inode)
{
    char local[128], remote[128];
    unsigned st;
    unsigned long long ino;
    *port = 0;
    *inode = 0;
    /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
    if (sscanf(line, " %*s %127s %127s %x %*s %*s %*s %*s %*s %llu", local, remote, &st, &ino) !=
        4)
        return false;
    /* TCP: LISTEN; UDP: unconnected (bound, waiting for anyone) */
    if (tcp ? st != 0x0A : st != 0x07)
        return false;
    const char *colon = strrchr(local, ':');
    if (!colon || !colon[1] || strlen(colon + 1) > 4)
        return false;
    char *e = NULL;
    long v = strtol(colon + 1, &e, 16);
    if (*e || v <= 0 || v > 65535)
        return false;
    *port = (int)v;
    *inode = ino;
    return true;
}

void security_proc_cmdline_clean(const char *raw, size_t n, char *out, size_t outsz)
{
    if (!outsz)
        return;
    if (n > SECURITY_CMDLINE_MAX)
        n = SECURITY_CMDLINE_MAX;
    if (n > outsz - 1)
        n = outsz - 1;
    while (n && raw[n - 1] == 0)
        n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        out[i] = c == 0 ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[n] = 0;
}
