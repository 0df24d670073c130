// meteord admin UI: small progressive enhancements. Every page works
// without this file; it adds local times, confirmations, the copy button,
// live table filtering, the legacy-escaping warning and the live dashboard.
(() => {
  'use strict';

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  // ---- formatting -------------------------------------------------------

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

  function localTimes(root) {
    for (const el of $$('time[data-unix]', root)) {
      const date = new Date(Number(el.dataset.unix) * 1000);
      el.dateTime = date.toISOString();
      el.title = el.textContent; // the UTC form the server wrote
      el.textContent = dateFormat.format(date);
    }
  }

  function rate(n) {
    return n < 10 && n % 1 !== 0 ? n.toFixed(1) : Math.round(n).toString();
  }

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let unit = 0;
    while (n >= 1024 && unit < units.length - 1) { n /= 1024; unit += 1; }
    return unit === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[unit]}`;
  }

  function duration(secs) {
    const d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24;
    const m = Math.floor(secs / 60) % 60, s = secs % 60;
    if (d > 0) return `${d}d ${h}h`;
    if (h > 0) return `${h}h ${m}m`;
    if (m > 0) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function andList(items) {
    return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
  }

  // ---- confirmations and copying -----------------------------------------

  document.addEventListener('submit', (event) => {
    const form = event.target.closest('form[data-confirm]');
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  for (const button of $$('[data-copy]')) {
    button.addEventListener('click', async () => {
      const input = document.getElementById(button.dataset.copy);
      const status = $('#copy-status');
      input.focus();
      input.select();
      let copied = false;
      try {
        await navigator.clipboard.writeText(input.value);
        copied = true;
      } catch {
        try { copied = document.execCommand('copy'); } catch { copied = false; }
      }
      if (status) status.textContent = copied ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C (or ⌘C) to copy.';
    });
  }

  // ---- channel list filter -------------------------------------------------

  const filter = $('input[data-filter-table]');
  const filterTable = filter && document.getElementById(filter.dataset.filterTable);
  if (filterTable) {
    const rows = $$('tbody tr', filterTable);
    const status = $('#filter-status');
    const initial = status ? status.textContent : '';
    filter.addEventListener('input', () => {
      const q = filter.value.trim().toLowerCase();
      let shown = 0;
      for (const row of rows) {
        const match = !q || row.dataset.name.toLowerCase().includes(q);
        row.hidden = !match;
        if (match) shown += 1;
      }
      if (status) status.textContent = q ? `${shown} of ${rows.length} channels shown.` : initial;
    });
  }

  // ---- server settings: filter and "only changed" ---------------------------
  // The page filters on the server too (?q=, ?changed=1); with every row on
  // the page this filters as you type, else it asks the server again.

  const settingsFilter = $('#settings-filter');
  if (settingsFilter) {
    const form = $('#settings-filter-form');
    const changedOnly = $('#changed-only');
    const count = $('#settings-count');
    const total = Number(form.dataset.total);
    const rows = $$('tr[data-search]');
    const groups = $$('section[data-topic]');
    let timer = null;
    const apply = () => {
      if (rows.length < total) {
        clearTimeout(timer);
        timer = setTimeout(() => form.submit(), 400);
        return;
      }
      const q = settingsFilter.value.trim().toLowerCase();
      let shown = 0;
      for (const row of rows) {
        const match = (!q || row.dataset.search.includes(q)) && (!changedOnly.checked || row.dataset.changed === '1');
        row.hidden = !match;
        if (match) shown += 1;
      }
      for (const group of groups) {
        const any = $$('tr[data-search]', group).some((row) => !row.hidden);
        group.hidden = !any;
        const link = $(`[data-topic-link="${group.dataset.topic}"]`);
        if (link) link.hidden = !any;
      }
      const none = $('#settings-none-live');
      if (none) none.hidden = shown > 0;
      count.textContent = shown === total ? `${total} settings.` : `${shown} of ${total} settings shown.`;
      const url = new URL(window.location.href);
      if (q) url.searchParams.set('q', settingsFilter.value.trim()); else url.searchParams.delete('q');
      if (changedOnly.checked) url.searchParams.set('changed', '1'); else url.searchParams.delete('changed');
      window.history.replaceState(null, '', url);
    };
    settingsFilter.addEventListener('input', apply);
    changedOnly.addEventListener('change', apply);
  }

  // ---- legacy escaping warning ----------------------------------------------
  // The same rules as src/admin/legacy.rs.

  function legacyProblems(text) {
    const problems = [];
    if (text.includes('"')) problems.push('a double quote (")');
    if (text.includes('\\')) problems.push('a backslash (\\)');
    if (/[\r\n]/.test(text)) problems.push('a line break');
    if (text.toLowerCase().includes('</script')) problems.push('</script>');
    if (/[\u2028\u2029]/.test(text)) problems.push('a Unicode line or paragraph separator (U+2028/U+2029)');
    return problems;
  }

  const messageText = $('#text');
  const escape = $('#escape');
  const warning = $('#legacy-warning');
  if (messageText && escape && warning) {
    const update = () => {
      const problems = legacyProblems(messageText.value);
      if (problems.length === 0) {
        warning.hidden = true;
        warning.textContent = '';
        return;
      }
      warning.hidden = false;
      if (escape.checked) {
        warning.className = 'notice notice-info';
        warning.textContent = `The text contains ${andList(problems)}; it will be escaped so legacy pages receive it intact.`;
      } else {
        warning.className = 'notice notice-warn';
        warning.textContent = `Unescaped, this text breaks legacy <script> pages (iframe, xhrinteractive…): it contains ${andList(problems)}. Turn escaping on unless the text is already escaped.`;
      }
    };
    messageText.addEventListener('input', update);
    escape.addEventListener('change', update);
    update();
  }

  // ---- live dashboard ----------------------------------------------------

  const live = $('#live[data-live]');
  if (live && window.EventSource) {
    const HISTORY_MS = 300 * 1000;
    const samples = [];
    const statusEl = $('#live-status');
    const charts = $$('canvas[data-series]').map((canvas) => ({
      canvas,
      series: canvas.dataset.series.split(' '),
      bytes: canvas.dataset.unit === 'bytes',
    }));

    const setStatus = (state, text) => {
      if (!statusEl) return;
      statusEl.dataset.state = state;
      $('.live-text', statusEl).textContent = text;
    };

    const setText = (selector, text) => {
      for (const el of $$(selector)) el.textContent = text;
    };

    const show = (s) => {
      setText('[data-stat="subscribers"]', String(s.subscribers));
      setText('[data-stat="channels"]', String(s.channels));
      setText('[data-stat="messages_per_s"]', rate(s.messages_per_s));
      setText('[data-stat="delivered_per_s"]', rate(s.delivered_per_s));
      setText('[data-stat="bytes_out_per_s"]', `${bytes(s.bytes_out_per_s)}/s`);
      setText('[data-stat="bytes_in_per_s"]', `${bytes(s.bytes_in_per_s)}/s`);
      setText('[data-stat="uptime"]', duration(s.uptime));
      for (const el of $$('[data-transport]')) el.textContent = String(s.by_transport[el.dataset.transport] || 0);
      const p = s.persistence;
      if (p) {
        const alert = $('#persist-alert');
        if (alert) {
          alert.hidden = !p.last_error;
          $('#persist-alert-text').textContent = p.last_error || '';
        }
        const lastError = $('#persist-last-error');
        if (lastError) {
          lastError.textContent = p.last_error || 'none';
          lastError.className = p.last_error ? 'text-bad' : '';
        }
        const lastWrite = $('#persist-last-write');
        if (lastWrite && p.last_write) {
          lastWrite.innerHTML = '';
          const time = document.createElement('time');
          time.dataset.unix = String(p.last_write);
          time.textContent = new Date(p.last_write * 1000).toISOString();
          lastWrite.append(time);
          localTimes(lastWrite);
        }
      }
    };

    const niceCeiling = (v) => {
      if (v <= 1) return 1;
      const magnitude = 10 ** Math.floor(Math.log10(v));
      for (const step of [1, 2, 5, 10]) if (v <= step * magnitude) return step * magnitude;
      return 10 * magnitude;
    };

    const draw = () => {
      const style = getComputedStyle(document.documentElement);
      const colors = [style.getPropertyValue('--chart-a').trim(), style.getPropertyValue('--chart-b').trim()];
      const grid = style.getPropertyValue('--chart-grid').trim();
      const muted = style.getPropertyValue('--muted').trim();
      const now = samples.length ? samples[samples.length - 1].t : Date.now();
      for (const chart of charts) {
        const { canvas } = chart;
        const ratio = window.devicePixelRatio || 1;
        const width = canvas.clientWidth;
        const height = canvas.clientHeight;
        if (!width || !height) continue;
        canvas.width = Math.round(width * ratio);
        canvas.height = Math.round(height * ratio);
        const ctx = canvas.getContext('2d');
        ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
        ctx.clearRect(0, 0, width, height);
        let max = 0;
        for (const s of samples) for (const key of chart.series) max = Math.max(max, s[key] || 0);
        const top = niceCeiling(max);
        const label = (v) => (chart.bytes ? `${bytes(v)}/s` : `${rate(v)}/s`);
        ctx.font = '11px system-ui, sans-serif';
        const left = Math.max(...[0, 0.5, 1].map((f) => ctx.measureText(label(top * f)).width)) + 10;
        const plot = { x: left, y: 8, w: width - left - 4, h: height - 26 };
        ctx.strokeStyle = grid;
        ctx.fillStyle = muted;
        ctx.lineWidth = 1;
        ctx.textAlign = 'right';
        ctx.textBaseline = 'middle';
        for (const fraction of [0, 0.5, 1]) {
          const y = Math.round(plot.y + plot.h * (1 - fraction)) + 0.5;
          ctx.beginPath();
          ctx.moveTo(plot.x, y);
          ctx.lineTo(plot.x + plot.w, y);
          ctx.stroke();
          ctx.fillText(label(top * fraction), plot.x - 6, y);
        }
        ctx.textBaseline = 'top';
        ctx.textAlign = 'left';
        ctx.fillText('5 min ago', plot.x, plot.y + plot.h + 6);
        ctx.textAlign = 'right';
        ctx.fillText('now', plot.x + plot.w, plot.y + plot.h + 6);
        chart.series.forEach((key, index) => {
          ctx.strokeStyle = colors[index % colors.length];
          ctx.lineWidth = 2;
          ctx.lineJoin = 'round';
          ctx.beginPath();
          let started = false;
          for (const s of samples) {
            const age = now - s.t;
            if (age > HISTORY_MS) continue;
            const x = plot.x + plot.w * (1 - age / HISTORY_MS);
            const y = plot.y + plot.h * (1 - (s[key] || 0) / top);
            if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
          }
          ctx.stroke();
        });
      }
    };

    const source = new EventSource(live.dataset.live);
    source.addEventListener('open', () => setStatus('live', 'Live'));
    source.addEventListener('error', () => setStatus('error', 'Reconnecting…'));
    source.addEventListener('history', (event) => {
      samples.splice(0, samples.length, ...JSON.parse(event.data));
      draw();
    });
    source.addEventListener('message', (event) => {
      const sample = JSON.parse(event.data);
      samples.push(sample);
      while (samples.length && sample.t - samples[0].t > HISTORY_MS) samples.shift();
      setStatus('live', 'Live');
      show(sample);
      draw();
    });
    window.addEventListener('resize', draw);
    window.addEventListener('pagehide', () => source.close());
    draw();
  }

  localTimes(document);
})();
