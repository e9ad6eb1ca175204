/* Reads the findings out of one standard JSON record the sigma transform tagged (for the
 * `security` sink, sink_security.c). Pure: no engine, no store, so fuzz/fuzz_security_findings.c
 * drives it with arbitrary lines. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "security/security.h"
#include "telemetry/telemetry_int.h"

#define BODY_MAX 300  /* bytes of the record's body in the summary */
#define TITLE_MAX 500 /* bytes of the rule title in the summary */
#define HITS_MAX 32   /* the transform tags at most this many rules */

static bool is_level(const char *l)
{
    static const char *const levels[] = {"informational", "low", "medium", "high", "critical"};
    for (size_t i = 0; l && i < 5; i++)
        if (strcmp(l, levels[i]) == 0)
            return true;
    return false;
}

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence (s is valid UTF-8, as
 * every jansson string is). */
static int cut_len(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return (int)n;
}

int tel_security_findings(const char *line, size_t len, const char *service, const char *team,
                          tel_finding_fn fn, void *arg)
{
    json_t *rec = json_loadb(line, len, 0, NULL);
    json_t *attrs = json_object_get(rec, "attributes");
    json_t *ids = json_object_get(attrs, "security.rule_ids");
    if (!json_is_array(ids)) {
        json_decref(rec);
        return 0;
    }
    json_t *titles = json_object_get(attrs, "security.rule_titles");
    json_t *levels = json_object_get(attrs, "security.rule_levels");
    const char *body = json_string_value(json_object_get(rec, "body"));
    /* the event is the record exactly as written; a copy to NUL-terminate it */
    char *event = core_strndup(line, len);
    int rc = event ? 0 : CORE_E_NOMEM;
    for (size_t i = 0; !rc && i < json_array_size(ids) && i < HITS_MAX; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (!id || !*id)
            continue;
        const char *title = json_string_value(json_array_get(titles, i));
        const char *level = json_string_value(json_array_get(levels, i));
        if (!title || !*title)
            title = id;
        if (!is_level(level))
            level = "medium";
        char summary[TITLE_MAX + BODY_MAX + 8];
        snprintf(summary, sizeof(summary), "%.*s: %.*s", cut_len(title, TITLE_MAX), title,
                 body ? cut_len(body, BODY_MAX) : 0, body ? body : "");
        struct security_finding f = {
            .rule_id = id,
            .rule_title = title,
            .source = "sigma",
            .severity = level,
            .service = service,
            .team = team,
            .summary = summary,
            .event_json = event,
        };
        rc = fn(arg, &f);
    }
    core_free(event);
    json_decref(rec);
    return rc;
}
