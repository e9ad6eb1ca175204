/* libFuzzer target: query strings and form bodies (core_form_get, core_url_decode). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *s = core_strndup((const char *)data, size);
    if (!s)
        return 0;
    static const char *const keys[] = {"q", "team", "page", "csrf", "token", ""};
    char out[256];
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        core_form_get(s, keys[i], out, sizeof(out));
    struct core_buf b;
    core_buf_init(&b, 1u << 20);
    core_buf_add_urlenc(&b, s);
    core_buf_add_html(&b, s);
    core_buf_add_json_str(&b, s);
    core_buf_release(&b);
    core_url_decode(s);
    core_free(s);
    return 0;
}
