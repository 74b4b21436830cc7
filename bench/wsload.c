/*
 * wsload: the fan-out load tool of bench/fanout.sh (not part of the product).
 *
 *   wsload run   [options]   N WebSocket receivers + an HTTP publisher
 *   wsload floor [options]   the "syscall floor": the CPU cost of writing
 *                            the same frames to N loopback TCP sockets
 *   wsload conns [options]   RSS per idle connection after churn rounds,
 *                            and handshakes/s (see conns_run)
 *
 * run: one thread, epoll, non-blocking sockets. It opens N receivers on one
 * channel (statusgate's legacy /ws/submissions/bench/ or /ws with a
 * subscribe command, or nchan's /sub/bench), waits until a warm-up message
 * reached all of them, then publishes M events over K keep-alive HTTP/1.1
 * connections (statusgate POST /api/v1/publish, or nchan's publisher
 * location), as fast as the window of W events not yet received by everyone
 * allows, or at a fixed rate. Every event carries "BENCH <index> <publisher>
 * <CLOCK_REALTIME us>" and padding; each receiver checks that the indexes of
 * one publisher arrive increasing (publisher k sends its events in order),
 * counts them, and the publish-to-receive latency is taken from the stamp.
 * With --idle I --idle-path P it also keeps I connections open on another
 * channel that must receive nothing (the cost of idle pages). With
 * --server-pid it reads the server's CPU time (utime+stime of the whole
 * process, of its main thread and of its "sg-writer" thread,
 * /proc/<pid>/[task/<tid>/]stat) around the publish phase, and its memory
 * (VmRSS before the receivers connect and once they all got the warm-up
 * message, VmHWM at the end). The result is one JSON line on stdout.
 *
 * The receivers connect with at most --inflight K handshakes in flight (200;
 * 0: all at once), and must all be open within --connect-timeout S (180 s).
 * --hold S keeps the receivers connected and idle (answering pings) for S
 * seconds between the warm-up and the publishing, and reports the servers'
 * CPU over it (what idle connections cost); the CPU from before the first
 * connect to the end of the warm-up is reported too (what connecting costs).
 *
 * Several servers (bench/scaleout.py): --ports P1,P2,... spreads the
 * receivers (and idle connections) round-robin over gateways on those ports,
 * --server-pid P1,P2,... measures each of them (the server_* figures are
 * then sums) and --broker-pid the RabbitMQ VM.
 *
 * --channels K spreads the receivers over K channels (receiver i watches
 * channel i % K, named bench<c>; "%s" in --sub-path / --pub-path is replaced
 * by the name) and event j goes to channel j % K, so each event reaches N/K
 * receivers (scenario A: 10,000 receivers on 1,000 submissions).
 * --stomp makes the receivers STOMP 1.2 clients over WebSocket (RabbitMQ's
 * Web-STOMP plugin): CONNECT, then SUBSCRIBE to /topic/<channel>.
 *
 * --amqp PORT or --amqp HOST:PORT publishes through RabbitMQ instead of HTTP
 * (rabbitmq-c, a build with -DWSLOAD_AMQP and -lrabbitmq; a bare PORT is on
 * --host; guest/guest): one connection and channel, persistent messages
 * with a message_id each (statusgate's publish id, as real publishers send
 * one), to --amqp-exchange (default "statusgate") with routing key
 * --amqp-key (default submission.%s.notification, "%s" the channel), the
 * body being the statusgate publish (which Web-STOMP delivers as the MESSAGE
 * body). No confirms: the window, the rate or the steps pace it. Every
 * gateway consuming the exchange gets every event (bench/scaleout.py, with
 * --amqp PORT), and so does Web-STOMP (bench/amqp_stomp.py, with --amqp
 * HOST:PORT --amqp-exchange amq.topic --amqp-key %s).
 * --rates R1,R2,... --step-s S publishes at each fixed rate for S seconds
 * in turn and reports the latency percentiles of each step (scenario D).
 *
 * The client handshake is the minimal RFC 6455 one with a fixed key (a bench
 * tool, not a browser); frames from the server must be unmasked, frames we
 * send (subscribe, pong) are masked.
 *
 * conns: memory per idle connection and handshakes/s (scenarios C and H),
 * see conns_run.
 *
 * Build: gcc -O2 -Wall -Wextra -o wsload bench/wsload.c -lpthread
 *   with --amqp: gcc -O2 -Wall -Wextra -DWSLOAD_AMQP -o wsload bench/wsload.c -lpthread -lrabbitmq
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef WSLOAD_AMQP
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#endif

#define RBUF (1u << 20)
#define MAXSTEPS 16
#define MAXPUB 64
#define PUB0 (opt.receivers + opt.idle)   /* conns[] index of publisher 0 */
#define MAXSRV 16

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "wsload: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

static uint64_t now_us(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- options ---- */

static struct {
	const char *host;
	int port;
	const char *sub_path;     /* receivers' URL path */
	const char *pub_path;     /* publisher's URL path */
	int nchan;                /* publish raw bodies (nchan) instead of statusgate JSON */
	int mux;                  /* /ws: send a subscribe command after the upgrade */
	int receivers, events, size, publishers, window;
	int idle;                 /* extra connections on idle_path, not counted */
	const char *idle_path;
	double rate;              /* events/s; 0: as fast as the window allows */
	const char *label;
	double idle_timeout;      /* s without progress before giving up */
	int ports[MAXSRV];        /* --ports: receivers spread over these */
	int nports;
	int server_pids[MAXSRV];  /* --server-pid: one per server */
	int nservers;
	int broker_pid;           /* --broker-pid: the RabbitMQ VM (beam) */
	double connect_timeout;   /* s for every receiver to connect */
	double hold;              /* s to hold the receivers idle before publishing */
	int rounds;               /* conns: rounds of opening and closing all */
	int inflight;             /* handshakes in flight at most (0: all at once) */
	int channels;             /* receivers spread over this many channels */
	int stomp;                /* receivers are STOMP-over-WebSocket clients */
	const char *amqp_host;    /* --amqp [HOST:]PORT: publish through RabbitMQ */
	int amqp_port;            /* 0: publish over HTTP */
	const char *amqp_exchange, *amqp_key;
	double rates[MAXSTEPS];   /* --rates: fixed-rate steps */
	int nsteps;
	double step_s;
	int pin_writer, pin_reader;   /* floor: CPUs of its threads (-1: any) */
} opt = {
	"127.0.0.1", 0, "/ws/submissions/bench/", "/api/v1/publish", 0, 0,
	100, 1000, 200, 1, 64, 0, NULL, 0, "", 15, { 0 }, 0, { 0 }, 0, 0, 180, 0,
	3, 200, 1, 0, NULL, 0, "statusgate", "submission.%s.notification", { 0 }, 0, 5, -1, -1,
};

/* "1,2,3" into out[]; returns how many (dies on more than max) */
static int parse_int_list(const char *v, int *out, int max)
{
	int n = 0;

	for (const char *p = v; *p;) {
		char *end;
		long x = strtol(p, &end, 10);

		if (end == p || n == max || x <= 0 || x > 4194304)
			die("bad list of numbers: %s", v);
		out[n++] = (int)x;
		p = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			die("bad list of numbers: %s", v);
	}
	return n;
}

static void parse_opts(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(k, "--nchan")) { opt.nchan = 1; continue; }
		if (!strcmp(k, "--mux")) { opt.mux = 1; continue; }
		if (!strcmp(k, "--stomp")) { opt.stomp = 1; continue; }
		if (!v)
			die("%s needs a value", k);
		i++;
		if (!strcmp(k, "--host")) opt.host = v;
		else if (!strcmp(k, "--port")) opt.port = atoi(v);
		else if (!strcmp(k, "--sub-path")) opt.sub_path = v;
		else if (!strcmp(k, "--pub-path")) opt.pub_path = v;
		else if (!strcmp(k, "--receivers")) opt.receivers = atoi(v);
		else if (!strcmp(k, "--events")) opt.events = atoi(v);
		else if (!strcmp(k, "--size")) opt.size = atoi(v);
		else if (!strcmp(k, "--publishers")) opt.publishers = atoi(v);
		else if (!strcmp(k, "--window")) opt.window = atoi(v);
		else if (!strcmp(k, "--idle")) opt.idle = atoi(v);
		else if (!strcmp(k, "--idle-path")) opt.idle_path = v;
		else if (!strcmp(k, "--rate")) opt.rate = atof(v);
		else if (!strcmp(k, "--server-pid")) opt.nservers = parse_int_list(v, opt.server_pids, MAXSRV);
		else if (!strcmp(k, "--ports")) opt.nports = parse_int_list(v, opt.ports, MAXSRV);
		else if (!strcmp(k, "--broker-pid")) opt.broker_pid = atoi(v);
		else if (!strcmp(k, "--amqp")) {
			/* PORT (bench/scaleout.py: the broker on --host) or
			 * HOST:PORT (bench/amqp_stomp.py) */
			const char *colon = strrchr(v, ':');

			opt.amqp_port = atoi(colon ? colon + 1 : v);
			opt.amqp_host = colon ? strndup(v, (size_t)(colon - v)) : NULL;
			if (opt.amqp_port <= 0 || opt.amqp_port > 65535 || (colon && colon == v))
				die("--amqp %s: PORT or HOST:PORT", v);
		}
		else if (!strcmp(k, "--connect-timeout")) opt.connect_timeout = atof(v);
		else if (!strcmp(k, "--hold")) opt.hold = atof(v);
		else if (!strcmp(k, "--label")) opt.label = v;
		else if (!strcmp(k, "--idle-timeout")) opt.idle_timeout = atof(v);
		else if (!strcmp(k, "--rounds")) opt.rounds = atoi(v);
		else if (!strcmp(k, "--inflight")) opt.inflight = atoi(v);
		else if (!strcmp(k, "--channels")) opt.channels = atoi(v);
		else if (!strcmp(k, "--amqp-exchange")) opt.amqp_exchange = v;
		else if (!strcmp(k, "--amqp-key")) opt.amqp_key = v;
		else if (!strcmp(k, "--step-s")) opt.step_s = atof(v);
		else if (!strcmp(k, "--pin")) {
			if (sscanf(v, "%d,%d", &opt.pin_writer, &opt.pin_reader) != 2)
				die("--pin %s: WRITER_CPU,READER_CPU", v);
		}
		else if (!strcmp(k, "--rates")) {
			char *dup = strdup(v), *save = NULL;
			for (char *r = strtok_r(dup, ",", &save); r && opt.nsteps < MAXSTEPS;
			     r = strtok_r(NULL, ",", &save))
				opt.rates[opt.nsteps++] = atof(r);
			free(dup);
		}
		else die("unknown option %s", k);
	}
	if (opt.receivers < 1 || opt.events < 1 || opt.size < 40 ||
	    opt.publishers < 1 || opt.publishers > MAXPUB || opt.window < 0 || opt.idle < 0)
		die("%s", "bad option values");
	if (opt.idle && !opt.idle_path)
		die("%s", "--idle needs --idle-path");
	if (opt.channels < 1 || opt.receivers % opt.channels)
		die("%s", "--channels must divide --receivers");
	if (!opt.nports) {
		opt.ports[0] = opt.port;
		opt.nports = 1;
	}
	if (!opt.port)
		opt.port = opt.ports[0];
	if (opt.amqp_port && !opt.amqp_host)
		opt.amqp_host = opt.host;
#ifndef WSLOAD_AMQP
	if (opt.amqp_port)
		die("%s", "--amqp: this wsload was built without -DWSLOAD_AMQP");
#endif
}

/* ---- server process statistics ---- */

/* utime+stime in clock ticks of /proc/<pid>[/task/<tid>]/stat; -1 on error */
static long long proc_cpu(int pid, int tid)
{
	char path[96], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');   /* comm may contain spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

/* a "VmXXX:" line of /proc/<pid>/status in kB; -1 on error */
static long proc_mem(int pid, const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl)) {
			v = strtol(line + kl, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* the thread of pid named comm (prctl/pthread_setname_np), or 0 */
static int proc_thread(int pid, const char *comm)
{
	char path[300], name[64];
	struct dirent *d;
	DIR *dir;
	int tid = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (!(dir = opendir(path)))
		return 0;
	while (!tid && (d = readdir(dir))) {
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", pid, d->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(name, sizeof(name), f)) {
			name[strcspn(name, "\n")] = '\0';
			if (!strcmp(name, comm))
				tid = atoi(d->d_name);
		}
		fclose(f);
	}
	closedir(dir);
	return tid;
}

/* what one measured process (a server, or the broker) did */
struct pstat {
	int pid, writer_tid;
	long rss0, rss_warm, rss1, hwm;          /* kB */
	long long cpu0, cpu1, main0, main1, w0, w1;   /* clock ticks, publish phase */
	long long c_before, c_warm;               /* clock ticks: connect, hold */
};

static struct pstat servers[MAXSRV], broker;

/* when: 0 before the receivers connect, 1 after the warm-up, 2 at the
 * start of the publish phase, 3 at its end */
static void pstat_take(struct pstat *p, int when)
{
	if (!p->pid)
		return;
	switch (when) {
	case 0:
		p->rss0 = proc_mem(p->pid, "VmRSS:");
		p->writer_tid = proc_thread(p->pid, "sg-writer");
		p->c_before = proc_cpu(p->pid, 0);
		break;
	case 1:
		p->rss_warm = proc_mem(p->pid, "VmRSS:");
		p->c_warm = proc_cpu(p->pid, 0);
		break;
	case 2:
		p->cpu0 = proc_cpu(p->pid, 0);
		p->main0 = proc_cpu(p->pid, p->pid);
		p->w0 = p->writer_tid ? proc_cpu(p->pid, p->writer_tid) : 0;
		break;
	default:
		p->cpu1 = proc_cpu(p->pid, 0);
		p->main1 = proc_cpu(p->pid, p->pid);
		p->w1 = p->writer_tid ? proc_cpu(p->pid, p->writer_tid) : 0;
		p->rss1 = proc_mem(p->pid, "VmRSS:");
		p->hwm = proc_mem(p->pid, "VmHWM:");
	}
}

static void pstat_all(int when)
{
	for (int i = 0; i < opt.nservers; i++)
		pstat_take(&servers[i], when);
	pstat_take(&broker, when);
}

static void pstat_print(const char *name, const struct pstat *p, double hz)
{
	printf("%s{\"pid\":%d,\"cpu_s\":%.2f,\"main_thread_cpu_s\":%.2f,\"writer_cpu_s\":%.2f,"
	       "\"connect_cpu_s\":%.2f,\"hold_cpu_s\":%.2f,"
	       "\"rss0_kb\":%ld,\"rss_warm_kb\":%ld,\"rss_end_kb\":%ld,\"hwm_kb\":%ld}",
	       name, p->pid, (double)(p->cpu1 - p->cpu0) / hz, (double)(p->main1 - p->main0) / hz,
	       (double)(p->w1 - p->w0) / hz, (double)(p->c_warm - p->c_before) / hz,
	       (double)(p->cpu0 - p->c_warm) / hz, p->rss0, p->rss_warm, p->rss1, p->hwm);
}

/* ---- sockets ---- */

static int tcp_connect(const char *host, int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		die("bad IPv4 address %s", host);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* writes all of buf on a non-blocking socket that has room (small writes) */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* a masked client frame (RFC 6455 5.3); payload < 126 bytes or 16-bit len */
static int ws_send(int fd, int opcode, const char *data, size_t len)
{
	unsigned char f[16 + 65536];
	static const unsigned char mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	size_t h = 0;

	if (len > 65535)
		return -1;
	f[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		f[h++] = (unsigned char)(0x80 | len);
	} else {
		f[h++] = 0x80 | 126;
		f[h++] = (unsigned char)(len >> 8);
		f[h++] = (unsigned char)len;
	}
	memcpy(f + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		f[h + i] = (unsigned char)data[i] ^ mask[i & 3];
	return write_all(fd, f, h + len);
}

/* ---- the run ---- */

enum { C_CONNECTING, C_UPGRADING, C_OPEN, C_DEAD };

struct conn {
	int fd;
	int state;
	int pub;                  /* index of a publisher connection, or -1 */
	unsigned char *pend;      /* bytes of an incomplete frame or response */
	size_t plen;
	unsigned char *msg;       /* fragments of a message being reassembled */
	size_t mlen;
	int warm;                 /* got the warm-up message */
	int got;                  /* bench events received */
	int ooo;                  /* out of order or duplicated */
	int64_t last[MAXPUB];     /* last index received per publisher */
};

struct pubc {                 /* a publisher connection */
	int fd;
	int busy;                 /* a request is out, its response not read yet */
	uint64_t sent;            /* requests sent */
	int64_t last_idx;
};

static struct conn *conns;
static struct pubc pubs[MAXPUB];
static int ep;
static unsigned char *rbuf;
static uint32_t *lat;         /* latency of each delivery, us */
static size_t nlat, caplat;
static int *recv_count;       /* per event index: receivers that have it */
static int done_upto;         /* every event below it reached everybody */
static int64_t next_event;    /* next event index to publish (-1: warm-up) */
static int warm_count, open_count, dead_count, bad_frames, http_errors;
static uint64_t deliveries, t_first_pub, t_last_rx;
static const char key_hdr[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char accept_hdr[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static void ep_add(int fd, uint32_t ev, int idx)
{
	struct epoll_event e = { .events = ev, .data.u64 = (uint64_t)idx };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e))
		die("epoll_ctl: %s", strerror(errno));
}

static void ep_mod(int fd, uint32_t ev, int idx)
{
	struct epoll_event e = { .events = ev, .data.u64 = (uint64_t)idx };

	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

static void conn_dead(struct conn *c, const char *why)
{
	if (c->state == C_DEAD)
		return;
	if (c->state == C_OPEN)
		open_count--;
	c->state = C_DEAD;
	dead_count++;
	if (dead_count <= 5)
		fprintf(stderr, "wsload: receiver lost: %s\n", why);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
}

/* the name of channel c: "bench" alone, or bench0 ... bench<K-1> */
static const char *chan_name(int c)
{
	static char name[32];

	if (opt.channels == 1)
		return "bench";
	snprintf(name, sizeof(name), "bench%d", c);
	return name;
}

/* a path with "%s" (if any) replaced by channel c's name */
static const char *chan_path(const char *fmt, int c)
{
	static char path[256];
	const char *p = strstr(fmt, "%s");

	if (!p)
		return fmt;
	snprintf(path, sizeof(path), "%.*s%s%s", (int)(p - fmt), fmt, chan_name(c), p + 2);
	return path;
}

static void send_upgrade(struct conn *c, int idx)
{
	char req[512];
	int n = snprintf(req, sizeof(req),
		"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		"Sec-WebSocket-Version: 13\r\n%s\r\n",
		idx >= opt.receivers ? opt.idle_path : chan_path(opt.sub_path, idx % opt.channels),
		opt.host, opt.ports[idx % opt.nports], key_hdr,
		opt.stomp ? "Sec-WebSocket-Protocol: v12.stomp\r\n" : "");

	if (write_all(c->fd, req, (size_t)n))
		conn_dead(c, "cannot send the upgrade");
	c->state = C_UPGRADING;
	ep_mod(c->fd, EPOLLIN, idx);
}

/* --rates: the steps' first event indexes and their latencies */
static int64_t step_first[MAXSTEPS + 1];
static struct { uint32_t *v; size_t n, cap; } step_lat[MAXSTEPS];

static void step_lat_add(long long idx, uint32_t us)
{
	int k = 0;

	while (k + 1 < opt.nsteps && idx >= step_first[k + 1])
		k++;
	if (step_lat[k].n == step_lat[k].cap) {
		step_lat[k].cap = step_lat[k].cap ? step_lat[k].cap * 2 : 4096;
		step_lat[k].v = realloc(step_lat[k].v, step_lat[k].cap * sizeof(uint32_t));
		if (!step_lat[k].v)
			die("%s", "out of memory");
	}
	step_lat[k].v[step_lat[k].n++] = us;
}

/* "BENCH <idx> <pub> <ts>" somewhere in a text message */
static void on_message(struct conn *c, const unsigned char *p, size_t len, uint64_t t_rx)
{
	const unsigned char *m = memmem(p, len, "BENCH ", 6);
	long long idx, ts;
	int pub;

	if (!m)
		return;   /* statusgate's initial state frame, an ack... */
	if (c - conns >= opt.receivers) {
		bad_frames++;   /* an idle connection watches another channel */
		return;
	}
	if (sscanf((const char *)m + 6, "%lld %d %lld", &idx, &pub, &ts) != 3 ||
	    pub < -1 || pub >= opt.publishers || idx >= opt.events) {
		bad_frames++;
		return;
	}
	if (idx >= 0 && (c - conns) % opt.channels != idx % opt.channels) {
		bad_frames++;   /* another channel's event */
		return;
	}
	if (idx < 0) {            /* warm-up */
		if (!c->warm) {
			c->warm = 1;
			warm_count++;
		}
		return;
	}
	if (idx <= c->last[pub])
		c->ooo++;
	else
		c->last[pub] = idx;
	c->got++;
	deliveries++;
	recv_count[idx]++;
	t_last_rx = t_rx;
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 1u << 20;
		lat = realloc(lat, caplat * sizeof(*lat));
		if (!lat)
			die("%s", "out of memory");
	}
	lat[nlat++] = t_rx > (uint64_t)ts ? (uint32_t)(t_rx - (uint64_t)ts) : 0;
	if (opt.nsteps)
		step_lat_add(idx, lat[nlat - 1]);
}

/* parses the WebSocket frames in buf; returns bytes consumed, -1 on error */
static long parse_frames(struct conn *c, unsigned char *buf, size_t len, uint64_t t_rx)
{
	size_t off = 0;

	while (len - off >= 2) {
		unsigned char *f = buf + off;
		int fin = f[0] & 0x80, op = f[0] & 0x0f;
		uint64_t plen = f[1] & 0x7f;
		size_t h = 2;

		if (f[1] & 0x80)
			return -1;    /* a server must not mask */
		if (plen == 126) {
			if (len - off < 4)
				break;
			plen = (uint64_t)f[2] << 8 | f[3];
			h = 4;
		} else if (plen == 127) {
			if (len - off < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = plen << 8 | f[2 + i];
			h = 10;
		}
		if (plen > RBUF / 2)
			return -1;
		if (len - off < h + plen)
			break;
		unsigned char *p = f + h;
		if (op == 8) {
			if (dead_count < 3)
				fprintf(stderr, "wsload: close frame from the server: %d %.*s\n",
					plen >= 2 ? p[0] << 8 | p[1] : 0, plen > 2 ? (int)plen - 2 : 0,
					(const char *)p + 2);
			return -1;    /* close */
		} else if (op == 9) {
			ws_send(c->fd, 0xA, (const char *)p, plen);
		} else if (op == 1 || op == 2 || op == 0) {
			if (fin && !c->mlen && op) {
				on_message(c, p, plen, t_rx);
			} else {
				unsigned char *nm = realloc(c->msg, c->mlen + plen + 1);
				if (!nm)
					return -1;
				c->msg = nm;
				memcpy(c->msg + c->mlen, p, plen);
				c->mlen += plen;
				if (fin) {
					on_message(c, c->msg, c->mlen, t_rx);
					c->mlen = 0;
				}
			}
		}
		off += h + plen;
	}
	return (long)off;
}

/* reads what is there; pending bytes go in front of the shared buffer */
static void conn_read(struct conn *c, int idx)
{
	size_t have = c->plen;
	ssize_t n;
	uint64_t t_rx;
	long used;
	unsigned char *buf = rbuf;

	if (have)
		memcpy(buf, c->pend, have);
	n = read(c->fd, buf + have, RBUF - have);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_dead(c, n ? strerror(errno) : "closed by the server");
		return;
	}
	t_rx = now_us(CLOCK_REALTIME);
	have += (size_t)n;
	if (c->state == C_UPGRADING) {
		unsigned char *end = memmem(buf, have, "\r\n\r\n", 4);
		if (!end) {
			used = 0;
			goto keep;
		}
		if (memcmp(buf, "HTTP/1.1 101", 12) || !memmem(buf, (size_t)(end - buf), accept_hdr, sizeof(accept_hdr) - 1)) {
			if (dead_count < 3)
				fprintf(stderr, "wsload: upgrade refused: %.*s\n", (int)(end - buf), buf);
			conn_dead(c, "upgrade refused");
			return;
		}
		c->state = C_OPEN;
		open_count++;
		if (opt.mux) {
			char sub[128];
			int sl = snprintf(sub, sizeof(sub), "{\"op\":\"subscribe\",\"id\":1,\"submission\":\"%s\"}",
					  chan_name((int)(c - conns) % opt.channels));
			ws_send(c->fd, 1, sub, (size_t)sl);
		}
		if (opt.stomp && c - conns < opt.receivers) {
			static const char conn[] = "CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\n"
				"passcode:guest\nheart-beat:0,0\n\n";
			char sub[160];
			int sl = snprintf(sub, sizeof(sub), "SUBSCRIBE\nid:0\ndestination:/topic/%s\n"
					  "ack:auto\n\n", chan_name((int)(c - conns) % opt.channels));
			ws_send(c->fd, 1, conn, sizeof(conn));          /* with its NUL */
			ws_send(c->fd, 1, sub, (size_t)sl + 1);
		}
		size_t hl = (size_t)(end + 4 - buf);
		memmove(buf, buf + hl, have - hl);
		have -= hl;
	}
	used = parse_frames(c, buf, have, t_rx);
	if (used < 0) {
		conn_dead(c, "bad frame or close frame from the server");
		return;
	}
keep:
	c->plen = have - (size_t)used;
	if (c->plen) {
		unsigned char *np = realloc(c->pend, c->plen);
		if (!np)
			die("%s", "out of memory");
		c->pend = np;
		memcpy(c->pend, buf + used, c->plen);
	}
	(void)idx;
}

/* ---- publisher ---- */

#ifdef WSLOAD_AMQP
/* one publisher for both callers: bench/scaleout.py (--amqp PORT, every
 * gateway consumes the statusgate exchange) and bench/amqp_stomp.py (--amqp
 * HOST:PORT, statusgate or amq.topic for Web-STOMP, a routing key per
 * channel). One connection, channel 1, for every publisher index: a channel
 * keeps the order of its publishes, so each publisher's events still arrive
 * in order. */
static amqp_connection_state_t amqp;
static uint64_t amqp_seq;
static char amqp_tag[48];

static void amqp_check(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		die("AMQP %s failed", what);
}

static void amqp_open(void)
{
	amqp_socket_t *so;

	amqp = amqp_new_connection();
	so = amqp_tcp_socket_new(amqp);
	if (!so || amqp_socket_open(so, opt.amqp_host, opt.amqp_port))
		die("cannot connect to RabbitMQ on %s", opt.amqp_host);
	amqp_check(amqp_login(amqp, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
		   "login");
	amqp_channel_open(amqp, 1);
	amqp_check(amqp_get_rpc_reply(amqp), "channel.open");
	/* message_ids unique across runs: statusgate drops a publish whose id
	 * (the message_id) it has already seen */
	snprintf(amqp_tag, sizeof(amqp_tag), "wsload-%d-%" PRIu64, (int)getpid(),
		 now_us(CLOCK_REALTIME));
}

/* body to --amqp-exchange, routing key --amqp-key for channel chan */
static void amqp_send(const char *body, int len, int chan)
{
	amqp_basic_properties_t p;
	char mid[80], key[128];
	const char *pct = strstr(opt.amqp_key, "%s");

	if (pct)
		snprintf(key, sizeof(key), "%.*s%s%s", (int)(pct - opt.amqp_key), opt.amqp_key,
			 chan_name(chan), pct + 2);
	else
		snprintf(key, sizeof(key), "%s", opt.amqp_key);
	snprintf(mid, sizeof(mid), "%s-%" PRIu64, amqp_tag, amqp_seq++);
	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		   AMQP_BASIC_MESSAGE_ID_FLAG;
	p.content_type = amqp_cstring_bytes("application/json");
	p.delivery_mode = 2;
	p.message_id = amqp_cstring_bytes(mid);
	if (amqp_basic_publish(amqp, 1, amqp_cstring_bytes(opt.amqp_exchange),
			       amqp_cstring_bytes(key), 0, 0, &p,
			       (amqp_bytes_t){ (size_t)len, (void *)body }))
		die("%s", "AMQP publish failed");
}
#endif

/* (re)opens publisher connection k; waits for the connect (loopback) */
static void pub_connect(int k)
{
	struct conn *c = &conns[PUB0 + k];
	struct epoll_event e = { .events = EPOLLOUT }, out;
	int pe = epoll_create1(EPOLL_CLOEXEC), err = 0;
	socklen_t sl = sizeof(err);

	pubs[k].fd = tcp_connect(opt.host, opt.port);
	if (pubs[k].fd < 0 || pe < 0)
		die("connect: %s", strerror(errno));
	epoll_ctl(pe, EPOLL_CTL_ADD, pubs[k].fd, &e);
	epoll_wait(pe, &out, 1, 5000);
	close(pe);
	getsockopt(pubs[k].fd, SOL_SOCKET, SO_ERROR, &err, &sl);
	if (err)
		die("publisher connect: %s", strerror(err));
	c->fd = pubs[k].fd;
	c->pub = k;
	c->state = C_OPEN;
	c->plen = 0;
	pubs[k].busy = 0;
	ep_add(pubs[k].fd, EPOLLIN, PUB0 + k);
}

/* event idx (-1: a warm-up) for channel chan, from publisher k */
static void pub_send(int k, int64_t idx, int chan)
{
	char note[65536], body[70000], req[71000];
	int nl, bl, rl;
	uint64_t ts = now_us(CLOCK_REALTIME);

	nl = snprintf(note, sizeof(note), "BENCH %" PRId64 " %d %" PRIu64 " ", idx,
		      idx < 0 ? -1 : k, ts);
	while (nl < opt.size && nl < (int)sizeof(note) - 1)
		note[nl++] = 'x';
	note[nl] = '\0';
	if (opt.nchan)   /* the same bytes as statusgate's legacy frame carries */
		bl = snprintf(body, sizeof(body), "{\"message\": null, \"notification_message\": \"%s\", "
			      "\"validation_message\": \"\"}", note);
	else
		bl = snprintf(body, sizeof(body), "{\"type\":\"notification\",\"submission\":\"%s\","
			      "\"notification\":\"%s\"}", chan_name(chan), note);
#ifdef WSLOAD_AMQP
	if (opt.amqp_port) {      /* no answer to wait for: never busy */
		amqp_send(body, bl, chan);
		pubs[k].sent++;
		if (!t_first_pub && idx >= 0)
			t_first_pub = ts;
		return;
	}
#endif
	rl = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
		      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		      chan_path(opt.pub_path, chan), opt.host, opt.port, bl, body);
	if (write_all(pubs[k].fd, req, (size_t)rl))
		die("%s", "publisher: write failed");
	pubs[k].busy = 1;
	pubs[k].sent++;
	if (!t_first_pub && idx >= 0)
		t_first_pub = ts;
}

/* reads the answers of publisher connection k */
static void pub_read(int k)
{
	struct pubc *p = &pubs[k];
	struct conn *c = &conns[PUB0 + k];
	unsigned char *buf = rbuf;
	size_t have = c->plen;
	ssize_t n;

	if (have)
		memcpy(buf, c->pend, have);
	n = read(p->fd, buf + have, RBUF - have);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* a server may close a keep-alive connection after its last
		 * answer (nginx: keepalive_requests); a request in flight is lost */
		if (p->busy || c->plen)
			die("%s", "publisher connection closed with a request unanswered");
		epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
		close(p->fd);
		pub_connect(k);
		return;
	}
	have += (size_t)n;
	size_t off = 0;
	for (;;) {
		unsigned char *end = memmem(buf + off, have - off, "\r\n\r\n", 4);
		if (!end)
			break;
		size_t hl = (size_t)(end + 4 - (buf + off));
		unsigned char *cl = memmem(buf + off, hl, "Content-Length:", 15);
		if (!cl)
			cl = memmem(buf + off, hl, "content-length:", 15);
		long blen = cl ? strtol((char *)cl + 15, NULL, 10) : 0;
		if (off + hl + (size_t)blen > have)
			break;
		int status = atoi((char *)buf + off + 9);
		if (status < 200 || status > 299) {
			if (++http_errors <= 5)
				fprintf(stderr, "wsload: publish answered %.*s\n",
					(int)(hl + (size_t)blen), buf + off);
		}
		p->busy = 0;
		off += hl + (size_t)blen;
	}
	c->plen = have - off;
	if (c->plen) {
		unsigned char *np = realloc(c->pend, c->plen);
		if (!np)
			die("%s", "out of memory");
		c->pend = np;
		memcpy(c->pend, buf + off, c->plen);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (!nlat)
		return 0;
	size_t i = (size_t)(p * (double)(nlat - 1) + 0.5);
	return lat[i] / 1000.0;
}

static void wait_events(int timeout_ms, uint64_t *t)
{
	struct epoll_event ev[512];
	int n = epoll_wait(ep, ev, 512, timeout_ms);

	*t = now_us(CLOCK_MONOTONIC);
	for (int i = 0; i < n; i++) {
		int idx = (int)ev[i].data.u64;
		struct conn *c = &conns[idx];

		if (idx >= PUB0) {
			pub_read(idx - PUB0);
			continue;
		}
		if (c->state == C_DEAD)
			continue;
		if (c->state == C_CONNECTING) {
			int err = 0;
			socklen_t sl = sizeof(err);
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
			if (err)
				conn_dead(c, strerror(err));
			else
				send_upgrade(c, idx);
			continue;
		}
		if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			conn_read(c, idx);
	}
}

/* opens receivers *started.. up to total, at most --inflight of them in
 * their handshake (0: all at once), round-robin over --ports */
static void start_connects(int *started, int total)
{
	while (*started < total && (!opt.inflight ||
				    *started - open_count - dead_count < opt.inflight)) {
		struct conn *c = &conns[*started];

		memset(c->last, 0xff, sizeof(c->last));   /* -1: nothing seen yet */
		c->pub = -1;
		c->fd = tcp_connect(opt.host, opt.ports[*started % opt.nports]);
		if (c->fd < 0)
			die("connect: %s", strerror(errno));
		c->state = C_CONNECTING;
		ep_add(c->fd, EPOLLOUT, *started);
		(*started)++;
	}
}

static int run(void)
{
	int N = opt.receivers, started = 0;
	uint64_t t, t_last_progress, t_warm = 0, t_conn0;
	uint64_t last_deliveries = 0;
	double hz = (double)sysconf(_SC_CLK_TCK);
	struct rlimit rl;

	int per_event = N / opt.channels;   /* receivers of one event */

	if (opt.nsteps) {   /* fixed-rate steps: the events are theirs */
		int64_t total = 0;
		for (int k = 0; k < opt.nsteps; k++) {
			step_first[k] = total;
			total += (int64_t)(opt.rates[k] * opt.step_s + 0.5);
		}
		step_first[opt.nsteps] = total;
		opt.events = (int)total;
		opt.window = 0;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)(PUB0 + opt.publishers + 64) > rl.rlim_cur)
		die("%s", "too few file descriptors: raise ulimit -n");
	conns = calloc((size_t)(PUB0 + opt.publishers), sizeof(*conns));
	recv_count = calloc((size_t)opt.events, sizeof(int));
	rbuf = malloc(RBUF);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || !recv_count || !rbuf || ep < 0)
		die("%s", "out of memory");
	for (int i = 0; i < opt.nservers; i++)
		servers[i].pid = opt.server_pids[i];
	broker.pid = opt.broker_pid;
	pstat_all(0);

	/* receivers: at most --inflight handshakes in flight (200 by default,
	 * so the listen backlog never overflows), round-robin over --ports */
	t_conn0 = now_us(CLOCK_MONOTONIC);
	t_last_progress = t_conn0;
	while (open_count + dead_count < PUB0) {
		start_connects(&started, PUB0);
		wait_events(100, &t);
		if ((double)(t - t_conn0) > opt.connect_timeout * 1e6) {
			fprintf(stderr, "wsload: %d of %d receivers connected in %.0f s\n", open_count,
				PUB0, opt.connect_timeout);
			die("%s", "receivers did not all connect in time (--connect-timeout)");
		}
	}
	if (dead_count)
		die("%s", "some receivers could not connect");
	double connect_s = (double)(now_us(CLOCK_MONOTONIC) - t_conn0) / 1e6;

	/* publishers */
#ifdef WSLOAD_AMQP
	if (opt.amqp_port)
		amqp_open();
#endif
	for (int k = 0; k < opt.publishers && !opt.amqp_port; k++)
		pub_connect(k);

	/* warm-up: every receiver must have one message before we measure;
	 * one warm-up publish per channel, again after a second of silence */
	t_warm = now_us(CLOCK_MONOTONIC);
	uint64_t t_resend = 0;
	int warm_next = opt.channels;
	while (warm_count < N) {
		wait_events(10, &t);
		if (warm_next == opt.channels && t - t_resend > 1000000u)
			warm_next = 0;
		while (warm_next < opt.channels && !pubs[0].busy) {
			pub_send(0, -1, warm_next++);
			t_resend = t;
		}
		if (t - t_warm > 120u * 1000000u) {
			fprintf(stderr, "wsload: only %d of %d receivers got the warm-up message\n",
				warm_count, N);
			return 1;
		}
		if (dead_count)
			die("%s", "receivers lost during the warm-up");
		if (http_errors)
			die("%s", "the server refused the warm-up publish");
	}
	while (pubs[0].busy) {
		wait_events(10, &t);
	}
	pstat_all(1);
	uint64_t th = now_us(CLOCK_MONOTONIC);
	for (t = th; (double)(t - th) < opt.hold * 1e6;) {
		wait_events(100, &t);    /* answers the servers' pings */
		if (dead_count)
			die("%s", "receivers lost while holding");
	}
	pstat_all(2);
	uint64_t t0 = now_us(CLOCK_MONOTONIC), self0 = now_us(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t want = (uint64_t)per_event * (uint64_t)opt.events;
	int step = 0;
	uint64_t step_t0 = t0, t_step_done = 0;
	t_last_progress = t0;
	next_event = 0;
	while (deliveries < want && !dead_count) {
		/* publish what the window and the rate allow: over HTTP one
		 * request per idle publisher connection; over AMQP nothing answers
		 * a publish, so go round the publishers until window or rate stop */
		int sent;
		t = now_us(CLOCK_MONOTONIC);
		if (opt.nsteps && step < opt.nsteps && next_event == step_first[step + 1]) {
			/* a step is out: the next starts once it arrived (or 5 s on) */
			if (!t_step_done)
				t_step_done = t;
			if (done_upto >= step_first[step + 1] || t - t_step_done > 5000000u) {
				step++;
				step_t0 = t;
				t_step_done = 0;
			}
		}
		do {
			sent = 0;
			for (int k = 0; k < opt.publishers && next_event < opt.events; k++) {
				if (pubs[k].busy)
					continue;
				if (opt.window && next_event >= done_upto + opt.window)
					break;
				if (opt.rate > 0 && (double)(t - t0) < (double)next_event * 1e6 / opt.rate)
					break;
				if (opt.nsteps && (step >= opt.nsteps || next_event >= step_first[step + 1] ||
						   (double)(t - step_t0) < (double)(next_event - step_first[step]) *
						   1e6 / opt.rates[step]))
					break;
				pub_send(k, next_event, (int)(next_event % opt.channels));
				next_event++;
				sent++;
			}
		} while (opt.amqp_port && sent);
		int to = 50;
		if (opt.rate > 0 && next_event < opt.events) {
			double due = (double)next_event * 1e6 / opt.rate - (double)(t - t0);
			to = due <= 0 ? 0 : (int)(due / 1000);
		}
		if (opt.nsteps && step < opt.nsteps && next_event < step_first[step + 1]) {
			double due = (double)(next_event - step_first[step]) * 1e6 / opt.rates[step] -
				     (double)(t - step_t0);
			to = due <= 0 ? 0 : (int)(due / 1000);
		} else if (opt.nsteps) {
			to = 1;
		}
		wait_events(to, &t);
		while (done_upto < opt.events && recv_count[done_upto] >= per_event)
			done_upto++;
		if (deliveries != last_deliveries) {
			last_deliveries = deliveries;
			t_last_progress = t;
		} else if ((double)(t - t_last_progress) > opt.idle_timeout * 1e6) {
			fprintf(stderr, "wsload: no progress for %.0f s; giving up\n", opt.idle_timeout);
			break;
		}
	}
	/* leave time for the last responses and stray duplicates */
	uint64_t t_end = now_us(CLOCK_MONOTONIC), self1 = now_us(CLOCK_PROCESS_CPUTIME_ID);
	pstat_all(3);
	for (uint64_t tq = now_us(CLOCK_MONOTONIC); now_us(CLOCK_MONOTONIC) - tq < 200000;)
		wait_events(20, &t);

	long long ooo = 0, missing = 0;
	for (int i = 0; i < N; i++) {
		/* events of receiver i's channel */
		int mine = opt.events / opt.channels + (i % opt.channels < opt.events % opt.channels);
		ooo += conns[i].ooo;
		if (conns[i].got < mine)
			missing += mine - conns[i].got;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_u32);
	double dur = (double)(t_last_rx - t_first_pub) / 1e6;
	if (dur <= 0)
		dur = (double)(t_end - t0) / 1e6;
	printf("{\"label\":\"%s\",\"server\":\"%s\",\"receivers\":%d,\"idle\":%d,\"events\":%d,"
	       "\"size\":%d,\"publishers\":%d,\"window\":%d,\"rate\":%.0f,"
	       "\"deliveries\":%" PRIu64 ",\"duration_s\":%.3f,\"deliveries_per_s\":%.0f,"
	       "\"events_per_s\":%.1f,"
	       "\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
	       "\"missing\":%lld,\"out_of_order\":%lld,\"receivers_lost\":%d,"
	       "\"bad_frames\":%d,\"http_errors\":%d,\"connect_s\":%.2f,\"client_cpu_s\":%.2f,"
	       "\"hold_s\":%.1f",
	       opt.label, opt.stomp ? "web-stomp" : opt.nchan ? "nchan" : "statusgate", N, opt.idle,
	       opt.events, opt.size,
	       opt.publishers, opt.window, opt.rate, deliveries, dur,
	       (double)deliveries / dur, (double)deliveries / dur / N,
	       pct(0.5), pct(0.9), pct(0.99), nlat ? lat[nlat - 1] / 1000.0 : 0,
	       missing, ooo, dead_count, bad_frames, http_errors, connect_s,
	       (double)(self1 - self0) / 1e6, opt.hold);
	printf(",\"channels\":%d,\"stomp\":%d,\"amqp\":%d,\"lat_ms_p999\":%.3f",
	       opt.channels, opt.stomp, opt.amqp_port != 0, pct(0.999));
	if (opt.nsteps) {
		printf(",\"steps\":[");
		for (int k = 0; k < opt.nsteps; k++) {
			uint32_t *v = step_lat[k].v;
			size_t n = step_lat[k].n;
			long long sent = step_first[k + 1] - step_first[k];
#define SP(p) (n ? v[(size_t)((p) * (double)(n - 1) + 0.5)] / 1000.0 : 0)
			if (n)
				qsort(v, n, sizeof(*v), cmp_u32);
			printf("%s{\"rate\":%.0f,\"events\":%lld,\"deliveries\":%zu,\"expected\":%lld,"
			       "\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
			       k ? "," : "", opt.rates[k], sent, n, sent * per_event,
			       SP(0.5), SP(0.99), SP(0.999), n ? v[n - 1] / 1000.0 : 0);
#undef SP
		}
		printf("]");
	}
	/* with several servers the server_* figures are their sums */
	long rss0 = 0, hwm = 0;
	long long cpu = 0, mcpu = 0;
	int ok = opt.nservers > 0;
	for (int i = 0; i < opt.nservers; i++) {
		const struct pstat *p = &servers[i];
		ok = ok && p->cpu0 >= 0 && p->cpu1 >= 0 && p->main0 >= 0 && p->main1 >= 0;
		cpu += p->cpu1 - p->cpu0;
		mcpu += p->main1 - p->main0;
		rss0 += p->rss0;
		hwm += p->hwm;
	}
	if (ok) {
		double cpu_s = (double)cpu / hz, mcpu_s = (double)mcpu / hz;
		printf(",\"server_cpu_s\":%.2f,\"server_main_thread_cpu_s\":%.2f,"
		       "\"server_cpu_ns_per_delivery\":%.0f,\"server_main_cpu_ns_per_delivery\":%.0f,"
		       "\"server_rss0_kb\":%ld,\"server_hwm_kb\":%ld,\"server_kb_per_conn\":%.2f",
		       cpu_s, mcpu_s, deliveries ? cpu_s * 1e9 / (double)deliveries : 0,
		       deliveries ? mcpu_s * 1e9 / (double)deliveries : 0,
		       rss0, hwm, (double)(hwm - rss0) / PUB0);
	}
	if (opt.nservers || opt.broker_pid) {
		printf(",\"events_published\":%" PRId64 ",\"servers\":[", next_event);
		for (int i = 0; i < opt.nservers; i++)
			pstat_print(i ? "," : "", &servers[i], hz);
		printf("]");
		if (opt.broker_pid)
			pstat_print(",\"broker\":", &broker, hz);
	}
	printf("}\n");
	return missing || ooo || dead_count ? 3 : 0;
}

/* ---- connections: memory per idle connection and handshakes/s ---- */

/* open descriptors of a process (its sockets, the listener, files) */
static int proc_fds(int pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!(dir = opendir(path)))
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* conns with several servers (--ports, --server-pid lists): the sum over
 * the servers of a VmXXX line (kB) or of their descriptors; -1 if one of
 * them cannot be read, 0 without --server-pid */
static long servers_mem(const char *key)
{
	long sum = 0;

	for (int i = 0; i < opt.nservers; i++) {
		long v = proc_mem(opt.server_pids[i], key);
		if (v < 0)
			return -1;
		sum += v;
	}
	return sum;
}

static int servers_fds(void)
{
	int sum = 0;

	for (int i = 0; i < opt.nservers; i++) {
		int v = proc_fds(opt.server_pids[i]);
		if (v < 0)
			return -1;
		sum += v;
	}
	return sum;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * conns: R rounds of: open N WebSockets on --sub-path (at most --inflight
 * handshakes at a time, 0: all N at once; spread over --ports like run's
 * receivers, and then RSS and descriptors are the sums over the
 * --server-pid list), time them (handshakes/s: N over
 * the time from the first connect() to the last 101), let the server settle
 * and read its VmRSS, then reset every connection (SO_LINGER 0: no
 * TIME_WAIT, so that the next round finds free ports) and wait until the
 * server has closed them (its descriptor count is back). The last round
 * stays open while its RSS is read. RSS per connection = (RSS with N open
 * - RSS before the first round) / N, fresh (round 1) and after churn (the
 * last round).
 */
static int conns_run(void)
{
	int N = opt.receivers, R = opt.rounds < 1 ? 1 : opt.rounds;
	double *hs = calloc((size_t)R, sizeof(double));
	long *rss = calloc((size_t)R, sizeof(long)), rss0 = 0;
	int fd0 = servers_fds();
	struct rlimit rl;
	uint64_t t;

	getrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)(N + 64) > rl.rlim_cur)
		die("%s", "too few file descriptors: raise ulimit -n");
	conns = calloc((size_t)N, sizeof(*conns));
	rbuf = malloc(RBUF);
	recv_count = calloc(1, sizeof(int));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || !rbuf || !hs || !rss || ep < 0)
		die("%s", "out of memory");
	rss0 = servers_mem("VmRSS:");
	for (int r = 0; r < R; r++) {
		int started = 0;
		uint64_t t0 = now_us(CLOCK_MONOTONIC);

		open_count = dead_count = 0;
		memset(conns, 0, (size_t)N * sizeof(*conns));
		while (open_count + dead_count < N) {
			start_connects(&started, N);
			wait_events(100, &t);
			if ((double)(t - t0) > opt.connect_timeout * 1e6)
				die("%s", "connections did not all open in time (--connect-timeout)");
		}
		hs[r] = (double)N / ((double)(now_us(CLOCK_MONOTONIC) - t0) / 1e6);
		if (dead_count)
			fprintf(stderr, "wsload: %d of %d connections failed in round %d\n",
				dead_count, N, r + 1);
		/* let the server finish what each connect started (frees, state) */
		for (uint64_t tq = now_us(CLOCK_MONOTONIC); now_us(CLOCK_MONOTONIC) - tq < 1000000;)
			wait_events(50, &t);
		rss[r] = servers_mem("VmRSS:");
		if (r == R - 1)
			break;
		for (int i = 0; i < N; i++) {
			struct linger lg = { 1, 0 };
			if (conns[i].state == C_DEAD)
				continue;
			setsockopt(conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(conns[i].fd);
			free(conns[i].pend);
			free(conns[i].msg);
		}
		if (opt.nservers)
			for (int k = 0; k < 1000 && servers_fds() > fd0 + 8 * opt.nservers; k++)
				usleep(20000);
		usleep(200000);
	}
	double hsorted[64];
	int nh = R < 64 ? R : 64;
	memcpy(hsorted, hs, (size_t)nh * sizeof(double));
	qsort(hsorted, (size_t)nh, sizeof(double), cmp_dbl);
	printf("{\"label\":\"%s\",\"server\":\"%s\",\"mode\":\"conns\",\"conns\":%d,\"rounds\":%d,"
	       "\"inflight\":%d,\"handshakes_per_s\":[", opt.label, opt.nchan ? "nchan" : "statusgate",
	       N, R, opt.inflight);
	for (int r = 0; r < R; r++)
		printf("%s%.0f", r ? "," : "", hs[r]);
	printf("],\"handshakes_per_s_median\":%.0f,\"server_rss0_kb\":%ld,\"rss_kb\":[",
	       hsorted[nh / 2], rss0);
	for (int r = 0; r < R; r++)
		printf("%s%ld", r ? "," : "", rss[r]);
	printf("],\"bytes_per_conn_fresh\":%.0f,\"bytes_per_conn_churned\":%.0f,\"failed\":%d}\n",
	       (double)(rss[0] - rss0) * 1024.0 / N, (double)(rss[R - 1] - rss0) * 1024.0 / N,
	       dead_count);
	return dead_count ? 3 : 0;
}

/* ---- the syscall floor ---- */

struct floor_reader {
	int *fds;
	int n;
	uint64_t want;
};

static void pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *floor_read(void *arg)
{
	struct floor_reader *r = arg;

	pin_to(opt.pin_reader);
	struct epoll_event ev[256];
	int e = epoll_create1(0);
	uint64_t got = 0;
	char *buf = malloc(1 << 16);

	for (int i = 0; i < r->n; i++) {
		struct epoll_event x = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		epoll_ctl(e, EPOLL_CTL_ADD, r->fds[i], &x);
	}
	while (got < r->want) {
		int n = epoll_wait(e, ev, 256, 1000);
		for (int i = 0; i < n; i++) {
			ssize_t k;
			while ((k = read(r->fds[ev[i].data.u32], buf, 1 << 16)) > 0)
				got += (uint64_t)k;
		}
	}
	free(buf);
	close(e);
	return NULL;
}

/* the frame statusgate sends for a notification of opt.size bytes */
static size_t floor_frame(unsigned char *f)
{
	char note[65536], body[70000];
	int nl = snprintf(note, sizeof(note), "BENCH %d %d %" PRIu64 " ", 0, 0,
			  now_us(CLOCK_REALTIME));
	size_t bl, h = 0;

	while (nl < opt.size && nl < (int)sizeof(note) - 1)
		note[nl++] = 'x';
	note[nl] = '\0';
	bl = (size_t)snprintf(body, sizeof(body), "{\"message\": null, \"notification_message\": \"%s\", "
			      "\"validation_message\": \"\"}", note);
	f[h++] = 0x81;
	if (bl < 126) {
		f[h++] = (unsigned char)bl;
	} else {
		f[h++] = 126;
		f[h++] = (unsigned char)(bl >> 8);
		f[h++] = (unsigned char)bl;
	}
	memcpy(f + h, body, bl);
	return h + bl;
}

static int floor_run(void)
{
	int N = opt.receivers, lfd, one = 1;
	int *wfd = calloc((size_t)N, sizeof(int)), *rfd = calloc((size_t)N, sizeof(int));
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	unsigned char frame[70000];
	size_t flen = floor_frame(frame);
	struct floor_reader r;
	pthread_t th;
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)(2 * N + 64) > rl.rlim_cur)
		die("%s", "too few file descriptors: raise ulimit -n");
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 4096) ||
	    getsockname(lfd, (struct sockaddr *)&a, &al))
		die("listen: %s", strerror(errno));
	for (int i = 0; i < N; i++) {
		rfd[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(rfd[i], (struct sockaddr *)&a, sizeof(a)))
			die("connect: %s", strerror(errno));
		wfd[i] = accept(lfd, NULL, NULL);
		if (wfd[i] < 0)
			die("accept: %s", strerror(errno));
		setsockopt(wfd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(rfd[i], F_SETFL, O_NONBLOCK);
	}
	r.fds = rfd;
	r.n = N;
	r.want = (uint64_t)N * (uint64_t)opt.events * flen;
	pthread_create(&th, NULL, floor_read, &r);
	pin_to(opt.pin_writer);

	/* the writer: blocking writes, one frame per socket per event, as a
	 * server that writes one frame per WRITEABLE does at best */
	uint64_t c0 = now_us(CLOCK_THREAD_CPUTIME_ID), w0 = now_us(CLOCK_MONOTONIC);
	for (int e = 0; e < opt.events; e++)
		for (int i = 0; i < N; i++)
			if (write(wfd[i], frame, flen) != (ssize_t)flen)
				die("floor write: %s", strerror(errno));
	uint64_t c1 = now_us(CLOCK_THREAD_CPUTIME_ID), w1 = now_us(CLOCK_MONOTONIC);
	pthread_join(th, NULL);
	for (int i = 0; i < N; i++) {
		close(wfd[i]);
		close(rfd[i]);
	}
	close(lfd);
	free(wfd);
	free(rfd);
	double writes = (double)N * opt.events;
	printf("{\"label\":\"%s\",\"server\":\"floor\",\"receivers\":%d,\"events\":%d,"
	       "\"frame_bytes\":%zu,\"writes\":%.0f,\"write_cpu_s\":%.3f,"
	       "\"cpu_ns_per_write\":%.0f,\"writes_per_s\":%.0f}\n",
	       opt.label, N, opt.events, flen, writes, (double)(c1 - c0) / 1e6,
	       (double)(c1 - c0) * 1e3 / writes, writes / ((double)(w1 - w0) / 1e6));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "run") && strcmp(argv[1], "floor") &&
			 strcmp(argv[1], "conns"))) {
		fprintf(stderr, "usage: wsload run|floor|conns [--port P --receivers N --events M --size B\n"
			"  --sub-path P --pub-path P --nchan --mux --stomp --publishers K --window W --rate R\n"
			"  --idle I --idle-path P --channels C --inflight K --connect-timeout S --hold S\n"
			"  --ports P1,P2 --server-pid PID1,PID2 --broker-pid PID --label L --idle-timeout S\n"
			"  --amqp [HOST:]PORT --amqp-exchange X --amqp-key K --rates R1,R2 --step-s S\n"
			"  --rounds R (conns) --pin WCPU,RCPU (floor)]\n");
		return 2;
	}
	parse_opts(argc, argv);
	if (!strcmp(argv[1], "conns"))
		return conns_run();
	return strcmp(argv[1], "run") ? floor_run() : run();
}
