// meteor.js's legacy text decoder and template-call parser, without a
// browser: the decoder must agree with the JavaScript engine's own reading
// of a string literal (which is what the original client's eval did).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';

import { REPO } from './lib/harness.mjs';

function loadMeteor() {
  const context = { setTimeout, clearTimeout, console };
  vm.runInNewContext(readFileSync(path.join(REPO, 'assets/meteor.js'), 'utf8'), context);
  return context.Meteor;
}

const Meteor = loadMeteor();
const decode = Meteor.decodeLegacyText;

// What `"<body>"` means to JavaScript (sloppy mode, like the old eval).
function engine(body) {
  return vm.runInNewContext(`"${body}"`);
}

test('each escape decodes as JavaScript reads it', () => {
  const cases = [
    'plain', 'say \\"hi\\"', "it\\'s", 'back\\\\slash', '<\\/script>', '\\n\\r\\t\\b\\f\\v',
    '\\0', '\\0end', '\\08', '\\012', '\\101', '\\377', '\\400', '\\7', '\\77', '\\777', '\\8\\9',
    '\\x41\\x7e\\xff', '\\u0041\\u00e9\\u2028\\u2029', '\\u{1F600}', '\\u{41}', '\\u{0000041}',
    '\\ud83d\\ude00', 'line\\\ncontinued', 'cr\\\r\nlf', 'ls\\\u2028', 'ps\\\u2029',
    '\\a\\c\\d\\e\\g\\q\\z\\ \\%', 'caf\u00e9 \u{1F600} \u2028 raw', '',
  ];
  for (const body of cases) assert.equal(decode(body), engine(body), JSON.stringify(body));
});

test('random mixtures of escapes agree with the engine', () => {
  const pieces = [
    'a', ' ', '\u00e9', '\u{1F600}', '\u2028', '<', '/', '\\\\', '\\"', "\\'", '\\/', '\\n', '\\r',
    '\\t', '\\b', '\\f', '\\v', '\\0', '\\1', '\\12', '\\123', '\\4', '\\45', '\\8', '\\x2F', '\\u002F',
    '\\u{2F}', '\\u{10FFFF}', '\\q', '\\\n', '\\\r\n', '\\\r', '\\\u2028', '0', '7', '8', 'x', 'u', '{', '}',
  ];
  let seed = 12345;
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    let body = '';
    const count = 1 + random(6);
    for (let j = 0; j < count; j++) body += pieces[random(pieces.length)];
    let expected;
    try {
      expected = engine(body);
    } catch {
      continue; // not a valid literal (the original client dropped such a message)
    }
    assert.equal(decode(body), expected, JSON.stringify(body));
  }
});

test('malformed escapes keep the character and never throw', () => {
  assert.equal(decode('\\x4g'), 'x4g');
  assert.equal(decode('\\u12'), 'u12');
  assert.equal(decode('\\u{110000}'), 'u{110000}');
  assert.equal(decode('trailing\\'), 'trailing\\');
});

test('template calls run without eval; malformed ones are dropped', () => {
  const calls = [];
  const evaluated = [];
  const win = {
    p: (...args) => calls.push(['p', ...args]),
    ch: (...args) => calls.push(['ch', ...args]),
    eof: (...args) => calls.push(['eof', ...args]),
    r: (...args) => calls.push(['r', ...args]),
    eval: (code) => evaluated.push(code),
  };
  const run = (code) => Meteor.runLegacyScript(code, win);
  run('p(5,"demo","say \\"hi\\" <\\/script> \\u2028");');
  run('p(-1,"");');
  run('ch("demo", 12);');
  run(' eof(); ');
  run('p(7,"demo","text",1700000000)');
  run("p(8, 'single', 'it\\'s')");
  run('p(9,"demo","unescaped " quote");alert(1);//")');
  run('custom(1, "x"); other()');
  assert.deepEqual(calls, [
    ['p', 5, 'demo', 'say "hi" </script> \u2028'],
    ['p', -1, ''],
    ['ch', 'demo', 12],
    ['eof'],
    ['p', 7, 'demo', 'text', 1700000000],
    ['p', 8, 'single', "it's"],
  ]);
  assert.deepEqual(evaluated, ['custom(1, "x"); other()']);
});

test('the legacy object keeps the original API', () => {
  for (const name of ['joinChannel', 'leaveChannel', 'connect', 'disconnect', 'registerEventCallback', 'register',
    'process', 'reset', 'eof', 'channelInfo', 'getSubsUrl', 'pollmode', 'setstatus']) {
    assert.equal(typeof Meteor[name], 'function', name);
  }
  assert.equal(Meteor.mode, 'stream');
  assert.equal(Meteor.status, 0);
  assert.equal(Meteor.port, 80);
  assert.equal(Meteor.pingtimeout, 20000);
  assert.deepEqual(Object.keys(Meteor.callbacks).sort(), ['changemode', 'eof', 'process', 'reset', 'statuschanged']);
  assert.equal(Meteor.extract_xss_domain('www.example.com'), 'example.com');
  assert.equal(Meteor.extract_xss_domain('10.1.2.3'), '10.1.2.3');
});

test('legacy URLs ask for backlog, then resume after the last id (id 0 included)', () => {
  const M = loadMeteor();
  M.host = 'data.example.com';
  M.port = 4670;
  M.hostid = 'h1';
  M.mode = 'longpoll';
  M.channels = {};
  M.channelcount = 0;
  M.joinChannel('a', 5);
  M.joinChannel('b', 0);
  M.joinChannel('c');
  M.joinChannel('d', -1);
  const url = () => M.getSubsUrl().replace(/\?nc=\d+$/, '');
  assert.equal(url(), 'http://data.example.com:4670/push/h1/longpoll/a.b5/b/c.h/d.h');
  const seen = [];
  M.registerEventCallback('process', (x) => seen.push(x));
  M.registerEventCallback('process', (x) => seen.push(`second:${x}`));
  M.channelInfo('a', 0);
  M.process(0, 'a', 'zero');
  M.channelInfo('b', 0);
  M.channelInfo('c', 7);
  assert.equal(url(), 'http://data.example.com:4670/push/h1/longpoll/a.r1/b.r0/c.r8/d.h');
  M.process(0, 'a', 'zero again'); // a repeat is not delivered twice
  assert.deepEqual(seen, ['zero', 'second:zero']);
  M.port = 80;
  assert.match(M.getSubsUrl(), /^http:\/\/data\.example\.com\/push\//);
});
