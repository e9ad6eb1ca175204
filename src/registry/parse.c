/* The registry's pure parsers: names, tags, digests, Content-Range/Range, manifests. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"
#include "registry/registry_int.h"

bool registry_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t n = strlen(name);
    if (n == 0 || n > REGISTRY_NAME_MAX)
        return false;
    const char *p = name;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char label[64];
        if (len == 0 || len >= sizeof(label))
            return false;
        memcpy(label, p, len);
        label[len] = 0;
        if (!core_is_dns_label(label))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool registry_tag_valid(const char *tag)
{
    if (!tag || !tag[0] || (!is_alnum(tag[0]) && tag[0] != '_'))
        return false;
    size_t n = 1;
    for (const char *p = tag + 1; *p; p++, n++)
        if (!is_alnum(*p) && *p != '_' && *p != '.' && *p != '-')
            return false;
    return n <= REGISTRY_TAG_MAX;
}

bool registry_digest_valid(const char *digest)
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != REGISTRY_DIGEST_LEN)
        return false;
    for (const char *p = digest + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

bool registry_manifest_type_known(const char *media_type, bool *is_index)
{
    bool idx = false;
    if (!media_type)
        return false;
    if (strcmp(media_type, REGISTRY_MT_OCI_INDEX) == 0 ||
        strcmp(media_type, REGISTRY_MT_DOCKER_LIST) == 0)
        idx = true;
    else if (strcmp(media_type, REGISTRY_MT_OCI_MANIFEST) != 0 &&
             strcmp(media_type, REGISTRY_MT_DOCKER_MANIFEST) != 0)
        return false;
    if (is_index)
        *is_index = idx;
    return true;
}

/* Parses decimal digits at *p into *out (no sign, no overflow); advances *p. */
static int parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return CORE_E_INVAL;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return CORE_E_INVAL;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

int registry_content_range_parse(const char *s, uint64_t *start, uint64_t *end)
{
    uint64_t a, b;
    if (!s)
        return CORE_E_INVAL;
    while (*s == ' ')
        s++;
    if (strncmp(s, "bytes", 5) == 0) {
        s += 5;
        if (*s == '=' || *s == ' ')
            s++;
        else
            return CORE_E_INVAL;
    }
    if (parse_u64(&s, &a) || *s++ != '-' || parse_u64(&s, &b))
        return CORE_E_INVAL;
    if (*s == '/') {
        s++;
        uint64_t total;
        if (*s == '*')
            s++;
        else if (parse_u64(&s, &total) || total <= b)
            return CORE_E_INVAL;
    }
    while (*s == ' ')
        s++;
    if (*s || b < a)
        return CORE_E_INVAL;
    *start = a;
    *end = b;
    return 0;
}

int registry_range_parse(const char *s, uint64_t size, uint64_t *start, uint64_t *len)
{
    uint64_t a = 0, b = 0;
    if (!s)
        return CORE_E_INVAL;
    while (*s == ' ')
        s++;
    if (strncmp(s, "bytes=", 6) != 0)
        return CORE_E_INVAL;
    s += 6;
    while (*s == ' ')
        s++;
    if (*s == '-') {
        s++;
        if (parse_u64(&s, &b))
            return CORE_E_INVAL;
        while (*s == ' ')
            s++;
        if (*s)
            return CORE_E_INVAL; /* several ranges: ignored */
        if (b == 0 || size == 0)
            return CORE_E_TOO_BIG;
        if (b > size)
            b = size;
        *start = size - b;
        *len = b;
        return 0;
    }
    if (parse_u64(&s, &a) || *s++ != '-')
        return CORE_E_INVAL;
    bool open_end = !(*s >= '0' && *s <= '9');
    if (!open_end && parse_u64(&s, &b))
        return CORE_E_INVAL;
    while (*s == ' ')
        s++;
    if (*s || (!open_end && b < a))
        return CORE_E_INVAL;
    if (a >= size)
        return CORE_E_TOO_BIG;
    if (open_end || b >= size)
        b = size - 1;
    *start = a;
    *len = b - a + 1;
    return 0;
}

/* Checks one descriptor object; copies its digest into digest_out (if not NULL). */
static int check_descriptor(json_t *d, const char *what, size_t idx, char *digest_out,
                            char *media_type_out, struct core_err *err)
{
    if (!json_is_object(d))
        return core_err_set(err, CORE_E_INVAL, "%s[%zu] is not a descriptor object", what, idx);
    json_t *mt = json_object_get(d, "mediaType");
    json_t *dg = json_object_get(d, "digest");
    json_t *sz = json_object_get(d, "size");
    if (!json_is_string(mt) || !json_string_value(mt)[0] ||
        strlen(json_string_value(mt)) >= REGISTRY_MEDIA_TYPE_MAX)
        return core_err_set(err, CORE_E_INVAL, "%s[%zu]: mediaType must be a non-empty string",
                            what, idx);
    if (!json_is_string(dg) || !registry_digest_valid(json_string_value(dg)))
        return core_err_set(err, CORE_E_INVAL, "%s[%zu]: digest must be sha256:<64 lowercase hex>",
                            what, idx);
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return core_err_set(err, CORE_E_INVAL, "%s[%zu]: size must be an integer >= 0", what, idx);
    json_t *at = json_object_get(d, "artifactType");
    if (at && !json_is_string(at))
        return core_err_set(err, CORE_E_INVAL, "%s[%zu]: artifactType must be a string", what, idx);
    json_t *an = json_object_get(d, "annotations");
    if (an && !json_is_object(an))
        return core_err_set(err, CORE_E_INVAL, "%s[%zu]: annotations must be an object", what, idx);
    if (digest_out)
        memcpy(digest_out, json_string_value(dg), REGISTRY_DIGEST_LEN + 1);
    if (media_type_out)
        snprintf(media_type_out, REGISTRY_MEDIA_TYPE_MAX, "%s", json_string_value(mt));
    return 0;
}

/* Validates a descriptor array and copies its digests into a new array. */
static int check_array(json_t *arr, const char *what, bool prepend_slot,
                       char (**out)[REGISTRY_DIGEST_LEN + 1], size_t *n, struct core_err *err)
{
    if (!json_is_array(arr))
        return core_err_set(err, CORE_E_INVAL, "'%s' must be an array of descriptors", what);
    size_t cnt = json_array_size(arr);
    if (cnt > REGISTRY_DESCRIPTORS_MAX)
        return core_err_set(err, CORE_E_INVAL, "'%s' has more than %d entries", what,
                            REGISTRY_DESCRIPTORS_MAX);
    size_t base = prepend_slot ? 1 : 0;
    *out = core_calloc(cnt + base + 1, sizeof(**out));
    if (!*out)
        return core_err_set(err, CORE_E_NOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        int rc = check_descriptor(json_array_get(arr, i), what, i, (*out)[base + i], NULL, err);
        if (rc)
            return rc;
    }
    *n = cnt + base;
    return 0;
}

void registry_manifest_info_release(struct registry_manifest_info *m)
{
    if (!m)
        return;
    core_free(m->annotations);
    core_free(m->blobs);
    core_free(m->manifests);
    memset(m, 0, sizeof(*m));
}

int registry_manifest_parse(const char *media_type, const void *data, size_t len,
                            struct registry_manifest_info *out, struct core_err *err)
{
    struct registry_manifest_info m = {0};
    json_t *root = NULL;
    int rc = 0;
    bool is_index = false;
    if (!registry_manifest_type_known(media_type, &is_index)) {
        rc = core_err_set(err, CORE_E_UNSUPPORTED, "unsupported manifest media type '%s'",
                          media_type ? media_type : "");
        goto out;
    }
    if (len > REGISTRY_MANIFEST_MAX) {
        rc = core_err_set(err, CORE_E_TOO_BIG, "manifest is larger than %d bytes",
                          REGISTRY_MANIFEST_MAX);
        goto out;
    }
    if (!data || len == 0) {
        rc = core_err_set(err, CORE_E_INVAL, "empty manifest");
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = core_err_set(err, CORE_E_INVAL, "manifest is not valid JSON: %s (line %d)", jerr.text,
                          jerr.line);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = core_err_set(err, CORE_E_INVAL, "manifest is not a JSON object");
        goto out;
    }
    json_t *sv = json_object_get(root, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        rc = core_err_set(err, CORE_E_INVAL, "schemaVersion must be 2");
        goto out;
    }
    json_t *mt = json_object_get(root, "mediaType");
    if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), media_type) != 0)) {
        rc = core_err_set(err, CORE_E_INVAL,
                          "mediaType in the manifest does not match the "
                          "Content-Type '%s'",
                          media_type);
        goto out;
    }
    m.is_index = is_index;
    snprintf(m.media_type, sizeof(m.media_type), "%s", media_type);
    json_t *at = json_object_get(root, "artifactType");
    if (at) {
        if (!json_is_string(at) || !json_string_value(at)[0] ||
            strlen(json_string_value(at)) >= REGISTRY_MEDIA_TYPE_MAX) {
            rc = core_err_set(err, CORE_E_INVAL, "artifactType must be a non-empty string");
            goto out;
        }
        snprintf(m.artifact_type, sizeof(m.artifact_type), "%s", json_string_value(at));
    }
    if (is_index) {
        if ((rc = check_array(json_object_get(root, "manifests"), "manifests", false, &m.manifests,
                              &m.nmanifests, err)))
            goto out;
    } else {
        json_t *cfg = json_object_get(root, "config");
        if (!cfg) {
            rc = core_err_set(err, CORE_E_INVAL, "an image manifest needs a 'config' descriptor");
            goto out;
        }
        if ((rc = check_array(json_object_get(root, "layers"), "layers", true, &m.blobs, &m.nblobs,
                              err)))
            goto out;
        char cfg_type[REGISTRY_MEDIA_TYPE_MAX];
        if ((rc = check_descriptor(cfg, "config", 0, m.blobs[0], cfg_type, err)))
            goto out;
        if (!m.artifact_type[0])
            snprintf(m.artifact_type, sizeof(m.artifact_type), "%s", cfg_type);
    }
    json_t *subj = json_object_get(root, "subject");
    if (subj && (rc = check_descriptor(subj, "subject", 0, m.subject, NULL, err)))
        goto out;
    json_t *ann = json_object_get(root, "annotations");
    if (ann) {
        if (!json_is_object(ann)) {
            rc = core_err_set(err, CORE_E_INVAL, "annotations must be an object");
            goto out;
        }
        json_t *v;
        const char *k;
        json_object_foreach(ann, k, v)
        {
            if (!json_is_string(v)) {
                rc = core_err_set(err, CORE_E_INVAL, "annotation '%s' must be a string", k);
                goto out;
            }
        }
        char *s = json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS);
        m.annotations = s ? core_strdup(s) : NULL;
        free(s); /* allocated by jansson */
        if (!m.annotations) {
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            goto out;
        }
    }
out:
    json_decref(root);
    if (rc)
        registry_manifest_info_release(&m);
    else
        *out = m;
    return rc;
}
