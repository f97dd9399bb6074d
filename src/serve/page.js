// The page's script, served as /static/page.js so that the
// Content-Security-Policy can forbid inline scripts. What it needs from a
// page comes in data attributes, which the server escapes like any HTML.
'use strict';

function dropZone() {
  const drop = document.getElementById('drop');
  const file = document.getElementById('file');
  if (!drop || !file) return;
  drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', e => {
    e.preventDefault();
    drop.classList.remove('over');
    file.files = e.dataTransfer.files;
  });
  const form = document.getElementById('upload');
  const check = document.getElementById('check');
  const status = document.getElementById('upload-status');
  if (form && check && status) {
    form.addEventListener('submit', () => {
      check.disabled = true;
      status.textContent = check.dataset.waiting || '';
    });
  }
}

function progress() {
  const line = document.getElementById('progress');
  if (!line || !line.dataset.job) return;
  const job = encodeURIComponent(line.dataset.job);
  const started = Date.now();
  async function poll() {
    const answer = await fetch('/jobs/' + job + '/progress', { credentials: 'same-origin' });
    const p = await answer.json();
    if (!p.started) return;
    const seconds = (Date.now() - started) / 1000;
    const rate = p.requests / Math.max(seconds, 0.001);
    const left = Math.max(p.valid - p.settled, 0);
    const eta = rate > 0 ? Math.round(left / rate) + ' s' : '–';
    line.textContent =
      `${p.settled} / ${p.valid} · S ${p.S} F ${p.F} U ${p.U} · ${rate.toFixed(1)}/s · ETA ${eta}` +
      (p.waiting_since ? ' · ' + (line.dataset.waiting || '') + ' ' + p.waiting_since : '') +
      (p.done ? (p.error ? ' · ' + p.error : ' · exit ' + p.exit_code) : '');
    if (p.done) { line.dataset.done = 'yes'; return; }
    setTimeout(poll, 500);
  }
  poll();
}

document.addEventListener('DOMContentLoaded', () => { dropZone(); progress(); });
