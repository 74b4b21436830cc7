/*
 * The list of recent submissions (/): GET /api/v1/submissions, refreshed
 * every few seconds (slower while the tab is hidden), each row linking to the
 * submission's live page. A ?token= on this page's URL is passed on to the
 * API and to the links.
 */
'use strict';

(function () {
	var REFRESH_MS = 3000;
	var timer = null;

	var $ = sg.$, withToken = sg.withToken, el = sg.el, statusClass = sg.statusClass;

	function setState(st, text) {
		$('refresh').dataset.state = st;
		$('refresh-text').textContent = text;
	}

	function render(list) {
		var table = $('subs'), tbody = table.querySelector('tbody');

		table.hidden = list.length === 0;
		$('subs-empty').hidden = list.length !== 0;
		tbody.textContent = '';
		list.forEach(function (s) {
			var tr = el('tr', { 'data-testid': 'sub-' + s.submission });
			var td = el('td');
			td.append(el('a', { href: withToken('/submissions/' + encodeURIComponent(s.submission)) },
				     s.submission));
			tr.append(td);
			td = el('td');
			td.append(el('span', { class: 'badge badge-small ' + statusClass(s.status),
					       'data-status': s.status || '' }, s.status || 'No status'));
			tr.append(td);
			tr.append(el('td', { class: 'col-note' }, s.notification || ''));
			td = el('td');
			if (s.updated_at) {
				var d = new Date(s.updated_at);
				td.append(el('time', { datetime: s.updated_at, title: d.toLocaleString() },
					     d.toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' })));
			}
			tr.append(td);
			tbody.append(tr);
		});
	}

	function refresh() {
		clearTimeout(timer);
		fetch(withToken('/api/v1/submissions?limit=100'), { cache: 'no-store' }).then(function (r) {
			if (!r.ok)
				return r.json().catch(function () { return {}; }).then(function (b) {
					throw new Error(b.detail || ('HTTP ' + r.status));
				});
			return r.json();
		}).then(function (body) {
			render(body.submissions || []);
			setState('live', 'Updated ' + new Date().toLocaleTimeString());
		}).catch(function (e) {
			setState('reconnecting', 'Cannot load the list (' + e.message + '); retrying');
		}).then(function () {
			timer = setTimeout(refresh, document.hidden ? REFRESH_MS * 5 : REFRESH_MS);
		});
	}

	document.addEventListener('visibilitychange', function () {
		if (!document.hidden)
			refresh();
	});
	$('host').textContent = location.host;
	$('host2').textContent = location.host;
	refresh();
})();
