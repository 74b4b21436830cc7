/*
 * config.c: the duration parser behind --retention and --retention-final,
 * and those options (and --amqp-queue-type) through config_load: defaults,
 * STATUSGATE_* variables, the command line winning, garbage refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

static void check_duration(const char *text, long want)
{
	char err[160] = "";
	long got = -1;
	int rc = config_parse_duration(text, &got, err, sizeof(err));

	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(got, want);
	if (rc)
		fprintf(stderr, "  \"%s\": %s\n", text, err);
}

/* refused, with a reason that contains why */
static void check_bad_duration(const char *text, const char *why)
{
	char err[160] = "";
	long got = 12345;

	CHECK_EQ_INT(config_parse_duration(text, &got, err, sizeof(err)), -1);
	CHECK_EQ_INT(got, 12345);            /* untouched */
	CHECK(strstr(err, why) != NULL);
	if (!strstr(err, why))
		fprintf(stderr, "  \"%s\": \"%s\" does not say \"%s\"\n", text, err, why);
}

static void test_durations(void)
{
	check_duration("0", 0);
	check_duration("90", 90);
	check_duration("90s", 90);
	check_duration("15m", 900);
	check_duration("12h", 43200);
	check_duration("30d", 2592000);
	check_duration("1d12h", 129600);
	check_duration("1h30m", 5400);
	check_duration("2m5s", 125);
	check_duration("007s", 7);

	check_bad_duration("", "empty");
	check_bad_duration("abc", "expected a number");
	check_bad_duration("-5", "expected a number");
	check_bad_duration(" 5", "expected a number");
	check_bad_duration("h", "expected a number");
	check_bad_duration("5x", "unknown unit \"x\"");
	check_bad_duration("5 ", "unknown unit \" \"");
	check_bad_duration("5S", "unknown unit \"S\"");
	check_bad_duration("1.5h", "no fractions");
	check_bad_duration("1h30", "unit (s, m, h or d) is missing");
	check_bad_duration("1hh", "expected a number");
	check_bad_duration("99999999999999999999", "too large");
	check_bad_duration("9223372036854775807d", "too large");
	check_bad_duration("106751991167300d1d", "too large");
}

/* config_load over argv (NULL-terminated), after the environment given */
static int load(struct gw_config *cfg, const char *const *args)
{
	char *argv[16];
	int argc = 0;

	argv[argc++] = (char *)"serve";
	for (; *args && argc < 15; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	return config_load(cfg, argc, argv);
}

static void test_options(void)
{
	struct gw_config cfg;
	static const char *const none[] = { NULL };
	static const char *const cli[] = { "--retention", "90s", "--retention-final", "1h30m",
					   "--amqp-queue-type", "quorum", NULL };
	static const char *const bad_final[] = { "--retention-final", "a week", NULL };
	static const char *const bad_type[] = { "--amqp-queue-type", "stream", NULL };
	static const char *const off[] = { "--retention", "0", NULL };
	static const char *const huge[] = { "--retention", "36600d", NULL };

	/* defaults: 30 days, 7 days, classic queues */
	CHECK_EQ_INT(load(&cfg, none), 0);
	CHECK_EQ_INT(cfg.retention, 30L * 86400);
	CHECK_EQ_INT(cfg.retention_final, 7L * 86400);
	CHECK_EQ_STR(cfg.amqp_queue_type, "classic");
	config_release(&cfg);

	/* the environment, then the command line over it */
	setenv("STATUSGATE_RETENTION", "12h", 1);
	setenv("STATUSGATE_RETENTION_FINAL", "600", 1);
	setenv("STATUSGATE_AMQP_QUEUE_TYPE", "quorum", 1);
	CHECK_EQ_INT(load(&cfg, none), 0);
	CHECK_EQ_INT(cfg.retention, 43200);
	CHECK_EQ_INT(cfg.retention_final, 600);
	CHECK_EQ_STR(cfg.amqp_queue_type, "quorum");
	config_release(&cfg);
	setenv("STATUSGATE_AMQP_QUEUE_TYPE", "classic", 1);
	CHECK_EQ_INT(load(&cfg, cli), 0);
	CHECK_EQ_INT(cfg.retention, 90);
	CHECK_EQ_INT(cfg.retention_final, 5400);
	CHECK_EQ_STR(cfg.amqp_queue_type, "quorum");
	config_release(&cfg);

	CHECK_EQ_INT(load(&cfg, off), 0);
	CHECK_EQ_INT(cfg.retention, 0);
	config_release(&cfg);

	/* garbage and out-of-range values are refused (the reason goes to
	 * stderr), from the command line and from the environment alike */
	CHECK_EQ_INT(load(&cfg, bad_final), -1);
	config_release(&cfg);
	CHECK_EQ_INT(load(&cfg, bad_type), -1);
	config_release(&cfg);
	CHECK_EQ_INT(load(&cfg, huge), -1);
	config_release(&cfg);
	setenv("STATUSGATE_RETENTION", "soon", 1);
	CHECK_EQ_INT(load(&cfg, none), -1);
	config_release(&cfg);
	unsetenv("STATUSGATE_RETENTION");
	unsetenv("STATUSGATE_RETENTION_FINAL");
	unsetenv("STATUSGATE_AMQP_QUEUE_TYPE");
}

int main(void)
{
	test_durations();
	test_options();
	return check_report();
}
