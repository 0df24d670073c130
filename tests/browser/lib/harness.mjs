// Shared pieces of the browser tests: a real meteord process on ephemeral
// loopback ports, a publisher speaking the control protocol over TCP, a tiny
// page server, and headless Chromium (the system's, through puppeteer-core).
//
// Host names: pages load from http://www.example.test:<page port>/ and the
// server is data.example.test:<subscriber port>; Chromium maps *.example.test
// to 127.0.0.1, so everything stays on loopback while the legacy frames get
// the shared parent domain (example.test) that document.domain needs.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import puppeteer from 'puppeteer-core';

import { after, before } from 'node:test';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const METEORD_BIN = process.env.METEORD_BIN
  ? path.resolve(process.env.METEORD_BIN)
  : path.join(path.resolve(REPO, process.env.CARGO_TARGET_DIR || 'target'), 'debug/meteord');
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const PAGE_HOST = 'www.example.test';
export const SERVER_HOST = 'data.example.test';

/** The widths the admin UI's screenshots are taken at. */
export const VIEWPORTS = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844, isMobile: true, hasTouch: true },
};

/** The admin port, from a server's `admin listening on` log line. */
export async function adminPort(server) {
  for (let i = 0; i < 200; i += 1) {
    const m = /admin listening on 127\.0\.0\.1:(\d+)/.exec(server.log());
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no admin listener in the log:\n${server.log()}`);
}

const STARTUP_TIMEOUT_MS = 15000;

/**
 * Start meteord with the repository's configuration on ephemeral ports
 * (or the given subscriber port, to restart a server in place).
 * Returns { controlPort, subPort, dataDir, publish(), get(), kill(), stop(), log() }.
 */
export async function startMeteord({ args = [], subscriberPort = 0, dataDir = null, tls = false } = {}) {
  const ownDataDir = !dataDir;
  const dir = dataDir || (await mkdtemp(path.join(tmpdir(), 'meteord-browser-data-')));
  const proc = spawn(
    METEORD_BIN,
    [
      '--no-tray',
      '-ConfigFileLocation', path.join(REPO, 'assets/meteord.conf'),
      '-ControllerPort', '0',
      '-SubscriberPort', String(subscriberPort),
      '-SubscriberIP', '127.0.0.1',
      '-DataDirectory', dir,
      '-LogDirectory', 'off', // else root's default is /var/log/meteord
      '-AdminUI', '0', // its fixed port would collide between parallel servers
      ...args,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  let exited = false;
  proc.on('exit', () => { exited = true; });
  const ports = await new Promise((resolve, reject) => {
    let control = null;
    let subscriber = null;
    const timer = setTimeout(
      () => reject(new Error(`meteord did not report its ports within ${STARTUP_TIMEOUT_MS} ms:\n${stderr}`)),
      STARTUP_TIMEOUT_MS,
    );
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${METEORD_BIN}: ${err.message} (build it with cargo build, or set METEORD_BIN)`));
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`meteord exited (${code ?? signal}) before listening:\n${stderr}`));
    });
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
      control ??= /control listening on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
      subscriber ??= /subscriber listening on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
      if (control && subscriber) {
        clearTimeout(timer);
        resolve({ control: Number(control), subscriber: Number(subscriber) });
      }
    });
  });

  const publisher = new Publisher(ports.control);
  await publisher.ready;

  const server = {
    controlPort: ports.control,
    subPort: ports.subscriber,
    dataDir: dir,
    /** Base URL of the subscriber port as the browser sees it. */
    url: `${tls ? 'https' : 'http'}://${SERVER_HOST}:${ports.subscriber}`,
    /** ADDMESSAGE over the control port; resolves with the message id. */
    publish: (channel, text) => publisher.publish(channel, text),
    /** GET a path on the subscriber port from Node; resolves with { status, body }. */
    get: (p) => httpGet(ports.subscriber, p),
    log: () => stderr,
    /** SIGKILL: no goodbye to anyone, as in a crash. */
    async kill() {
      publisher.close();
      if (!exited) {
        proc.kill('SIGKILL');
        await once(proc, 'exit');
      }
    },
    /** Stop the process and remove its data directory (if we made it). */
    async stop() {
      publisher.close();
      if (!exited) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await once(proc, 'exit');
        clearTimeout(timer);
      }
      if (ownDataDir) await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** One control-port connection; replies come back in order. */
class Publisher {
  constructor(port) {
    this.socket = net.createConnection({ host: '127.0.0.1', port });
    this.socket.setEncoding('utf8');
    this.ready = once(this.socket, 'connect');
    this.buffer = '';
    this.waiting = [];
    this.socket.on('data', (data) => {
      this.buffer += data;
      let eol;
      while ((eol = this.buffer.indexOf('\r\n')) >= 0) {
        const line = this.buffer.slice(0, eol);
        this.buffer = this.buffer.slice(eol + 2);
        const next = this.waiting.shift();
        if (next) next.resolve(line);
      }
    });
    const fail = (err) => {
      for (const w of this.waiting.splice(0)) w.reject(err || new Error('control connection closed'));
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail());
  }

  async publish(channel, text) {
    if (/[\r\n]/.test(text)) throw new Error('a control line cannot carry CR or LF');
    const reply = new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.socket.write(`ADDMESSAGE ${channel} ${text}\r\n`);
    const line = await reply;
    const m = /^OK\t(\d+)$/.exec(line);
    if (!m) throw new Error(`ADDMESSAGE ${channel}: unexpected reply ${JSON.stringify(line)}`);
    return Number(m[1]);
  }

  close() {
    this.socket.destroy();
  }
}

function httpGet(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`GET ${p} timed out`)));
  });
}

/**
 * The test pages' own origin: serves a blank page (and any extra routes) with
 * `Origin-Agent-Cluster: ?0`, which legacy pages need for document.domain.
 */
export async function startPageServer(routes = {}, { tls = null } = {}) {
  const pages = {
    '/blank.html': '<!DOCTYPE html><html><head><meta charset="utf-8"><title>test page</title></head><body></body></html>',
    ...routes,
  };
  const handler = (req, res) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    if (pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    // A route is a page's text, or a function of the request that
    // answers { body, type } (a small backend, e.g. one that mints tokens).
    const route = pages[pathname];
    const answer = typeof route === 'function' ? route(req) : { body: route, type: 'text/html; charset=utf-8' };
    res.writeHead(answer.body === undefined ? 404 : 200, {
      'Content-Type': answer.type,
      'Cache-Control': 'no-store',
      'Origin-Agent-Cluster': '?0',
    });
    res.end(answer.body ?? 'not found');
  };
  // With `tls` ({ key, cert } in PEM), the pages are served over https.
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = server.address().port;
  return {
    port,
    url: (p = '/blank.html') => `${tls ? 'https' : 'http'}://${PAGE_HOST}:${port}${p}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Headless system Chromium with a fresh profile; only loopback traffic. */
export async function launchBrowser({ args = [] } = {}) {
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'meteord-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    userDataDir,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-proxy-server',
      `--host-resolver-rules=MAP *.example.test 127.0.0.1`,
      ...args,
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Collect what goes wrong in `page` (script errors, console errors and
 * warnings, failed requests) into `problems`, which is returned.
 */
export function watchProblems(page, problems = []) {
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (/^Failed to load resource/.test(msg.text())) return; // reported with its URL below
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console.${msg.type()}: ${msg.text()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  return problems;
}

/**
 * A fresh browser context and page on the page server, with page errors
 * and console output collected for failure messages.
 */
export async function openPage(browser, pageServer, p = '/blank.html') {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const problems = watchProblems(page);
  await page.goto(pageServer.url(p));
  return {
    page,
    problems,
    close: () => context.close(),
  };
}

/** Wait until `fn(arg)` is truthy in the page; on timeout, say what the page holds. */
export async function waitInPage(page, fn, arg, { timeout = 15000, what = 'condition', dump } = {}) {
  try {
    await page.waitForFunction(fn, { timeout, polling: 50 }, arg);
  } catch (err) {
    let state = '';
    try {
      state = JSON.stringify(await page.evaluate(dump || (() => window.t || null)), null, 1);
    } catch { /* page gone */ }
    throw new Error(`timed out waiting for ${what}; page state: ${state}\n${err.message}`);
  }
}

/**
 * For a describe block: one Chromium and one page server for its tests,
 * started before them and closed after. Returns { chromium, pages }
 * (filled in once `before` has run).
 */
export function browserSuite() {
  const ctx = { chromium: null, pages: null };
  before(async () => {
    ctx.chromium = await launchBrowser();
    ctx.pages = await startPageServer();
  });
  after(async () => {
    await ctx.pages?.close();
    await ctx.chromium?.close();
  });
  return ctx;
}
