/* Errors: codes, messages with their origin, and wrapping with context. */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *core_errc_name(int code)
{
    switch (code) {
    case CORE_OK: return "ok";
    case CORE_E_INVAL: return "invalid";
    case CORE_E_NOMEM: return "out of memory";
    case CORE_E_IO: return "i/o error";
    case CORE_E_NOTFOUND: return "not found";
    case CORE_E_CONFLICT: return "conflict";
    case CORE_E_TOO_BIG: return "too big";
    case CORE_E_PERM: return "permission denied";
    case CORE_E_AUTH: return "unauthenticated";
    case CORE_E_UNSUPPORTED: return "unsupported";
    default: return "internal error";
    }
}

int core_err_set_at(struct core_err *err, const char *file, int line, int code, const char *fmt,
                    ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
    err->file = file;
    err->line = line;
    return code;
}

void core_err_wrap(struct core_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[256];
    char old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%.200s: %.300s", prefix, old);
}

void core_err_clear(struct core_err *err)
{
    if (!err)
        return;
    err->code = 0;
    err->msg[0] = 0;
    err->file = NULL;
    err->line = 0;
}

void core_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "{\"severity\":\"FATAL\",\"body\":\"assertion failed\","
                    "\"attributes\":{\"expr\":\"%s\",\"at\":\"%s:%d\"}}\n",
            what, file, line);
#ifdef NDEBUG
    (void)0;
#else
    abort();
#endif
}
