/* The component tables: every kind of source, transform and sink the engine knows. Adding a
 * component is its own file plus one line here. */
#include <string.h>

#include "telemetry/telemetry_int.h"

const struct tel_source_ops *const tel_sources[] = {
    &tel_source_file,
    &tel_source_replicas,
    &tel_source_syslog,
    &tel_source_platform,
    &tel_source_http,
    &tel_source_audit,
    NULL,
};

const struct tel_transform_ops *const tel_transforms[] = {
    &tel_transform_enrich,
    &tel_transform_redact,
    &tel_transform_sample,
    &tel_transform_sigma,
    &tel_transform_detect,
    NULL,
};

const struct tel_sink_ops *const tel_sinks[] = {
    &tel_sink_file,
    &tel_sink_stdout,
    &tel_sink_store,
    &tel_sink_loki,
    &tel_sink_http,
    &tel_sink_elasticsearch,
    &tel_sink_security,
    NULL,
};

const struct tel_source_ops *tel_source_find(const char *type)
{
    for (size_t i = 0; tel_sources[i]; i++)
        if (strcmp(tel_sources[i]->type, type) == 0)
            return tel_sources[i];
    return NULL;
}

const struct tel_sink_ops *tel_sink_find(const char *type)
{
    for (size_t i = 0; tel_sinks[i]; i++)
        if (strcmp(tel_sinks[i]->type, type) == 0)
            return tel_sinks[i];
    return NULL;
}

const struct tel_transform_ops *tel_transform_find(const char *type)
{
    for (size_t i = 0; tel_transforms[i]; i++)
        if (strcmp(tel_transforms[i]->type, type) == 0)
            return tel_transforms[i];
    return NULL;
}
