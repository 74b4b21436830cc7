/*
 * wsload: the fan-out load tool of bench/fanout.sh (not part of the product).
 *
 *   wsload run   [options]   N WebSocket receivers + an HTTP publisher
 *   wsload floor [options]   the "syscall floor": the CPU cost of writing
 *                            the same frames to N loopback TCP sockets
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
 * process and of its main thread, /proc/<pid>/[task/<pid>/]stat) around the
 * publish phase, and its memory (VmRSS before the receivers connect, VmHWM
 * at the end). The result is one JSON line on stdout.
 *
 * The client handshake is the minimal RFC 6455 one with a fixed key (a bench
 * tool, not a browser); frames from the server must be unmasked, frames we
 * send (subscribe, pong) are masked.
 *
 * --channels K spreads the receivers over K channels (receiver i watches
 * channel i % K, named bench<c>; "%s" in --sub-path / --pub-path is replaced
 * by the name) and event j goes to channel j % K, so each event reaches N/K
 * receivers (scenario A: 10,000 receivers on 1,000 submissions).
 * --stomp makes the receivers STOMP 1.2 clients over WebSocket (RabbitMQ's
 * Web-STOMP plugin): CONNECT, then SUBSCRIBE to /topic/<channel>.
 * --amqp HOST:PORT publishes through RabbitMQ instead of HTTP (rabbitmq-c,
 * built with -DWSLOAD_AMQP): persistent messages to --amqp-exchange with
 * routing key --amqp-key (with "%s" for the channel), the body being the
 * statusgate publish (which Web-STOMP delivers as the MESSAGE body).
 * --rates R1,R2,... --step-s S publishes at each fixed rate for S seconds
 * in turn and reports the latency percentiles of each step (scenario D).
 *
 * conns: memory per idle connection and handshakes/s (scenario C), see
 * conns_run.
 *
 * Build: gcc -O2 -Wall -Wextra -o wsload bench/wsload.c -lpthread
 *        (add -DWSLOAD_AMQP ... -lrabbitmq for --amqp)
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
#include <amqp_tcp_socket.h>
#endif

#define RBUF (1u << 20)
#define MAXSTEPS 16
#define MAXPUB 64
#define PUB0 (opt.receivers + opt.idle)   /* conns[] index of publisher 0 */

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
	int server_pid;
	const char *label;
	double idle_timeout;      /* s without progress before giving up */
	int rounds;               /* conns: rounds of opening and closing all */
	int inflight;             /* handshakes in flight at most (0: all at once) */
	int channels;             /* receivers spread over this many channels */
	int stomp;                /* receivers are STOMP-over-WebSocket clients */
	const char *amqp;         /* HOST:PORT: publish through RabbitMQ */
	const char *amqp_exchange, *amqp_key;
	double rates[MAXSTEPS];   /* --rates: fixed-rate steps */
	int nsteps;
	double step_s;
	int pin_writer, pin_reader;   /* floor: CPUs of its threads (-1: any) */
} opt = {
	"127.0.0.1", 0, "/ws/submissions/bench/", "/api/v1/publish", 0, 0,
	100, 1000, 200, 1, 64, 0, NULL, 0, 0, "", 15, 3, 200, 1, 0, NULL,
	"statusgate", "submission.%s.notification", { 0 }, 0, 5, -1, -1,
};

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
		else if (!strcmp(k, "--server-pid")) opt.server_pid = atoi(v);
		else if (!strcmp(k, "--label")) opt.label = v;
		else if (!strcmp(k, "--idle-timeout")) opt.idle_timeout = atof(v);
		else if (!strcmp(k, "--rounds")) opt.rounds = atoi(v);
		else if (!strcmp(k, "--inflight")) opt.inflight = atoi(v);
		else if (!strcmp(k, "--channels")) opt.channels = atoi(v);
		else if (!strcmp(k, "--amqp")) opt.amqp = v;
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
#ifndef WSLOAD_AMQP
	if (opt.amqp)
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
		opt.host, opt.port, key_hdr,
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

#ifdef WSLOAD_AMQP
static amqp_connection_state_t aconn;

static void amqp_die(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type != AMQP_RESPONSE_NORMAL)
		die("AMQP %s failed", what);
}

/* one connection and channel to the broker at --amqp HOST:PORT */
static void amqp_open(void)
{
	char host[128];
	const char *colon = strrchr(opt.amqp, ':');
	amqp_socket_t *sk;

	if (!colon || (size_t)(colon - opt.amqp) >= sizeof(host))
		die("--amqp %s: HOST:PORT", opt.amqp);
	memcpy(host, opt.amqp, (size_t)(colon - opt.amqp));
	host[colon - opt.amqp] = '\0';
	aconn = amqp_new_connection();
	sk = amqp_tcp_socket_new(aconn);
	if (!sk || amqp_socket_open(sk, host, atoi(colon + 1)))
		die("cannot connect to the broker at %s", opt.amqp);
	amqp_die(amqp_login(aconn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
		 "login");
	amqp_channel_open(aconn, 1);
	amqp_die(amqp_get_rpc_reply(aconn), "channel.open");
}
#endif

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
	if (opt.amqp) {
		amqp_basic_properties_t props;
		char key[128];
		const char *pct = strstr(opt.amqp_key, "%s");

		if (pct)
			snprintf(key, sizeof(key), "%.*s%s%s", (int)(pct - opt.amqp_key), opt.amqp_key,
				 chan_name(chan), pct + 2);
		else
			snprintf(key, sizeof(key), "%s", opt.amqp_key);
		memset(&props, 0, sizeof(props));
		props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
		props.content_type = amqp_cstring_bytes("application/json");
		props.delivery_mode = 2;
		if (amqp_basic_publish(aconn, 1, amqp_cstring_bytes(opt.amqp_exchange),
				       amqp_cstring_bytes(key), 0, 0, &props,
				       (amqp_bytes_t){ (size_t)bl, body }))
			die("%s", "AMQP publish failed");
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

static int run(void)
{
	int N = opt.receivers, started = 0;
	long rss0 = 0, hwm = 0;
	long long cpu0 = 0, cpu1 = 0, mcpu0 = 0, mcpu1 = 0;
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
	if (opt.server_pid)
		rss0 = proc_mem(opt.server_pid, "VmRSS:");

	/* receivers: at most 200 handshakes in flight, so the listen backlog
	 * never overflows */
	t_conn0 = now_us(CLOCK_MONOTONIC);
	t_last_progress = t_conn0;
	while (open_count + dead_count < PUB0) {
		while (started < PUB0 && (!opt.inflight ||
					  started - open_count - dead_count < opt.inflight)) {
			struct conn *c = &conns[started];
			memset(c->last, 0xff, sizeof(c->last));   /* -1 */
			c->pub = -1;
			c->fd = tcp_connect(opt.host, opt.port);
			if (c->fd < 0)
				die("connect: %s", strerror(errno));
			c->state = C_CONNECTING;
			ep_add(c->fd, EPOLLOUT, started);
			started++;
		}
		wait_events(100, &t);
		if (t - t_conn0 > 180u * 1000000u)
			die("%s", "receivers did not all connect within 180 s");
	}
	if (dead_count)
		die("%s", "some receivers could not connect");
	double connect_s = (double)(now_us(CLOCK_MONOTONIC) - t_conn0) / 1e6;

	/* publishers */
#ifdef WSLOAD_AMQP
	if (opt.amqp) {
		amqp_open();
		opt.publishers = 1;
	}
#endif
	for (int k = 0; k < opt.publishers && !opt.amqp; k++) {
		pub_connect(k);
	}

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

	if (opt.server_pid) {
		cpu0 = proc_cpu(opt.server_pid, 0);
		mcpu0 = proc_cpu(opt.server_pid, opt.server_pid);
	}
	uint64_t t0 = now_us(CLOCK_MONOTONIC), self0 = now_us(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t want = (uint64_t)per_event * (uint64_t)opt.events;
	int step = 0;
	uint64_t step_t0 = t0, t_step_done = 0;
	t_last_progress = t0;
	next_event = 0;
	while (deliveries < want && !dead_count) {
		/* publish what the window and the rate allow */
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
			if (opt.amqp)
				k--;     /* no answer to wait for: the same publisher goes on */
		}
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
	if (opt.server_pid) {
		cpu1 = proc_cpu(opt.server_pid, 0);
		mcpu1 = proc_cpu(opt.server_pid, opt.server_pid);
		hwm = proc_mem(opt.server_pid, "VmHWM:");
	}
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
	       "\"bad_frames\":%d,\"http_errors\":%d,\"connect_s\":%.2f,\"client_cpu_s\":%.2f",
	       opt.label, opt.stomp ? "web-stomp" : opt.nchan ? "nchan" : "statusgate", N, opt.idle,
	       opt.events, opt.size,
	       opt.publishers, opt.window, opt.rate, deliveries, dur,
	       (double)deliveries / dur, (double)deliveries / dur / N,
	       pct(0.5), pct(0.9), pct(0.99), nlat ? lat[nlat - 1] / 1000.0 : 0,
	       missing, ooo, dead_count, bad_frames, http_errors, connect_s,
	       (double)(self1 - self0) / 1e6);
	printf(",\"channels\":%d,\"stomp\":%d,\"amqp\":%d,\"lat_ms_p999\":%.3f",
	       opt.channels, opt.stomp, opt.amqp != NULL, pct(0.999));
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
	if (opt.server_pid && cpu0 >= 0 && cpu1 >= 0) {
		double cpu_s = (double)(cpu1 - cpu0) / hz, mcpu_s = (double)(mcpu1 - mcpu0) / hz;
		printf(",\"server_cpu_s\":%.2f,\"server_main_thread_cpu_s\":%.2f,"
		       "\"server_cpu_ns_per_delivery\":%.0f,\"server_main_cpu_ns_per_delivery\":%.0f,"
		       "\"server_rss0_kb\":%ld,\"server_hwm_kb\":%ld,\"server_kb_per_conn\":%.2f",
		       cpu_s, mcpu_s, deliveries ? cpu_s * 1e9 / (double)deliveries : 0,
		       deliveries ? mcpu_s * 1e9 / (double)deliveries : 0,
		       rss0, hwm, (double)(hwm - rss0) / PUB0);
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

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * conns: R rounds of: open N WebSockets on --sub-path (at most --inflight
 * handshakes at a time, 0: all N at once), time them (handshakes/s: N over
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
	int fd0 = opt.server_pid ? proc_fds(opt.server_pid) : -1;
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
	if (opt.server_pid)
		rss0 = proc_mem(opt.server_pid, "VmRSS:");
	for (int r = 0; r < R; r++) {
		int started = 0;
		uint64_t t0 = now_us(CLOCK_MONOTONIC);

		open_count = dead_count = 0;
		memset(conns, 0, (size_t)N * sizeof(*conns));
		while (open_count + dead_count < N) {
			while (started < N && (!opt.inflight ||
					       started - open_count - dead_count < opt.inflight)) {
				struct conn *c = &conns[started];
				c->pub = -1;
				c->fd = tcp_connect(opt.host, opt.port);
				if (c->fd < 0)
					die("connect: %s", strerror(errno));
				c->state = C_CONNECTING;
				ep_add(c->fd, EPOLLOUT, started);
				started++;
			}
			wait_events(100, &t);
			if (t - t0 > 120u * 1000000u)
				die("%s", "connections did not all open within 120 s");
		}
		hs[r] = (double)N / ((double)(now_us(CLOCK_MONOTONIC) - t0) / 1e6);
		if (dead_count)
			fprintf(stderr, "wsload: %d of %d connections failed in round %d\n",
				dead_count, N, r + 1);
		/* let the server finish what each connect started (frees, state) */
		for (uint64_t tq = now_us(CLOCK_MONOTONIC); now_us(CLOCK_MONOTONIC) - tq < 1000000;)
			wait_events(50, &t);
		if (opt.server_pid)
			rss[r] = proc_mem(opt.server_pid, "VmRSS:");
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
		if (opt.server_pid)
			for (int k = 0; k < 1000 && proc_fds(opt.server_pid) > fd0 + 8; k++)
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
			"  --sub-path P --pub-path P --nchan --mux --publishers K --window W --rate R\n"
			"  --server-pid PID --label L --rounds R --inflight K]\n");
		return 2;
	}
	parse_opts(argc, argv);
	if (!strcmp(argv[1], "conns"))
		return conns_run();
	return strcmp(argv[1], "run") ? floor_run() : run();
}
