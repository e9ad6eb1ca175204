/* libFuzzer target: cost split rule documents (src/cloud/split_rules.c). The
 * input is a YAML or JSON rule; a valid one is checked to round-trip through
 * its canonical JSON, and its teams get an amount split over them whose parts
 * must add up exactly. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (64u << 10))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    struct core_err err = {0};
    char *js = NULL, name[64];
    if (cloud_split_rule_check(text, size, &js, name, &err) == 0) {
        /* the canonical form is itself a valid rule with the same name */
        char *js2 = NULL, name2[64];
        if (cloud_split_rule_check(js, strlen(js), &js2, name2, &err) != 0 ||
            strcmp(name, name2) != 0 || strcmp(js, js2) != 0)
            abort();
        json_t *doc = json_loads(js, 0, NULL);
        json_t *teams = json_incref(json_object_get(doc, "teams"));
        if (!teams) {
            const char *k;
            json_t *v;
            teams = json_array();
            json_object_foreach(json_object_get(doc, "weights"), k, v)
                json_array_append_new(teams, json_string(k));
        }
        size_t n = json_array_size(teams);
        if (n) {
            int64_t *w = calloc(n, sizeof(*w)), *out = calloc(n, sizeof(*out));
            for (size_t i = 0; w && i < n; i++)
                w[i] = json_integer_value(json_object_get(
                    json_object_get(doc, "weights"), json_string_value(json_array_get(teams, i))));
            int64_t amount = (int64_t)size * 1000000007LL - 12345;
            if (w && out && cloud_split_amount(amount, w, n, out) == 0) {
                int64_t sum = 0;
                for (size_t i = 0; i < n; i++)
                    sum += out[i];
                if (sum != amount)
                    abort();
            }
            free(w);
            free(out);
        }
        json_decref(teams);
        json_decref(doc);
        free(js2);
    }
    free(js);
    free(text);
    return 0;
}
