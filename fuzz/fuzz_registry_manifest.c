/* Fuzzes the registry's pure parsers: manifest validation (all four media types), the PATCH
 * Content-Range parser, the GET Range parser, and name/tag/digest checks. The first input byte
 * picks the media type; the rest is the manifest, then fed to the header parsers as a string. */
#include <stdint.h>
#include <string.h>

#include "registry/registry.h"
#include "registry/registry_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {REGISTRY_MT_OCI_MANIFEST, REGISTRY_MT_OCI_INDEX,
                                        REGISTRY_MT_DOCKER_MANIFEST, REGISTRY_MT_DOCKER_LIST,
                                        "application/json"};
    if (size < 1)
        return 0;
    const char *mt = types[data[0] % 5];
    struct registry_manifest_info info;
    struct core_err err = {0};
    if (registry_manifest_parse(mt, data + 1, size - 1, &info, &err) == 0) {
        for (size_t i = 0; i < info.nblobs; i++)
            if (!registry_digest_valid(info.blobs[i]))
                __builtin_trap();
        for (size_t i = 0; i < info.nmanifests; i++)
            if (!registry_digest_valid(info.manifests[i]))
                __builtin_trap();
        registry_manifest_info_release(&info);
    }
    if (size > 512)
        return 0;
    char s[513];
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    uint64_t a, b;
    if (registry_content_range_parse(s, &a, &b) == 0 && b < a)
        __builtin_trap();
    uint64_t blob = data[0] * 37u;
    if (registry_range_parse(s, blob, &a, &b) == 0 && (b == 0 || a + b > blob))
        __builtin_trap();
    registry_name_valid(s);
    registry_tag_valid(s);
    registry_digest_valid(s);
    return 0;
}
