/*
 * Fuzz target for the pipeline file: parses and validates arbitrary bytes as .pave/pipeline.yml,
 * renders the diagnostics, exercises the matching helpers on the result, and releases everything.
 * Any crash, sanitizer report or leak is a bug. Besides memory safety it checks the contract of
 * ci_pipeline_parse(): success means no diagnostics and a complete pipeline (every step has a
 * name, commands and sane limits; every cache a step names is declared); failure means a released
 * pipeline and, for CORE_E_INVAL, at least one diagnostic, each on one line.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ci/ci.h"
#include "schema/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool cache_declared(const struct ci_pipeline *p, const char *name)
{
    for (size_t i = 0; i < p->ncaches; i++)
        if (strcmp(p->caches[i].name, name) == 0)
            return true;
    return false;
}

static void check_pipeline(const struct ci_pipeline *p)
{
    if (!p->file || p->nsteps == 0 || p->nsteps > 100 || p->nbranches == 0 ||
        strlen(p->digest) != 64)
        __builtin_trap();
    for (size_t i = 0; i < p->nsteps; i++) {
        const struct ci_step *s = &p->steps[i];
        if (!s->name || !s->workdir || s->ncommands == 0 || s->timeout_ms <= 0 ||
            s->timeout_ms > 6 * 3600 * 1000 || s->cpu_millicores <= 0 || s->memory_bytes <= 0 ||
            s->pids < 1 || s->pids > 4096)
            __builtin_trap();
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->steps[j].name, s->name) == 0)
                __builtin_trap();
        for (size_t j = 0; j < s->ncaches; j++)
            if (!cache_declared(p, s->caches[j]))
                __builtin_trap();
        /* the matchers must cope with whatever patterns passed validation */
        const char *changed[] = {s->workdir, "src/a/b.c"};
        ci_step_wanted(s, p->branches[0], changed, 2);
        for (size_t j = 0; j < s->nwhen_paths; j++)
            ci_glob_match(s->when_paths[j], s->workdir);
    }
    ci_pipeline_watches(p, "main");
    for (size_t i = 0; i < p->nbranches; i++)
        ci_glob_match(p->branches[i], p->branches[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ci_pipeline p;
    struct schema_diags diags;
    struct core_err err = {0};
    struct core_buf out;

    schema_diags_init(&diags);
    core_buf_init(&out, 0);
    int rc = ci_pipeline_parse(".pave/pipeline.yml", (const char *)data, size, &p, &diags, &err);
    if (rc == 0) {
        if (diags.n)
            __builtin_trap();
        check_pipeline(&p);
    } else if (p.steps || p.file || (rc == CORE_E_INVAL && diags.n == 0)) {
        __builtin_trap();
    }
    schema_diags_format(&diags, &out);
    size_t lines = 0;
    for (size_t i = 0; i < out.len; i++)
        lines += out.data[i] == '\n';
    if (lines != diags.n || memchr(out.data, '\0', out.len))
        __builtin_trap();
    /* the matcher on raw input: any pattern, any text, bounded time */
    if (size > 1) {
        char buf[512];
        size_t half = size / 2 < sizeof(buf) / 2 ? size / 2 : sizeof(buf) / 2 - 1;
        memcpy(buf, data, half);
        buf[half] = 0;
        memcpy(buf + half + 1, data + half, half);
        buf[2 * half + 1] = 0;
        ci_glob_match(buf, buf + half + 1);
    }
    core_buf_release(&out);
    schema_diags_release(&diags);
    ci_pipeline_release(&p);
    return 0;
}
