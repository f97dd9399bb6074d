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
  const bar = document.getElementById('upload-progress');
  if (form && check && status) {
    form.addEventListener('submit', e => {
      if (!window.XMLHttpRequest || !window.FormData || !bar) {
        check.disabled = true;
        status.textContent = check.dataset.waiting || '';
        return;
      }
      // Sent here, so that the bar can show the upload going.
      e.preventDefault();
      check.disabled = true;
      bar.hidden = false;
      bar.value = 0;
      status.textContent = check.dataset.uploading || '';
      const request = new XMLHttpRequest();
      request.open('POST', form.action);
      request.upload.addEventListener('progress', ev => {
        if (ev.lengthComputable) bar.value = ev.loaded / ev.total;
      });
      request.upload.addEventListener('load', () => {
        bar.value = 1;
        status.textContent = check.dataset.waiting || '';
      });
      request.addEventListener('load', () => {
        if (request.status < 400 && request.responseURL) {
          window.location.assign(request.responseURL);
        } else {
          document.open();
          document.write(request.responseText);
          document.close();
        }
      });
      // No answer (a refused, too large file, or a lost network): said,
      // never sent again on its own.
      request.addEventListener('error', () => {
        check.disabled = false;
        bar.hidden = true;
        status.textContent = check.dataset.failed || '';
      });
      request.send(new FormData(form));
    });
  }
}

function progress() {
  const line = document.getElementById('progress');
  if (!line || !line.dataset.job) return;
  const job = encodeURIComponent(line.dataset.job);
  async function poll() {
    try {
      // In the language the page was drawn in (its cookie, or the browser's).
      const answer = await fetch('/jobs/' + job + '/progress', { credentials: 'same-origin' });
      // A job the server no longer knows: nothing more to follow.
      if (!answer.ok) return;
      const p = await answer.json();
      if (p.started) line.textContent = p.text;
      if (p.done) {
        // Rendered while the run went on: once more, with its files.
        if (line.dataset.running === 'yes') {
          window.location.reload();
          return;
        }
        line.dataset.done = 'yes';
        const stop = document.getElementById('stop-form');
        if (stop) stop.hidden = true;
        return;
      }
    } catch (e) {
      // A lost poll: the next one tries again.
    }
    setTimeout(poll, 500);
  }
  poll();
}

// Times in the clerk's own time zone and language; the server's local
// minute stays where the script does not run.
function localTimes() {
  const lang = document.documentElement.lang || 'en';
  document.querySelectorAll('time[datetime]').forEach(node => {
    const at = new Date(node.dateTime);
    if (isNaN(at)) return;
    node.textContent = at.toLocaleString(lang, { dateStyle: 'medium', timeStyle: 'short' });
  });
}

// The language links keep the page's own query (a past run's, say).
function languageLinks() {
  document.querySelectorAll('nav a[data-lang]').forEach(link => {
    const url = new URL(window.location.href);
    url.searchParams.set('lang', link.dataset.lang);
    link.href = url.pathname + url.search;
  });
}

// Typing a new sandbox profile's name chooses "a new sandbox profile".
function newProfile() {
  const name = document.getElementById('new-profile');
  const profile = document.getElementById('profile');
  if (!name || !profile) return;
  name.addEventListener('input', () => {
    if (name.value.trim() !== '') profile.value = '';
  });
}

document.addEventListener('DOMContentLoaded', () => {
  dropZone();
  newProfile();
  progress();
  localTimes();
  languageLinks();
});
