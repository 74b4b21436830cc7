/*
 * The status page of one submission (/submissions/{key}), an ES module.
 *
 * The connection is statusgate.js's (the client library this gateway
 * serves): it subscribes on /ws in mode latest, resumes with since after a
 * drop (backoff with jitter; at once when the browser comes back online or
 * to a visible tab), falls back to Server-Sent Events where the WebSocket
 * cannot connect, and hands over each state in seq order: a snapshot, the
 * events missed while away, then live events. Every event carries the full
 * state (status, notification, summary), so applying one is "replace the
 * state". When the page cannot keep up (a slow network) the gateway sends
 * the latest state instead of a backlog and seq jumps; the timeline then
 * gets the events in between from GET .../events?since=. A new epoch (a
 * new store) comes as a snapshot, which replaces everything.
 *
 * The timeline (newest first, at most 50) is keyed by seq, so events from a
 * replay, live events and the back-fill merge without duplicates in any
 * order.
 */
import { watch } from '/statusgate.js';

var TIMELINE_MAX = 50;
var KIND_ORDER = ['animal', 'sample'];
var RESULTS = [
	['pass', 'pass'], ['warning', 'warning'], ['error', 'error'], ['unknown', 'not validated']
];

var match = /^\/submissions\/([A-Za-z0-9_.-]{1,64})\/?$/.exec(location.pathname);
var key = match ? match[1] : null;

var state = { epoch: null, seq: 0, status: null, notification: '', summary: null, at: null };
var timeline = new Map();     /* seq -> event, of state.epoch only */
var watcher = null;           /* statusgate.js's watch */
var renderPending = false;

var $ = sg.$, withToken = sg.withToken, el = sg.el, statusClass = sg.statusClass;

/* ---- connection indicator ---- */

function setConn(st, text, transport) {
	var conn = $('connection');
	conn.dataset.state = st;
	conn.dataset.transport = transport || '';
	$('connection-text').textContent = text;
	document.body.dataset.conn = st;
}

/* the library's connection status, in words */
function onStatus(st, info) {
	switch (st) {
	case 'connecting':
		setConn('connecting', 'Connecting…', info.transport);
		return;
	case 'live':
		setConn('live', info.transport === 'sse' ? 'Live (Server-Sent Events)' : 'Live', info.transport);
		return;
	case 'reconnecting':
		setConn('reconnecting', 'Reconnecting…' + (info.delay ? ' next try in ' +
			Math.max(1, Math.round(info.delay / 1000)) + ' s.' : '') +
			' Showing the last known state.', info.transport);
		return;
	case 'offline':
		setConn('offline', 'Offline: waiting for the network. Showing the last known state.',
			info.transport);
		return;
	case 'refused':
		setConn('offline', 'Not connected: ' + info.reason, info.transport);
		return;
	}
}

/* ---- state from the gateway ---- */

/* a snapshot replaces everything; an event follows the last one, or,
 * when the page could not keep up, jumps ahead (the gateway sends the
 * latest state, not the backlog): the timeline gets the events in
 * between from the read API */
function onState(st, f) {
	var prev = state;

	state = {
		epoch: st.epoch, seq: st.seq, status: st.status, notification: st.notification || '',
		summary: st.summary, at: st.at
	};
	if (f.op === 'snapshot') {
		if (f.epoch !== prev.epoch)
			timeline.clear();
		backfill();
	} else {
		addToTimeline(f);
		if (f.epoch === prev.epoch && f.seq > prev.seq + 1)
			backfill();
		else if (backfillTimer)
			backfill();     /* still arriving: wait for a quiet moment */
	}
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

/* fills the timeline with the stored events up to the current seq (a
 * snapshot has none of its history, a jump skipped some). Jumps come often
 * on a slow network, where the back-fill must not take the bandwidth the
 * live state needs: it waits until states have stopped arriving for a
 * moment, and makes one request at a time. */
var BACKFILL_QUIET_MS = 400;
var backfillTimer = null, backfillBusy = false, backfillAgain = false;

function backfill() {
	clearTimeout(backfillTimer);
	backfillTimer = setTimeout(backfillNow, BACKFILL_QUIET_MS);
}

function backfillNow() {
	var epoch = state.epoch, seq = state.seq;

	backfillTimer = null;
	if (seq < 1)
		return;
	if (backfillBusy) {
		backfillAgain = true;
		return;
	}
	backfillBusy = true;
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
	}).catch(function () { /* the timeline stays as it is */ }).then(function () {
		backfillBusy = false;
		if (backfillAgain) {
			backfillAgain = false;
			backfill();
		}
	});
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
		return;
	}
	$('key').textContent = key;
	render();
	watcher = watch(key, onState, { token: sg.token || null, mode: 'latest', onStatus: onStatus });
}

/* exposed for tests and debugging, read-only */
window.statusgatePage = {
	state: function () { return JSON.parse(JSON.stringify(state)); },
	transport: function () { return watcher ? watcher.transport() : null; }
};

start();
