/*
 * The status page of one submission (/submissions/{key}).
 *
 * State comes from the multiplexed WebSocket /ws (SPEC 2.2): subscribe, get
 * an ack, then either the events missed since {epoch, seq} (a replay) or a
 * snapshot, then live events. Every event carries the full state (status,
 * notification, summary), so applying one is "replace the state", and seq
 * tells whether one was skipped: an event must be exactly seq + 1 of the
 * last one applied. A gap or a different epoch makes the page drop the
 * connection and subscribe again without since, which yields a snapshot, so
 * the page never shows a skipped or stale state as current.
 *
 * Reconnects use exponential backoff with jitter (0.5 s doubling to 10 s)
 * and resume with since; coming back online or to a visible tab retries at
 * once. A ping every 25 s with a 10 s deadline notices a dead connection
 * that never said goodbye.
 *
 * The timeline (newest first, at most 50) is keyed by seq, so events from a
 * replay, live events and the back-fill from GET .../events?since= merge
 * without duplicates in any order.
 */
'use strict';

(function () {
	var TIMELINE_MAX = 50;
	var BACKOFF_MIN_MS = 500;
	var BACKOFF_MAX_MS = 10000;
	var PING_EVERY_MS = 25000;
	var PONG_WAIT_MS = 10000;
	var KIND_ORDER = ['animal', 'sample'];
	var RESULTS = [
		['pass', 'pass'], ['warning', 'warning'], ['error', 'error'], ['unknown', 'not validated']
	];

	var match = /^\/submissions\/([A-Za-z0-9_.-]{1,64})\/?$/.exec(location.pathname);
	var key = match ? match[1] : null;

	var state = { epoch: null, seq: 0, status: null, notification: '', summary: null, at: null };
	var timeline = new Map();     /* seq -> event, of state.epoch only */
	var ws = null;
	var subId = 0, nextId = 1;
	var attempt = 0;              /* failed connection attempts in a row */
	var retryTimer = null, pingTimer = null, pongTimer = null;
	var wantSnapshot = false;     /* next subscribe without since */
	var stopped = false;          /* refused for good (e.g. forbidden) */
	var renderPending = false;

	var $ = sg.$, withToken = sg.withToken, el = sg.el, statusClass = sg.statusClass;

	/* ---- connection indicator ---- */

	function setConn(st, text) {
		var el = $('connection');
		el.dataset.state = st;
		$('connection-text').textContent = text;
		document.body.dataset.conn = st;
	}

	/* ---- WebSocket ---- */

	function wsUrl() {
		var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
		return withToken(scheme + '//' + location.host + '/ws');
	}

	function send(obj) {
		if (ws && ws.readyState === WebSocket.OPEN)
			ws.send(JSON.stringify(obj));
	}

	function connect() {
		var sock;

		clearTimeout(retryTimer);
		retryTimer = null;
		if (stopped || ws)
			return;
		if (attempt === 0 && !state.epoch)
			setConn('connecting', 'Connecting…');
		try {
			sock = new WebSocket(wsUrl());
		} catch (e) {
			scheduleRetry();
			return;
		}
		ws = sock;
		sock.addEventListener('open', function () {
			if (ws === sock)
				subscribe();
		});
		sock.addEventListener('message', function (ev) {
			if (ws === sock)
				onFrame(ev.data);
		});
		sock.addEventListener('close', function () {
			if (ws !== sock)
				return;
			ws = null;
			stopPing();
			scheduleRetry();
		});
	}

	/* drop the connection and subscribe anew without since: a snapshot */
	function resync() {
		var sock = ws;

		wantSnapshot = true;
		ws = null;
		stopPing();
		if (sock)
			sock.close(4000, 'resync');
		connect();
	}

	function scheduleRetry() {
		var delay;

		if (stopped || retryTimer)
			return;
		if (navigator.onLine === false) {
			setConn('offline', 'Offline: waiting for the network. Showing the last known state.');
			return;   /* the 'online' event reconnects */
		}
		delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt));
		delay = delay / 2 + Math.random() * delay / 2;   /* jitter: spread a crowd's retries */
		attempt++;
		setConn('reconnecting', 'Reconnecting… next try in ' + Math.max(1, Math.round(delay / 1000)) +
			' s. Showing the last known state.');
		retryTimer = setTimeout(connect, delay);
	}

	function retryNow() {
		if (stopped || ws)
			return;
		clearTimeout(retryTimer);
		retryTimer = null;
		connect();
	}

	function subscribe() {
		var cmd = { op: 'subscribe', id: nextId++, submission: key };

		if (state.epoch && !wantSnapshot)
			cmd.since = { epoch: state.epoch, seq: state.seq };
		wantSnapshot = false;
		subId = cmd.id;
		send(cmd);
		startPing();
	}

	function startPing() {
		stopPing();
		pingTimer = setInterval(function () {
			send({ op: 'ping', id: nextId++ });
			if (!pongTimer)
				pongTimer = setTimeout(function () {
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

	function onFrame(text) {
		var f;

		try {
			f = JSON.parse(text);
		} catch (e) {
			return;
		}
		switch (f.op) {
		case 'ack':
			if (f.id !== subId)
				return;
			attempt = 0;
			setConn('live', 'Live');
			return;
		case 'error':
			onError(f);
			return;
		case 'snapshot':
			if (f.submission === key)
				onSnapshot(f);
			return;
		case 'event':
			if (f.submission === key)
				onEvent(f);
			return;
		case 'pong':
			clearTimeout(pongTimer);
			pongTimer = null;
			return;
		}
	}

	function onError(f) {
		if (f.code === 'lagging')
			return;   /* the server closes us; we resume with since */
		if (f.id !== subId)
			return;
		if (f.code === 'forbidden' || f.code === 'bad_request' || f.code === 'not_found') {
			stopped = true;
			setConn('offline', 'Not connected: ' + (f.reason || f.code));
			if (ws)
				ws.close(1000);
			return;
		}
		/* too_many, unavailable...: try again later */
		if (ws)
			ws.close(4002, f.code);
	}

	function onSnapshot(f) {
		if (f.epoch !== state.epoch)
			timeline.clear();
		applyState(f, f.updated_at);
		backfill(f.epoch, f.seq);
	}

	function onEvent(f) {
		if (f.epoch !== state.epoch || f.seq > state.seq + 1) {
			resync();   /* a new store or a skipped event: take a snapshot */
			return;
		}
		if (f.seq <= state.seq)
			return;     /* already applied */
		applyState(f, f.at);
		addToTimeline(f);
	}

	function applyState(f, at) {
		state.epoch = f.epoch;
		state.seq = f.seq;
		state.status = f.status || null;
		state.notification = f.notification || '';
		state.summary = f.summary || null;
		state.at = at || null;
		scheduleRender();
	}

	function addToTimeline(f) {
		var seqs;

		timeline.set(f.seq, {
			seq: f.seq, type: f.type, status: f.status, notification: f.notification,
			summary: f.summary, at: f.at
		});
		if (timeline.size > TIMELINE_MAX) {
			seqs = Array.from(timeline.keys()).sort(function (a, b) { return a - b; });
			for (var i = 0; i < seqs.length - TIMELINE_MAX; i++)
				timeline.delete(seqs[i]);
		}
		scheduleRender();
	}

	/* fills the timeline with the stored events up to seq (a snapshot has
	 * none of its history) */
	function backfill(epoch, seq) {
		if (seq < 1)
			return;
		var url = '/api/v1/submissions/' + encodeURIComponent(key) + '/events?since=' +
			Math.max(0, seq - TIMELINE_MAX);
		fetch(withToken(url), { cache: 'no-store' }).then(function (r) {
			return r.ok ? r.json() : null;
		}).then(function (body) {
			if (!body || body.epoch !== state.epoch || epoch !== state.epoch)
				return;
			(body.events || []).forEach(function (e) {
				if (e.seq <= state.seq && !timeline.has(e.seq) &&
				    e.seq > state.seq - TIMELINE_MAX)
					addToTimeline(e);
			});
		}).catch(function () { /* the timeline stays as it is */ });
	}

	/* ---- rendering ---- */

	function scheduleRender() {
		if (renderPending)
			return;
		renderPending = true;
		/* coalesce a burst (a replay) into one repaint; rAF does not run in
		 * a hidden tab, a timer does */
		if (document.hidden)
			setTimeout(render, 50);
		else
			requestAnimationFrame(render);
	}

	function fmtTime(iso) {
		var d = new Date(iso);
		if (isNaN(d.getTime()))
			return iso;
		return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
	}

	function fmtDateTime(iso) {
		var d = new Date(iso);
		if (isNaN(d.getTime()))
			return iso;
		return d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'medium' });
	}

	function kindsOf(summary) {
		if (!summary)
			return [];
		return Object.keys(summary).filter(function (k) {
			return k !== 'messages' && summary[k] && typeof summary[k] === 'object';
		}).sort(function (a, b) {
			var ia = KIND_ORDER.indexOf(a), ib = KIND_ORDER.indexOf(b);
			if (ia < 0) ia = KIND_ORDER.length;
			if (ib < 0) ib = KIND_ORDER.length;
			return ia - ib || (a < b ? -1 : a > b ? 1 : 0);
		});
	}

	function plural(n, word) {
		return n + ' ' + word + (n === 1 ? '' : 's');
	}

	function render() {
		renderPending = false;
		renderState();
		renderSummary();
		renderMessages();
		renderTimeline();
	}

	function renderState() {
		var badge = $('status'), note = $('notification'), upd = $('updated');

		badge.className = 'badge ' + statusClass(state.status);
		badge.dataset.status = state.status || '';
		badge.textContent = state.status || 'No events yet';
		note.textContent = state.notification ||
			(state.status ? '' : 'Waiting for the first event…');
		note.hidden = !note.textContent;
		upd.textContent = '';
		if (state.at) {
			upd.append('Updated ');
			upd.append(el('time', { datetime: state.at, title: fmtDateTime(state.at) }, fmtTime(state.at)));
		} else {
			upd.textContent = 'Not updated yet';
		}
		$('seq').textContent = String(state.seq);
		document.title = (state.status ? state.status + ' · ' : '') + 'Submission ' + key + ' · statusgate';
	}

	function renderSummary() {
		var kinds = kindsOf(state.summary);
		var bars = $('bars'), tbody = $('summary-table').querySelector('tbody');

		$('summary').hidden = kinds.length === 0;
		$('summary-empty').hidden = kinds.length !== 0;
		bars.textContent = '';
		tbody.textContent = '';
		kinds.forEach(function (kind) {
			var s = state.summary[kind], all = s.all || 0;
			var row = el('div', { class: 'bar-row', 'data-testid': 'bar-' + kind });
			var label = el('p', { class: 'bar-label' });
			var parts = [];
			/* counts a legacy backend reported have no pass/warning
			 * split: the bar shows valid (known, no issues) as pass */
			var seg = s.reported ? {
				pass: Math.max((s.known || 0) - (s.issues || 0), 0), warning: 0,
				error: s.issues || 0, unknown: s.unknown || 0
			} : s;
			var names = s.reported ? { pass: 'valid', warning: 'warning', error: 'with issues' } : {};

			label.append(el('strong', null, kind));
			label.append(' ' + plural(all, 'record') + ', ' + (s.known || 0) + ' validated');
			if (s.reported)
				label.append(el('span', { class: 'reported', 'data-testid': 'reported-' + kind,
					title: 'counts sent by the backend; the gateway holds no records of this kind' },
					' (reported by the backend)'));
			row.append(label);
			var bar = el('div', { class: 'bar', role: 'img' });
			RESULTS.forEach(function (r) {
				var n = seg[r[0]] || 0, name = names[r[0]] || r[1];
				if (s.reported && r[0] === 'warning')
					return;
				var span = el('span', {
					class: 'seg seg-' + r[0], 'data-testid': 'seg-' + kind + '-' + r[0],
					'data-count': n, title: n + ' ' + name
				});
				span.style.width = all ? (100 * n / all) + '%' : '0%';
				bar.append(span);
				parts.push(n + ' ' + name);
			});
			bar.setAttribute('aria-label', kind + ': ' + parts.join(', ') + ', of ' + plural(all, 'record'));
			row.append(bar);
			bars.append(row);

			var tr = el('tr', { 'data-testid': 'row-' + kind });
			tr.append(el('th', { scope: 'row' }, kind));
			['all', 'pass', 'warning', 'error', 'unknown', 'issues'].forEach(function (f) {
				var split = f === 'pass' || f === 'warning' || f === 'error';
				tr.append(el('td', { 'data-field': f, class: 'num' },
					s.reported && split ? '\u2013' : s[f] || 0));
			});
			tbody.append(tr);
		});
	}

	function renderMessages() {
		var msgs = (state.summary && state.summary.messages) || [];
		var table = $('messages'), tbody = table.querySelector('tbody');

		table.hidden = msgs.length === 0;
		$('messages-empty').hidden = msgs.length !== 0;
		tbody.textContent = '';
		msgs.forEach(function (m) {
			var tr = el('tr');
			tr.append(el('td', null, m.text));
			tr.append(el('td', { class: 'col-kind' }, m.kind || ''));
			var col = el('td');
			if (m.column)
				col.append(el('code', null, m.column));
			else
				col.textContent = '—';
			tr.append(col);
			tr.append(el('td', { class: 'num', 'data-field': 'count' }, m.count));
			tbody.append(tr);
		});
	}

	function describe(e) {
		var kinds = kindsOf(e.summary), s = e.summary || {};
		var sum = function (f) {
			return kinds.reduce(function (a, k) { return a + (s[k][f] || 0); }, 0);
		};
		switch (e.type) {
		case 'status':
			return e.notification || 'Status changed';
		case 'notification':
			return e.notification || 'Notification cleared';
		case 'records':
			return 'Records: ' + kinds.map(function (k) { return s[k].all + ' ' + k; }).join(', ');
		case 'validation':
			return 'Validated ' + sum('known') + ' of ' + sum('all') + ': ' + sum('pass') + ' pass, ' +
				sum('warning') + ' warning, ' + sum('error') + ' error';
		case 'reset':
			return 'Records and results forgotten';
		default:
			return e.type || 'Event';
		}
	}

	function renderTimeline() {
		var ol = $('timeline');
		var seqs = Array.from(timeline.keys()).sort(function (a, b) { return b - a; });

		ol.textContent = '';
		$('timeline-empty').hidden = seqs.length !== 0;
		ol.hidden = seqs.length === 0;
		if (seqs.length)
			ol.setAttribute('start', String(seqs[0]));
		seqs.forEach(function (seq) {
			var e = timeline.get(seq);
			var li = el('li', { 'data-seq': seq, 'data-type': e.type || '' });
			li.append(el('time', { datetime: e.at || '', title: e.at ? fmtDateTime(e.at) : '' },
				     e.at ? fmtTime(e.at) : ''));
			li.append(el('span', { class: 'badge badge-small ' + statusClass(e.status) },
				     e.status || 'No status'));
			li.append(el('span', { class: 'ev-type' }, e.type || ''));
			li.append(el('span', { class: 'ev-text' }, describe(e)));
			ol.append(li);
		});
	}

	/* ---- start ---- */

	function start() {
		if (!key) {
			$('key').textContent = '(none)';
			setConn('offline', 'Not a submission address');
			stopped = true;
			return;
		}
		$('key').textContent = key;
		render();
		window.addEventListener('online', retryNow);
		window.addEventListener('offline', function () {
			if (!ws)
				setConn('offline', 'Offline: waiting for the network. Showing the last known state.');
		});
		document.addEventListener('visibilitychange', function () {
			if (!document.hidden)
				retryNow();
		});
		connect();
	}

	/* exposed for tests and debugging, read-only */
	window.statusgatePage = {
		state: function () { return JSON.parse(JSON.stringify(state)); }
	};

	start();
})();
