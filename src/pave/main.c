/* pave: one binary for the whole platform. Everything starts in the CLI's command table. */
#include <jansson.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
    /* Route jansson's allocations through core so failure injection and limits reach them. */
    json_set_alloc_funcs(core_malloc, core_free);
    return cli_main(argc, argv);
}
