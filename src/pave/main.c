/* pave: one binary for the whole platform. Everything starts in the CLI's command table. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
