/*
 * `statusgate demo`: plays a submission's life cycle against a running
 * gateway over POST /api/v1/publish, so that a newcomer sees the status page
 * come alive:
 *
 *   reset; Waiting; records of N animals and M samples in batches; Loaded;
 *   validation results in 10 batches (mostly Pass, some Warning and Error,
 *   with a handful of recurring messages and columns); Need Revision; the
 *   errored records re-validated to Pass; Ready; Submitted; Completed.
 *
 * The results are a pure function of the record index, so a run is
 * reproducible and a test can predict its counts. Each step prints one
 * line; any refused publish or an unreachable gateway stops the demo with a
 * clear message and exit status 1 (2 for a usage error). --speed scales the
 * pauses between steps; --speed 0 plays without pauses (for tests).
 * Single-threaded: everything here runs on the main thread.
 */
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "httpc.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define RECORDS_PER_PUBLISH 250   /* keeps each publish well under --max-publish */
#define VALIDATION_BATCHES 10

struct demo_opts {
	char *url;
	char *submission;
	char *token;
	char *speed;
	long animals;
	long samples;
	long timeout;
};

#define DOPT(field) offsetof(struct demo_opts, field)

static const struct gw_opt demo_opts[] = {
	{ "url", GW_OPT_STR, DOPT(url), "http://127.0.0.1:8080", "URL",
	  "the gateway (plain http)", 0, 0 },
	{ "submission", GW_OPT_STR, DOPT(submission), "demo-1", "KEY",
	  "submission key to play (its records are reset first)", 0, 0 },
	{ "token", GW_OPT_STR, DOPT(token), NULL, "TOKEN",
	  "publish token (Authorization: Bearer); also STATUSGATE_PUBLISH_TOKEN", 0, 0 },
	{ "animals", GW_OPT_INT, DOPT(animals), "500", "N", "animal records", 0, 1000000 },
	{ "samples", GW_OPT_INT, DOPT(samples), "500", "N", "sample records", 0, 1000000 },
	{ "speed", GW_OPT_STR, DOPT(speed), "1", "FACTOR",
	  "2 plays twice as fast, 0.5 half as fast, 0 without pauses", 0, 0 },
	{ "timeout", GW_OPT_INT, DOPT(timeout), "10", "SECONDS",
	  "give up on a publish after this long", 1, 3600 },
	{ NULL, 0, 0, NULL, NULL, NULL, 0, 0 },
};

static const char usage[] =
	"Usage: statusgate demo [options]\n"
	"       statusgate demo --url http://127.0.0.1:8080 --submission demo-1\n\n"
	"Plays a realistic submission life cycle against a running gateway: Waiting,\n"
	"records loaded, validation results arriving in batches with warnings and\n"
	"errors, Need Revision, fixes, Ready, Submitted, Completed. Open\n"
	"<URL>/submissions/<KEY> in a browser to watch it. Exit status: 0 played,\n"
	"1 the gateway refused a publish or could not be reached, 2 usage error.\n";

struct demo {
	const struct demo_opts *o;
	struct httpc_url url;
	const char *token;
	double speed;            /* 0: no pauses */
	int step;
};

/* one recurring validation message */
struct issue {
	const char *text;
	const char *column;
};

static const struct issue animal_warnings[] = {
	{ "Breed not in ontology", "breed" },
	{ "Sex given as free text, expected an ontology term", "sex" },
};
static const struct issue animal_errors[] = {
	{ "Missing birth date", "birth_date" },
	{ "Species does not match the project", "species" },
};
static const struct issue sample_warnings[] = {
	{ "Missing collection date", "collection_date" },
	{ "Organism part not in ontology", "organism_part" },
};
static const struct issue sample_errors[] = {
	{ "Derived-from animal not found", "derived_from" },
	{ "Collection date is not ISO 8601", "collection_date" },
};

enum { R_PASS, R_WARNING, R_ERROR };

/* a reproducible result for record i of a kind: about 78% Pass, 14%
 * Warning, 8% Error; which message is also a function of i */
static unsigned mix(unsigned long i, unsigned salt)
{
	unsigned x = (unsigned)i * 2654435761u ^ salt;

	x ^= x >> 15;
	x *= 2246822519u;
	x ^= x >> 13;
	return x;
}

static int result_of(unsigned long i, int animal)
{
	unsigned r = mix(i, animal ? 0x9e37u : 0x7f4au) % 100;

	return r < 78 ? R_PASS : r < 92 ? R_WARNING : R_ERROR;
}

static void pause_for(const struct demo *d, double seconds)
{
	struct timespec ts;
	double s;

	if (d->speed <= 0)
		return;
	s = seconds / d->speed;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* POSTs doc (taking its reference); 0 or -1 (reported) */
static int publish(struct demo *d, json_t *doc, const char *what)
{
	struct httpc_resp resp;
	char err[256], *text;
	int rc = -1;

	json_object_set_new(doc, "submission", json_string(d->o->submission));
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!text) {
		fprintf(stderr, "statusgate demo: out of memory\n");
		return -1;
	}
	if (httpc_request(&d->url, "POST", "/api/v1/publish", text, strlen(text), d->token,
			  (int)d->o->timeout, &resp, err, sizeof(err))) {
		fprintf(stderr, "statusgate demo: cannot reach the gateway at %s: %s\n"
			"  (is `statusgate serve` running there? see --url)\n", d->o->url, err);
		goto out;
	}
	if (resp.status < 200 || resp.status > 299) {
		fprintf(stderr, "statusgate demo: the gateway refused \"%s\": HTTP %d %s\n",
			what, resp.status, resp.body ? resp.body : "");
		if (resp.status == 401 || resp.status == 403)
			fprintf(stderr, "  (give the gateway's publish token with --token)\n");
		httpc_resp_free(&resp);
		goto out;
	}
	httpc_resp_free(&resp);
	rc = 0;
out:
	free(text);
	return rc;
}

static int step_status(struct demo *d, const char *status, const char *note)
{
	printf("%3d  %-14s %s\n", ++d->step, status, note);
	fflush(stdout);
	return publish(d, json_pack("{s:s, s:s, s:s}", "type", "status", "status", status,
				    "notification", note), status);
}

static int step_note(struct demo *d, const char *note)
{
	printf("%3d  %-14s %s\n", ++d->step, "(notification)", note);
	fflush(stdout);
	return publish(d, json_pack("{s:s, s:s}", "type", "notification", "notification", note),
		       "notification");
}

static void record_name(char *out, size_t n, int animal, unsigned long i)
{
	snprintf(out, n, "%s-%04lu", animal ? "animal" : "sample", i + 1);
}

/* records [from, to) of one kind, in publishes of RECORDS_PER_PUBLISH */
static int send_records(struct demo *d, int animal, unsigned long from, unsigned long to)
{
	char name[32];

	while (from < to) {
		unsigned long end = to - from > RECORDS_PER_PUBLISH ? from + RECORDS_PER_PUBLISH : to;
		json_t *arr = json_array();

		for (unsigned long i = from; i < end; i++) {
			record_name(name, sizeof(name), animal, i);
			json_array_append_new(arr, json_pack("{s:s, s:s}", "kind",
							     animal ? "animal" : "sample", "name", name));
		}
		if (publish(d, json_pack("{s:s, s:o}", "type", "records", "records", arr), "records"))
			return -1;
		from = end;
	}
	return 0;
}

static json_t *result_json(int animal, unsigned long i, int fixed)
{
	char name[32];
	int res = fixed ? R_PASS : result_of(i, animal);
	const struct issue *is = NULL;
	json_t *msgs = json_array();
	unsigned pick = mix(i, 0x51edu) % 2;

	record_name(name, sizeof(name), animal, i);
	if (res == R_WARNING)
		is = animal ? &animal_warnings[pick] : &sample_warnings[pick];
	else if (res == R_ERROR)
		is = animal ? &animal_errors[pick] : &sample_errors[pick];
	if (is)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "text", is->text, "column", is->column));
	return json_pack("{s:s, s:s, s:s, s:o}", "kind", animal ? "animal" : "sample", "name", name,
			 "status", res == R_PASS ? "Pass" : res == R_WARNING ? "Warning" : "Error",
			 "messages", msgs);
}

/* results for [from, to) of one kind; fixed: only the errored ones, now Pass */
static int send_results(struct demo *d, int animal, unsigned long from, unsigned long to, int fixed)
{
	json_t *arr = json_array();

	for (unsigned long i = from; i < to; i++) {
		if (fixed && result_of(i, animal) != R_ERROR)
			continue;
		json_array_append_new(arr, result_json(animal, i, fixed));
		if (json_array_size(arr) == RECORDS_PER_PUBLISH) {
			if (publish(d, json_pack("{s:s, s:o}", "type", "validation", "results", arr),
				    "validation"))
				return -1;
			arr = json_array();
		}
	}
	if (!json_array_size(arr)) {
		json_decref(arr);
		return 0;
	}
	return publish(d, json_pack("{s:s, s:o}", "type", "validation", "results", arr), "validation");
}

static void count(unsigned long n, int animal, unsigned long *pass, unsigned long *warn,
		  unsigned long *err)
{
	*pass = *warn = *err = 0;
	for (unsigned long i = 0; i < n; i++) {
		int r = result_of(i, animal);
		*pass += r == R_PASS;
		*warn += r == R_WARNING;
		*err += r == R_ERROR;
	}
}

static int play(struct demo *d)
{
	const struct demo_opts *o = d->o;
	unsigned long na = (unsigned long)o->animals, ns = (unsigned long)o->samples;
	unsigned long ap, aw, ae, sp, sw, se;
	char note[256];

	count(na, 1, &ap, &aw, &ae);
	count(ns, 0, &sp, &sw, &se);

	printf("%3d  %-14s forget earlier records of %s\n", ++d->step, "(reset)", o->submission);
	if (publish(d, json_pack("{s:s}", "type", "reset"), "reset"))
		return -1;
	if (step_status(d, "Waiting", "Waiting for the data files"))
		return -1;
	pause_for(d, 2);

	for (int b = 0; b < 5; b++) {
		unsigned long a0 = na * b / 5, a1 = na * (b + 1) / 5;
		unsigned long s0 = ns * b / 5, s1 = ns * (b + 1) / 5;

		snprintf(note, sizeof(note), "Reading the files: %lu of %lu records", a1 + s1, na + ns);
		printf("%3d  %-14s %s\n", ++d->step, "(records)", note);
		fflush(stdout);
		if (send_records(d, 1, a0, a1) || send_records(d, 0, s0, s1))
			return -1;
		pause_for(d, 0.6);
	}
	snprintf(note, sizeof(note), "Loaded %lu animals and %lu samples", na, ns);
	if (step_status(d, "Loaded", note))
		return -1;
	pause_for(d, 2);
	if (step_note(d, "Validating the records against the project's rules"))
		return -1;
	pause_for(d, 1);

	for (int b = 0; b < VALIDATION_BATCHES; b++) {
		unsigned long a0 = na * b / VALIDATION_BATCHES, a1 = na * (b + 1) / VALIDATION_BATCHES;
		unsigned long s0 = ns * b / VALIDATION_BATCHES, s1 = ns * (b + 1) / VALIDATION_BATCHES;

		printf("%3d  %-14s batch %d of %d: %lu animals, %lu samples\n", ++d->step, "(validation)",
		       b + 1, VALIDATION_BATCHES, a1 - a0, s1 - s0);
		fflush(stdout);
		if (send_results(d, 1, a0, a1, 0) || send_results(d, 0, s0, s1, 0))
			return -1;
		pause_for(d, 0.8);
	}
	snprintf(note, sizeof(note), "%lu records have errors and %lu have warnings: please fix the errors",
		 ae + se, aw + sw);
	if (step_status(d, ae + se ? "Need Revision" : "Ready", note))
		return -1;
	pause_for(d, 3);

	if (ae + se) {
		if (step_note(d, "Corrected files received: validating the fixed records"))
			return -1;
		pause_for(d, 1.5);
		printf("%3d  %-14s %lu fixed records now pass\n", ++d->step, "(validation)", ae + se);
		fflush(stdout);
		if (send_results(d, 1, 0, na, 1) || send_results(d, 0, 0, ns, 1))
			return -1;
		pause_for(d, 1.5);
		snprintf(note, sizeof(note), "All %lu records are valid (%lu with warnings)", na + ns, aw + sw);
		if (step_status(d, "Ready", note))
			return -1;
		pause_for(d, 2);
	}
	if (step_status(d, "Submitted", "Submitted to the archive; waiting for accession numbers"))
		return -1;
	pause_for(d, 3);
	snprintf(note, sizeof(note), "Archived: %lu animals and %lu samples have accession numbers", na, ns);
	if (step_status(d, "Completed", note))
		return -1;
	printf("done: animal %lu (pass %lu, warning %lu), sample %lu (pass %lu, warning %lu), "
	       "%lu errors fixed\n", na, ap + ae, aw, ns, sp + se, sw, ae + se);
	return 0;
}

int cmd_demo(int argc, char **argv)
{
	struct demo_opts o;
	struct demo d;
	char err[256], *end;
	int r, rc = EXIT_USAGE;

	memset(&o, 0, sizeof(o));
	memset(&d, 0, sizeof(d));
	r = config_parse(demo_opts, &o, argc, argv, usage);
	if (r) {
		config_free(demo_opts, &o);
		return r > 0 ? 0 : EXIT_USAGE;
	}
	d.o = &o;
	d.speed = strtod(o.speed, &end);
	if (end == o.speed || *end || !(d.speed >= 0 && d.speed <= 1000)) {
		fprintf(stderr, "statusgate demo: --speed wants a factor from 0 to 1000, not \"%s\"\n",
			o.speed);
		goto done;
	}
	if (httpc_parse_url(o.url, &d.url, err, sizeof(err))) {
		fprintf(stderr, "statusgate demo: --url: %s\n", err);
		goto done;
	}
	/* the key is checked by the gateway too, but say it before any publish */
	if (!*o.submission || strlen(o.submission) > 64 ||
	    strspn(o.submission, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
	    strlen(o.submission)) {
		fprintf(stderr, "statusgate demo: --submission must be 1 to 64 of [A-Za-z0-9_.-]\n");
		goto done;
	}
	d.token = o.token && *o.token ? o.token : getenv("STATUSGATE_PUBLISH_TOKEN");
	if (d.token && !*d.token)
		d.token = NULL;
	printf("statusgate demo: playing submission %s on %s; watch it at %s/submissions/%s\n",
	       o.submission, o.url, o.url, o.submission);
	fflush(stdout);
	rc = play(&d) ? EXIT_FAILED : 0;
done:
	config_free(demo_opts, &o);
	return rc;
}
