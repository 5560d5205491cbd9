// loggr-web in headless Chromium (Debian's `chromium`), driven by playwright-core.
//
//   node tests/browser/web.mjs BASE_URL USER PASSWORD OUT_DIR
//   (or env LOGGR_WEB_URL, LOGGR_WEB_USER, LOGGR_WEB_PASSWORD, LOGGR_BROWSER_ARTIFACTS)
//
// Walks through the frontend as a user does: login (a wrong password first), status, the
// events page, a query with every filter, keyset paging, an event page, the CSV and JSON
// lines exports, log messages carrying `<script>` and `javascript:` (shown as text, never run
// nor linked), logout. Saves a PNG screenshot per step into OUT_DIR (the names are listed in
// SCREENSHOTS; loggr-web/tests/browser.rs checks them). Exits 1 with the failed assertion on
// stderr at the first failure, 2 on a usage or setup error.
//
// The data set is the one loggr-web/tests/browser.rs inserts (page_size 5): see FIXTURE.
// Install the dependencies with `bash scripts/services.sh` (Debian's chromium, then `npm ci`
// here); browsers are never downloaded.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** The screenshots this script writes, in order. */
export const SCREENSHOTS = [
  '01-login.png',
  '02-login-wrong-password.png',
  '03-events.png',
  '04-status.png',
  '05-query-filtered.png',
  '06-query-filtered-page2.png',
  '07-paging-page1.png',
  '08-paging-page2.png',
  '09-event.png',
  '10-export-csv.png',
  '11-export-jsonl.png',
  '12-xss-list.png',
  '13-xss-event.png',
  '14-logout.png',
];

/** What the test data set holds (mirrors loggr-web/tests/browser.rs). */
const FIXTURE = {
  pageSize: 5,
  // The filter form, as typed into it.
  filters: {
    from: '2026-11-19',
    to: '2026-11-19',
    host: 'web2',
    program: 'sshd',
    severity: 'warning',
    tag: 'auth_failure',
    q: 'FAILED password',
  },
  // How many events match every filter (more than a page: the filters must follow paging).
  filteredCount: 7,
  // A search that finds the hostile messages.
  hostileQuery: '__pwned',
  hostileScript: '<script>window.__pwned=1</script>',
  hostileLink: '<a href="javascript:alert(1)">javascript:alert(1)</a>',
};

const SEVERITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  // Without these, chromium waits on network services that a closed network never answers.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

class AssertionFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new AssertionFailed(message);
}

function checkEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  check(a === e, `${message}: expected ${e}, got ${a}`);
}

const [baseArg, userArg, passwordArg, outArg] = process.argv.slice(2);
const base = (baseArg ?? process.env.LOGGR_WEB_URL ?? '').replace(/\/$/, '');
const user = userArg ?? process.env.LOGGR_WEB_USER;
const password = passwordArg ?? process.env.LOGGR_WEB_PASSWORD;
const outDir = outArg ?? process.env.LOGGR_BROWSER_ARTIFACTS;
if (!base || !user || !password || !outDir) {
  console.error('usage: node web.mjs BASE_URL USER PASSWORD OUT_DIR');
  process.exit(2);
}
const executablePath = process.env.LOGGR_CHROMIUM ?? '/usr/bin/chromium';

let step = 'start';

async function shot(page, name) {
  check(SCREENSHOTS.includes(name), `unlisted screenshot ${name}`);
  await page.screenshot({ path: join(outDir, name), fullPage: true });
}

/** The rows of the events table: id, time, host, program, severity, message, tags. */
async function rows(page) {
  return page.$$eval('table.events tbody tr', (trs) =>
    trs
      .filter((tr) => tr.querySelector('a[href^="/events/"]'))
      .map((tr) => {
        const td = tr.querySelectorAll('td');
        return {
          id: Number(td[0].querySelector('a').getAttribute('href').slice('/events/'.length)),
          time: td[0].textContent.trim(),
          host: td[1].textContent.trim(),
          program: td[2].textContent.trim(),
          severity: td[3].textContent.trim(),
          message: td[4].textContent,
          tags: [...td[5].querySelectorAll('.tag')].map((s) => s.textContent),
        };
      }),
  );
}

function matchesFilters(row) {
  const f = FIXTURE.filters;
  const t = Date.parse(row.time);
  return (
    t >= Date.parse(`${f.from}T00:00:00Z`) &&
    t < Date.parse('2026-11-20T00:00:00Z') &&
    row.host === f.host &&
    row.program === f.program &&
    SEVERITIES.indexOf(row.severity) >= 0 &&
    SEVERITIES.indexOf(row.severity) <= SEVERITIES.indexOf(f.severity) &&
    row.tags.includes(f.tag) &&
    row.message.toLowerCase().includes(f.q.toLowerCase())
  );
}

function checkNewestFirst(list, what) {
  for (let i = 1; i < list.length; i++) {
    const [a, b] = [list[i - 1], list[i]];
    const ta = Date.parse(a.time);
    const tb = Date.parse(b.time);
    check(ta > tb || (ta === tb && a.id > b.id), `${what}: not newest first at ${a.id}, ${b.id}`);
  }
}

/** Every link and form target of the page: none may be `javascript:`. */
async function checkNoScriptUrls(page, what) {
  const targets = await page.$$eval('[href], [src], [action], [formaction]', (els) =>
    els.flatMap((el) =>
      ['href', 'src', 'action', 'formaction']
        .map((a) => el.getAttribute(a))
        .filter((v) => v !== null),
    ),
  );
  const bad = targets.filter((v) => /^\s*javascript:/i.test(v));
  checkEqual(bad, [], `${what}: javascript: URLs in the page`);
  checkEqual(await page.locator('a[href^="javascript:" i]').count(), 0, `${what}: <a href="javascript:`);
  checkEqual(await page.locator('script').count(), 0, `${what}: <script> elements in the DOM`);
  checkEqual(await page.evaluate(() => typeof window.__pwned), 'undefined', `${what}: window.__pwned`);
}

async function exportPage(context, text, name) {
  const view = await context.newPage();
  await view.setContent('<pre style="font: 12px monospace; white-space: pre-wrap"></pre>');
  await view.$eval('pre', (pre, t) => {
    pre.textContent = t;
  }, text);
  await shot(view, name);
  await view.close();
}

async function run() {
  await mkdir(outDir, { recursive: true });
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 60_000 });
  const dialogs = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    page.on('dialog', async (dialog) => {
      dialogs.push(dialog.message());
      await dialog.dismiss();
    });
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(String(error)));

    step = 'login page';
    await page.goto(`${base}/events`);
    check(new URL(page.url()).pathname === '/login', `without a session /events leads to ${page.url()}`);
    checkEqual(await page.locator('h1').textContent(), 'Log in', 'login page title');
    await shot(page, '01-login.png');

    step = 'wrong password';
    await page.fill('input[name=username]', user);
    await page.fill('input[name=password]', `${password}-wrong`);
    await page.click('form.login button[type=submit]');
    await page.waitForLoadState();
    checkEqual(new URL(page.url()).pathname, '/login', 'a wrong password stays on /login');
    checkEqual(
      (await page.locator('p.error').textContent())?.trim(),
      'Wrong user name or password.',
      'the login error',
    );
    await shot(page, '02-login-wrong-password.png');

    step = 'login';
    await page.fill('input[name=username]', user);
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForURL(`${base}/events`), page.click('form.login button[type=submit]')]);
    check(
      (await page.locator('header form.logout span').textContent()).includes(user),
      'the header names the user',
    );

    step = 'events page';
    const first = await rows(page);
    checkEqual(first.length, FIXTURE.pageSize, 'a full first page');
    checkNewestFirst(first, 'first page');
    check(await page.locator('a[rel=next]').isVisible(), 'the first page links to the next');
    await shot(page, '03-events.png');

    step = 'status page';
    await page.click('header nav a[href="/status"]');
    await page.waitForURL(`${base}/status`);
    checkEqual(await page.locator('h1').textContent(), 'Status', 'status page title');
    const status = await page.locator('table.fields').textContent();
    check(/Store\s*(postgres|sqlite), reachable/.test(status), `status shows the store reachable: ${status}`);
    check(status.includes('Events (estimate)'), 'status shows the event estimate');
    check(status.includes('Newest event received'), 'status shows the newest event');
    // The watched daemon (browser.rs's fake) lists three clients of five open connections;
    // one peer address is hostile HTML, shown as text.
    const clientRows = () => page.$$eval('#clients tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    const expectedClients = [
      ['relay', 'relp_in', '10.1.2.3:40000', 'relp', '2026-11-21T10:00:00Z'],
      ['relay', 'relp_in', '[2001:db8::1]:40001', 'relp+tls', '2026-11-21T10:05:00Z'],
      ['relay', 'tcp_in', FIXTURE.hostileScript, 'tcp', '2026-11-21T10:06:00Z'],
      ['relay', '2 more, not listed'],
    ];
    checkEqual(await clientRows(), expectedClients, 'connected clients, server-rendered');
    // Marks the server-rendered rows: status.js replaces them with its own.
    await page.evaluate(() => {
      document.querySelectorAll('#clients tr').forEach((tr) => { tr.dataset.old = '1'; });
    });
    step = 'status live update';
    // status.js opens /status/stream (EventSource, allowed by the CSP's connect-src 'self')
    // and marks the page live once a snapshot arrived.
    await page.waitForFunction(
      () => document.getElementById('live')?.textContent.startsWith('Live:'),
      null,
      { timeout: 10000 },
    );
    await page.waitForFunction(
      () => document.querySelector('#clients tr') && !document.querySelector('#clients tr[data-old]'),
      null,
      { timeout: 10000 },
    );
    checkEqual(await clientRows(), expectedClients, 'connected clients, live');
    checkEqual(await page.locator('#clients script').count(), 0, 'no <script> in the clients table');
    checkEqual(await page.evaluate(() => typeof window.__pwned), 'undefined', 'status page: window.__pwned');
    check(
      /Store\s*(postgres|sqlite), reachable/.test(await page.locator('table.fields').textContent()),
      'the live update keeps the store reachable',
    );
    await shot(page, '04-status.png');

    step = 'query with filters';
    await page.click('header nav a[href="/events"]');
    await page.waitForURL(`${base}/events`);
    for (const [name, value] of Object.entries(FIXTURE.filters)) {
      await page.fill(`form.filters input[name=${name}]`, value);
    }
    await Promise.all([page.waitForURL(/\/events\?/), page.click('form.filters button[type=submit]')]);
    for (const [name, value] of Object.entries(FIXTURE.filters)) {
      checkEqual(await page.inputValue(`form.filters input[name=${name}]`), value, `the form keeps ${name}`);
    }
    const filtered1 = await rows(page);
    checkEqual(filtered1.length, FIXTURE.pageSize, 'a full first filtered page');
    for (const row of filtered1) check(matchesFilters(row), `row ${JSON.stringify(row)} does not match the filters`);
    checkNewestFirst(filtered1, 'filtered page');
    const filteredUrl = page.url();
    await shot(page, '05-query-filtered.png');

    step = 'filtered paging';
    const nextHref = await page.locator('a[rel=next]').getAttribute('href');
    check(nextHref.includes('host=web2') && nextHref.includes('tag=auth_failure'), `the next link keeps the filters: ${nextHref}`);
    await Promise.all([page.waitForURL(/cursor=/), page.click('a[rel=next]')]);
    const filtered2 = await rows(page);
    checkEqual(filtered2.length, FIXTURE.filteredCount - FIXTURE.pageSize, 'the rest on the second filtered page');
    for (const row of filtered2) check(matchesFilters(row), `page 2 row ${JSON.stringify(row)} does not match the filters`);
    const filteredIds = [...filtered1, ...filtered2].map((r) => r.id);
    checkEqual(new Set(filteredIds).size, FIXTURE.filteredCount, 'filtered pages do not overlap');
    checkNewestFirst([...filtered1, ...filtered2], 'filtered pages');
    checkEqual(await page.locator('a[rel=next]').count(), 0, 'no next link after the last page');
    await shot(page, '06-query-filtered-page2.png');

    step = 'paging';
    await page.goto(`${base}/events`);
    const page1 = await rows(page);
    await shot(page, '07-paging-page1.png');
    await Promise.all([page.waitForURL(/cursor=/), page.click('a[rel=next]')]);
    const page2 = await rows(page);
    checkEqual(page2.length, FIXTURE.pageSize, 'a full second page');
    const overlap = page2.filter((r) => page1.some((p) => p.id === r.id));
    checkEqual(overlap, [], 'pages 1 and 2 overlap');
    checkNewestFirst([...page1, ...page2], 'pages 1 and 2');
    await shot(page, '08-paging-page2.png');
    await page.goBack();
    checkEqual((await rows(page)).map((r) => r.id), page1.map((r) => r.id), 'back shows page 1 again');

    step = 'event page';
    await page.goto(filteredUrl);
    const target = filtered1[0];
    await Promise.all([page.waitForURL(`${base}/events/${target.id}`), page.click(`a[href="/events/${target.id}"]`)]);
    checkEqual(await page.locator('h1').textContent(), `Event ${target.id}`, 'event page title');
    const fields = Object.fromEntries(
      await page.$$eval('table.fields tr', (trs) =>
        trs.map((tr) => [tr.querySelector('th')?.textContent, tr.querySelector('td')?.textContent]),
      ),
    );
    checkEqual(fields.id, String(target.id), 'event id');
    checkEqual(fields.hostname, target.host, 'event hostname');
    checkEqual(fields.program, target.program, 'event program');
    checkEqual(fields.logtime, target.time, 'event logtime');
    checkEqual(fields.severity, `${SEVERITIES.indexOf(target.severity)} (${target.severity})`, 'event severity');
    check(/^[0-9a-f]{64}$/.test(fields.digest ?? ''), `event digest: ${fields.digest}`);
    checkEqual(await page.locator('pre.message').textContent(), target.message, 'event message');
    const tags = await page.locator('span.tag').allTextContents();
    checkEqual(tags, [...target.tags].sort(), 'event tags');
    check(tags.includes(FIXTURE.filters.tag), 'the event page shows the tag');
    await shot(page, '09-event.png');

    step = 'export';
    await page.goto(filteredUrl);
    const csvHref = await page.locator('p.exports a', { hasText: 'CSV' }).getAttribute('href');
    const jsonlHref = await page.locator('p.exports a', { hasText: 'JSON lines' }).getAttribute('href');
    check(csvHref.startsWith('/events.csv?') && csvHref.includes('host=web2'), `CSV link keeps the filters: ${csvHref}`);
    check(jsonlHref.startsWith('/events.jsonl?') && jsonlHref.includes('tag=auth_failure'), `JSONL link: ${jsonlHref}`);
    // The context's request client shares the page's cookies (its session). An in-page
    // fetch() would be refused by the frontend's CSP (`default-src 'none'`), as it should.
    const csv = await context.request.get(`${base}${csvHref}`);
    checkEqual(csv.status(), 200, 'CSV export status');
    check(csv.headers()['content-type'].startsWith('text/csv'), 'CSV content type');
    check(csv.headers()['content-disposition'].includes('events.csv'), 'CSV is an attachment');
    const csvText = await csv.text();
    const csvLines = csvText.split('\r\n').join('\n').split('\n').filter((l) => l !== '');
    checkEqual(csvLines[0], 'id,logtime,received_at,hostname,program,pid,facility,severity,message,tags', 'CSV header');
    checkEqual(csvLines.length - 1, FIXTURE.filteredCount, 'CSV rows');
    checkEqual(
      csvLines.slice(1).map((l) => Number(l.split(',')[0])),
      filteredIds,
      'CSV rows are the filtered events, in page order',
    );
    for (const line of csvLines.slice(1)) {
      check(line.includes(',web2,sshd,') && line.includes('auth_failure'), `CSV row: ${line}`);
    }
    await exportPage(context, csvText, '10-export-csv.png');
    const jsonl = await context.request.get(`${base}${jsonlHref}`);
    checkEqual(jsonl.status(), 200, 'JSONL export status');
    check(jsonl.headers()['content-type'].startsWith('application/x-ndjson'), 'JSONL content type');
    const jsonlText = await jsonl.text();
    const records = jsonlText.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
    checkEqual(records.map((r) => r.id), filteredIds, 'JSONL records are the filtered events');
    for (const r of records) {
      check(r.hostname === 'web2' && r.program === 'sshd' && r.tags.includes('auth_failure'), `JSONL record: ${JSON.stringify(r)}`);
      check(r.severity <= 4 && /failed password/i.test(r.message), `JSONL record: ${JSON.stringify(r)}`);
    }
    await exportPage(context, jsonlText, '11-export-jsonl.png');

    step = 'hostile messages';
    await page.goto(`${base}/events?q=${encodeURIComponent(FIXTURE.hostileQuery)}`);
    const hostile = await rows(page);
    check(hostile.length >= 1, 'the hostile messages are listed');
    const shown = hostile.map((r) => r.message).join('\n');
    check(shown.includes(FIXTURE.hostileScript), `the <script> is shown as text: ${shown}`);
    check(shown.includes(FIXTURE.hostileLink), `the javascript: link is shown as text: ${shown}`);
    await page.getByText(FIXTURE.hostileScript).first().waitFor({ state: 'visible' });
    await checkNoScriptUrls(page, 'list');
    await page.goto(`${base}/events?q=${encodeURIComponent('javascript:alert(1)')}`);
    const plain = await rows(page);
    check(plain.some((r) => r.message.trim() === 'javascript:alert(1)'), 'the bare javascript: message is listed');
    await checkNoScriptUrls(page, 'javascript: search');
    await page.goto(`${base}/events?q=${encodeURIComponent(FIXTURE.hostileQuery)}`);
    await shot(page, '12-xss-list.png');
    await Promise.all([
      page.waitForURL(`${base}/events/${hostile[0].id}`),
      page.click(`a[href="/events/${hostile[0].id}"]`),
    ]);
    const message = await page.locator('pre.message').textContent();
    check(message.includes(FIXTURE.hostileScript) && message.includes(FIXTURE.hostileLink), `event page message: ${message}`);
    const raw = await page.locator('pre.raw').textContent();
    check(raw.includes(FIXTURE.hostileScript), `event page raw: ${raw}`);
    const hostileTags = await page.locator('span.tag').allTextContents();
    check(hostileTags.includes('javascript:alert(1)') && hostileTags.includes('<b>bold</b>'), `tags as text: ${hostileTags}`);
    checkEqual(await page.locator('span.tag b').count(), 0, 'a tag`s markup is not rendered');
    await checkNoScriptUrls(page, 'event page');
    await shot(page, '13-xss-event.png');
    checkEqual(dialogs, [], 'dialogs opened');
    checkEqual(pageErrors, [], 'page errors');

    step = 'logout';
    await Promise.all([page.waitForURL(`${base}/login`), page.click('header form.logout button[type=submit]')]);
    await page.goto(`${base}/status`);
    checkEqual(new URL(page.url()).pathname, '/login', 'after logout /status leads to');
    await page.goto(filteredUrl);
    checkEqual(new URL(page.url()).pathname, '/login', 'after logout a query leads to');
    const refused = await context.request.get(`${base}${csvHref}`);
    checkEqual(refused.status(), 401, 'after logout the export answers');
    await shot(page, '14-logout.png');
  } finally {
    await browser.close();
  }
}

try {
  await run();
  console.log(`web.mjs: all steps passed; ${SCREENSHOTS.length} screenshots in ${outDir}`);
} catch (error) {
  if (error instanceof AssertionFailed) {
    console.error(`web.mjs: FAILED at step "${step}": ${error.message}`);
  } else {
    console.error(`web.mjs: ERROR at step "${step}": ${error?.stack ?? error}`);
  }
  process.exit(1);
}
