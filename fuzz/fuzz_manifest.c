/*
 * Fuzz target for the service manifest: parses and validates arbitrary bytes as pave.yaml, renders
 * the diagnostics, and releases everything. Any crash, sanitizer report or leak is a bug. Besides
 * memory safety it checks the contract of catalog_manifest_parse() and that the canonical JSON of
 * a valid manifest is itself a valid manifest with the same canonical JSON (so the digest is
 * stable across a YAML -> JSON round trip).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "catalog/catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const struct catalog_manifest *m)
{
    struct catalog_manifest again;
    struct schema_diags diags;
    schema_diags_init(&diags);
    int rc = catalog_manifest_parse("fuzz.json", m->json, strlen(m->json), &again, &diags, NULL);
    if (rc == 0 && (strcmp(again.json, m->json) != 0 || strcmp(again.digest, m->digest) != 0))
        __builtin_trap();
    /* NOMEM and TOO_BIG (escapes can grow the text) are acceptable; INVAL is not */
    if (rc == CORE_E_INVAL)
        __builtin_trap();
    schema_diags_release(&diags);
    catalog_manifest_release(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct catalog_manifest m;
    struct schema_diags diags;
    struct core_err err = {0};
    struct core_buf out;

    schema_diags_init(&diags);
    core_buf_init(&out, 0);
    int rc = catalog_manifest_parse("fuzz.yaml", (const char *)data, size, &m, &diags, &err);
    /* success: a filled manifest and no diagnostics; failure: a released manifest, and for
     * CORE_E_INVAL at least one diagnostic */
    if (rc == 0) {
        if (diags.n || !m.name || !m.team || !m.json || strlen(m.digest) != 64 || m.tier < 1 ||
            m.tier > 4)
            __builtin_trap();
        check_round_trip(&m);
    } else if (m.name || m.json || (rc == CORE_E_INVAL && diags.n == 0)) {
        __builtin_trap();
    }
    schema_diags_format(&diags, &out);
    /* one line per diagnostic, whatever the input */
    size_t lines = 0;
    for (size_t i = 0; i < out.len; i++)
        lines += out.data[i] == '\n';
    if (lines != diags.n || memchr(out.data, '\0', out.len))
        __builtin_trap();
    core_buf_release(&out);
    schema_diags_release(&diags);
    catalog_manifest_release(&m);
    return 0;
}
