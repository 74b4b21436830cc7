// Shared helpers for the browser tests (tests/integration/browser_*.mjs):
// start the real gateway on a free loopback port, publish over HTTP, launch
// Debian's Chromium through playwright-core, and a tiny runner that prints
// "N passed, N failed" and sets the exit status. A missing Chromium or
// playwright-core is a failure, never a skip.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.GW_SOURCE_DIR || path.resolve(here, '..', '..');
export const BIN = process.env.STATUSGATE_BIN || path.join(SOURCE_DIR, 'build', 'statusgate');
export const ARTIFACTS = path.join(SOURCE_DIR, 'tests', 'artifacts');
export const CHROMIUM = '/usr/bin/chromium';
// scripts/deps.sh --test installs tests/package.json's packages here
export const NODE_DEPS = path.join(SOURCE_DIR, '.deps', 'node');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function tmpDir(prefix) {
	return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.on('error', reject);
		srv.listen(0, '127.0.0.1', () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

// polls fn until it returns a truthy value; throws what it last saw after ms
export async function waitFor(fn, ms, what) {
	const deadline = Date.now() + ms;
	let last;
	for (;;) {
		try {
			last = await fn();
			if (last)
				return last;
		} catch (e) {
			last = e;
		}
		if (Date.now() > deadline)
			throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
		await sleep(50);
	}
}

// The real binary, on 127.0.0.1:port with its own db and the source web/.
export class Gateway {
	// publishToken: publish with it (and configure it, which makes every
	// peer without it, the browser too, an untrusted publisher)
	constructor({ port, db, args = [], publishToken = null }) {
		this.port = port;
		this.db = db;
		this.publishToken = publishToken;
		this.args = publishToken ? [...args, '--publish-token', publishToken] : args;
		this.url = `http://127.0.0.1:${port}`;
		this.log = '';
		this.proc = null;
		this.exit = null;
	}

	async start() {
		if (!fs.existsSync(BIN))
			throw new Error(`statusgate binary not found at ${BIN} (set STATUSGATE_BIN)`);
		this.exit = null;
		this.proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${this.port}`, '--db', this.db,
			'--web-dir', path.join(SOURCE_DIR, 'web'), '--log-level', 'info', ...this.args],
			{ stdio: ['ignore', 'pipe', 'pipe'] });
		const keep = (d) => { this.log = (this.log + d.toString()).slice(-20000); };
		this.proc.stdout.on('data', keep);
		this.proc.stderr.on('data', keep);
		this.exited = new Promise((resolve) => this.proc.on('exit', (code, sig) => {
			this.exit = { code, sig };
			resolve(this.exit);
		}));
		await waitFor(async () => {
			if (this.exit)
				throw new Error(`gateway exited early (${JSON.stringify(this.exit)}):\n${this.log}`);
			const r = await fetch(`${this.url}/healthz`).catch(() => null);
			return r && r.status === 200;
		}, 20000, 'the gateway to answer /healthz');
		return this;
	}

	// SIGTERM and wait; the gateway must exit 0
	async stop() {
		if (!this.proc || this.exit)
			return this.exit;
		this.proc.kill('SIGTERM');
		const t = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
		const ex = await this.exited;
		clearTimeout(t);
		if (ex.code !== 0)
			throw new Error(`gateway did not exit cleanly on SIGTERM (${JSON.stringify(ex)}):\n${this.log}`);
		return ex;
	}

	async publish(doc) {
		const headers = { 'content-type': 'application/json' };
		if (this.publishToken)
			headers.authorization = `Bearer ${this.publishToken}`;
		const r = await fetch(`${this.url}/api/v1/publish`, {
			method: 'POST', headers, body: JSON.stringify(doc)
		});
		const body = await r.json();
		if (r.status !== 200 && r.status !== 202)
			throw new Error(`publish refused: ${r.status} ${JSON.stringify(body)}`);
		return body;
	}

	async get(p) {
		const r = await fetch(`${this.url}${p}`);
		return { status: r.status, body: await r.json() };
	}
}

export async function launchBrowser() {
	let chromium;
	try {
		({ chromium } = createRequire(path.join(NODE_DEPS, 'package.json'))('playwright-core'));
	} catch (e) {
		throw new Error(`playwright-core is missing from ${NODE_DEPS}: run scripts/deps.sh --test: ${e.message}`);
	}
	if (!fs.existsSync(CHROMIUM))
		throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/deps.sh --test)`);
	// launch() runs Chromium with a fresh temporary profile, removed on close
	return chromium.launch({
		executablePath: CHROMIUM,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
	});
}

// Debian's nginx in front, running deploy/nginx/statusgate.conf through
// nginx_proxy.py (refuseWebSocket: its /ws answers 403, as a proxy that
// blocks upgrades would); resolves { proc, port } once nginx answers
export function startNginx(gatewayPort, appPort, { refuseWebSocket = false } = {}) {
	const args = [path.join(here, 'nginx_proxy.py'), '--gateway', `127.0.0.1:${gatewayPort}`,
		'--app', `127.0.0.1:${appPort}`];
	if (refuseWebSocket)
		args.push('--refuse-websocket');
	const proc = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'pipe', 'inherit'] });
	return new Promise((resolve, reject) => {
		let buf = '';
		proc.stdout.on('data', (d) => {
			buf += d;
			const m = /^ready (\d+)$/m.exec(buf);
			if (m)
				resolve({ proc, port: Number(m[1]) });
		});
		proc.on('exit', (code) => reject(new Error(`nginx_proxy.py exited with ${code}`)));
	});
}

export function artifact(name) {
	fs.mkdirSync(ARTIFACTS, { recursive: true });
	return path.join(ARTIFACTS, name);
}

// tests run one after the other; each gets a fresh page's console in failures
export class Runner {
	constructor(name) {
		this.name = name;
		this.tests = [];
		this.passed = 0;
		this.failed = 0;
	}

	test(name, fn) {
		this.tests.push({ name, fn });
	}

	async run(setup, teardown) {
		let ctx = null;
		try {
			ctx = setup ? await setup() : null;
		} catch (e) {
			console.log(`FAIL  setup: ${e.stack || e}`);
			this.failed = this.tests.length || 1;
		}
		if (!this.failed) {
			for (const t of this.tests) {
				const t0 = Date.now();
				try {
					await t.fn(ctx);
					this.passed++;
					console.log(`ok    ${t.name} (${Date.now() - t0} ms)`);
				} catch (e) {
					this.failed++;
					console.log(`FAIL  ${t.name}: ${e.stack || e}`);
				}
			}
		}
		try {
			if (teardown)
				await teardown(ctx);
		} catch (e) {
			this.failed++;
			console.log(`FAIL  teardown: ${e.stack || e}`);
		}
		console.log(`${this.passed} passed, ${this.failed} failed`);
		process.exit(this.failed ? 1 : 0);
	}
}

export function assert(cond, msg) {
	if (!cond)
		throw new Error(`assertion failed: ${msg}`);
}

export function assertEq(a, b, msg) {
	if (JSON.stringify(a) !== JSON.stringify(b))
		throw new Error(`${msg}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}

/* The usual start of a browser test file: a gateway on a free port with a
 * fresh store, and a headless Chromium. closeGatewayAndBrowser undoes it. */
export async function openGatewayAndBrowser({ args = [], publishToken = null } = {}) {
	const dir = tmpDir('sg-browser-');
	const gw = await new Gateway({ port: await freePort(), db: path.join(dir, 'statusgate.db'),
		args, publishToken }).start();
	const ctx = { gw, dir, pageErrors: [] };
	try {
		ctx.browser = await launchBrowser();
	} catch (e) {
		await gw.stop().catch(() => {});
		throw e;
	}
	return ctx;
}

export async function closeGatewayAndBrowser(ctx) {
	if (!ctx)
		return;
	if (ctx.browser)
		await ctx.browser.close();
	await ctx.gw.stop();
	fs.rmSync(ctx.dir, { recursive: true, force: true });
}
