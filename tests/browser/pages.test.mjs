// The files meteord serves to browsers beside meteor.js: the ES module
// meteor.mjs, and the example page.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { RAW_TEXTS } from './lib/client.mjs';
import { SERVER_HOST, openPage, startMeteord, waitInPage, browserSuite } from './lib/harness.mjs';

describe('served pages and module', { concurrency: 2 }, () => {
  const ctx = browserSuite();

  test('meteor.mjs imports as an ES module from another origin and exports the client', async () => {
    const server = await startMeteord();
    const { page, problems, close } = await openPage(ctx.chromium.browser, ctx.pages);
    try {
      await server.publish('demo', 'via the module \\"raw\\"');
      // A cross-origin module needs a JavaScript MIME type and CORS headers
      // on meteor.mjs and on the meteor.js it imports.
      const result = await page.evaluate(async (url) => {
        const mod = await import(url);
        const c = mod.client({ channels: { demo: { last: 1 } } });
        const first = await new Promise((resolve) => c.on('message', resolve));
        const out = {
          same: mod.default === window.Meteor && mod.Meteor === window.Meteor,
          types: [typeof mod.client, typeof mod.Client, typeof mod.decodeLegacyText],
          url: c.url,
          text: first.text,
          decoded: mod.decodeLegacyText(first.text),
        };
        c.close();
        return out;
      }, `${server.url}/meteor.mjs`).catch((err) => {
        throw new Error(`${err.message}\n${problems.join('\n')}`);
      });
      assert.deepEqual(result, {
        same: true,
        types: ['function', 'function', 'function'],
        url: server.url, // a client without url talks to the module's server
        text: 'via the module \\"raw\\"',
        decoded: 'via the module "raw"',
      });
    } finally {
      await close();
      await server.stop();
    }
  });

  test('examples/index.html shows the backlog and live messages as text', async () => {
    const server = await startMeteord();
    const context = await ctx.chromium.browser.createBrowserContext();
    const page = await context.newPage();
    try {
      await server.publish('news', 'earlier <b>not bold</b>');
      await page.goto(`http://${SERVER_HOST}:${server.subPort}/examples/index.html#news`);
      await waitInPage(page, () => document.getElementById('status').textContent === 'open', null, {
        what: 'the example to connect',
        dump: () => document.body.innerText,
      });
      for (const text of RAW_TEXTS) await server.publish('news', text);
      await waitInPage(page, (n) => document.querySelectorAll('#messages li').length === n, RAW_TEXTS.length + 1, {
        what: 'the messages',
        dump: () => document.getElementById('messages').innerText,
      });
      const shown = await page.evaluate(() =>
        [...document.querySelectorAll('#messages li')].map((li) => li.lastChild.textContent));
      assert.deepEqual(shown, [...RAW_TEXTS].reverse().concat('earlier <b>not bold</b>'));
      assert.equal(await page.evaluate(() => document.querySelector('#messages b')), null);
      assert.equal(await page.evaluate(() => document.getElementById('transport').textContent), 'ws');
      assert.match(await page.evaluate(() => document.querySelector('pre').textContent), /ADDMESSAGE news hello world/);
    } finally {
      await context.close();
      await server.stop();
    }
  });
});
