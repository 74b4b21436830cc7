/*
 * statusgate.js: watch a submission's state from a browser page.
 * An ES module with no build step and no dependencies, served by the gateway
 * at /statusgate.js.
 *
 *   import { watch } from '/statusgate.js';
 *   const w = watch('42', (state, frame) => render(state), {
 *     onStatus: (status, info) => showConnection(status, info),
 *   });
 *   // later: w.stop();
 *
 * It subscribes on the multiplexed WebSocket /ws and hands every state to
 * onState: first a snapshot (or, after a reconnect, the events missed
 * meanwhile), then live events, each of which carries the whole state.
 * When the connection drops it reconnects with exponential backoff and
 * jitter and resumes with since = {epoch, seq} of the last frame it
 * delivered, so nothing is skipped and nothing comes twice. Where the
 * WebSocket cannot connect at all (a proxy that refuses the upgrade) it
 * falls back to Server-Sent Events (/sse/submissions/{key}), whose
 * EventSource resumes by itself with Last-Event-ID.
 *
 * By default it asks for the latest state (mode "latest"): a page that
 * cannot keep up, on a slow network, gets the newest state instead of a
 * backlog, and seq may then jump. With mode "all" every event comes, and a
 * gap (which the gateway never makes in that mode) is repaired by taking
 * a snapshot.
 */

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const PING_EVERY_MS = 25000;
const PONG_WAIT_MS = 10000;
const FALLBACK_AFTER = 2;        /* WebSocket attempts that never opened, in a row */

/* commands the gateway refuses for good: retrying cannot help */
const FATAL = new Set(['forbidden', 'bad_request', 'not_found']);

/**
 * Watches submission `key`.
 *
 * onState(state, frame) is called with the new state, a fresh object
 *   { submission, epoch, seq, status, notification, summary, at }
 * and the frame it came from ({op: "snapshot"} or {op: "event", type, ...}
 * as the gateway sent it). States come in seq order; a snapshot replaces
 * everything (another epoch means another store: forget older states).
 *
 * options:
 *   url       the gateway's base URL (default: this page's origin)
 *   token     a browser token (string), or a function returning one, called
 *             on every connection (so a fresh one can be minted)
 *   mode      'latest' (default) or 'all'
 *   transport 'auto' (default: WebSocket, SSE when it cannot connect),
 *             'ws' or 'sse'
 *   onStatus(status, info): 'connecting', 'live', 'reconnecting' (info.delay:
 *             ms until the next try, or null while the browser retries by
 *             itself), 'offline' (no network: waits for it), 'refused'
 *             (info.reason: the gateway refused this watch for good) or
 *             'stopped'; info.transport is 'ws' or 'sse'
 *   minDelay, maxDelay  backoff bounds in ms (500, 10000)
 *
 * Returns { stop(), state(), transport(), retryNow() }.
 */
export function watch(key, onState, options = {}) {
	const opt = {
		url: null, token: null, mode: 'latest', transport: 'auto', onStatus: null,
		minDelay: BACKOFF_MIN_MS, maxDelay: BACKOFF_MAX_MS, ...options
	};
	if (opt.mode !== 'latest' && opt.mode !== 'all')
		throw new Error(`statusgate: mode must be "latest" or "all", not ${opt.mode}`);
	const base = new URL(opt.url || globalThis.location.href);
	let state = { submission: key, epoch: null, seq: 0, status: null, notification: '',
		summary: null, at: null };
	let ws = null, es = null;          /* the one live connection, if any */
	let transport = opt.transport === 'sse' ? 'sse' : 'ws';
	let opened = false;                /* the current connection got to open */
	let attempt = 0;                   /* failed attempts in a row */
	let wsFailures = 0;                /* WebSocket attempts that never opened, in a row */
	let retryTimer = null, pingTimer = null, pongTimer = null;
	let subId = 0, nextId = 1;
	let wantSnapshot = false;          /* next connection without a resume position */
	let done = false;
	let lastStatus = null;

	function status(s, info = {}) {
		const i = { transport, ...info };
		if (s === lastStatus && s !== 'reconnecting')
			return;
		lastStatus = s;
		if (opt.onStatus)
			opt.onStatus(s, i);
	}

	function tokenNow() {
		return typeof opt.token === 'function' ? opt.token() : opt.token;
	}

	function withToken(u) {
		const t = tokenNow();
		if (t)
			u.searchParams.set('token', t);
		return u;
	}

	/* ---- delivering frames ---- */

	function deliver(f) {
		if (f.submission !== key)
			return;
		if (f.op === 'event' && state.epoch !== null) {
			if (f.epoch !== state.epoch) {
				resync();      /* another store: only a snapshot is current */
				return;
			}
			if (f.seq <= state.seq)
				return;        /* already delivered */
			if (opt.mode === 'all' && f.seq !== state.seq + 1) {
				resync();      /* a gap: take a snapshot */
				return;
			}
		}
		state = {
			submission: key, epoch: f.epoch, seq: f.seq, status: f.status ?? null,
			notification: f.notification ?? '', summary: f.summary ?? null,
			at: (f.op === 'snapshot' ? f.updated_at : f.at) ?? null
		};
		onState({ ...state }, f);
	}

	/* ---- WebSocket ---- */

	function wsUrl() {
		const u = new URL('/ws', base);
		u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
		return withToken(u).href;
	}

	function send(obj) {
		if (ws && ws.readyState === WebSocket.OPEN)
			ws.send(JSON.stringify(obj));
	}

	function openWs() {
		let sock;
		try {
			sock = new WebSocket(wsUrl());
		} catch (e) {
			failed();
			return;
		}
		ws = sock;
		sock.onopen = () => {
			if (ws !== sock)
				return;
			opened = true;
			wsFailures = 0;
			const cmd = { op: 'subscribe', id: nextId++, submission: key, mode: opt.mode };
			if (state.epoch && !wantSnapshot)
				cmd.since = { epoch: state.epoch, seq: state.seq };
			wantSnapshot = false;
			subId = cmd.id;
			send(cmd);
			startPing();
		};
		sock.onmessage = (ev) => {
			if (ws === sock)
				onWsFrame(ev.data);
		};
		sock.onclose = (ev) => {
			if (ws !== sock)
				return;
			ws = null;
			stopPing();
			if (ev.code === 1008 && typeof opt.token !== 'function') {
				refused(ev.reason || 'refused by policy');
				return;
			}
			if (!opened)
				wsFailures++;
			failed();
		};
	}

	function onWsFrame(text) {
		let f;
		try {
			f = JSON.parse(text);
		} catch (e) {
			return;
		}
		switch (f.op) {
		case 'ack':
			if (f.id === subId) {
				attempt = 0;
				status('live');
			}
			return;
		case 'snapshot':
		case 'event':
			deliver(f);
			return;
		case 'pong':
			clearTimeout(pongTimer);
			pongTimer = null;
			return;
		case 'error':
			if (f.code === 'lagging')
				return;        /* the gateway closes us; we resume with since */
			if (f.id !== subId)
				return;
			if (FATAL.has(f.code))
				refused(f.reason || f.code);
			else if (ws)
				ws.close(4002, f.code);   /* too_many, unavailable: later */
		}
	}

	function startPing() {
		stopPing();
		pingTimer = setInterval(() => {
			send({ op: 'ping', id: nextId++ });
			if (!pongTimer)
				pongTimer = setTimeout(() => {
					pongTimer = null;
					if (ws)
						ws.close(4001, 'no pong');
				}, PONG_WAIT_MS);
		}, PING_EVERY_MS);
	}

	function stopPing() {
		clearInterval(pingTimer);
		clearTimeout(pongTimer);
		pingTimer = pongTimer = null;
	}

	/* ---- Server-Sent Events ---- */

	function sseUrl() {
		const u = withToken(new URL('/sse/submissions/' + encodeURIComponent(key), base));
		/* where to resume; a reconnecting EventSource sends its own
		 * Last-Event-ID, which the gateway prefers */
		if (state.epoch && !wantSnapshot)
			u.searchParams.set('last_event_id', `${state.epoch}:${state.seq}`);
		wantSnapshot = false;
		return u.href;
	}

	function openSse() {
		let src;
		try {
			src = new EventSource(sseUrl());
		} catch (e) {
			failed();
			return;
		}
		es = src;
		src.onopen = () => {
			if (es !== src)
				return;
			opened = true;
			attempt = 0;
			status('live');
		};
		src.onmessage = (ev) => {
			let f;
			if (es !== src)
				return;
			try {
				f = JSON.parse(ev.data);
			} catch (e) {
				return;
			}
			deliver(f);
		};
		src.onerror = () => {
			if (es !== src)
				return;
			if (src.readyState === EventSource.CONNECTING) {
				/* the browser reconnects by itself, with Last-Event-ID */
				status('reconnecting', { delay: null });
				return;
			}
			/* closed for good (an HTTP error, or it never connected) */
			es = null;
			src.close();
			failed();
		};
	}

	/* ---- connecting and retrying ---- */

	function connect() {
		clearTimeout(retryTimer);
		retryTimer = null;
		if (done || ws || es)
			return;
		opened = false;
		if (lastStatus === null)
			status('connecting');
		if (opt.transport === 'auto')
			transport = wsFailures >= FALLBACK_AFTER && typeof EventSource === 'function' ? 'sse' : 'ws';
		if (transport === 'sse')
			openSse();
		else
			openWs();
	}

	/* the connection ended or never came up: try again after a while */
	function failed() {
		if (done || retryTimer)
			return;
		if (transport === 'sse' && !opened && opt.transport === 'auto')
			wsFailures = 0;     /* SSE failed too: the gateway is away, not the upgrade blocked */
		if (globalThis.navigator && navigator.onLine === false) {
			status('offline');
			return;             /* the 'online' event brings us back */
		}
		let delay = Math.min(opt.maxDelay, opt.minDelay * 2 ** attempt);
		delay = delay / 2 + Math.random() * delay / 2;   /* jitter: spread a crowd's retries */
		attempt++;
		status('reconnecting', { delay });
		retryTimer = setTimeout(connect, delay);
	}

	function refused(reason) {
		close();
		done = true;
		status('refused', { reason });
	}

	/* drop the connection and connect again without a resume position */
	function resync() {
		wantSnapshot = true;
		close();
		connect();
	}

	function close() {
		stopPing();
		clearTimeout(retryTimer);
		retryTimer = null;
		if (ws) {
			const s = ws;
			ws = null;
			s.close(1000);
		}
		if (es) {
			const s = es;
			es = null;
			s.close();
		}
	}

	/* at once, e.g. when the network or the tab comes back; starts over
	 * with the WebSocket, which may work on this network */
	function retryNow() {
		if (done || ws || es)
			return;
		if (opt.transport === 'auto')
			wsFailures = 0;
		attempt = 0;
		connect();
	}

	function onOffline() {
		if (!ws && !es && !done)
			status('offline');
	}

	function onVisible() {
		if (!document.hidden)
			retryNow();
	}

	if (globalThis.addEventListener) {
		globalThis.addEventListener('online', retryNow);
		globalThis.addEventListener('offline', onOffline);
	}
	if (globalThis.document)
		document.addEventListener('visibilitychange', onVisible);
	connect();

	return {
		/* closes the connection; nothing more is delivered */
		stop() {
			if (done)
				return;
			close();
			done = true;
			if (globalThis.removeEventListener) {
				globalThis.removeEventListener('online', retryNow);
				globalThis.removeEventListener('offline', onOffline);
			}
			if (globalThis.document)
				document.removeEventListener('visibilitychange', onVisible);
			status('stopped');
		},
		/* the last state delivered (a copy) */
		state: () => ({ ...state }),
		/* 'ws' or 'sse': the transport in use or being tried */
		transport: () => transport,
		retryNow,
	};
}
