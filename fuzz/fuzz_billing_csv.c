/* libFuzzer target: billing exports (src/cloud/billing_csv.c). The input is
 * read as CSV; its first record picks a format (or the first byte forces one),
 * every following record is normalized, and the value parsers run on each
 * field. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cloud/cloud.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (4u << 20))
        return 0;
    const char *forced = NULL;
    if (data[0] < cloud_billing_nformats) /* a leading control byte forces a format */
        forced = cloud_billing_formats[data[0]].name;
    struct core_err err = {0};
    struct cloud_csv *r =
        cloud_csv_open_mem((const char *)data + (forced ? 1 : 0), size - (forced ? 1 : 0), &err);
    if (!r)
        return 0;
    struct cloud_map m;
    memset(&m, 0, sizeof(m));
    bool mapped = false;
    struct cloud_charge c;
    cloud_charge_init(&c);
    char **f;
    size_t n;
    int64_t line;
    int rc;
    while ((rc = cloud_csv_next(r, &f, &n, &line, &err)) != 0) {
        if (rc == CORE_E_INVAL)
            continue;
        if (rc < 0)
            break;
        if (!mapped) {
            if (cloud_billing_map(&m, forced, f, n, &err))
                break;
            mapped = true;
            continue;
        }
        if (cloud_billing_row(&m, f, n, &c, &err) == 0 && c.tags_json)
            (void)strlen(c.tags_json);
        for (size_t i = 0; i < n && i < 8; i++) {
            char t[21];
            int64_t v;
            cloud_parse_time(f[i], t);
            cloud_parse_money(f[i], &v);
            cloud_is_null(f[i]);
        }
    }
    cloud_charge_release(&c);
    cloud_map_release(&m);
    cloud_csv_free(r);
    return 0;
}
