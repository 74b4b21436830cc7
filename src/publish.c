/* placeholder until the publish command lands; replaced in this same change */
#include <stdio.h>
#include "cli.h"

int cmd_publish(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "statusgate: the publish command is not available in this build\n");
	return 2;
}
