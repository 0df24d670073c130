// A web page as the attacker: what a browser can be made to send to
// meteord's ports must not publish, and must not reach the admin UI.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { openPage, startMeteord, browserSuite } from './lib/harness.mjs';

describe('a web page as the attacker', { concurrency: 2 }, () => {
  const ctx = browserSuite();

  test('a page cannot publish by posting to the control port', async () => {
    const server = await startMeteord();
    const { page, close } = await openPage(ctx.chromium.browser, ctx.pages);
    try {
      // A simple cross-origin POST: no preflight, the body is sent as is,
      // with ADDMESSAGE lines after the HTTP head.
      const sent = await page.evaluate(async (port) => {
        const body = 'x\r\nADDMESSAGE demo <script>alert(1)<\/script>\r\nADDMESSAGE demo again\r\n';
        try {
          await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', mode: 'no-cors', body });
          return 'answered';
        } catch (err) {
          return `refused: ${err.message}`;
        }
      }, server.controlPort);
      // The control port closed the connection without an answer.
      assert.match(sent, /^refused/);
      for (let i = 0; i < 100 && !/spoke HTTP/.test(server.log()); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(server.log(), /control connection closed: it spoke HTTP/);
      // Nothing was published: the first message of the channel is ours.
      assert.equal(await server.publish('demo', 'first'), 0);
    } finally {
      await close();
      await server.stop();
    }
  });
});
