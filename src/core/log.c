/* The program's own log: one JSON object per line on stderr, OpenTelemetry-shaped. */
#include "core/core.h"

#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum core_log_level log_level = CORE_LOG_INFO;
static bool level_set;
static char log_instance[128] = "pave";
static char log_version[32] = PAVE_VERSION;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static core_log_tap_fn log_tap;
static void *log_tap_arg;
static int log_tap_inflight; /* tap calls running now (log_lock) */

void core_log_set_tap(core_log_tap_fn fn, void *arg)
{
    pthread_mutex_lock(&log_lock);
    log_tap = fn;
    log_tap_arg = arg;
    /* calls to the previous tap that already started finish before we return */
    while (log_tap_inflight) {
        pthread_mutex_unlock(&log_lock);
        usleep(1000);
        pthread_mutex_lock(&log_lock);
    }
    pthread_mutex_unlock(&log_lock);
}

void core_log_set_level(enum core_log_level lvl)
{
    level_set = true;
    log_level = lvl;
}

void core_log_set_resource(const char *instance, const char *version)
{
    if (instance)
        snprintf(log_instance, sizeof(log_instance), "%s", instance);
    if (version)
        snprintf(log_version, sizeof(log_version), "%s", version);
}

static const char *severity_text(enum core_log_level lvl)
{
    switch (lvl) {
    case CORE_LOG_DEBUG: return "DEBUG";
    case CORE_LOG_INFO: return "INFO";
    case CORE_LOG_WARN: return "WARN";
    default: return "ERROR";
    }
}

static int severity_number(enum core_log_level lvl)
{
    /* OpenTelemetry SeverityNumber ranges: DEBUG 5, INFO 9, WARN 13, ERROR 17. */
    switch (lvl) {
    case CORE_LOG_DEBUG: return 5;
    case CORE_LOG_INFO: return 9;
    case CORE_LOG_WARN: return 13;
    default: return 17;
    }
}

static bool is_secret_key(const char *k)
{
    static const char *const words[] = {"token", "password", "secret", "authorization",
                                        "cookie", "passphrase", "key"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t wl = strlen(words[i]);
        for (const char *p = k; *p; p++)
            if (strncasecmp(p, words[i], wl) == 0)
                return true;
    }
    return false;
}

/* PAVE_LOG_LEVEL=debug|info|warn|error sets the starting level (default info). */
static void level_from_env(void)
{
    if (level_set)
        return;
    level_set = true;
    const char *e = getenv("PAVE_LOG_LEVEL");
    if (!e)
        return;
    if (!strcasecmp(e, "debug"))
        log_level = CORE_LOG_DEBUG;
    else if (!strcasecmp(e, "warn"))
        log_level = CORE_LOG_WARN;
    else if (!strcasecmp(e, "error"))
        log_level = CORE_LOG_ERROR;
}

void core_log_emit(enum core_log_level lvl, const char *component, const char *body,
                   const struct core_log_field *fields)
{
    level_from_env();
    if (lvl < log_level)
        return;
    char ts[40];
    core_time_format(core_now_ms(), ts, sizeof(ts));
    /* A fixed stack buffer keeps logging allocation-free; long values are truncated. */
    char line[4096];
    struct core_buf b = {line, 0, sizeof(line), sizeof(line) - 1};
    line[0] = 0;
    core_buf_addf(&b, "{\"ts\":\"%s\",\"severity\":\"%s\",\"severity_number\":%d,\"body\":", ts,
                  severity_text(lvl), severity_number(lvl));
    core_buf_add_json_str(&b, body);
    core_buf_adds(&b, ",\"attributes\":{");
    for (size_t i = 0; fields && fields[i].kind != CORE_LF_END; i++) {
        if (i)
            core_buf_addc(&b, ',');
        core_buf_add_json_str(&b, fields[i].key);
        core_buf_addc(&b, ':');
        if (is_secret_key(fields[i].key))
            core_buf_adds(&b, "\"[REDACTED]\"");
        else if (fields[i].kind == CORE_LF_INT)
            core_buf_addf(&b, "%lld", (long long)fields[i].i);
        else
            core_buf_add_json_str(&b, fields[i].s ? fields[i].s : "");
    }
    core_buf_adds(&b, "},\"resource\":{\"service.name\":\"pave\",\"component\":");
    core_buf_add_json_str(&b, component);
    core_buf_adds(&b, ",\"service.instance.id\":");
    core_buf_add_json_str(&b, log_instance);
    core_buf_adds(&b, ",\"service.version\":");
    core_buf_add_json_str(&b, log_version);
    core_buf_adds(&b, "}}");
    if (b.len >= sizeof(line) - 1) {
        /* Truncated: close the object so the line stays valid JSON. */
        static const char tail[] = "\"}}";
        b.len = sizeof(line) - sizeof(tail) - 1;
        memcpy(line + b.len, tail, sizeof(tail));
        b.len += sizeof(tail) - 1;
    }
    pthread_mutex_lock(&log_lock);
    fwrite(line, 1, b.len, stderr);
    fputc('\n', stderr);
    fflush(stderr);
    /* the telemetry pipeline's own messages are not fed back into it */
    core_log_tap_fn tap = strcmp(component, "telemetry") != 0 ? log_tap : NULL;
    void *tap_arg = log_tap_arg;
    if (tap)
        log_tap_inflight++;
    pthread_mutex_unlock(&log_lock);
    if (tap) {
        tap(tap_arg, line, b.len);
        pthread_mutex_lock(&log_lock);
        log_tap_inflight--;
        pthread_mutex_unlock(&log_lock);
    }
}
