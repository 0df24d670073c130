// A first run, in headless Chromium: the subscriber port's home page shows
// messages of `demo` live (published from the control port and from the
// dashboard's "first steps" card), the card goes once a message is out, and
// the server settings page filters by topic, text and "only changed". Full-
// page screenshots of each, at desktop and phone width, go to
// target/screenshots/.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { REPO, VIEWPORTS, adminPort, launchBrowser, startMeteord, waitInPage, watchProblems } from './lib/harness.mjs';

const SHOTS = path.join(REPO, 'target/screenshots');

/** Nothing on the page is wider than `width` (no sideways scrolling). */
const fitsWidth = (width) => document.documentElement.scrollWidth <= width;

const texts = () => Array.from(document.querySelectorAll('#messages .text')).map((el) => el.textContent);

/** What the home page shows, for a timeout's message: its connection state and texts. */
const homeState = () => ({
  status: document.getElementById('status').dataset.state,
  texts: Array.from(document.querySelectorAll('#messages .text')).map((el) => el.textContent),
});

/** Wait (10 s at most) until the home page lists `n` messages. */
const showsMessages = (page, n, what) =>
  waitInPage(page, (want) => document.querySelectorAll('#messages .text').length === want, n, { timeout: 10000, what, dump: homeState });

describe('first run', () => {
  let chromium;
  let server;
  let admin;
  before(async () => {
    server = await startMeteord({ args: ['-AdminUI', '1', '-AdminPort', '0'] });
    admin = `http://127.0.0.1:${await adminPort(server)}`;
    chromium = await launchBrowser();
    await mkdir(SHOTS, { recursive: true });
  });
  after(async () => {
    await chromium?.close();
    await server?.stop();
  });

  test('the home page demo, the first-steps card, and the settings filter', async () => {
    const context = await chromium.browser.createBrowserContext();
    const home = await context.newPage();
    const dash = await context.newPage();
    const problems = [];
    watchProblems(home, problems);
    watchProblems(dash, problems);
    try {
      // The home page: live, with this server's commands.
      await home.setViewport(VIEWPORTS.desktop);
      await home.goto(`http://127.0.0.1:${server.subPort}/`);
      assert.equal(await home.$eval('h1', (el) => el.textContent.trim()), 'meteord is running');
      await home.waitForFunction(() => document.getElementById('status').dataset.state === 'open', { timeout: 10000 });
      assert.match(await home.$eval('#publish-shell', (el) => el.textContent), new RegExp(`nc 127\\.0\\.0\\.1 ${server.controlPort}$`));
      assert.match(await home.$eval('#html-snippet', (el) => el.textContent), new RegExp(`<script src="http://127\\.0\\.0\\.1:${server.subPort}/meteor\\.js"></script>`));
      await home.screenshot({ path: path.join(SHOTS, 'home-empty-desktop.png'), fullPage: true });

      // First run of the admin UI: the dashboard teaches.
      await dash.setViewport(VIEWPORTS.desktop);
      await dash.goto(`${admin}/setup`);
      await dash.type('#password', 'correct horse battery');
      await dash.type('#password2', 'correct horse battery');
      await Promise.all([dash.waitForNavigation(), dash.click('button[type=submit]')]);
      assert.ok(await dash.$('#first-steps'), 'the first-steps card is on a fresh dashboard');
      assert.match(await dash.$eval('#first-publish-shell', (el) => el.textContent), new RegExp(`nc 127\\.0\\.0\\.1 ${server.controlPort}`));
      for (const [size, viewport] of Object.entries(VIEWPORTS)) {
        await dash.setViewport(viewport);
        await dash.goto(`${admin}/`);
        assert.ok(await dash.evaluate(fitsWidth, viewport.width), `the dashboard fits the ${size} width`);
        await dash.screenshot({ path: path.join(SHOTS, `dashboard-first-steps-${size}.png`), fullPage: true });
      }

      // Publish from the card: the message travels to the open home page.
      await dash.setViewport(VIEWPORTS.desktop);
      await dash.goto(`${admin}/`);
      const input = await dash.$('#first-text');
      await input.click({ clickCount: 3 });
      await input.type('Hello from the dashboard');
      await Promise.all([dash.waitForNavigation(), dash.click('#first-publish-form button[type=submit]')]);
      await home.waitForFunction((want) => Array.from(document.querySelectorAll('#messages .text')).some((el) => el.textContent === want), { timeout: 10000 }, 'Hello from the dashboard');
      // And from the control port.
      await server.publish('demo', 'Hello from the shell');
      await showsMessages(home, 2, 'the message from the control port');
      assert.deepEqual(await home.evaluate(texts), ['Hello from the shell', 'Hello from the dashboard']);
      assert.equal(await home.$eval('#empty', (el) => el.hidden), true);
      for (const [size, viewport] of Object.entries(VIEWPORTS)) {
        // Loaded afresh at each size (a phone viewport needs a load of its
        // own anyway): the page shows the channel's last messages again.
        await home.setViewport(viewport);
        await home.goto(`http://127.0.0.1:${server.subPort}/`);
        await showsMessages(home, 2, `both messages at ${size} width`);
        assert.deepEqual(await home.evaluate(texts), ['Hello from the shell', 'Hello from the dashboard']);
        assert.ok(await home.evaluate(fitsWidth, viewport.width), `the home page fits the ${size} width`);
        await home.screenshot({ path: path.join(SHOTS, `home-live-${size}.png`), fullPage: true });
      }
      await dash.goto(`${admin}/`);
      assert.equal(await dash.$('#first-steps'), null, 'the card is gone after the first message');

      // Server settings: topics, a live filter and "only changed".
      await dash.goto(`${admin}/settings`);
      const visibleGroups = () => Array.from(document.querySelectorAll('section[data-topic]')).filter((s) => !s.hidden).map((s) => s.dataset.topic);
      const all = await dash.evaluate(visibleGroups);
      for (const topic of ['network', 'security', 'persistence', 'tls', 'cluster', 'logs', 'updates', 'legacy', 'private', 'presence', 'webhooks', 'browser-publishing']) {
        assert.ok(all.includes(topic), `the ${topic} topic is listed`);
      }
      await dash.type('#settings-filter', 'webhook');
      assert.deepEqual(await dash.evaluate(visibleGroups), ['webhooks']);
      assert.match(await dash.$eval('#settings-count', (el) => el.textContent), /^\d+ of \d+ settings shown\.$/);
      assert.match(dash.url(), /\?q=webhook$/);
      await dash.$eval('#settings-filter', (el) => { el.value = ''; el.dispatchEvent(new Event('input')); });
      await dash.click('#changed-only');
      const changed = await dash.evaluate(() => Array.from(document.querySelectorAll('tr[data-search]')).filter((r) => !r.hidden).map((r) => r.dataset.changed));
      assert.ok(changed.length > 0 && changed.every((c) => c === '1'), 'only changed settings are left');
      assert.ok(!(await dash.evaluate(visibleGroups)).includes('webhooks'), 'no webhook setting was changed');
      // The same at each width: the topics, the filter and "only changed"
      // work, and nothing is wider than the screen.
      for (const [size, viewport] of Object.entries(VIEWPORTS)) {
        await dash.setViewport(viewport);
        await dash.goto(`${admin}/settings`);
        assert.ok(await dash.evaluate(fitsWidth, viewport.width), `the settings page fits the ${size} width`);
        assert.ok(await dash.$eval('.topic-nav', (el) => el.getBoundingClientRect().height > 0), `the topic links show at ${size} width`);
        await dash.screenshot({ path: path.join(SHOTS, `server-settings-topics-${size}.png`), fullPage: true });
        await dash.goto(`${admin}/settings?changed=1`);
        assert.equal(await dash.$eval('#changed-only', (el) => el.checked), true);
        assert.ok(!(await dash.evaluate(visibleGroups)).includes('webhooks'), `"only changed" at ${size} width`);
        await dash.screenshot({ path: path.join(SHOTS, `server-settings-changed-${size}.png`), fullPage: true });
        await dash.goto(`${admin}/settings`);
        await dash.type('#settings-filter', 'tls');
        const rows = await dash.evaluate(() => Array.from(document.querySelectorAll('tr[data-search]')).map((r) => ({ shown: !r.hidden, text: r.dataset.search })));
        const shown = rows.filter((r) => r.shown);
        assert.ok(shown.length > 0 && shown.length < rows.length && shown.every((r) => r.text.includes('tls')), `the filter at ${size} width`);
        assert.ok((await dash.evaluate(visibleGroups)).includes('tls'), `the TLS topic is left at ${size} width`);
        assert.ok(await dash.evaluate(fitsWidth, viewport.width), `the filtered settings fit the ${size} width`);
        await dash.screenshot({ path: path.join(SHOTS, `server-settings-filter-${size}.png`), fullPage: true });
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
