/*
 * Helpers shared by the pages. There is no build step, so this is a plain
 * script loaded before each page's own and it defines one global, sg.
 */
'use strict';

var sg = (function () {
	/* a ?token= on the page's URL is passed on to the API and WebSockets */
	var token = new URLSearchParams(location.search).get('token');

	return {
		token: token,

		/* the element with data-testid="id" */
		$: function (id) {
			return document.querySelector('[data-testid="' + id + '"]');
		},

		withToken: function (url) {
			if (!token)
				return url;
			return url + (url.indexOf('?') < 0 ? '?' : '&') + 'token=' + encodeURIComponent(token);
		},

		/* a new element; text is always inserted as text, never as markup */
		el: function (tag, attrs, text) {
			var e = document.createElement(tag);
			for (var k in attrs || {})
				if (k === 'class')
					e.className = attrs[k];
				else
					e.setAttribute(k, attrs[k]);
			if (text !== undefined && text !== null)
				e.textContent = String(text);
			return e;
		},

		/* "Need Revision" -> "badge-need-revision" */
		statusClass: function (st) {
			return st ? 'badge-' + st.toLowerCase().replace(/\s+/g, '-') : 'badge-none';
		}
	};
})();
