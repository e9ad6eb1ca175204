/* libFuzzer target: the YAML/JSON document parser and its JSON rendering. */
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct core_doc doc;
    struct core_err err = {0};
    core_log_set_level(CORE_LOG_ERROR);
    if (core_doc_parse(&doc, "fuzz.yaml", (const char *)data, size, &err) == 0) {
        struct core_buf b;
        core_buf_init(&b, 1u << 24);
        core_node_to_json(doc.root, &b);
        core_buf_release(&b);
        core_doc_release(&doc);
    }
    return 0;
}
