// The admin web UI in headless Chromium: first run, then every page at
// desktop and phone width — headings, labelled form fields, no console
// errors — with a full-page screenshot of each in target/screenshots/.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { REPO, VIEWPORTS, adminPort, launchBrowser, startMeteord, watchProblems } from './lib/harness.mjs';

const SHOTS = path.join(REPO, 'target/screenshots');

/** A streaming legacy subscriber held open from Node. */
function subscribe(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      res.on('data', () => {});
      resolve(req);
    });
    req.on('error', reject);
  });
}

/** Form controls that no label names. */
const unlabelled = () => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter((el) => el.type !== 'hidden' && !el.hidden && !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map((el) => el.name || el.id || el.outerHTML);

describe('admin UI screens', () => {
  let chromium;
  let server;
  let subscriber;
  let base;
  before(async () => {
    server = await startMeteord({ args: ['-AdminUI', '1', '-AdminPort', '0'] });
    base = `http://127.0.0.1:${await adminPort(server)}`;
    await server.publish('demo', 'hello from the control port');
    await server.publish('demo', 'second <b>message</b> \\"escaped\\"');
    await server.publish('chat.room1', 'hi there');
    await server.publish('news', 'extra');
    subscriber = await subscribe(server.subPort, '/push/browser1/xhrinteractive/demo');
    chromium = await launchBrowser();
    await mkdir(SHOTS, { recursive: true });
  });
  after(async () => {
    subscriber?.destroy();
    await chromium?.close();
    await server?.stop();
  });

  test('first run, every page at desktop and phone width, sign out', async () => {
    const context = await chromium.browser.createBrowserContext();
    const page = await context.newPage();
    const problems = watchProblems(page);
    page.on('dialog', (dialog) => dialog.accept());
    try {
      // First run: any page leads to setting the password.
      await page.setViewport(VIEWPORTS.desktop);
      await page.goto(`${base}/channels`);
      assert.equal(new URL(page.url()).pathname, '/setup');
      assert.deepEqual(await page.evaluate(unlabelled), []);
      await page.screenshot({ path: path.join(SHOTS, 'setup-desktop.png'), fullPage: true });
      await page.type('#password', 'correct horse battery');
      await page.type('#password2', 'correct horse battery');
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      assert.equal(new URL(page.url()).pathname, '/');
      assert.match(await page.$eval('.notice-ok', (el) => el.textContent), /signed in/);

      // A channel rule and a global setting, made through their forms.
      await page.goto(`${base}/channel-settings`);
      await page.type('#pattern', 'chat.*');
      await page.type('#max_messages', '50');
      await page.click('#transport-poll');
      await Promise.all([page.waitForNavigation(), page.click('#rule-form button[type=submit]')]);
      assert.match(await page.$eval('.notice-ok', (el) => el.textContent), /chat\.\* is saved/);
      await page.goto(`${base}/settings?edit=MaxMessagesPerChannel`);
      const input = await page.$('#value-MaxMessagesPerChannel');
      await input.click({ clickCount: 3 });
      await input.type('100');
      await Promise.all([page.waitForNavigation(), input.press('Enter')]);
      assert.match(await page.$eval('.notice-ok', (el) => el.textContent), /MaxMessagesPerChannel is set/);

      const screens = [
        ['dashboard', '/', 'Dashboard'],
        ['channels', '/channels', 'Channels'],
        ['channel', '/channels/demo', 'demo'],
        ['channel-settings', '/channel-settings?edit=chat.*', 'Channel settings'],
        ['server-settings', '/settings', 'Server settings'],
        ['tokens', '/tokens', 'API tokens and password'],
      ];
      // All desktop screens, then all phone ones: a switch to a mobile
      // viewport reloads the page.
      for (const [size, viewport] of Object.entries(VIEWPORTS)) {
        await page.setViewport(viewport);
        for (const [name, route, heading] of screens) {
          await page.goto(`${base}${route}`);
          assert.equal(await page.$eval('h1', (el) => el.textContent.trim()), heading, `${name} heading`);
          assert.deepEqual(await page.evaluate(unlabelled), [], `${name}: every form field has a label`);
          if (name === 'dashboard') {
            // Live: a sample arrives over /live and the status says so.
            await page.waitForFunction(() => document.getElementById('live-status').dataset.state === 'live', { timeout: 5000 });
            assert.equal(await page.$eval('[data-stat="subscribers"]', (el) => el.textContent), '1');
          }
          if (name === 'channel' && size === 'desktop') {
            assert.equal(await page.$$eval('button.button-danger', (b) => b.filter((x) => x.textContent.startsWith('Kick')).length), 1);
            // The legacy warning follows the text and the escape toggle.
            assert.equal(await page.$eval('#escape', (el) => el.checked), true);
            await page.type('#text', 'say "hi"');
            assert.equal(await page.$eval('#legacy-warning', (el) => el.hidden), false);
            assert.match(await page.$eval('#legacy-warning', (el) => el.textContent), /will be escaped/);
            await page.click('#escape');
            assert.match(await page.$eval('#legacy-warning', (el) => el.className), /notice-warn/);
            assert.match(await page.$eval('#legacy-warning', (el) => el.textContent), /breaks legacy/);
            await page.click('#escape');
          }
          await page.screenshot({ path: path.join(SHOTS, `${name}-${size}.png`), fullPage: true });
        }
      }

      // Publish from the form; the page reports it and lists the message.
      await page.setViewport(VIEWPORTS.desktop);
      await page.goto(`${base}/channels/demo`);
      await page.type('#text', 'from the <admin> "UI"');
      await Promise.all([page.waitForNavigation(), page.click('#publish-form button[type=submit]')]);
      assert.match(await page.$eval('.notice', (el) => el.textContent), /published to demo.*escaped/);
      assert.equal(await page.$eval('.message-text', (el) => el.textContent), 'from the <admin> \\"UI\\"');

      // A token is shown once, with a copy button.
      await page.goto(`${base}/tokens`);
      await page.type('#token-name', 'screenshot token');
      await Promise.all([page.waitForNavigation(), page.click('#token-form button[type=submit]')]);
      assert.match(await page.$eval('#new-token', (el) => el.value), /^mtd_/);
      await page.screenshot({ path: path.join(SHOTS, 'token-created-desktop.png'), fullPage: true });

      // Sign out, then the sign-in page.
      await Promise.all([page.waitForNavigation(), page.click('.signout button')]);
      assert.equal(new URL(page.url()).pathname, '/login');
      for (const [size, viewport] of Object.entries(VIEWPORTS)) {
        await page.setViewport(viewport);
        await page.goto(`${base}/login`);
        assert.equal(await page.$eval('h1', (el) => el.textContent.trim()), 'Sign in');
        assert.deepEqual(await page.evaluate(unlabelled), []);
        await page.screenshot({ path: path.join(SHOTS, `login-${size}.png`), fullPage: true });
      }
      // Signed out for real: pages lead back to the sign-in page.
      await page.goto(`${base}/settings`);
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
