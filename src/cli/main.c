/* The dnal binary: all logic lives in libdnal. */
#include "dnal/cli.h"

int main(int argc, char **argv)
{
    return dnal_cli_main(argc, argv);
}
