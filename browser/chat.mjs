// chat.mjs drives Debian's chromium (through playwright-core) against the
// lab's chat page: two users talk, a third with a taken name is refused.
// Usage: node chat.mjs URL SPKI_HASH SCREENSHOT. It prints one JSON line of
// what the pages showed and exits non-zero on a failure.
import { chromium } from 'playwright-core';

const [url, spki, shot] = process.argv.slice(2);
if (!url) { console.error('usage: node chat.mjs URL [SPKI_SHA256_BASE64] [SCREENSHOT]'); process.exit(2); }
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
if (spki) args.push('--ignore-certificate-errors-spki-list=' + spki);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
const out = {};
try {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 700 } });
  // Nothing may come from anywhere but the lab.
  const origin = new URL(url).origin;
  const foreign = [];
  ctx.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith(origin.replace(/^http/, 'ws'))) foreign.push(r.url()); });
  const join = async (name, age) => {
    const p = await ctx.newPage();
    await p.goto(url);
    await p.fill('#join input[name=name]', name);
    if (age) await p.fill('#join input[name=age]', String(age));
    await p.press('#join input[name=name]', 'Enter');
    return p;
  };
  const alice = await join('alice', 30);
  await alice.waitForSelector('#status:has-text("Connected as alice")', { timeout: 10000 });
  const bob = await join('bob', 25);
  await bob.waitForSelector('#status:has-text("Connected as bob")', { timeout: 10000 });
  await alice.waitForSelector('#log >> text=bob joined (age 25)', { timeout: 10000 });
  await alice.fill('#say input[name=text]', 'hello bob, from the browser');
  await alice.press('#say input[name=text]', 'Enter');
  await bob.waitForSelector('#log >> text=alice: hello bob, from the browser', { timeout: 10000 });
  await bob.fill('#say input[name=text]', 'hi alice');
  await bob.press('#say input[name=text]', 'Enter');
  await alice.waitForSelector('#log >> text=bob: hi alice', { timeout: 10000 });
  await alice.waitForFunction(() => document.querySelectorAll('#members li').length === 2, null, { timeout: 10000 });
  out.members = await alice.$$eval('#members li', (lis) => lis.map((li) => li.textContent));
  out.bobLog = await bob.textContent('#log');
  out.aliceLog = await alice.textContent('#log');
  const dup = await join('alice', 0);
  await dup.waitForSelector('#status:has-text("Refused")', { timeout: 10000 });
  out.refused = await dup.textContent('#status');
  if (shot) await alice.screenshot({ path: shot, fullPage: true });
  out.foreign = foreign;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
