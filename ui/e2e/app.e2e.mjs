// End-to-end test of the real Cairn window, through tauri-driver (W3C WebDriver on :4444,
// which starts WebKitWebDriver and the app). Plain WebDriver HTTP calls from Node: no
// test-runner dependencies. Run by `scripts/app.sh e2e`, which sets the environment below.
//
//   CAIRN_APP         path of the cairn-app binary
//   CAIRN_CLI         path of the cairn CLI (to check what the app recorded)
//   CAIRN_DATA_DIR    the (temporary) data directory the app opens
//   E2E_FOLDER        the small real folder the test adds
//   E2E_OPENER_LOG    file the stand-in `xdg-open` appends its arguments to
//   E2E_SHOTS         where the screenshots go (docs/screenshots)
//   WEBDRIVER_URL     default http://127.0.0.1:4444
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const env = (k, d) => process.env[k] ?? d ?? (() => { throw new Error(`${k} is not set`); })();
const WD = env('WEBDRIVER_URL', 'http://127.0.0.1:4444');
const APP = env('CAIRN_APP');
const CLI = env('CAIRN_CLI');
const DATA = env('CAIRN_DATA_DIR');
const FOLDER = env('E2E_FOLDER');
const OPENER_LOG = env('E2E_OPENER_LOG');
const SHOTS = env('E2E_SHOTS');
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

let session = null;
const results = [];
const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`, ...a);

async function wd(method, path, body) {
  const url = session && !path.startsWith('/session') ? `${WD}/session/${session}${path}` : `${WD}${path}`;
  const r = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j.value ?? j).slice(0, 300)}`);
  return j.value;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 30000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? ` (${last.message})` : ''}`);
}

async function findAll(xpath) {
  const els = await wd('POST', '/elements', { using: 'xpath', value: xpath });
  return els.map((e) => e[ELEMENT]);
}
async function find(xpath, timeoutMs = 15000) {
  return waitFor(`element ${xpath}`, async () => (await findAll(xpath))[0], timeoutMs);
}
const click = async (id) => wd('POST', `/element/${id}/click`, {});
const text = async (id) => wd('GET', `/element/${id}/text`);
const typeInto = async (id, s) => wd('POST', `/element/${id}/value`, { text: s });
const bodyText = async () => wd('POST', '/execute/sync', { script: 'return document.body.innerText', args: [] });

async function screen(name) {
  const b = await find(`//nav//button[contains(normalize-space(.), '${name}')]`);
  await click(b);
  await find(`//nav//button[@aria-current='page' and contains(normalize-space(.), '${name}')]`);
}

async function shot(file) {
  await sleep(400); // let transitions and charts settle
  const png = await wd('GET', '/screenshot');
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(join(SHOTS, file), Buffer.from(png, 'base64'));
  log(`screenshot ${join(SHOTS, file)}`);
}

async function step(name, fn) {
  const s = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    log(`ok   ${name} (${((Date.now() - s) / 1000).toFixed(1)}s)`);
  } catch (e) {
    results.push({ name, ok: false, error: e.message });
    log(`FAIL ${name}: ${e.message}`);
    try {
      await shot(`failed-${name.replace(/\W+/g, '-')}.png`);
    } catch {}
    throw e;
  }
}

function cli(...args) {
  return JSON.parse(execFileSync(CLI, ['--data-dir', DATA, '--json', ...args], { encoding: 'utf8' }));
}

const QUESTION = 'When does the Lantern Harbor ferry leave in winter?';

async function main() {
  session = (
    await wd('POST', '/session', {
      capabilities: { alwaysMatch: { browserName: 'wry', 'tauri:options': { application: APP } } },
    })
  ).sessionId;
  log(`session ${session}`);
  try {
    await wd('POST', '/window/rect', { width: 1280, height: 800 });
  } catch (e) {
    log(`window/rect not applied: ${e.message}`);
  }

  await step('the app starts on Ask, connected to the shell', async () => {
    await find(`//nav[@aria-label='Screens']`, 30000);
    const t = await bodyText();
    if (t.includes('Run inside the Cairn app')) throw new Error('the UI does not see the shell');
  });

  await step('add the folder by typing its path', async () => {
    await screen('Library');
    const field = await find(`//input[@id='typed-folder']`);
    await typeInto(field, FOLDER);
    await click(await find(`//form//button[@type='submit' and normalize-space(.)='Add']`));
    await find(`//*[contains(., 'Added ${FOLDER}')]`);
  });

  let sawProgress = false;
  await step('watch its progress until the folder is indexed', async () => {
    await waitFor(
      'the folder indexed (passages counted, nothing pending)',
      async () => {
        if ((await findAll(`//*[@role='progressbar']`)).length) sawProgress = true;
        const t = await bodyText();
        const m = t.match(/(\d+) indexed\s+([\d,]+) passages?/);
        return m && Number(m[1]) > 0 && Number(m[2].replace(/,/g, '')) > 0 && !/\d+ pending/.test(t) && !sawProgressNow(t) && m;
      },
      180000,
      100,
    );
    log(`progress bar seen while indexing: ${sawProgress}`);
    const t = await bodyText();
    log(`library: ${t.match(/\d+ files?\s+\d+ indexed\s+[\d,]+ passages?/)?.[0]}`);
  });
  await shot('library.png');

  let answerText = '';
  await step('ask a question and get a streamed answer with its cost', async () => {
    await screen('Ask');
    const q = await find(`//textarea[@aria-label='Question']`);
    await typeInto(q, QUESTION);
    await click(await find(`//button[@type='submit' and normalize-space(.)='Ask']`));
    const cost = await find(`//span[@title='What this answer cost']`, 180000);
    log(`answer cost: ${await text(cost)}`);
    answerText = await bodyText();
  });

  await step('open a citation: the system opener gets the file', async () => {
    const cites = await findAll(`//button[contains(@class,'cite')]`);
    // The small local model does not always cite: then the Sources panel lists the passages it
    // was given, each with its own Open button.
    const target =
      cites[0] ??
      (await find(`//aside[@aria-label='Sources']//li[contains(., 'ferry.md')]//button[normalize-space(.)='Open']`));
    log(cites.length ? `clicking inline citation [${await text(cites[0])}]` : 'no inline citation; Open on ferry.md in Sources');
    await click(target);
    await find(`//*[@role='status' and starts-with(normalize-space(.), 'Opened')]`);
    const opened = await waitFor('the opener to be called', async () =>
      existsSync(OPENER_LOG) && readFileSync(OPENER_LOG, 'utf8').trim(),
    );
    log(`opener called with: ${opened}`);
    if (!opened.includes(FOLDER)) throw new Error(`opener got ${opened}, not a file under ${FOLDER}`);
  });

  await step('give feedback: thumbs up on the answer, "useful" on a source', async () => {
    await click(await find(`//button[@aria-label='Good answer']`));
    await click(await find(`//aside[@aria-label='Sources']//button[@title='This source helped']`));
    await sleep(800);
    if ((await findAll(`//button[@aria-label='Good answer' and @aria-pressed='true']`)).length === 0)
      log('the thumbs-up button does not show as pressed');
  });
  await shot('ask.png');

  await step('see the cost: the local call at $0.00 with its tokens', async () => {
    await screen('Costs');
    await waitFor('a cost row', async () => {
      const t = await bodyText();
      return /\$0\.00/.test(t) && /input tokens/.test(t);
    });
    const rows = await findAll(`//table//tbody//tr`);
    if (!rows.length) throw new Error('no rows in the cost table');
    // Columns: group, calls, input tokens, output tokens, cost, ...
    const cells = [];
    for (const td of await findAll(`//table//tbody//tr[1]/td`)) cells.push((await text(td)).trim());
    log(`cost row: ${cells.join(' | ')}`);
    const n = (s) => Number(String(s).replace(/,/g, ''));
    if (!(n(cells[1]) >= 1)) throw new Error(`no call counted: ${cells.join(' | ')}`);
    if (!(n(cells[2]) > 0 && n(cells[3]) > 0)) throw new Error(`no tokens: ${cells.join(' | ')}`);
    if (!cells[4]?.startsWith('$0.00')) throw new Error(`cost is not $0.00: ${cells.join(' | ')}`);
  });
  await shot('costs.png');

  await step('Settings screen', async () => {
    await screen('Settings');
    await find(`//h1[contains(., 'Settings')]`);
  });
  await shot('settings.png');

  await step('Review screen', async () => {
    await screen('Review');
    await find(`//h1[contains(., 'Review')]`);
  });
  await shot('review.png');

  await wd('DELETE', `/session/${session}`).catch(() => {});
  session = null;
  await sleep(1500);

  await step('the judgements are recorded (cairn history)', async () => {
    const h = cli('history');
    const rows = Array.isArray(h) ? h : h.events ?? h.history ?? h.rows ?? [];
    const ask = rows.find((r) => JSON.stringify(r).includes('Lantern Harbor'));
    if (!ask) throw new Error(`no history entry for the question: ${JSON.stringify(h).slice(0, 400)}`);
    log(`history: ${JSON.stringify(ask).slice(0, 300)}`);
    const s = JSON.stringify(ask);
    const n = Number(s.match(/"(?:judgements|feedback|signals)"\s*:\s*(\d+)/)?.[1] ?? NaN);
    if (!(n >= 3)) throw new Error(`expected at least 3 judgements (up, useful, opened), got ${n}`);
  });
}

// A progress bar still on screen means the pass is not over.
function sawProgressNow(t) {
  return /\d+ \/ \d+ files/.test(t);
}

try {
  await main();
} catch (e) {
  if (session) await wd('DELETE', `/session/${session}`).catch(() => {});
}
const failed = results.filter((r) => !r.ok);
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
process.exit(failed.length || results.length < 9 ? 1 : 0);
