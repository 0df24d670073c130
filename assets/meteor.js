/*
 * meteor.js - the browser client of meteord (a Rust rewrite of the Meteor
 * comet server, meteord 1.06). Served by meteord at /meteor.js; the same code
 * as an ES module at /meteor.mjs.
 *
 * Two APIs share this file:
 *
 * 1. The legacy global `Meteor` object, unchanged for existing pages:
 *      Meteor.host = "data.example.com"; Meteor.port = 4670;
 *      Meteor.registerEventCallback("process", function (text) { ... });
 *      Meteor.joinChannel("demo", 5);      // 5 = the last five messages first
 *      Meteor.connect();
 *    Properties host, port, hostid, mode, scheme (default: the scheme this
 *    file was loaded with), pingtimeout, pollfreq,
 *    minpollfreq, maxpollfreq, polltimeout, status; methods joinChannel,
 *    leaveChannel, connect, disconnect, registerEventCallback (process, reset,
 *    eof, statuschanged, changemode). Status codes: 0 not connected,
 *    1 connecting, 2 (unused, as in the original), 3 connection failed and
 *    retrying, 4 connected, 5 receiving data, 6 end of stream (no reconnect).
 *    New: Meteor.transport (below), Meteor.currentTransport() and, while a
 *    modern transport carries the legacy API, Meteor.connection (its Client).
 *    Private channels: Meteor.token = "<signed token>" (sent with every
 *    subscription) and Meteor.tokenProvider = function (channels) { return
 *    fetch("/my-token").then(r => r.text()); } to renew it when it expires.
 *
 *    Transport: Meteor.transport = "auto" (the default) uses the best modern
 *    transport the browser has - WebSocket, then Server-Sent Events, then
 *    long-poll over fetch - whenever Meteor.mode is "stream" (the default).
 *    It resumes after every drop without losing or repeating a message, and
 *    falls back to polling when pings stop (changemode "poll").
 *    Meteor.transport = "ws" | "sse" | "poll" forces one of them.
 *    A page that sets Meteor.mode to "longpoll", "smartpoll", "simplepoll",
 *    "xhrinteractive" or "iframe", or sets Meteor.transport = "legacy", talks
 *    to /push/<hostid>/<mode>/<channels> exactly like the original client.
 *
 *    WHAT A LEGACY PAGE MUST DO. The /push modes read the server through
 *    frames that meteord serves (stream.html, poll.html, or the iframe-mode
 *    response itself). A page on another host name than the server reaches
 *    those frames only if:
 *      1. page and server use two host names that share their last two
 *         labels, e.g. www.example.com and data.example.com - not an IP
 *         address, not localhost - and the same scheme;
 *      2. both documents set document.domain to those two labels (this
 *         file and meteord's frames do that; nothing to write);
 *      3. the page's own HTTP response carries the header
 *         `Origin-Agent-Cluster: ?0`. Chromium ignores the document.domain
 *         setter in an origin-keyed agent cluster: in every secure context
 *         (https, localhost) today, and wherever origin-keying becomes the
 *         default. meteord sends the header on stream.html, poll.html and
 *         iframe-mode responses; the page's server must send it too.
 *    A page served by meteord itself (same origin) needs none of this, and
 *    neither does the default transport ("auto": WebSocket, SSE, long-poll),
 *    which reads the server with CORS.
 *
 *    Text: legacy publishers escape a message as the body of a JavaScript
 *    string ("say \"hi\"", "<\/script>") because the /push modes run it as
 *    p(id,"channel","text"). The "process" callback therefore always gets
 *    the decoded string, in every mode and over every transport.
 *
 * 2. A promise/event API for new pages (texts arrive exactly as published):
 *      var c = Meteor.client({ url: "http://data.example.com:4670",
 *                              channels: { demo: { last: 10 } } });
 *      c.on("message", function (m) { m.id, m.channel, m.text, m.ts });
 *      c.on("status", function (status) { ... });  // connecting/open/reconnecting/closed
 *      c.subscribe("other", { after: 41 }).then(...); c.close();
 *      c.subscribe("room", { presence: true }); c.on("join", ...); c.members("room");
 *      c.publish("room", "hi").then(function (id) { ... });  // token's publish claim
 *    See examples/README.md for the whole API.
 *
 * No build step: this file is plain ES5 and also valid module code;
 * meteor.mjs imports it and re-exports what it defines.
 */
(function (global) {
  'use strict';

  if (global.Meteor && global.Meteor._meteord) return; // loaded twice: keep the first

  var VERSION = '2.0.0';
  var doc = global.document;
  var loc = global.location;

  // ---------------------------------------------------------------- helpers

  function noop() {}

  function has(obj, key) {
    return Object.prototype.hasOwnProperty.call(obj, key);
  }

  function keys(obj) {
    var out = [];
    for (var k in obj) if (has(obj, k)) out.push(k);
    return out;
  }

  function now() {
    return new Date().getTime();
  }

  // An exception thrown by page code must not stop the client: rethrow it
  // on its own so that it still reaches the console and window.onerror.
  function report(err) {
    setTimeout(function () { throw err; }, 0);
  }

  function callSafely(fn, self, args) {
    try {
      return fn.apply(self, args);
    } catch (e) {
      report(e);
    }
  }

  function defer() {
    var d = { promise: null, resolve: noop, reject: noop };
    if (typeof Promise === 'function') {
      d.promise = new Promise(function (resolve, reject) {
        d.resolve = resolve;
        d.reject = reject;
      });
      d.promise.catch(noop); // a rejection nobody awaits is not an error
    }
    return d;
  }

  function makeHostId() {
    return now() + '' + Math.floor(Math.random() * 1000000);
  }

  // Where this script came from: the default server for both APIs.
  var scriptUrl = '';
  try {
    if (doc && doc.currentScript && doc.currentScript.src) scriptUrl = doc.currentScript.src;
  } catch (e) { /* no DOM */ }

  // The legacy API's default scheme: the one this script was loaded with
  // (a server that served it over https speaks https), else the page's when
  // that is https - plain http from an https page is blocked as mixed content.
  function defaultScheme() {
    var m = /^(https?):/i.exec(scriptUrl);
    if (m) return m[1].toLowerCase();
    return loc && loc.protocol === 'https:' ? 'https' : 'http';
  }

  // "http://host:port/some/path/" -> "http://host:port/some/path"
  function normalizeBase(url) {
    var base = url;
    if (!base) {
      base = scriptUrl ? scriptUrl.replace(/[^\/]*([?#].*)?$/, '') : (loc ? loc.protocol + '//' + loc.host : '');
    }
    base = String(base);
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(base)) {
      base = (base.slice(0, 2) === '//' ? (loc ? loc.protocol : 'http:') : (loc ? loc.protocol + '//' : 'http://')) + base;
    }
    return base.replace(/[?#].*$/, '').replace(/\/+$/, '');
  }

  // --------------------------------------------------- legacy text decoding

  var SIMPLE_ESCAPES = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', v: '\u000b' };

  function fromCodePoint(cp) {
    if (cp <= 0xffff) return String.fromCharCode(cp);
    cp -= 0x10000;
    return String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
  }

  function isHex(s) {
    return /^[0-9a-fA-F]+$/.test(s);
  }

  /**
   * Decode `s` as the body of a JavaScript string literal, as the original
   * client's eval of p(id,"channel","text") did: \n \r \t \b \f \v \0,
   * legacy octal, \xHH, \uHHHH, \u{H...}, line continuations, and any other
   * escaped character stands for itself (\" \' \\ \/). Nothing is evaluated.
   * Malformed escapes, which made the original drop the message, are kept
   * as the character after the backslash.
   */
  function decodeLegacyText(s) {
    s = String(s);
    if (s.indexOf('\\') < 0) return s;
    var out = '';
    var i = 0;
    var n = s.length;
    while (i < n) {
      var slash = s.indexOf('\\', i);
      if (slash < 0) {
        out += s.slice(i);
        break;
      }
      out += s.slice(i, slash);
      i = slash + 1;
      if (i >= n) {
        out += '\\';
        break;
      }
      var c = s.charAt(i++);
      if (has(SIMPLE_ESCAPES, c)) {
        out += SIMPLE_ESCAPES[c];
      } else if (c === '\r') {
        if (s.charAt(i) === '\n') i++; // line continuation
      } else if (c === '\n' || c === '\u2028' || c === '\u2029') {
        // line continuation: nothing
      } else if (c === 'x') {
        var hh = s.substr(i, 2);
        if (hh.length === 2 && isHex(hh)) {
          out += String.fromCharCode(parseInt(hh, 16));
          i += 2;
        } else {
          out += c;
        }
      } else if (c === 'u') {
        var close = s.charAt(i) === '{' ? s.indexOf('}', i) : -1;
        var braced = close > i + 1 ? s.slice(i + 1, close) : '';
        var hhhh = s.substr(i, 4);
        if (braced && isHex(braced) && parseInt(braced, 16) <= 0x10ffff) {
          out += fromCodePoint(parseInt(braced, 16));
          i = close + 1;
        } else if (hhhh.length === 4 && isHex(hhhh)) {
          out += String.fromCharCode(parseInt(hhhh, 16));
          i += 4;
        } else {
          out += c;
        }
      } else if (c >= '0' && c <= '7') {
        // \0 and the legacy octal escapes of sloppy-mode JavaScript
        var digits = c;
        var max = c <= '3' ? 3 : 2;
        while (digits.length < max && s.charAt(i) >= '0' && s.charAt(i) <= '7') digits += s.charAt(i++);
        out += String.fromCharCode(parseInt(digits, 8));
      } else {
        out += c;
      }
    }
    return out;
  }

  // The calls meteord's default templates produce. A frame hands every
  // <script> body of a /push response to runLegacyScript, which runs these
  // without eval.
  var LEGACY_CALLS = { p: true, ch: true, eof: true, r: true };

  /**
   * Parse `name(arg, ...);` where each argument is a number or a quoted
   * string. Returns { fn, args } or null.
   */
  function parseLegacyCall(code) {
    var head = /^\s*([A-Za-z_$][\w$]*)\s*\(/.exec(code);
    if (!head) return null;
    var i = head[0].length;
    var n = code.length;
    var args = [];
    var ws = /\s/;
    function skip() {
      while (i < n && ws.test(code.charAt(i))) i++;
    }
    skip();
    if (code.charAt(i) === ')') {
      i++;
    } else {
      for (;;) {
        skip();
        var q = code.charAt(i);
        if (q === '"' || q === "'") {
          var j = i + 1;
          for (; j < n; j++) {
            var cj = code.charAt(j);
            if (cj === q) break;
            if (cj === '\n' || cj === '\r') return null;
            if (cj === '\\') j++;
          }
          if (j >= n) return null;
          args.push(decodeLegacyText(code.slice(i + 1, j)));
          i = j + 1;
        } else {
          var num = /^-?\d+(\.\d+)?/.exec(code.slice(i));
          if (!num) return null;
          args.push(Number(num[0]));
          i += num[0].length;
        }
        skip();
        var sep = code.charAt(i++);
        if (sep === ')') break;
        if (sep !== ',') return null;
      }
    }
    skip();
    if (code.charAt(i) === ';') i++;
    skip();
    return i === n ? { fn: head[1], args: args } : null;
  }

  /**
   * Run one <script> body of a legacy /push response inside frame `win`
   * (whose p, ch, eof and r Meteor.register set). A custom template may put
   * any code there - templates were always code - so what is not one of the
   * standard calls is evaluated in the frame, as the original client did. A
   * standard call that does not parse (a message whose text was not escaped)
   * is dropped rather than run.
   */
  function runLegacyScript(code, win) {
    var call = parseLegacyCall(code);
    if (call && has(LEGACY_CALLS, call.fn)) {
      if (typeof win[call.fn] === 'function') win[call.fn].apply(win, call.args);
      return;
    }
    var name = /^\s*([A-Za-z_$][\w$]*)\s*\(/.exec(code);
    if (name && has(LEGACY_CALLS, name[1])) {
      Meteor.log('Dropped a malformed message: ' + code);
      return;
    }
    win.eval(code);
  }

  // ----------------------------------------------------------------- events

  function Emitter() {
    this._handlers = {};
  }

  /** Call fn(args...) for every `evt`. Returns this. */
  Emitter.prototype.on = function (evt, fn) {
    (this._handlers[evt] = this._handlers[evt] || []).push(fn);
    return this;
  };

  Emitter.prototype.off = function (evt, fn) {
    var list = this._handlers[evt];
    if (!list) return this;
    for (var i = list.length - 1; i >= 0; i--) {
      if (!fn || list[i] === fn || list[i]._original === fn) list.splice(i, 1);
    }
    return this;
  };

  /** once(evt, fn) calls fn once; once(evt) returns a promise of the first argument. */
  Emitter.prototype.once = function (evt, fn) {
    var self = this;
    var d = fn ? null : defer();
    var wrapper = function () {
      self.off(evt, wrapper);
      if (fn) return fn.apply(this, arguments);
      d.resolve(arguments[0]);
    };
    wrapper._original = fn;
    this.on(evt, wrapper);
    return fn ? this : d.promise;
  };

  Emitter.prototype.emit = function (evt) {
    var list = this._handlers[evt];
    if (!list || !list.length) return;
    var args = Array.prototype.slice.call(arguments, 1);
    list = list.slice();
    for (var i = 0; i < list.length; i++) callSafely(list[i], this, args);
  };

  // ------------------------------------------------------- modern transports

  var TRANSPORT_ALIASES = {
    ws: 'ws', websocket: 'ws',
    sse: 'sse', eventsource: 'sse',
    poll: 'poll', longpoll: 'poll', fetch: 'poll'
  };

  function transportAvailable(name) {
    if (name === 'ws') return typeof global.WebSocket === 'function';
    if (name === 'sse') return typeof global.EventSource === 'function';
    if (name === 'poll') return typeof global.fetch === 'function' && typeof global.AbortController === 'function';
    return false;
  }

  // 'auto' | 'ws' | ['sse', 'poll'] | 'ws,poll' -> the names to try, in order
  function transportChain(spec) {
    var wanted = spec;
    if (!wanted || wanted === 'auto') wanted = ['ws', 'sse', 'poll'];
    if (typeof wanted === 'string') wanted = wanted.split(/[\s,]+/);
    var chain = [];
    for (var i = 0; i < wanted.length; i++) {
      var name = TRANSPORT_ALIASES[String(wanted[i]).toLowerCase()];
      if (name && chain.indexOf(name) < 0 && transportAvailable(name)) chain.push(name);
    }
    return chain;
  }

  function Subscription(name, start, token, presence) {
    this.name = name;
    this.start = start; // { kind: 'live' | 'last' | 'after', n }
    this.token = token || null; // this channel's own token, if it has one
    this.presence = !!presence; // also receive its members, joins and leaves
    // Highest id this subscription has covered: messages up to it were
    // delivered or are not wanted. null: not known yet; -1: everything the
    // server holds is new to us.
    this.cursor = start.kind === 'after' ? start.n : null;
    this.active = false;
    this.lastId = null;
    this.connMax = null; // highest id delivered on the current connection
    this.waiters = [];
  }

  function parseStart(opts) {
    opts = opts || {};
    if (opts.after != null && !isNaN(opts.after)) return { kind: 'after', n: Math.max(-1, Math.floor(opts.after)) };
    if (opts.history) return { kind: 'after', n: -1 };
    if (opts.last != null && opts.last > 0) return { kind: 'last', n: Math.floor(opts.last) };
    return { kind: 'live', n: 0 };
  }

  // The channel spec of /sse and /poll URLs: name, name.b<n>, name.r<id>.
  function urlSpec(sub) {
    if (sub.cursor !== null) return sub.name + '.r' + (sub.cursor + 1);
    if (sub.start.kind === 'last') return sub.name + '.b' + sub.start.n;
    return sub.name;
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      return null;
    }
  }

  function parseNdjson(text) {
    var out = [];
    var lines = String(text).split('\n');
    for (var i = 0; i < lines.length; i++) {
      if (!/\S/.test(lines[i])) continue;
      var m = parseJson(lines[i]);
      if (m) out.push(m);
    }
    return out;
  }

  // WebSocket: GET /ws, JSON frames both ways; subscriptions change in place.
  function WsConnection(client) {
    this.client = client;
    this.name = 'ws';
    this.pings = true; // the server sends {"type":"ping"} every PingInterval
    this.opened = false;
    this.dead = false;
    this.sent = {};
    this.reason = '';
  }

  WsConnection.prototype.open = function () {
    var self = this;
    var c = this.client;
    var url = c.url.replace(/^http/i, 'ws') + '/ws?hostid=' + encodeURIComponent(c.hostid);
    if (c.token) url += '&token=' + encodeURIComponent(c.token);
    try {
      this.ws = new global.WebSocket(url);
    } catch (e) {
      setTimeout(function () { self.fail('cannot open ' + url + ': ' + e.message); }, 0);
      return;
    }
    this.ws.onopen = function () {
      if (self.dead) return;
      self.opened = true;
      c._connectionOpen(self);
      self.sync();
    };
    this.ws.onmessage = function (ev) {
      if (self.dead) return;
      var frame = parseJson(ev.data);
      if (frame && typeof frame === 'object') c._frame(self, frame);
    };
    this.ws.onclose = function (ev) {
      self.fail(self.reason || 'connection closed (' + ev.code + ')');
    };
    this.ws.onerror = noop; // onclose follows
  };

  WsConnection.prototype.send = function (obj) {
    try {
      this.ws.send(JSON.stringify(obj));
    } catch (e) { /* onclose follows */ }
  };

  WsConnection.prototype.sync = function () {
    if (!this.opened || this.dead) return;
    var subs = this.client._subs;
    var name;
    for (name in subs) {
      if (!has(subs, name) || this.sent[name]) continue;
      var sub = subs[name];
      var frame = { type: 'subscribe', channel: name };
      if (sub.token) frame.token = sub.token;
      if (sub.presence) frame.presence = true;
      if (sub.cursor !== null) {
        if (sub.cursor < 0) frame.history = true;
        else frame.after = sub.cursor;
      } else if (sub.start.kind === 'last') {
        frame.last = sub.start.n;
      }
      this.sent[name] = true;
      this.send(frame);
    }
    for (name in this.sent) {
      if (has(this.sent, name) && !has(subs, name)) {
        delete this.sent[name];
        this.send({ type: 'unsubscribe', channel: name });
      }
    }
  };

  WsConnection.prototype.fail = function (reason) {
    if (this.dead) return;
    this.close();
    this.client._connectionLost(this, reason);
  };

  WsConnection.prototype.close = function () {
    this.dead = true;
    if (this.ws) {
      try {
        this.ws.close();
      } catch (e) { /* already closed */ }
    }
  };

  // Server-Sent Events: GET /sse/<specs>; a change of channels opens a new
  // stream that resumes every channel from its cursor.
  function SseConnection(client) {
    this.client = client;
    this.name = 'sse';
    this.pings = false; // keep-alive comments are invisible to EventSource
    this.opened = false;
    this.dead = false;
    this.names = [];
  }

  SseConnection.prototype.open = function () {
    var self = this;
    var c = this.client;
    this.names = keys(c._subs);
    if (!this.names.length) return; // nothing to stream yet; sync() starts over
    var specs = [];
    for (var i = 0; i < this.names.length; i++) specs.push(urlSpec(c._subs[this.names[i]]));
    var url = c.url + '/sse/' + specs.join('/') + '?hostid=' + encodeURIComponent(c.hostid) + c._tokenQuery(this.names, '&');
    for (i = 0; i < this.names.length; i++) {
      if (c._subs[this.names[i]].presence) {
        url += '&presence=1';
        break;
      }
    }
    try {
      this.es = new global.EventSource(url);
    } catch (e) {
      setTimeout(function () { self.fail('cannot open ' + url + ': ' + e.message); }, 0);
      return;
    }
    this.es.onopen = function () {
      if (self.dead) return;
      if (!self.opened) {
        self.opened = true;
        c._connectionOpen(self);
      }
      for (var k = 0; k < self.names.length; k++) c._subscribed(self, self.names[k], undefined);
    };
    this.es.onmessage = function (ev) {
      if (self.dead) return;
      var m = parseJson(ev.data);
      if (m) c._message(self, m);
    };
    this.es.addEventListener('close', function (ev) {
      self.fail('server closed the stream (' + ev.data + ')');
    });
    this.es.addEventListener('ping', function () {
      if (!self.dead) c._ping(self);
    });
    var presence = function (ev) {
      if (self.dead) return;
      var data = parseJson(ev.data);
      if (data) c._presence(self, ev.type, data);
    };
    this.es.addEventListener('presence', presence);
    this.es.addEventListener('join', presence);
    this.es.addEventListener('leave', presence);
    // EventSource would reconnect by itself; we reconnect with our own
    // backoff and cursors instead.
    this.es.onerror = function () {
      self.fail('stream error');
    };
  };

  SseConnection.prototype.sync = function () {
    if (this.dead) return;
    if (keys(this.client._subs).sort().join('/') !== this.names.slice().sort().join('/')) this.client._reopen(this);
  };

  SseConnection.prototype.fail = WsConnection.prototype.fail;

  SseConnection.prototype.close = function () {
    this.dead = true;
    if (this.es) this.es.close();
  };

  // Long-poll over fetch: GET /poll/<specs>?timeout=S answers NDJSON as soon
  // as a message exists, or empty after S seconds; then ask again.
  function PollConnection(client) {
    this.client = client;
    this.name = 'poll';
    this.pings = false;
    this.opened = false;
    this.dead = false;
    this.names = [];
    this.ctrl = null;
  }

  PollConnection.prototype.open = function () {
    var self = this;
    var c = this.client;
    if (this.dead) return;
    this.names = keys(c._subs);
    if (!this.names.length) return; // sync() starts the first poll
    var names = this.names;
    var specs = [];
    for (var i = 0; i < names.length; i++) specs.push(urlSpec(c._subs[names[i]]));
    var url = c.url + '/poll/' + specs.join('/') + '?timeout=' + c.pollTimeout + c._tokenQuery(names, '&');
    var ctrl = this.ctrl = new global.AbortController();
    var guard = setTimeout(function () { ctrl.abort(); }, (c.pollTimeout + 15) * 1000);
    global.fetch(url, { cache: 'no-store', signal: ctrl.signal }).then(function (res) {
      if (ctrl !== self.ctrl || self.dead) return null;
      if (!res.ok) throw new Error('HTTP ' + res.status + ' from ' + url);
      if (!self.opened) {
        self.opened = true;
        c._connectionOpen(self);
      }
      for (var k = 0; k < names.length; k++) c._subscribed(self, names[k], undefined);
      return res.text();
    }).then(function (text) {
      clearTimeout(guard);
      if (text === null || ctrl !== self.ctrl || self.dead) return;
      var msgs = parseNdjson(text);
      for (var k = 0; k < msgs.length && !self.dead; k++) c._message(self, msgs[k]);
      self.ctrl = null;
      if (!self.dead) setTimeout(function () { self.open(); }, 0);
    }).catch(function (err) {
      clearTimeout(guard);
      if (ctrl !== self.ctrl || self.dead) return;
      self.fail(err && err.name === 'AbortError' ? 'poll timed out' : String(err && err.message || err));
    });
  };

  PollConnection.prototype.sync = function () {
    if (this.dead) return;
    if (keys(this.client._subs).sort().join('/') === this.names.slice().sort().join('/')) return;
    // Ask again with the new set; the answer in flight is dropped and its
    // messages come again from the cursors.
    var ctrl = this.ctrl;
    this.ctrl = null;
    if (ctrl) ctrl.abort();
    this.open();
  };

  PollConnection.prototype.fail = WsConnection.prototype.fail;

  PollConnection.prototype.close = function () {
    this.dead = true;
    var ctrl = this.ctrl;
    this.ctrl = null;
    if (ctrl) ctrl.abort();
  };

  var CONNECTIONS = { ws: WsConnection, sse: SseConnection, poll: PollConnection };

  // ------------------------------------------------------------------ Client

  /**
   * A connection to meteord's modern endpoints. Options (all optional):
   *   url          the subscriber port, e.g. "http://data.example.com:4670"
   *                (default: where meteor.js was loaded from)
   *   channels     ["a", "b"] or { a: { last: 10 }, b: { after: 41 } }
   *   transport    "auto" (ws, then sse, then poll) | "ws" | "sse" | "poll" | [..]
   *   hostid       a newer connection with the same hostid ends the older one
   *   pingTimeout  ms without any frame before WebSocket falls back to poll (20000; 0 = off)
   *   pollTimeout  seconds a long-poll waits (25)
   *   minDelay, maxDelay   reconnect backoff bounds in ms (250, 30000)
   *   connect      false: do not connect until connect() or subscribe()
   *   token        a signed subscribe token (or API token) for private
   *                channels; a channel may bring its own: { room: { token } }
   *   tokenProvider  function (channels) returning a token, or a promise of
   *                one: called when the server says the token expired (or
   *                refuses it) - the client then resumes from the last id
   *                it saw, without losing a message
   * Events: message ({id, channel, text, ts}), status (status, reason),
   * transport (name, reason), subscribed ({channel, lastId}),
   * unsubscribed ({channel}), ping, drop ({reason, opened, transport}), error (Error),
   * and for channels subscribed with { presence: true } (WebSocket and SSE):
   * presence ({channel, members}), join ({channel, member}), leave ({channel,
   * member}); a member is { id, user, since }.
   */
  function Client(options) {
    Emitter.call(this);
    var o = options || {};
    this.url = normalizeBase(o.url || Meteor._defaultBase());
    // the modern endpoints take 1 to 64 letters and digits
    this.hostid = String(o.hostid || '').replace(/[^A-Za-z0-9]/g, '').slice(0, 64) || makeHostId();
    this.pingTimeout = o.pingTimeout == null ? 20000 : Number(o.pingTimeout);
    this.pollTimeout = o.pollTimeout == null ? 25 : Number(o.pollTimeout);
    this.minDelay = o.minDelay == null ? 250 : Number(o.minDelay);
    this.maxDelay = o.maxDelay == null ? 30000 : Number(o.maxDelay);
    this.stableAfter = 5000; // ms a connection must live before backoff starts over
    this.status = 'idle';
    this.transport = null;
    this.lastId = null;
    this._chain = transportChain(o.transport);
    if (!this._chain.length) throw new Error('Meteor.client: no usable transport in ' + o.transport);
    this._index = 0;
    this._everOpened = {};
    this._failures = 0;
    this._attempt = 0;
    this._subs = {};
    this._conn = null;
    this._timer = null;
    this._pingTimer = null;
    this._stableTimer = null;
    this._syncTimer = null;
    this._startToken = null;
    this._afterDrop = false;
    this._switchReason = 'selected';
    this._openWaiters = [];
    this._autoConnect = o.connect !== false;
    this.token = o.token || null;
    this.tokenProvider = typeof o.tokenProvider === 'function' ? o.tokenProvider : null;
    this._renewedAt = 0;
    this._members = {}; // channel -> { member id: member }
    this._pending = {}; // publish ref -> { d, channel, text, token, sent, renewed }
    this._ref = 0;
    var channels = o.channels;
    if (channels) {
      if (typeof channels === 'string') channels = [channels];
      if (channels.length !== undefined) {
        for (var i = 0; i < channels.length; i++) {
          var ch = channels[i];
          if (typeof ch === 'string') this.subscribe(ch);
          else this.subscribe(ch.name || ch.channel, ch);
        }
      } else {
        for (var name in channels) if (has(channels, name)) this.subscribe(name, channels[name]);
      }
    }
  }

  Client.prototype = Object.create(Emitter.prototype);
  Client.prototype.constructor = Client;

  /** Start (or restart after close()). Resolves when a transport is open. */
  Client.prototype.connect = function () {
    var d = defer();
    if (this.status === 'open') {
      d.resolve(this);
      return d.promise;
    }
    this._openWaiters.push(d);
    if (this.status === 'idle' || this.status === 'closed') {
      this._autoConnect = true;
      this._setStatus('connecting');
      this._startAfter(0); // gather subscribe() calls first
    }
    return d.promise;
  };

  /**
   * Subscribe to a channel. opts: { last: n } the last n messages first,
   * { after: id } every message with a greater id, { history: true } all
   * the server holds, or nothing for new messages only. Resolves with
   * { channel, lastId } once the server has the subscription (lastId: the
   * channel's newest id, where the transport says it).
   */
  Client.prototype.subscribe = function (name, opts) {
    var d = defer();
    name = String(name);
    if (!/^[A-Za-z0-9_%-]+$/.test(name)) {
      var err = new Error('Meteor.client: invalid channel name "' + name + '"');
      if (!d.promise) throw err;
      d.reject(err);
      return d.promise;
    }
    var sub = this._subs[name];
    if (!has(this._subs, name)) sub = this._subs[name] = new Subscription(name, parseStart(opts), opts && opts.token, opts && opts.presence);
    if (sub.active) d.resolve({ channel: name, lastId: sub.lastId });
    else sub.waiters.push(d);
    if (this._conn) this._scheduleSync();
    else if (this._autoConnect && (this.status === 'idle' || this.status === 'closed')) this.connect();
    return d.promise;
  };

  /** Stop receiving a channel. */
  Client.prototype.unsubscribe = function (name) {
    name = String(name);
    var sub = this._subs[name];
    if (sub && has(this._subs, name)) {
      delete this._subs[name];
      delete this._members[name];
      for (var i = 0; i < sub.waiters.length; i++) sub.waiters[i].reject(new Error('unsubscribed'));
      if (this._conn) this._scheduleSync();
      this.emit('unsubscribed', { channel: name });
    }
    var d = defer();
    d.resolve();
    return d.promise;
  };

  /**
   * Use a new token from now on (the next connection, and channels
   * subscribed from now); a stream in progress keeps the one it opened with.
   */
  Client.prototype.setToken = function (token) {
    this.token = token || null;
    for (var name in this._subs) if (has(this._subs, name)) this._subs[name].token = null;
  };

  // The token for a URL naming these channels: the client's, else the one
  // its channels bring.
  Client.prototype._tokenQuery = function (names, sep) {
    var token = this.token;
    for (var i = 0; !token && i < names.length; i++) {
      var sub = this._subs[names[i]];
      if (sub && sub.token) token = sub.token;
    }
    return token ? sep + 'token=' + encodeURIComponent(token) : '';
  };

  /** The channels subscribed to. */
  Client.prototype.channels = function () {
    return keys(this._subs);
  };

  /** Where each channel would resume: { name: id | null }. */
  Client.prototype.cursors = function () {
    var out = {};
    for (var name in this._subs) if (has(this._subs, name)) out[name] = this._subs[name].cursor;
    return out;
  };

  /** Disconnect for good (connect() starts again, resuming every channel). */
  Client.prototype.close = function () {
    clearTimeout(this._timer);
    clearTimeout(this._syncTimer);
    this._timer = this._syncTimer = null;
    this._stopTimers();
    this._startToken = null;
    var conn = this._conn;
    this._conn = null;
    if (conn) conn.close();
    for (var name in this._subs) {
      if (!has(this._subs, name)) continue;
      var sub = this._subs[name];
      sub.active = false;
      var waiters = sub.waiters;
      sub.waiters = [];
      for (var i = 0; i < waiters.length; i++) waiters[i].reject(new Error('closed'));
    }
    var open = this._openWaiters;
    this._openWaiters = [];
    for (var j = 0; j < open.length; j++) open[j].reject(new Error('closed'));
    for (var ref in this._pending) if (has(this._pending, ref)) this._pending[ref].d.reject(new Error('closed'));
    this._pending = {};
    this._setStatus('closed', 'closed by the page');
  };

  Client.prototype._setStatus = function (status, reason) {
    if (this.status === status) return;
    this.status = status;
    this.emit('status', status, reason);
  };

  Client.prototype._stopTimers = function () {
    clearTimeout(this._pingTimer);
    clearTimeout(this._stableTimer);
    this._pingTimer = this._stableTimer = null;
  };

  Client.prototype._scheduleSync = function () {
    var self = this;
    if (this._syncTimer) return;
    this._syncTimer = setTimeout(function () {
      self._syncTimer = null;
      if (self._conn) self._conn.sync();
    }, 0);
  };

  Client.prototype._start = function () {
    var self = this;
    clearTimeout(this._timer);
    this._timer = null;
    if (this.status === 'closed') return;
    var name = this._chain[this._index];
    if (this.transport !== name) {
      this.transport = name;
      this.emit('transport', name, this._switchReason);
    }
    this._setStatus('connecting');
    var token = this._startToken = {};
    var canProbe = typeof global.fetch === 'function' && typeof global.AbortController === 'function';
    var go = function () {
      if (self._startToken !== token) return;
      self._startToken = null;
      var conn = self._conn = new CONNECTIONS[name](self);
      conn.open();
    };
    if (name !== 'ws' && canProbe && this._needsProbe()) this._probe(token, go);
    else go();
  };

  // SSE and long-poll say nothing about a channel's newest id, which a new
  // live subscription needs as its starting point and a resumed one needs to
  // notice that the server restarted (ids begin again at 0 when nothing
  // persists). One quick request for the last message of those channels
  // tells both.
  Client.prototype._needsProbe = function () {
    for (var name in this._subs) {
      if (!has(this._subs, name)) continue;
      var sub = this._subs[name];
      if (sub.cursor === null && sub.start.kind === 'live') return true;
      if (this._afterDrop && sub.cursor !== null && sub.cursor >= 0) return true;
    }
    return false;
  };

  Client.prototype._probe = function (token, done) {
    var self = this;
    var names = [];
    for (var name in this._subs) {
      if (!has(this._subs, name)) continue;
      var s = this._subs[name];
      if ((s.cursor === null && s.start.kind === 'live') || (s.cursor !== null && s.cursor >= 0)) names.push(name);
    }
    var specs = [];
    for (var i = 0; i < names.length; i++) specs.push(names[i] + '.b1');
    var ctrl = new global.AbortController();
    var guard = setTimeout(function () { ctrl.abort(); }, 3000);
    var finish = function (text) {
      clearTimeout(guard);
      if (self._startToken !== token) return;
      if (text !== null) self._applyProbe(names, parseNdjson(text));
      self._afterDrop = false;
      done();
    };
    // No answer at all (the server is down, or still starting after a
    // restart): going on would resume from cursors the server may no
    // longer mean, so wait and probe again, as a failed connection would.
    // An answer that is not a probe's (an older server), or none within
    // the guard's time, lets the connection go ahead as it is.
    var unreachable = function (reason) {
      clearTimeout(guard);
      if (self._startToken !== token) return;
      if (ctrl.signal.aborted) return finish(null);
      self._startToken = null;
      self._retryLater(String((reason && reason.message) || reason));
    };
    var answered = function (res) {
      if (!res.ok) return finish(null);
      return res.text().then(finish, function () { finish(null); });
    };
    global.fetch(this.url + '/poll/' + specs.join('/') + '?timeout=0' + this._tokenQuery(names, '&'), { cache: 'no-store', signal: ctrl.signal })
      .then(answered, unreachable);
  };

  Client.prototype._applyProbe = function (names, msgs) {
    var last = {};
    var i;
    for (i = 0; i < msgs.length; i++) {
      var m = msgs[i];
      if (m && typeof m.id === 'number' && (!has(last, m.channel) || m.id > last[m.channel])) last[m.channel] = m.id;
    }
    var restarted = false;
    for (i = 0; i < names.length; i++) {
      var sub = this._subs[names[i]];
      if (sub && sub.cursor !== null && has(last, sub.name) && last[sub.name] < sub.cursor) restarted = true;
    }
    for (var name in this._subs) {
      if (!has(this._subs, name)) continue;
      var s = this._subs[name];
      var probed = names.indexOf(name) >= 0;
      if (s.cursor === null) {
        // a live subscription starts after the newest message, or with the
        // first one of an empty channel
        if (probed) s.cursor = has(last, name) ? last[name] : -1;
      } else if (restarted || (probed && !has(last, name))) {
        // Everything the server holds now is new to us: it restarted, or
        // the channel is empty (then any later message is new anyway).
        s.cursor = -1;
      }
    }
  };

  Client.prototype._connectionOpen = function (conn) {
    if (conn !== this._conn) return;
    var self = this;
    this._failures = 0;
    this._everOpened[conn.name] = true;
    this._armPing(conn);
    clearTimeout(this._stableTimer);
    this._stableTimer = setTimeout(function () { self._attempt = 0; }, this.stableAfter);
    this._setStatus('open');
    this._flushPublishes();
    var waiters = this._openWaiters;
    this._openWaiters = [];
    for (var i = 0; i < waiters.length; i++) waiters[i].resolve(this);
  };

  // Quietly replace the connection (the channel set changed): no backoff.
  Client.prototype._reopen = function (conn) {
    if (conn !== this._conn) return;
    this._conn = null;
    this._stopTimers();
    conn.close();
    for (var name in this._subs) if (has(this._subs, name)) this._subs[name].connMax = null;
    this._start();
  };

  Client.prototype._connectionLost = function (conn, reason) {
    if (conn !== this._conn) return;
    this._conn = null;
    this._stopTimers();
    this._publishesLost(reason);
    var opened = conn.opened;
    for (var name in this._subs) {
      if (!has(this._subs, name)) continue;
      this._subs[name].active = false;
      this._subs[name].connMax = null;
    }
    if (this.status === 'closed') return;
    this._afterDrop = true;
    if (!opened) {
      this._failures++;
      // A transport that never worked here (blocked by a proxy, or an older
      // server): after two failures try the next one.
      if (!this._everOpened[conn.name] && this._failures >= 2 && this._index < this._chain.length - 1) {
        this._index++;
        this._failures = 0;
        this._attempt = 0;
        this._switchReason = conn.name + ' failed';
      }
    }
    this.emit('drop', { reason: reason, opened: opened, transport: conn.name });
    this._setStatus('reconnecting', reason);
    var delay = this._nextDelay();
    // The token expired or was refused (an EventSource cannot say why it
    // failed: a stream that never opened counts too): ask the page for a
    // new one, then resume at once - unless one was asked for a moment ago.
    var tokenTrouble = /token expired|\b401\b/.test(reason) || (!opened && conn.name === 'sse');
    if (this.tokenProvider && tokenTrouble) {
      var soon = now() - this._renewedAt < 2000;
      this._renewToken(soon ? delay : 0);
      return;
    }
    this._startAfter(delay);
  };

  // Start a connection after `delay` ms (instead of any start pending).
  Client.prototype._startAfter = function (delay) {
    var self = this;
    clearTimeout(this._timer);
    this._timer = setTimeout(function () { self._start(); }, delay);
  };

  // The wait before the next attempt: doubling from minDelay up to
  // maxDelay, with jitter so that clients dropped together spread out.
  Client.prototype._nextDelay = function () {
    var delay = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this._attempt));
    this._attempt = Math.min(this._attempt + 1, 30);
    return Math.round(delay * (0.8 + 0.4 * Math.random()));
  };

  // Nothing answered before a connection was made: try again after the
  // usual backoff.
  Client.prototype._retryLater = function (reason) {
    if (this.status === 'closed') return;
    this._setStatus('reconnecting', reason);
    this._startAfter(this._nextDelay());
  };

  Client.prototype._renewToken = function (delay) {
    var self = this;
    this._renewedAt = now();
    clearTimeout(this._timer);
    this._timer = null;
    var asked;
    try {
      asked = Promise.resolve(this.tokenProvider(this.channels()));
    } catch (e) {
      asked = Promise.reject(e);
    }
    asked.then(function (token) {
      if (self.status === 'closed' || self._conn) return;
      if (token) self.setToken(token);
      self._startAfter(delay);
    }, function (err) {
      if (self.status === 'closed' || self._conn) return;
      self.emit('error', err instanceof Error ? err : new Error(String(err)));
      self._startAfter(Math.max(delay, self.minDelay));
    });
  };

  Client.prototype._armPing = function (conn) {
    var self = this;
    if (!conn.pings || !(this.pingTimeout > 0)) return;
    clearTimeout(this._pingTimer);
    this._pingTimer = setTimeout(function () { self._pingTimedOut(conn); }, this.pingTimeout);
  };

  // No frame for pingTimeout ms: something between us and the server holds
  // the stream back. Fall back to polling, as the original client did.
  Client.prototype._pingTimedOut = function (conn) {
    if (conn !== this._conn) return;
    var poll = this._chain.indexOf('poll');
    if (poll > this._index) {
      this._index = poll;
      this._switchReason = 'ping timeout';
    }
    this._attempt = 0;
    this._connectionLost(conn, 'ping timeout');
  };

  Client.prototype._frame = function (conn, f) {
    if (conn !== this._conn) return;
    this._armPing(conn);
    switch (f.type) {
      case 'message':
        this._message(conn, f);
        break;
      case 'subscribed':
        this._subscribed(conn, f.channel, f.last_id === undefined ? null : f.last_id);
        break;
      case 'unsubscribed':
        break;
      case 'presence':
      case 'join':
      case 'leave':
        this._presence(conn, f.type, f);
        break;
      case 'published':
        this._published(f.ref, null, f.id);
        break;
      case 'ping':
      case 'pong':
        this._ping(conn);
        break;
      case 'error':
        if (f.ref != null && has(this._pending, f.ref)) {
          this._published(f.ref, f, null);
          break;
        }
        this.emit('error', new Error(String(f.error)));
        // A refused token: renew it and come back (the connection's other
        // channels resume from their last id).
        if (f.status === 401 && this.tokenProvider) {
          conn.reason = 'HTTP 401: ' + f.error;
          conn.fail(conn.reason);
        }
        break;
      case 'close':
        conn.reason = 'server closed the connection (' + f.reason + ')';
        break;
    }
  };

  Client.prototype._ping = function (conn) {
    if (conn !== this._conn) return;
    this.emit('ping');
  };

  // lastId: the channel's newest id (null: empty channel), or undefined
  // where the transport does not say.
  Client.prototype._subscribed = function (conn, name, lastId) {
    if (conn !== this._conn || !has(this._subs, name)) return;
    var sub = this._subs[name];
    if (typeof lastId === 'number' || lastId === null) {
      if (sub.cursor !== null && typeof lastId === 'number' && lastId < sub.cursor) {
        this._idsWentBack(conn);
        return;
      }
      if (lastId === null) {
        if (sub.cursor === null || sub.cursor >= 0) sub.cursor = -1; // empty: every later message is new
      } else if (sub.cursor === null && sub.start.kind === 'live') {
        sub.cursor = lastId;
      }
      sub.lastId = lastId;
    }
    if (sub.active) return;
    sub.active = true;
    var info = { channel: name, lastId: sub.lastId };
    var waiters = sub.waiters;
    sub.waiters = [];
    for (var i = 0; i < waiters.length; i++) waiters[i].resolve(info);
    this.emit('subscribed', info);
  };

  // The server's newest id is below what we saw: it restarted and its ids
  // began again. Everything it holds is new to us: start over from there.
  Client.prototype._idsWentBack = function (conn) {
    for (var name in this._subs) {
      if (!has(this._subs, name)) continue;
      var sub = this._subs[name];
      if (sub.cursor !== null) sub.cursor = sub.connMax !== null ? sub.connMax : -1;
    }
    this._reopen(conn);
  };

  Client.prototype._message = function (conn, m) {
    if (conn !== this._conn) return;
    if (!m || typeof m.id !== 'number' || typeof m.channel !== 'string' || !has(this._subs, m.channel)) return;
    var sub = this._subs[m.channel];
    if (sub.cursor !== null && m.id <= sub.cursor) return; // seen already
    sub.cursor = m.id;
    sub.connMax = m.id;
    if (this.lastId === null || m.id > this.lastId) this.lastId = m.id;
    if (conn.name !== 'ws') {
      // Ids are global and a stream delivers in id order after the backlog:
      // a live channel in the same request has nothing unseen up to here.
      for (var i = 0; i < conn.names.length; i++) {
        var other = this._subs[conn.names[i]];
        if (other && other.cursor === null && other.start.kind === 'live') other.cursor = m.id;
      }
    }
    this.emit('message', {
      id: m.id,
      channel: m.channel,
      text: m.text == null ? '' : String(m.text),
      ts: m.ts
    });
  };

  // ------------------------------------------------ presence and publishing

  // A presence list, join or leave from the server.
  Client.prototype._presence = function (conn, kind, data) {
    if (conn !== this._conn || !data || typeof data.channel !== 'string' || !has(this._subs, data.channel)) return;
    var channel = data.channel;
    if (kind === 'presence') {
      var all = {};
      var list = data.members || [];
      for (var i = 0; i < list.length; i++) all[list[i].id] = list[i];
      this._members[channel] = all;
      this.emit('presence', { channel: channel, members: this.members(channel) });
      return;
    }
    var member = data.member;
    if (!member || typeof member.id !== 'string') return;
    var members = this._members[channel] || (this._members[channel] = {});
    if (kind === 'join') members[member.id] = member;
    else delete members[member.id];
    this.emit(kind, { channel: channel, member: member });
  };

  /**
   * Who is in a channel subscribed with { presence: true }: [{ id, user,
   * since }], earliest first (each user once, however many tabs).
   */
  Client.prototype.members = function (channel) {
    var members = this._members[channel] || {};
    var out = [];
    for (var id in members) if (has(members, id)) out.push(members[id]);
    out.sort(function (a, b) { return a.since - b.since; });
    return out;
  };

  /**
   * Publish text on a channel over the WebSocket; the token's `publish`
   * claim must cover the channel. Resolves with the message id; rejects
   * with an Error whose `status` says why (401, 403, 413, 429, 503).
   */
  Client.prototype.publish = function (channel, text) {
    var d = defer();
    if (this._chain.indexOf('ws') < 0) {
      d.reject(new Error('publishing needs the WebSocket transport'));
      return d.promise;
    }
    var ref = ++this._ref;
    this._pending[ref] = { d: d, channel: String(channel), text: String(text), token: null, sent: false, renewed: false };
    if (this.status === 'idle' || this.status === 'closed') this.connect();
    this._flushPublishes();
    return d.promise;
  };

  // Send what waits for an open WebSocket.
  Client.prototype._flushPublishes = function () {
    var conn = this._conn;
    for (var ref in this._pending) {
      if (!has(this._pending, ref)) continue;
      var p = this._pending[ref];
      if (p.sent) continue;
      if (!conn || !conn.opened || conn.dead) return;
      if (conn.name !== 'ws') {
        delete this._pending[ref];
        p.d.reject(new Error('publishing needs the WebSocket transport (now ' + conn.name + ')'));
        continue;
      }
      var frame = { type: 'publish', channel: p.channel, text: p.text, ref: Number(ref) };
      var sub = this._subs[p.channel];
      var token = p.token || (sub && sub.token);
      if (token) frame.token = token;
      p.sent = true;
      conn.send(frame);
    }
  };

  // The answer to a publish: an id, or an error frame.
  Client.prototype._published = function (ref, error, id) {
    if (ref == null || !has(this._pending, ref)) return;
    var self = this;
    var p = this._pending[ref];
    if (!error) {
      delete this._pending[ref];
      p.d.resolve(id);
      return;
    }
    // An expired token: renew it once and send again.
    if (error.status === 401 && this.tokenProvider && !p.renewed) {
      p.renewed = true;
      p.sent = false;
      var asked;
      try {
        asked = Promise.resolve(this.tokenProvider([p.channel]));
      } catch (e) {
        asked = Promise.reject(e);
      }
      asked.then(function (token) {
        p.token = token;
        self.token = token;
        self._flushPublishes();
      }, function (err) {
        delete self._pending[ref];
        p.d.reject(err instanceof Error ? err : new Error(String(err)));
      });
      return;
    }
    delete this._pending[ref];
    var err = new Error(String(error.error));
    err.status = error.status;
    p.d.reject(err);
  };

  // The connection dropped: an answer that did not come may never come.
  Client.prototype._publishesLost = function (reason) {
    for (var ref in this._pending) {
      if (!has(this._pending, ref) || !this._pending[ref].sent) continue;
      var p = this._pending[ref];
      delete this._pending[ref];
      p.d.reject(new Error('connection lost before the answer (' + reason + '); the message may or may not have been published'));
    }
  };

  // ------------------------------------------------------ the legacy object

  var Meteor = {
    _meteord: true,
    version: VERSION,

    callbacks: {
      process: noop,
      reset: noop,
      eof: noop,
      statuschanged: noop,
      changemode: noop
    },
    channelcount: 0,
    channels: {},
    debugmode: false,
    frameref: null,
    host: null,
    hostid: null,
    maxpollfreq: 60000,
    minpollfreq: 2000,
    mode: 'stream',
    pingtimeout: 20000,
    pingtimer: null,
    pollfreq: 3000,
    scheme: defaultScheme(),
    port: 80,
    polltimeout: 30000,
    recvtimes: [],
    status: 0,
    updatepollfreqtimer: null,
    frameloadtimer: null,
    lastrequest: 0,
    lastpingtime: false,
    // NEW: "auto" | "ws" | "sse" | "poll" | "legacy" (see the top of this file)
    transport: 'auto',
    // NEW, read-only: the modern Client under the legacy API while it is
    // connected over ws, sse or poll (null otherwise)
    connection: null,
    // NEW: a signed subscribe token for private channels, and a function
    // (channels) -> token or promise of one, asked when it expires
    token: null,
    tokenProvider: null,

    // --- the modern API
    /** A new modern client: Meteor.client({ url, channels, transport, ... }). */
    client: function (options) {
      return new Client(options);
    },
    Client: Client,
    decodeLegacyText: decodeLegacyText,
    runLegacyScript: runLegacyScript,

    /**
     * NEW: publish over the legacy API's WebSocket (see Client.publish);
     * only while Meteor.connection is a WebSocket client.
     */
    publish: function (channel, text) {
      if (!Meteor.connection) return Promise.reject(new Error('not connected over a modern transport'));
      return Meteor.connection.publish(channel, text);
    },

    /** What the legacy API uses now: "ws", "sse", "poll" or the /push mode. */
    currentTransport: function () {
      return Meteor.connection ? Meteor.connection.transport : Meteor.mode;
    },

    joinChannel: function (channelname, backtrack) {
      if (has(Meteor.channels, channelname)) throw 'Cannot join channel ' + channelname + ': already subscribed';
      Meteor.channels[channelname] = { backtrack: backtrack, lastmsgreceived: 0, delivered: -1, cursor: null, known: false };
      Meteor.log('Joined channel ' + channelname);
      Meteor.channelcount++;
      if (Meteor._modern && Meteor.status !== 0 && Meteor.status !== 6) {
        Meteor._modern.subscribe(channelname, legacyStart(Meteor.channels[channelname]));
      } else if (Meteor.status !== 0) {
        Meteor.connect();
      }
    },

    leaveChannel: function (channelname) {
      if (!has(Meteor.channels, channelname)) throw 'Cannot leave channel ' + channelname + ': not subscribed';
      delete Meteor.channels[channelname];
      Meteor.log('Left channel ' + channelname);
      Meteor.channelcount--;
      if (Meteor.status === 0 || Meteor.status === 6) return;
      if (!Meteor.channelcount) Meteor.disconnect(); // nothing left to receive
      else if (Meteor._modern) Meteor._modern.unsubscribe(channelname);
      else Meteor.connect();
    },

    connect: function () {
      Meteor.log('Connecting');
      if (!Meteor.host) {
        var own = scriptUrl && /^([a-z][a-z0-9+.-]*):\/\/([^\/:?#]+)(?::(\d+))?/i.exec(scriptUrl);
        if (!own) throw 'Meteor host not specified';
        Meteor.scheme = own[1].toLowerCase();
        Meteor.host = own[2];
        Meteor.port = own[3] ? Number(own[3]) : (Meteor.scheme === 'https' ? 443 : 80);
      }
      if (isNaN(Meteor.port)) throw 'Meteor port not specified';
      if (!Meteor.channelcount) throw 'No channels specified';
      if (Meteor.status) Meteor.disconnect();
      Meteor.setstatus(1);
      var t = now();
      if (!Meteor.hostid) Meteor.hostid = makeHostId();
      var chain = modernChain();
      if (chain) {
        Meteor.log('Selected ' + chain.join('/') + ' transport');
        connectModern(chain);
      } else {
        connectLegacy(t);
      }
      Meteor.lastrequest = t;
    },

    disconnect: function () {
      if (Meteor._modern) {
        var c = Meteor._modern;
        Meteor._modern = Meteor.connection = null;
        var cursors = c.cursors();
        for (var name in cursors) {
          if (has(cursors, name) && has(Meteor.channels, name)) Meteor.channels[name].cursor = cursors[name];
        }
        c.close();
      }
      if (Meteor.status) {
        clearTimeout(Meteor.pingtimer);
        clearTimeout(Meteor.updatepollfreqtimer);
        clearTimeout(Meteor.frameloadtimer);
        Meteor.pingtimer = Meteor.updatepollfreqtimer = Meteor.frameloadtimer = null;
        removeFrame();
        if (Meteor.status !== 6) Meteor.setstatus(0);
        Meteor.log('Disconnected');
      }
    },

    registerEventCallback: function (evt, funcRef) {
      var previous = Meteor.callbacks[evt];
      if (typeof previous === 'function' && previous !== noop) {
        // every registered function gets the argument (the original handed
        // it only to the last one)
        Meteor.callbacks[evt] = function (arg) {
          previous(arg);
          funcRef(arg);
        };
      } else {
        Meteor.callbacks[evt] = funcRef;
      }
    },

    // ---- the frame contract of stream.html, poll.html and iframe mode:
    // the frame calls register(window) and then p(), ch(), eof() and r().

    register: function (ifr) {
      ifr.p = Meteor.process;
      ifr.r = Meteor.reset;
      ifr.eof = Meteor.eof;
      ifr.ch = Meteor.channelInfo;
      clearTimeout(Meteor.frameloadtimer);
      Meteor.frameloadtimer = null;
      Meteor.setstatus(4);
      Meteor.log('Frame registered');
    },

    process: function (id, channel, data) {
      id = Number(id);
      if (id === -1) {
        Meteor.log('Ping');
        Meteor.ping();
      } else if (has(Meteor.channels, channel)) {
        var ch = Meteor.channels[channel];
        Meteor.log('Message ' + id + ' received on channel ' + channel + ' (last id on channel: ' + ch.lastmsgreceived + ')\n' + data);
        // A resumed request may repeat a message (the original could not
        // resume after id 0): deliver each id once.
        if (!(id <= ch.delivered)) {
          ch.delivered = id;
          fire('process', data);
        }
        ch.lastmsgreceived = id;
        ch.known = true;
        if (Meteor.mode === 'smartpoll') {
          Meteor.recvtimes.push(now());
          while (Meteor.recvtimes.length > 5) Meteor.recvtimes.shift();
        }
      }
      Meteor.setstatus(5);
    },

    ping: function () {
      if (Meteor.pingtimer) {
        clearTimeout(Meteor.pingtimer);
        Meteor.pingtimer = setTimeout(Meteor.pollmode, Meteor.pingtimeout);
        Meteor.lastpingtime = now();
      }
      Meteor.setstatus(5);
    },

    reset: function () {
      if (Meteor.status !== 6 && Meteor.status !== 0) {
        Meteor.log('Stream reset');
        Meteor.ping();
        fire('reset');
        var x = Meteor.pollfreq - (now() - Meteor.lastrequest);
        if (x < 10) x = 10;
        setTimeout(function () {
          if (Meteor.status !== 0 && Meteor.status !== 6 && !Meteor._modern) Meteor.connect();
        }, x);
      }
    },

    eof: function () {
      Meteor.log('Received end of stream, will not reconnect');
      fire('eof');
      Meteor.setstatus(6);
      Meteor.disconnect();
    },

    channelInfo: function (channel, id) {
      if (!has(Meteor.channels, channel)) return;
      var ch = Meteor.channels[channel];
      id = Number(id);
      // The server's newest id is below one we delivered: it restarted and
      // counts from 0 again, so its messages are all new.
      if (id < ch.delivered) ch.delivered = -1;
      ch.lastmsgreceived = id;
      ch.known = true;
      Meteor.log('Received channel info for channel ' + channel + ': resume from ' + id);
    },

    pollmode: function () {
      Meteor.log('Ping timeout');
      Meteor.mode = 'smartpoll';
      clearTimeout(Meteor.pingtimer);
      Meteor.pingtimer = null;
      fire('changemode', 'poll');
      Meteor.lastpingtime = false;
      Meteor.connect();
    },

    frameloadtimeout: function () {
      Meteor.log('Frame load timeout');
      clearTimeout(Meteor.frameloadtimer);
      Meteor.frameloadtimer = null;
      Meteor.setstatus(3);
      Meteor.pollmode();
    },

    updatepollfreq: function () {
      var t = now();
      var times = Meteor.recvtimes;
      var avg = 0;
      for (var i = 1; i < times.length; i++) avg += times[i] - times[i - 1];
      avg += t - times[times.length - 1];
      avg /= times.length;
      var target = avg / 2;
      if (target < Meteor.pollfreq && Meteor.pollfreq > Meteor.minpollfreq) Meteor.pollfreq = Math.ceil(Meteor.pollfreq * 0.9);
      if (target > Meteor.pollfreq && Meteor.pollfreq < Meteor.maxpollfreq) Meteor.pollfreq = Math.floor(Meteor.pollfreq * 1.05);
    },

    selectStreamTransport: function () {
      return 'xhrinteractive';
    },

    /** The legacy subscription URL: /push/<hostid>/<mode>/<channel specs>. */
    getSubsUrl: function () {
      var url = serverBase() + '/push/' + Meteor.hostid + '/' + Meteor.mode;
      for (var c in Meteor.channels) {
        if (!has(Meteor.channels, c)) continue;
        var ch = Meteor.channels[c];
        url += '/' + c;
        if (ch.delivered >= 0 || (ch.known && ch.lastmsgreceived > 0)) {
          url += '.r' + (Math.max(ch.delivered, ch.known ? ch.lastmsgreceived : -1) + 1);
        } else if (ch.known) {
          // the server said 0: the channel is empty or holds just id 0;
          // ask from 0 and let the id check drop a repeat
          url += '.r0';
        } else if (ch.backtrack > 0) {
          url += '.b' + ch.backtrack;
        } else if (ch.backtrack < 0 || isNaN(ch.backtrack)) {
          url += '.h';
        }
      }
      url += '?nc=' + now();
      return Meteor.token ? url + '&token=' + encodeURIComponent(Meteor.token) : url;
    },

    loadFrame: function (url) {
      if (!Meteor.frameref || !Meteor.frameref.parentNode) {
        var ifr = doc.createElement('iframe');
        ifr.style.width = '10px';
        ifr.style.height = '10px';
        ifr.style.border = 'none';
        ifr.style.position = 'absolute';
        ifr.style.top = '-10px';
        ifr.style.marginTop = '-10px';
        ifr.style.zIndex = '-20';
        ifr.setAttribute('aria-hidden', 'true');
        ifr.Meteor = Meteor;
        (doc.body || doc.documentElement).appendChild(ifr);
        Meteor.frameref = ifr;
      }
      Meteor.frameref.setAttribute('src', url);
      Meteor.log("Loading URL '" + url + "' into frame...");
      clearTimeout(Meteor.frameloadtimer);
      Meteor.frameloadtimer = setTimeout(Meteor.frameloadtimeout, 5000);
    },

    extract_xss_domain: function (oldDomain) {
      if (/^(\d{1,3}\.){3}\d{1,3}$/.test(oldDomain)) return oldDomain;
      return oldDomain.split('.').slice(-2).join('.');
    },

    setstatus: function (newstatus) {
      if (Meteor.status !== newstatus) {
        Meteor.status = newstatus;
        fire('statuschanged', newstatus);
      }
    },

    log: function (logstr) {
      if (Meteor.debugmode && global.console) global.console.log(logstr);
    },

    _modern: null,

    _defaultBase: function () {
      return scriptUrl ? scriptUrl.replace(/[^\/]*([?#].*)?$/, '') : '';
    },

    /** meteor.mjs tells where it was loaded from (modules have no currentScript). */
    _setScriptUrl: function (url) {
      if (!scriptUrl) scriptUrl = String(url);
    }
  };

  function fire(evt, arg) {
    var fn = Meteor.callbacks[evt];
    if (typeof fn === 'function') callSafely(fn, Meteor.callbacks, arguments.length > 1 ? [arg] : []);
  }

  function serverBase() {
    var scheme = Meteor.scheme || 'http';
    var port = Number(Meteor.port);
    var defaultPort = scheme === 'https' ? 443 : 80;
    return scheme + '://' + Meteor.host + (port === defaultPort ? '' : ':' + port);
  }

  function legacyStart(ch) {
    if (ch.cursor !== null && ch.cursor !== undefined) return { after: ch.cursor };
    if (ch.delivered >= 0) return { after: ch.delivered };
    if (ch.backtrack > 0) return { last: ch.backtrack };
    if (ch.backtrack < 0 || isNaN(ch.backtrack)) return { history: true };
    return {};
  }

  // The modern transports to use, or null for the legacy /push modes.
  function modernChain() {
    var t = Meteor.transport;
    if (t && typeof t === 'object' && t.length !== undefined) return transportChain(t).length ? transportChain(t) : null;
    t = String(t || 'auto').toLowerCase();
    if (t === 'legacy') return null;
    if (t === 'auto') {
      if (Meteor.mode && Meteor.mode !== 'stream') return null;
      var chain = transportChain('auto');
      return chain.length ? chain : null;
    }
    var forced = transportChain(t);
    return forced.length ? forced : null;
  }

  function connectModern(chain) {
    var c = new Client({
      url: serverBase(),
      hostid: Meteor.hostid,
      transport: chain,
      pingTimeout: Meteor.pingtimeout,
      token: Meteor.token,
      tokenProvider: Meteor.tokenProvider && function (channels) {
        return Promise.resolve(Meteor.tokenProvider(channels)).then(function (token) {
          Meteor.token = token;
          return token;
        });
      },
      connect: false
    });
    Meteor._modern = c;
    Meteor.connection = c;
    var current = function () { return Meteor._modern === c; };
    // 4 ("ready") once the server has every channel: a message published
    // from then on reaches the page
    var ready = function () {
      if (!current() || c.status !== 'open' || (Meteor.status !== 1 && Meteor.status !== 3)) return;
      for (var n in c._subs) if (has(c._subs, n) && !c._subs[n].active) return;
      Meteor.setstatus(4);
    };
    c.on('status', function (status) {
      if (!current()) return;
      if (status === 'connecting') Meteor.setstatus(1);
      else if (status === 'open') ready();
    });
    c.on('subscribed', ready);
    c.on('drop', function (info) {
      if (!current()) return;
      Meteor.log('Stream dropped: ' + info.reason);
      if (info.opened) fire('reset');
      else Meteor.setstatus(3);
    });
    c.on('transport', function (name, reason) {
      if (!current()) return;
      Meteor.log('Transport ' + name + ' (' + reason + ')');
      if (name === 'poll' && reason !== 'selected') fire('changemode', 'poll');
    });
    c.on('ping', function () {
      if (current()) Meteor.setstatus(5);
    });
    c.on('message', function (m) {
      if (!current() || !has(Meteor.channels, m.channel)) return;
      var ch = Meteor.channels[m.channel];
      ch.lastmsgreceived = m.id;
      ch.delivered = m.id;
      fire('process', decodeLegacyText(m.text));
      Meteor.setstatus(5);
    });
    for (var name in Meteor.channels) {
      if (has(Meteor.channels, name)) c.subscribe(name, legacyStart(Meteor.channels[name]));
    }
    c.connect();
  }

  function connectLegacy(t) {
    if (Meteor.mode === 'stream') Meteor.mode = Meteor.selectStreamTransport();
    Meteor.log('Selected ' + Meteor.mode + ' transport');
    // Frames from the server's host name reach this page only when both set
    // document.domain to the name they share. A page on the server's own
    // origin needs nothing (iframe mode's template sets it regardless).
    if (Meteor.mode === 'iframe' || !loc || Meteor.host !== loc.hostname ||
        String(Meteor.port) !== String(loc.port || (loc.protocol === 'https:' ? 443 : 80)) ||
        Meteor.scheme + ':' !== loc.protocol) {
      try {
        doc.domain = Meteor.extract_xss_domain(doc.domain);
      } catch (e) {
        Meteor.log('Cannot set document.domain: ' + e);
      }
    }
    var base = serverBase();
    if (Meteor.mode === 'xhrinteractive' || Meteor.mode === 'iframe' || Meteor.mode === 'serversent') {
      Meteor.loadFrame(Meteor.mode === 'iframe' ? Meteor.getSubsUrl() : base + '/stream.html');
      clearTimeout(Meteor.pingtimer);
      Meteor.pingtimer = setTimeout(Meteor.pollmode, Meteor.pingtimeout);
    } else {
      Meteor.loadFrame(base + '/poll.html');
      Meteor.recvtimes = [t];
      clearTimeout(Meteor.updatepollfreqtimer);
      Meteor.updatepollfreqtimer = null;
      if (Meteor.mode === 'smartpoll') Meteor.updatepollfreqtimer = setInterval(Meteor.updatepollfreq, 2500);
      if (Meteor.mode === 'longpoll') Meteor.pollfreq = Meteor.minpollfreq;
    }
  }

  function removeFrame() {
    var ifr = Meteor.frameref;
    Meteor.frameref = null;
    if (!ifr) return;
    // Not from inside the frame's own call (eof): let its script finish.
    setTimeout(function () {
      if (ifr.parentNode) ifr.parentNode.removeChild(ifr);
    }, 0);
  }

  if (global.addEventListener) global.addEventListener('pagehide', function () { Meteor.disconnect(); });

  global.Meteor = Meteor;
})(typeof globalThis !== 'undefined' ? globalThis : typeof window !== 'undefined' ? window : this);
