/* placeholder until the demo command lands; replaced in this same change */
#include <stdio.h>
#include "cli.h"

int cmd_demo(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "statusgate: the demo command is not available in this build\n");
	return 2;
}
