// End-to-end tests: serve the release build (dist/) on a loopback port, open it in headless
// Chromium as a student would, check what renders, and save screenshots under target/e2e/.
// Any console error or uncaught exception fails the test it happened in.
// Prints one line per test and a closing "e2e: N passed, N failed" line; exits 1 on failure.
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { serveStatic } from './static-server.mjs';
import { launchChromium } from './browser.mjs';

const DIST = process.env.DIST_DIR || 'dist';
const SHOTS = 'target/e2e';

if (!existsSync(`${DIST}/index.html`)) {
  console.error(`e2e: ${DIST}/index.html is missing; run \`trunk build --release\` first`);
  process.exit(1);
}
await mkdir(SHOTS, { recursive: true });

const server = await serveStatic(DIST);
const browser = await launchChromium();
const results = [];

/** Opens the app in a fresh context and returns the page and the errors seen so far. */
async function openApp(contextOptions) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  page.on('requestfailed', (request) => errors.push(`request failed: ${request.url()}`));
  // Sum of layout shifts, as Lighthouse's CLS counts them, from the very first paint.
  await page.addInitScript(() => {
    window.__layoutShift = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (!entry.hadRecentInput) window.__layoutShift += entry.value;
      }
    }).observe({ type: 'layout-shift', buffered: true });
  });
  await page.goto(server.url, { waitUntil: 'load' });
  // The controls exist only once the Yew app has mounted.
  await page.waitForSelector('.controls button', { timeout: 20000 });
  return { context, page, errors };
}

async function test(name, body) {
  try {
    await body();
    results.push({ name, ok: true });
    console.log(`ok   ${name}`);
  } catch (error) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}\n     ${String(error?.stack || error).split('\n').join('\n     ')}`);
  }
}

async function checkShell(page) {
  assert.match(await page.title(), /SMTP Lab/);
  assert.equal(await page.textContent('h1'), 'SMTP Lab');
  const description = await page.getAttribute('meta[name="description"]', 'content');
  assert.ok(description && description.length > 40, 'meta description present');
  assert.ok(await page.$('link[rel="icon"]'), 'favicon link present');
  for (const region of ['topology', 'conversation', 'details', 'controls']) {
    const box = await page.locator(`.region-${region}`).boundingBox();
    assert.ok(box && box.width > 100 && box.height > 40, `region ${region} is visible: ${JSON.stringify(box)}`);
  }
  assert.ok(await page.locator('svg.topology').isVisible(), 'topology diagram visible');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling (overflow ${overflow}px)`);
  const shift = await page.evaluate(() => window.__layoutShift);
  assert.ok(shift < 0.05, `no layout shift when the app mounts (CLS ${shift})`);
}

const sizes = [
  { name: 'desktop', viewport: { width: 1280, height: 800 } },
  // A browser window on a 1366x768 screen or projector, below its tabs and address bar.
  { name: 'projector', viewport: { width: 1366, height: 657 } },
  // The same window zoomed to 125%, as a teacher does for the back of the room.
  { name: 'zoomed', viewport: { width: 1093, height: 526 } },
  // An old projector or a small laptop window.
  { name: 'small', viewport: { width: 800, height: 600 } },
  // A 1280x720 projector zoomed to 150%, and a phone held sideways.
  { name: 'projector-150', viewport: { width: 853, height: 480 } },
  { name: 'landscape', viewport: { width: 844, height: 390 }, isMobile: true, hasTouch: true },
  // A 360x740 phone held sideways: too narrow for the picker and the buttons to share a row.
  { name: 'landscape-narrow', viewport: { width: 740, height: 360 }, isMobile: true, hasTouch: true },
  { name: 'phone', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
  { name: 'narrow', viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true },
  // A full-HD projector or screen: larger text, and still the whole lab in the window.
  { name: 'full-hd', viewport: { width: 1920, height: 1080 } },
  { name: 'full-hd-window', viewport: { width: 1920, height: 940 } },
];

for (const size of sizes) {
  await test(`shell renders without errors at ${size.name} size (${size.viewport.width}x${size.viewport.height})`, async () => {
    const { context, page, errors } = await openApp({
      viewport: size.viewport,
      isMobile: size.isMobile,
      hasTouch: size.hasTouch,
      colorScheme: 'light',
    });
    try {
      await checkShell(page);
      if (size.name === 'phone') {
        // On a phone the controls come right after the topology, within reach, and each
        // step's explanation right after them.
        const topology = await page.locator('.region-topology').boundingBox();
        const controls = await page.locator('.region-controls').boundingBox();
        const details = await page.locator('.region-details').boundingBox();
        assert.ok(controls.y > topology.y && controls.y < topology.y + topology.height + 40, 'controls under the topology');
        assert.ok(details.y > controls.y && details.y < controls.y + controls.height + 40, 'details under the controls');
      }
      if (['desktop', 'projector', 'zoomed', 'small', 'projector-150', 'landscape', 'landscape-narrow', 'full-hd', 'full-hd-window'].includes(size.name)) {
        // The whole lab fits the window: the controls stay on screen.
        const height = await page.evaluate(() => document.documentElement.scrollHeight - window.innerHeight);
        assert.ok(height <= 0, `no vertical scrolling (${height}px too tall)`);
        const play = await page.locator('.controls button:has-text("Play")').boundingBox();
        assert.ok(play && play.y + play.height <= size.viewport.height, `the Play button is on screen: ${JSON.stringify(play)}`);
      }
      if (['desktop', 'projector', 'full-hd', 'full-hd-window'].includes(size.name)) {
        // In a short or a wide window the scenario picker and the buttons share a row, near
        // the step number, rather than a picker across the width over the buttons.
        const picker = await page.locator('#scenario-select').boundingBox();
        const play = await page.locator('.controls button:has-text("Play")').boundingBox();
        const middle = (box) => box.y + box.height / 2;
        assert.ok(Math.abs(middle(picker) - middle(play)) < 4, `picker ${JSON.stringify(picker)} and Play ${JSON.stringify(play)} share a row`);
      }
      await page.screenshot({ path: `${SHOTS}/${size.name}.png`, fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
}

await test("text grows on a full-HD screen and follows the browser's text size", async () => {
  const textSizes = async (viewport, defaultFontPx) => {
    const { context, page, errors } = await openApp({ viewport, colorScheme: 'light' });
    try {
      if (defaultFontPx) {
        // The browser's own setting for text size (Settings > Appearance > Font size).
        const cdp = await context.newCDPSession(page);
        await cdp.send('Page.setFontSizes', { fontSizes: { standard: defaultFontPx, fixed: defaultFontPx } });
      }
      await page.goto(`${server.url}#scenario=greylisting&step=55`);
      await page.waitForSelector('.region-conversation [aria-current]', { timeout: 20000 });
      const sizes = await page.evaluate(() => ({
        root: parseFloat(getComputedStyle(document.documentElement).fontSize),
        wire: parseFloat(getComputedStyle(document.querySelector('.region-conversation [aria-current]')).fontSize),
        details: parseFloat(getComputedStyle(document.querySelector('.region-details')).fontSize),
      }));
      const overflow = await page.evaluate(() => document.documentElement.scrollHeight - window.innerHeight);
      assert.ok(overflow <= 0, `the lab fits the window at ${JSON.stringify(viewport)} (${overflow}px too tall)`);
      assert.deepEqual(errors, []);
      return sizes;
    } finally {
      await context.close();
    }
  };
  const laptop = await textSizes({ width: 1280, height: 800 });
  const projector = await textSizes({ width: 1920, height: 1080 });
  const larger = await textSizes({ width: 1280, height: 800 }, 20);
  assert.equal(laptop.root, 16, 'a browser with the default text size gets 16 px');
  assert.ok(projector.root >= 1.2 * laptop.root, `text grows on a full-HD screen: ${JSON.stringify({ laptop, projector })}`);
  assert.ok(projector.wire > laptop.wire && projector.details > laptop.details, `the wire and the details grow: ${JSON.stringify({ laptop, projector })}`);
  assert.equal(larger.root, 20, `the browser's larger text size is followed: ${JSON.stringify(larger)}`);
  assert.ok(larger.wire > laptop.wire, `the wire follows it too: ${JSON.stringify({ laptop, larger })}`);
});

await test('dark theme follows prefers-color-scheme', async () => {
  const background = async (colorScheme) => {
    const { context, page, errors } = await openApp({ viewport: { width: 1280, height: 800 }, colorScheme });
    try {
      const color = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
      if (colorScheme === 'dark') await page.screenshot({ path: `${SHOTS}/desktop-dark.png` });
      assert.deepEqual(errors, []);
      return color;
    } finally {
      await context.close();
    }
  };
  const light = await background('light');
  const dark = await background('dark');
  assert.notEqual(light, dark, 'dark and light backgrounds differ');
  const luminance = (rgb) => rgb.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b, 0);
  assert.ok(luminance(dark) < luminance(light), `dark is darker: ${dark} vs ${light}`);
});

await test('page shows the product and its purpose before the wasm loads', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, javaScriptEnabled: false });
  const page = await context.newPage();
  try {
    await page.goto(server.url);
    assert.equal(await page.textContent('h1'), 'SMTP Lab');
    assert.match(await page.textContent('.masthead-tagline'), /SMTP command/);
    assert.ok(await page.locator('.region-topology').isVisible());
  } finally {
    await context.close();
  }
  // On a phone, the page's regions stand in the order the app will render them in, so that
  // nothing moves when it mounts.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, javaScriptEnabled: false });
  try {
    const page = await phone.newPage();
    await page.goto(server.url);
    const tops = await page.evaluate(() => ['topology', 'controls', 'details', 'conversation']
      .map((region) => document.querySelector(`.region-${region}`).getBoundingClientRect().top));
    assert.deepEqual([...tops].sort((a, b) => a - b), tops, `regions from the top: ${tops}`);
  } finally {
    await phone.close();
  }
});

for (const size of sizes.filter((s) => !['narrow', 'small'].includes(s.name))) {
  await test(`a student runs a scenario, plays it and steps back (${size.name})`, async () => {
    const { context, page, errors } = await openApp({
      viewport: size.viewport,
      isMobile: size.isMobile,
      hasTouch: size.hasTouch,
    });
    try {
      await page.selectOption('#scenario-select', { label: 'Unknown user refused at RCPT' });
      await page.waitForSelector('.controls-position:has-text("Step 0 of")');
      assert.match(await page.textContent('.region-details'), /nobody@receiver\.test does not exist/);
      // The teaching text is a paragraph, and the way to the first failure a row of buttons.
      const display = (selector) => page.$eval(selector, (e) => getComputedStyle(e).display);
      assert.equal(await display('.details-text'), 'block');
      assert.equal(await display('.details-failures'), 'flex');
      // Play a little: the timer moves the cursor on its own.
      await page.click('button:has-text("Play")');
      await page.waitForFunction(() => document.querySelectorAll('.conversation-log .line').length > 3);
      await page.click('button:has-text("Pause")');
      await page.click('button[title="To the end"]');
      const log = await page.textContent('.conversation-log');
      assert.match(log, /S: 550 5\.1\.1 User unknown/);
      assert.match(log, /bounced by mail\.sender\.test/);
      // Step back to the refusal and read its explanation.
      const lines = await page.$$eval('.conversation-log .line', (items) => items.map((i) => i.textContent));
      const total = Number((await page.textContent('.controls-position')).match(/of (\d+)/)[1]);
      assert.ok(total > 10 && lines.length > total, `${lines.length} lines for ${total} steps`);
      let found = false;
      for (let guard = 0; guard < total; guard += 1) {
        const current = await page.$$eval('.line-current', (items) => items.map((i) => i.textContent).join('\n'));
        if (current.includes('S: 550 5.1.1')) {
          found = true;
          break;
        }
        await page.click('button[title="Step back"]');
      }
      assert.ok(found, 'stepping back reaches the 550 5.1.1 refusal');
      assert.equal(await page.locator('.topology-link-active').count(), 1, 'the relay hop is highlighted');
      const details = await page.textContent('.region-details');
      const explained = await page.textContent('.region-details .explanation');
      assert.match(explained, /550 5\.1\.1/);
      assert.match(details, /RFC 5321/);
      // On a phone the conversation is below the details: they repeat the step's own line,
      // so that the student sees what is explained. Wider, the conversation is beside them.
      const echo = page.locator('.details-step-lines');
      if (size.viewport.width <= 720) {
        assert.ok(await echo.isVisible(), 'the step\'s line is over its explanation');
        assert.match(await echo.textContent(), /S: 550 5\.1\.1 User unknown/);
      } else {
        assert.ok(!(await echo.isVisible()), 'the step\'s line is shown once, in the conversation');
      }
      // A line's time and actor sit nearer its own text than the text of the line above,
      // where they head the text (narrow) or beside it (wide).
      const misplaced = await page.$$eval('.conversation-log .line', (items) => {
        const box = (line, part) => line.querySelector(part)?.getBoundingClientRect();
        const found = [];
        for (let i = 1; i < items.length; i += 1) {
          const [time, text, above] = [box(items[i], '.line-time'), box(items[i], '.line-text'), box(items[i - 1], '.line-text')];
          if (!time || !text || !above) continue;
          const toOwn = text.top - time.bottom;
          const toAbove = time.top - above.bottom;
          if (toOwn >= toAbove) found.push(`${items[i].textContent}: ${toOwn} px to its text, ${toAbove} px to the one above`);
        }
        return found;
      });
      assert.deepEqual(misplaced, []);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling (overflow ${overflow}px)`);
      await page.screenshot({ path: `${SHOTS}/${size.name}-scenario.png`, fullPage: size.name === 'phone' });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
}

await test('the diagram draws the parties of the scenario and marks those of the step', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1280, height: 800 } });
  try {
    // Relay denied: the user agent uses port 25, not the submission port.
    await page.selectOption('#scenario-select', { label: 'Relay denied' });
    await page.waitForSelector('.controls-position:has-text("Step 0 of")');
    const diagram = await page.textContent('svg.topology');
    assert.match(diagram, /SMTP :25/);
    assert.doesNotMatch(diagram, /SMTP :587/);
    for (let step = 0; step < 3; step += 1) await page.click('button[title="Step forward"]');
    assert.equal(await page.locator('.topology-link-active').count(), 1, 'the connection is marked');
    // A scripted client is drawn as itself.
    await page.selectOption('#scenario-select', { label: 'An SMTP smuggling attempt, refused' });
    await page.waitForSelector('.controls-position:has-text("Step 0 of")');
    assert.match(await page.textContent('svg.topology'), /mallory/);
    await page.screenshot({ path: `${SHOTS}/desktop-topology.png` });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test("the browser's Back returns to the scenario picked before, not past it", async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1280, height: 800 } });
  try {
    const chosen = () => page.$eval('#scenario-select', (select) => select.selectedOptions[0].text);
    const addressNames = (name) => page.waitForFunction((name) => window.location.hash.includes(`scenario=${name}`), name);
    await page.selectOption('#scenario-select', { label: 'Greylisting' });
    await addressNames('greylisting');
    // Steps within one scenario do not each become a page to go back through.
    await page.click('.controls button[aria-label="Step forward"]');
    await page.click('.controls button[aria-label="Step forward"]');
    await page.waitForFunction(() => window.location.hash.includes('step=2'));
    await page.selectOption('#scenario-select', { label: 'Relay denied' });
    await addressNames('relay-denied');
    await page.goBack();
    await addressNames('greylisting');
    await page.waitForSelector('.controls-position:has-text("Step 2 of")');
    assert.equal(await chosen(), 'Greylisting');
    await page.goForward();
    await addressNames('relay-denied');
    await page.waitForFunction(() => document.querySelector('#scenario-select').selectedOptions[0].text === 'Relay denied');
    // A message written and sent is a page of its own too: Back returns to the scenario it
    // was written in, Forward to the message.
    await page.selectOption('#scenario-select', { label: 'Write a message…' });
    await page.waitForSelector('dialog.compose[open] #compose-subject');
    await page.fill('#compose-subject', 'Once more');
    await page.click('.compose button.primary');
    // Sent, the message plays; taken to its end, it stands still and the address holds its
    // link.
    await page.waitForSelector('.region-details:has-text("Your message, in")');
    await page.click('button[title="To the end"]');
    await page.waitForFunction(() => document.querySelector('.controls button.play').textContent === 'Play');
    await page.waitForFunction(() => window.location.hash.includes('subject=Once%20more')
      && /^Step (\d+) of \1$/.test(document.querySelector('.controls-position').textContent));
    assert.equal(await chosen(), 'Your message, in “Relay denied”');
    await page.goBack();
    await page.waitForFunction(() => window.location.hash.startsWith('#scenario=relay-denied') && !window.location.hash.includes('subject='));
    await page.waitForFunction(() => document.querySelector('#scenario-select').selectedOptions[0].text === 'Relay denied');
    await page.goForward();
    await page.waitForFunction(() => window.location.hash.includes('subject=Once%20more'));
    await page.waitForFunction(() => document.querySelector('#scenario-select').selectedOptions[0].text === 'Your message, in “Relay denied”');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('a class tries seed after seed where MX hosts share a preference, and Back returns to the seed before', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1280, height: 800 } });
  try {
    const hosts = () => page.$$eval('.topology-node text', (texts) => texts.map((text) => text.textContent));
    await page.selectOption('#scenario-select', { label: 'MX preference, load sharing, implicit MX' });
    await page.waitForFunction(() => window.location.hash === '#scenario=mx-lookup&step=0');
    assert.equal(await page.inputValue('#run-seed'), '7');
    assert.ok((await hosts()).includes('mx2.b.test'), 'seed 7 sends a message to mx2');
    // Typed and sent with Enter: the run is made again, the focus stays in the field, and
    // the arrow keys there edit the text rather than step.
    await page.fill('#run-seed', '1');
    await page.press('#run-seed', 'Enter');
    await page.waitForFunction(() => window.location.hash === '#scenario=mx-lookup&seed=1&step=0');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'run-seed');
    // Below the teaching text, the field is still in sight in the details' box.
    const inSight = await page.evaluate(() => {
      const field = document.querySelector('#run-seed').getBoundingClientRect();
      const box = document.querySelector('.details-body').getBoundingClientRect();
      return field.top >= box.top && field.bottom <= box.bottom;
    });
    assert.ok(inSight, 'the seed field is in sight after the run is made again');
    assert.ok(!(await hosts()).includes('mx2.b.test'), 'seed 1 sends every message to mx1');
    await page.press('#run-seed', 'ArrowRight');
    assert.match(await page.textContent('.controls-position'), /^Step 0 of/);
    await page.click('button:has-text("Try the next seed")');
    await page.waitForFunction(() => window.location.hash === '#scenario=mx-lookup&seed=2&step=0');
    assert.equal(await page.inputValue('#run-seed'), '2');
    // The button pressed keeps the focus, and the whole form is in sight for the next press.
    const formInSight = await page.evaluate(() => {
      const form = document.querySelector('.details-seed').getBoundingClientRect();
      const box = document.querySelector('.details-body').getBoundingClientRect();
      return form.top >= box.top && form.bottom <= box.bottom;
    });
    assert.ok(formInSight, 'the seed form is in sight after Try the next seed');
    // The run's own seed asked for again is said, not made again in silence, and makes no
    // page of the history.
    await page.fill('#run-seed', ' 2 ');
    await page.press('#run-seed', 'Enter');
    await page.waitForSelector('.details-seed [role="status"]:has-text("That is this run\'s seed already")');
    assert.equal(await page.evaluate(() => window.location.hash), '#scenario=mx-lookup&seed=2&step=0');
    // What is no seed is said under the field, marked, and the run stays.
    await page.fill('#run-seed', 'twelve');
    await page.press('#run-seed', 'Enter');
    await page.waitForSelector('#run-seed-problem');
    assert.match(await page.textContent('#run-seed-problem'), /^“twelve” is not a seed/);
    assert.equal(await page.getAttribute('#run-seed', 'aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => window.location.hash), '#scenario=mx-lookup&seed=2&step=0');
    // Each seed is a page of the history: Back returns to the one before, then to the own.
    await page.goBack();
    await page.waitForFunction(() => window.location.hash === '#scenario=mx-lookup&seed=1&step=0');
    await page.waitForFunction(() => document.querySelector('#run-seed').value === '1');
    await page.goBack();
    await page.waitForFunction(() => window.location.hash === '#scenario=mx-lookup&step=0');
    await page.waitForFunction(() => document.querySelector('#run-seed').value === '7');
    assert.ok((await hosts()).includes('mx2.b.test'));
    await page.screenshot({ path: `${SHOTS}/seed.png` });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('the focus stays in the details when the bytes it was on go', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1280, height: 800 } });
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=basic-delivery&step=24'; });
    await page.waitForSelector('.wire summary');
    await page.focus('.wire summary');
    let gone = false;
    for (let step = 0; step < 40 && !gone; step += 1) {
      await page.keyboard.press('ArrowRight');
      gone = (await page.$('.wire')) === null;
    }
    assert.ok(gone, 'a step without bytes within 40 steps');
    const focused = await page.evaluate(() => document.activeElement.className);
    assert.equal(focused, 'details-body', 'the focus fell to the page');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('on a projector the diagram can be made larger, and back, the conversation and the buttons still in sight', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1366, height: 657 } });
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=two-domains&step=30'; });
    await page.waitForSelector('.controls-position:has-text("Step 30 of")');
    // After two frames: the log scrolls its step back into sight from a ResizeObserver, whose
    // callback runs at the next frame after a layout change, as the user sees it.
    const measure = () => page.evaluate(async () => {
      await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      const label = document.querySelector('.topology-node text').getBoundingClientRect();
      const log = document.querySelector('.conversation-log').getBoundingClientRect();
      const current = document.querySelector('.conversation-log .line-current').getBoundingClientRect();
      const play = document.querySelector('.controls button.primary').getBoundingClientRect();
      return {
        label: label.height,
        log: log.height,
        stepInLog: current.top >= log.top - 1 && current.bottom <= log.bottom + 1,
        playOnScreen: play.bottom <= window.innerHeight,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
      };
    });
    // The picker shows the longest built-in title whole (with room for its arrow).
    const picker = await page.evaluate(() => {
      const select = document.querySelector('#scenario-select');
      const style = getComputedStyle(select);
      const context = document.createElement('canvas').getContext('2d');
      context.font = style.font;
      const titles = [...select.options].filter((option) => option.value !== 'open-file');
      const longest = Math.max(...titles.map((option) => context.measureText(option.textContent).width));
      return { needs: longest + parseFloat(style.paddingLeft) + parseFloat(style.paddingRight) + 24, has: select.clientWidth };
    });
    assert.ok(picker.needs <= picker.has, `the picker is ${picker.has} px wide; its longest title needs ${picker.needs} px`);
    // The buttons stay put under the pointer when the step number gains a digit.
    const forwardAt = async (step) => {
      await page.evaluate((step) => { window.location.hash = `#scenario=two-domains&step=${step}`; }, step);
      await page.waitForSelector(`.controls-position:has-text("Step ${step} of")`);
      return (await page.locator('button[title="Step forward"]').boundingBox()).x;
    };
    for (const [from, to] of [[9, 10], [99, 100]]) {
      assert.equal(await forwardAt(to), await forwardAt(from), `Step forward moves from step ${from} to ${to}`);
    }
    // And in a file's run of over ten thousand steps, from its start to its end.
    const long = JSON.parse(await readFile('scenarios/basic-delivery.json', 'utf8'));
    long.messages = Array(250).fill(long.messages[0]);
    await page.setInputFiles('input[type=file]', { name: 'long.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(long)) });
    await page.waitForSelector('.region-details:has-text("From your file long.json.")');
    const forward = page.locator('button[title="Step forward"]');
    const atStart = (await forward.boundingBox()).x;
    await page.click('button[title="To the end"]');
    const [last] = (await page.textContent('.controls-position')).match(/\d+/g).map(Number);
    assert.ok(last >= 10000, `${last} steps`);
    assert.equal((await forward.boundingBox()).x, atStart, 'Step forward moves from the first step to the last');
    await forwardAt(30);
    const before = await measure();
    const resize = page.locator('.topology-resize');
    assert.equal(await resize.textContent(), 'Larger diagram');
    await resize.click();
    await page.waitForSelector('.topology-resize:has-text("Smaller diagram")');
    const larger = await measure();
    // A host's name at 1366x657 is drawn 9 px high; larger, it reads from the back of a room.
    assert.ok(larger.label >= 1.5 * before.label && larger.label >= 14, `a host's name ${before.label} px, larger ${larger.label} px`);
    assert.ok(larger.log >= 120, `the conversation keeps a few lines: ${larger.log} px`);
    assert.ok(larger.stepInLog, 'the step is in sight in the conversation');
    assert.ok(larger.playOnScreen, 'Play is on screen');
    assert.ok(larger.overflow <= 0, `no sideways scrolling: ${larger.overflow} px`);
    await page.screenshot({ path: `${SHOTS}/projector-larger-diagram.png` });
    // Space, with the focus left on the button by its click, plays (as on the player's
    // buttons) rather than pressing it again.
    await page.keyboard.press('Space');
    await page.waitForSelector('.controls button:has-text("Pause")');
    assert.equal(await resize.textContent(), 'Smaller diagram');
    await page.keyboard.press('Space');
    await page.waitForSelector('.controls button:has-text("Play")');
    await page.evaluate(() => { window.location.hash = '#scenario=two-domains&step=30'; });
    await page.waitForSelector('.controls-position:has-text("Step 30 of")');
    // A 1280x720 projector at 150%, with the browser's bars: the controls stay in the window.
    await page.setViewportSize({ width: 853, height: 406 });
    await page.waitForFunction(() => document.documentElement.scrollHeight <= window.innerHeight);
    const short = await measure();
    assert.ok(short.playOnScreen && short.stepInLog, `in 853x406: ${JSON.stringify(short)}`);
    await page.setViewportSize({ width: 1366, height: 657 });
    await resize.click();
    await page.waitForSelector('.topology-resize:has-text("Larger diagram")');
    const back = await measure();
    assert.ok(Math.abs(back.label - before.label) < 0.5 && Math.abs(back.log - before.log) < 0.5,
      `back to its size: ${JSON.stringify(back)} against ${JSON.stringify(before)}`);
    // The browser keeps the choice: the page reloaded (a projector's page opened again) has
    // the diagram as it was left, larger or not.
    const diagramAfterReload = async () => {
      await page.reload();
      await page.waitForSelector('.controls-position:has-text("Step 30 of")');
      return {
        button: await resize.textContent(),
        large: await page.evaluate(() => document.querySelector('.lab').dataset.diagram === 'large'),
        label: (await measure()).label,
      };
    };
    await resize.click();
    await page.waitForSelector('.topology-resize:has-text("Smaller diagram")');
    const keptLarge = await diagramAfterReload();
    assert.ok(keptLarge.button === 'Smaller diagram' && keptLarge.large && keptLarge.label >= 14,
      `larger after a reload: ${JSON.stringify(keptLarge)}`);
    await resize.click();
    await page.waitForSelector('.topology-resize:has-text("Larger diagram")');
    const keptSmall = await diagramAfterReload();
    assert.ok(keptSmall.button === 'Larger diagram' && !keptSmall.large
      && Math.abs(keptSmall.label - back.label) < 0.5,
      `back to its size after a reload: ${JSON.stringify(keptSmall)}`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
  // In one column (a phone; a 1366x768 projector zoomed to 200%) the diagram is a strip over
  // the buttons; made larger, its labels grow, it scrolls sideways, and Play stays in sight.
  for (const [viewport, mobile] of [[{ width: 390, height: 844 }, true], [{ width: 683, height: 384 }, false]]) {
    const narrow = await openApp({ viewport, isMobile: mobile, hasTouch: mobile });
    try {
      const { page } = narrow;
      // The step's DNS question: its box is at the diagram's right.
      await page.evaluate(() => { window.location.hash = '#scenario=primary-mx-down&step=40'; });
      await page.waitForSelector('.controls-position:has-text("Step 40 of")');
      const measureNarrow = () => page.evaluate(() => {
        window.scrollTo(0, 0);
        const label = document.querySelector('.topology-node text').getBoundingClientRect();
        const play = document.querySelector('.controls button.primary').getBoundingClientRect();
        const box = document.querySelector('.topology-scroll').getBoundingClientRect();
        const active = document.querySelector('.topology-active').getBoundingClientRect();
        return {
          label: label.height,
          playOnScreen: play.bottom <= window.innerHeight,
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          activeInSight: active.left >= box.left - 1 && active.right <= box.right + 1,
        };
      });
      const strip = await measureNarrow();
      await page.click('.topology-resize');
      await page.waitForSelector('.topology-resize:has-text("Smaller diagram")');
      const large = await measureNarrow();
      const at = `${viewport.width}x${viewport.height}`;
      assert.ok(large.label >= strip.label * 1.3, `${at}: labels ${strip.label} then ${large.label} px high`);
      assert.ok(large.playOnScreen, `${at}: Play in sight with the larger diagram`);
      // What the step touches is brought into sight in the larger drawing.
      assert.ok(strip.activeInSight, `${at}: the step's part in sight in the strip`);
      assert.ok(large.activeInSight, `${at}: the step's part in sight with the larger diagram`);
      assert.equal(large.overflow, 0, `${at}: the page does not scroll sideways`);
      await page.click('.topology-resize');
      await page.waitForSelector('.topology-resize:has-text("Larger diagram")');
      const back = await measureNarrow();
      assert.ok(Math.abs(back.label - strip.label) < 0.5, `${at}: back to ${back.label} px, from ${strip.label}`);
      assert.deepEqual(narrow.errors, []);
    } finally {
      await narrow.context.close();
    }
  }
});

await test('on a projector zoomed to 200%, a jump to the failure brings its explanation into sight', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 640, height: 400 }, deviceScaleFactor: 2 });
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=0'; });
    await page.waitForSelector('.controls-position:has-text("Step 0 of")');
    await page.focus('.controls button.play');
    await page.keyboard.press('Shift+ArrowRight');
    const explanation = page.locator('.region-details .explanation-permanent').first();
    await explanation.waitFor();
    await page.waitForFunction(() => {
      const box = document.querySelector('.region-details .explanation-permanent').getBoundingClientRect();
      return box.top >= 0 && box.top < window.innerHeight - 20;
    }, null, { timeout: 5000 }).catch(() => {});
    const box = await explanation.boundingBox();
    const height = await page.evaluate(() => window.innerHeight);
    assert.ok(box.y >= 0 && box.y < height - 20, `the 550's explanation starts in the window: ${box.y} of ${height}`);
    assert.match(await explanation.textContent(), /550/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('a step of many lines keeps its refusal in sight in the conversation', async () => {
  // The smuggling attempt's server answers everything at once: 13 lines, the 550 eleventh.
  const { context, page, errors } = await openApp({ viewport: { width: 1366, height: 657 } });
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=smtp-smuggling&step=12'; });
    const refusal = page.locator('.conversation-log .line-current.line-permanent');
    await refusal.first().waitFor();
    assert.equal(await refusal.count(), 1, 'one refusal line in the step');
    assert.match(await refusal.textContent(), /550 5\.5\.2/);
    const log = await page.locator('.conversation-log').boundingBox();
    const line = await refusal.boundingBox();
    assert.ok(line.y >= log.y && line.y + line.height <= log.y + log.height,
      `the 550 line (${line.y}..${line.y + line.height}) is inside the log (${log.y}..${log.y + log.height})`);
    // The greeting and the 250 replies are not refusals.
    assert.equal(await page.locator('.conversation-log .line-refusal').count(), 1);
    // What a refusal's line says to screen readers alone stays in the log: the page does not
    // grow to where the log's scrolled-out lines are.
    await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=56'; });
    await page.waitForSelector('.controls-position:has-text("Step 56 of")');
    const height = await page.evaluate(() => [document.documentElement.scrollHeight, window.innerHeight]);
    assert.ok(height[0] <= height[1], `the page is ${height[0]} px tall in a ${height[1]} px window`);
    await page.evaluate(() => { window.location.hash = '#scenario=smtp-smuggling&step=12'; });
    await page.waitForSelector('.controls-position:has-text("Step 12 of")');
    await page.screenshot({ path: `${SHOTS}/projector-refusal.png` });
    // Another scenario at the same step scrolls anew: the failed login's 535.
    await page.evaluate(() => { window.location.hash = '#scenario=submission-auth-failed&step=12'; });
    await page.waitForSelector('#scenario-select option:checked:has-text("authentication")', { state: 'attached' });
    const other = page.locator('.conversation-log .line-current.line-refusal');
    await other.first().waitFor();
    const otherLine = await other.first().boundingBox();
    assert.match(await other.first().textContent(), /535/);
    assert.ok(otherLine.y >= log.y && otherLine.y + otherLine.height <= log.y + log.height,
      `the 535 line (${otherLine.y}..${otherLine.y + otherLine.height}) is inside the log (${log.y}..${log.y + log.height})`);
    // A step without a refusal keeps its first line at the top: the smuggler's own send.
    await page.evaluate(() => { window.location.hash = '#scenario=smtp-smuggling&step=5'; });
    await page.waitForSelector('.controls-position:has-text("Step 5 of")');
    assert.ok(await page.locator('.conversation-log .line-current').count() > 10, 'step 5 is the long send');
    const first = await page.locator('.conversation-log .line-current').first().boundingBox();
    assert.ok(Math.abs(first.y - log.y) < 16, `the step's first line (${first.y}) is at the top of the log (${log.y})`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
  // On a phone the conversation is below the details, which repeat the refusal.
  const phone = await openApp({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    await phone.page.evaluate(() => { window.location.hash = '#scenario=smtp-smuggling&step=12'; });
    const repeated = phone.page.locator('.details-step-lines .line-refusal');
    await repeated.waitFor();
    assert.match(await repeated.textContent(), /550 5\.5\.2/);
    assert.ok(await repeated.isVisible(), 'the refusal is shown over its explanation');
    assert.deepEqual(phone.errors, []);
  } finally {
    await phone.context.close();
  }
});

await test('every step of every scenario is drawn without an error on a phone', async () => {
  // A panic while drawing a step stops the app. On a phone the details also repeat the
  // step's lines, so every part of the details is drawn.
  const { context, page, errors } = await openApp({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    // The built-in scenarios: the entries numbered by their place in the library.
    const values = await page.evaluate(() => [...document.querySelectorAll('#scenario-select option')]
      .filter((option) => /^\d+$/.test(option.value)).map((option) => option.value));
    assert.ok(values.length > 20, `${values.length} scenarios`);
    let drawn = 0;
    for (const index of values) {
      await page.selectOption('#scenario-select', index);
      await page.waitForSelector('.controls-position:has-text("Step 0 of")');
      drawn += await page.evaluate(async () => {
        const forward = document.querySelector("button[title='Step forward']");
        const position = () => document.querySelector('.controls-position').textContent;
        let steps = 0;
        while (!forward.disabled) {
          const before = position();
          forward.click();
          // Each step is drawn before the next click.
          for (let wait = 0; wait < 100 && position() === before; wait += 1) {
            await new Promise((resolve) => setTimeout(resolve, 0));
          }
          if (position() === before) throw new Error(`stuck at ${before}`);
          steps += 1;
        }
        return steps;
      });
      const [shown, total] = (await page.textContent('.controls-position')).match(/\d+/g).map(Number);
      assert.equal(shown, total, `scenario ${index} reached its end`);
    }
    assert.ok(drawn > 1000, `${drawn} steps drawn`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('no line or arrowhead of the diagram crosses a link label, nor a DNS line an arrowhead', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1280, height: 800 } });
  try {
    // Straight links, slanting ones to a second row, a backup MX's, two links apart between
    // one user agent and its server.
    for (const name of ['basic-delivery', 'to-cc-bcc', 'two-domains', 'primary-mx-down', 'unknown-user', 'two-senders', 'unknown-user-after-relay']) {
      const before = await page.evaluate(() => document.querySelector('svg.topology').outerHTML);
      await page.evaluate((n) => { window.location.hash = `#scenario=${n}&step=0`; }, name);
      await page.waitForFunction((old) => document.querySelector('svg.topology').outerHTML !== old, before);
      const crossed = await page.evaluate(() => {
        const found = [];
        const numbers = (text) => text.trim().split(/[\s,]+/).map(Number);
        // Every drawn segment: links, detours, links round a column, DNS questions.
        const segments = [];
        for (const line of document.querySelectorAll('svg.topology line')) {
          const [x1, y1, x2, y2] = ['x1', 'y1', 'x2', 'y2'].map((a) => Number(line.getAttribute(a)));
          segments.push([x1, y1, x2, y2, line]);
        }
        for (const polyline of document.querySelectorAll('svg.topology polyline')) {
          const p = numbers(polyline.getAttribute('points'));
          for (let i = 0; i + 3 < p.length; i += 2) segments.push([p[i], p[i + 1], p[i + 2], p[i + 3], polyline]);
        }
        for (const text of document.querySelectorAll('svg.topology text.topology-protocol')) {
          const box = text.getBBox();
          const inside = (x, y) => x > box.x + 1 && x < box.x + box.width - 1 && y > box.y + 1 && y < box.y + box.height - 1;
          for (const [x1, y1, x2, y2, element] of segments) {
            const length = Math.hypot(x2 - x1, y2 - y1);
            if (length === 0) continue;
            const [ux, uy] = [(x2 - x1) / length, (y2 - y1) / length];
            let onLine = false;
            for (let d = 0; d <= length; d += 1) onLine ||= inside(x1 + ux * d, y1 + uy * d);
            // A link's highlighted arrowhead at its end: 20 long, 20 wide at its base.
            let onArrow = false;
            const isLast = element.tagName === 'line' || numbers(element.getAttribute('points')).slice(-2).join() === `${x2},${y2}`;
            if (element.getAttribute('marker-end') && isLast) {
              for (let back = 0; back <= 20; back += 1) {
                for (let across = -back / 2; across <= back / 2; across += 1) {
                  onArrow ||= inside(x2 - ux * back - uy * across, y2 - uy * back + ux * across);
                }
              }
            }
            // And at its start, turned round, where a reply's arrowhead is drawn (any link
            // may carry one).
            const isFirst = element.tagName === 'line' || numbers(element.getAttribute('points')).slice(0, 2).join() === `${x1},${y1}`;
            if (element.getAttribute('marker-end') && isFirst) {
              for (let back = 0; back <= 20; back += 1) {
                for (let across = -back / 2; across <= back / 2; across += 1) {
                  onArrow ||= inside(x1 + ux * back - uy * across, y1 + uy * back + ux * across);
                }
              }
            }
            if (onLine || onArrow) found.push(`${text.textContent}: crossed by ${onLine ? 'a line' : 'an arrowhead'} ${x1},${y1} to ${x2},${y2}`);
          }
        }
        // A DNS question's line (no arrow of its own) passes clear of every link's arrowhead:
        // 12 long and 12 wide at its base, plus the half width of either line.
        for (const [dx1, dy1, dx2, dy2, dns] of segments) {
          if (dns.getAttribute('marker-end')) continue;
          for (const [sx1, sy1, sx2, sy2, element] of segments) {
            if (!element.getAttribute('marker-end')) continue;
            const points = element.tagName === 'line' ? [sx1, sy1, sx2, sy2] : numbers(element.getAttribute('points'));
            // An arrowhead at the link's end, or at its start (a reply's): the segment it
            // sits on, from its base to its tip.
            const ends = [];
            if (points.slice(-2).join() === `${sx2},${sy2}`) ends.push([sx1, sy1, sx2, sy2]);
            if (points.slice(0, 2).join() === `${sx1},${sy1}`) ends.push([sx2, sy2, sx1, sy1]);
            for (const [x1, y1, x2, y2] of ends) {
              const length = Math.hypot(x2 - x1, y2 - y1);
              const [ux, uy] = [(x2 - x1) / length, (y2 - y1) / length];
              const dnsLength = Math.hypot(dx2 - dx1, dy2 - dy1);
              for (let d = 0; d <= dnsLength; d += 0.5) {
                const [px, py] = [dx1 + ((dx2 - dx1) * d) / dnsLength, dy1 + ((dy2 - dy1) * d) / dnsLength];
                // The point in the arrowhead's frame: back from the tip, and across.
                const back = (x2 - px) * ux + (y2 - py) * uy;
                const across = Math.abs(-(x2 - px) * uy + (y2 - py) * ux);
                if (back >= -1 && back <= 13 && across <= back / 2 + 1.5) {
                  found.push(`the DNS line ${dx1},${dy1} to ${dx2},${dy2} crosses the arrowhead at ${x2},${y2}`);
                  break;
                }
              }
            }
          }
        }
        return found;
      });
      assert.deepEqual(crossed, [], name);
    }
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('Tab goes through the regions in the order they are shown, on a phone and on a wide screen', async () => {
  // The regions of the lab in reading order on screen: by rows (top first), then left to
  // right; and the regions the focus visits, one Tab at a time, from the top of the page.
  const shownOrder = (page) => page.evaluate(() => [...document.querySelectorAll('#lab > section')]
    .map((section) => ({ name: section.className.replace('region region-', ''), box: section.getBoundingClientRect() }))
    .sort((a, b) => (Math.abs(a.box.top - b.box.top) > 20 ? a.box.top - b.box.top : a.box.left - b.box.left))
    .map((region) => region.name));
  const tabOrder = async (page) => {
    // A click on the title starts the Tab order there, as for a student who clicked the page.
    await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
    await page.click('.masthead-title');
    const visited = [];
    for (let press = 0; press < 40; press += 1) {
      await page.keyboard.press('Tab');
      const region = await page.evaluate(() => document.activeElement?.closest('#lab > section')?.className.replace('region region-', '') ?? null);
      if (region === null) break;
      if (visited.at(-1) !== region) visited.push(region);
    }
    return visited;
  };
  // The focus visits the regions in the order shown, each once; the diagram only when it
  // scrolls (on a phone), the others always.
  const assertTabFollows = (visited, shown) => {
    assert.deepEqual(visited, shown.filter((name) => visited.includes(name)), `Tab visits ${visited}, shown ${shown}`);
    for (const name of ['controls', 'details', 'conversation']) assert.ok(visited.includes(name), `Tab reaches the ${name}`);
  };
  const { context, page, errors } = await openApp({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=56'; });
    await page.waitForSelector('.controls-position:has-text("Step 56 of")');
    const phoneShown = await shownOrder(page);
    assert.deepEqual(phoneShown, ['topology', 'controls', 'details', 'conversation']);
    assertTabFollows(await tabOrder(page), phoneShown);
    // Turned into a wide window: the regions move (the conversation among them), the focus
    // and the step stay.
    await page.focus('.conversation-log');
    await page.setViewportSize({ width: 1366, height: 768 });
    await page.waitForFunction(() => document.querySelector('#lab > section:nth-child(2)').classList.contains('region-conversation'));
    const wideShown = await shownOrder(page);
    assert.deepEqual(wideShown, ['topology', 'conversation', 'details', 'controls']);
    await page.waitForFunction(() => document.activeElement?.classList.contains('conversation-log'), null, { timeout: 2000 });
    const inView = () => page.evaluate(() => {
      const log = document.querySelector('.conversation-log').getBoundingClientRect();
      const line = document.querySelector('.conversation-log .line-current').getBoundingClientRect();
      return line.top >= log.top - 1 && line.bottom <= log.bottom + 1;
    });
    assert.ok(await inView(), 'the step is in sight in the conversation after the move');
    assertTabFollows(await tabOrder(page), wideShown);
    // And back, with the focus on Play (the controls move).
    await page.focus('.controls button.primary');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => document.querySelector('#lab > section:nth-child(2)').classList.contains('region-controls'));
    await page.waitForFunction(() => document.activeElement?.textContent === 'Play', null, { timeout: 2000 });
    assert.ok(await inView(), 'the step is in sight in the conversation after moving back');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('a window resized or zoomed keeps the step, the focus and what the details showed in sight', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1366, height: 768 } });
  // Whether an element is wholly inside another's box (or the window's).
  const inside = (selector, boxSelector) => page.evaluate(([selector, boxSelector]) => {
    const line = document.querySelector(selector).getBoundingClientRect();
    const box = boxSelector
      ? document.querySelector(boxSelector).getBoundingClientRect()
      : { top: 0, bottom: window.innerHeight };
    return line.top >= box.top - 1 && line.bottom <= box.bottom + 1;
  }, [selector, boxSelector]);
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=56'; });
    await page.waitForSelector('.controls-position:has-text("Step 56 of")');
    // Zoomed to 125% on the same side of the layout change: the lines wrap anew.
    await page.setViewportSize({ width: 1093, height: 614 });
    await page.waitForFunction(() => {
      const log = document.querySelector('.conversation-log').getBoundingClientRect();
      const line = document.querySelector('.conversation-log .line-current').getBoundingClientRect();
      return line.top >= log.top - 1 && line.bottom <= log.bottom + 1;
    }, null, { timeout: 2000 });
    // The details scrolled down to the bytes, which have the focus; zoomed to 200% (one
    // column) and back: the bytes are still where the details showed them, and in sight.
    await page.setViewportSize({ width: 1280, height: 720 });
    await page.focus('.details-body summary');
    await page.keyboard.press('Enter');
    await page.evaluate(() => document.querySelector('.details-body summary').scrollIntoView({ block: 'nearest' }));
    const scrolled = await page.evaluate(() => document.querySelector('.details-body').scrollTop);
    assert.ok(scrolled > 0, 'the details scrolled to the bytes');
    for (const size of [{ width: 640, height: 360 }, { width: 1280, height: 720 }]) {
      await page.setViewportSize(size);
      await page.waitForFunction(() => document.activeElement?.tagName === 'SUMMARY', null, { timeout: 2000 });
      assert.ok(await inside('.details-body summary', '.details-body'), `the bytes are in sight in the details at ${size.width}`);
      assert.ok(await inside('.details-body summary', null), `the bytes are in the window at ${size.width}`);
    }
    // The details scrolled, and the focus elsewhere: across a layout change and back, the
    // details still start at the same line.
    await page.setViewportSize({ width: 1366, height: 768 });
    await page.evaluate(() => { window.location.hash = '#scenario=attachments&step=24'; });
    await page.waitForSelector('.controls-position:has-text("Step 24 of")');
    await page.focus('.controls button.primary');
    const firstShown = () => page.evaluate(() => {
      const body = document.querySelector('.details-body');
      const top = body.getBoundingClientRect().top;
      const first = [...body.querySelectorAll('p, li, dt, dd, summary, h3')]
        .find((element) => element.getBoundingClientRect().bottom > top + 1);
      return first?.textContent;
    });
    await page.evaluate(() => { document.querySelector('.details-body').scrollTop = 150; });
    const before = await firstShown();
    assert.ok(before, 'something is shown in the details');
    for (const size of [{ width: 390, height: 844 }, { width: 1366, height: 768 }]) {
      await page.setViewportSize(size);
      await page.waitForFunction(() => document.activeElement?.textContent === 'Play', null, { timeout: 2000 });
      await page.waitForTimeout(100);
    }
    assert.equal(await firstShown(), before, 'the details start where they did');
    // The conversation has the focus when the window narrows to one column, where it comes
    // last: the page scrolls down to it.
    await page.setViewportSize({ width: 1366, height: 768 });
    await page.focus('.conversation-log');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => document.querySelector('#lab > section:last-of-type').classList.contains('region-conversation'));
    await page.waitForFunction(() => {
      const log = document.querySelector('.conversation-log').getBoundingClientRect();
      return log.bottom > 0 && log.top < window.innerHeight;
    }, null, { timeout: 2000 });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

// A projector at 1920x1080 zoomed to 200% is 960x540; a taller window must not show less of
// the conversation and the explanation than a shorter one (a band of window heights that gave
// the diagram more room once left the details 143 px at 540 px, against 267 px at 520).
await test('a taller window never shows less of the conversation and the details', async () => {
  for (const width of [730, 760, 853, 960, 1366]) {
    const { context, page, errors } = await openApp({ viewport: { width, height: 900 } });
    try {
      await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=56'; });
      await page.waitForSelector('.controls-position:has-text("Step 56 of")');
      const seen = [];
      for (let height = 480; height <= 900; height += 20) {
        await page.setViewportSize({ width, height });
        await page.waitForTimeout(50);
        seen.push(await page.evaluate(() => ({
          height: window.innerHeight,
          controls: document.querySelector('.region-controls').getBoundingClientRect().height,
          controlsBottom: document.querySelector('.region-controls').getBoundingClientRect().bottom,
          details: document.querySelector('.region-details').getBoundingClientRect().height,
          conversation: document.querySelector('.region-conversation').getBoundingClientRect().height,
          diagram: document.querySelector('.region-topology').getBoundingClientRect().height,
        })));
      }
      let most = 0;
      for (const at of seen) {
        // A change of band (titles shown again, a larger masthead) may take a few lines back,
        // never most of the room.
        assert.ok(at.details >= most - 60, `details ${at.details} px at ${width}x${at.height}, after ${most} px in a shorter window: ${JSON.stringify(seen)}`);
        assert.ok(at.details >= 200 && at.conversation >= 200, `room at ${width}x${at.height}: ${JSON.stringify(at)}`);
        assert.ok(at.diagram >= 96, `the diagram keeps some room at ${width}x${at.height}: ${JSON.stringify(at)}`);
        assert.ok(at.controlsBottom <= at.height + 1, `the buttons are in the window at ${width}x${at.height}: ${JSON.stringify(at)}`);
        most = Math.max(most, at.details);
      }
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
});

await test('in a short window the step, its explanation and the buttons are in sight together', async () => {
  for (const viewport of [{ width: 960, height: 540 }, { width: 853, height: 480 }, { width: 844, height: 390 }]) {
    const { context, page, errors } = await openApp({ viewport });
    try {
      await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=56'; });
      await page.waitForSelector('.controls-position:has-text("Step 56 of")');
      await page.waitForTimeout(200);
      const seen = await page.evaluate(() => {
        const box = (selector) => document.querySelector(selector).getBoundingClientRect();
        const inWindow = (rect) => rect.top >= -1 && rect.bottom <= window.innerHeight + 1;
        const log = box('.conversation-log');
        // The step's last line: the 550, which the step's first lines (the replies
        // pipelined before it) may be scrolled above to keep in sight.
        const current = document.querySelectorAll('.conversation-log .line-current');
        const line = current[current.length - 1].getBoundingClientRect();
        return {
          conversation: box('.region-conversation').height,
          details: box('.region-details').height,
          lineInLog: line.top >= log.top - 1 && line.bottom <= log.bottom + 1,
          lineInWindow: inWindow(line),
          // The explanation of the 550: its heading, and why this server sent it begun.
          explanation: inWindow(box('.details-body .explanation-permanent h3'))
            && box('.details-body .explanation-permanent .explanation-why').top < window.innerHeight - 16,
          buttons: inWindow(box('.controls')),
        };
      });
      const at = `${viewport.width}x${viewport.height}: ${JSON.stringify(seen)}`;
      // Several lines each, not one: a line of the conversation is about 50 px.
      assert.ok(seen.conversation >= 150 && seen.details >= 150, `room for the conversation and the details at ${at}`);
      assert.ok(seen.lineInLog && seen.lineInWindow, `the step's line is in sight at ${at}`);
      assert.ok(seen.explanation, `the explanation starts in sight at ${at}`);
      assert.ok(seen.buttons, `the buttons are in sight at ${at}`);
      await page.screenshot({ path: `${SHOTS}/short-${viewport.width}x${viewport.height}.png` });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
  // Shorter still (853x480 zoomed to 150%), where the controls scroll away with the page: a
  // step of long reply lines, scrolled to, leaves the start of its explanation in sight.
  const { context, page, errors } = await openApp({ viewport: { width: 569, height: 320 } });
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=sender-not-owned&step=15'; });
    await page.waitForSelector('.controls-position:has-text("Step 15 of")');
    await page.evaluate(() => document.querySelector('.region-details').scrollIntoView({ block: 'start' }));
    await page.waitForTimeout(200);
    const why = await page.evaluate(() => {
      const rect = document.querySelector('.details-body .explanation-permanent .explanation-why').getBoundingClientRect();
      // In sight: in the window, and in the details' own box, which clips what overflows it.
      const details = document.querySelector('.region-details').getBoundingClientRect();
      return { top: rect.top, bottom: Math.min(window.innerHeight, details.bottom) };
    });
    assert.ok(why.top < why.bottom - 48, `the explanation's first lines are in sight at 569x320: ${JSON.stringify(why)}`);
    await page.screenshot({ path: `${SHOTS}/short-569x320.png` });
    // The dialog for writing a message opens with its first field in sight, under the
    // world's description and above the buttons.
    await page.selectOption('#scenario-select', 'write-message');
    await page.waitForSelector('dialog.compose[open]');
    const from = await page.evaluate(() => {
      const field = document.querySelector('#compose-from').getBoundingClientRect();
      return { bottom: field.bottom, visible: document.querySelector('.compose-fields').getBoundingClientRect().bottom };
    });
    assert.ok(from.bottom <= from.visible + 1, `From is in sight in the dialog at 569x320: ${JSON.stringify(from)}`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('on a phone the buttons stay pinned over the conversation and a step leaves the page where it is', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=greylisting&step=55'; });
    await page.waitForSelector('.controls-position:has-text("Step 55 of")');
    await page.evaluate(() => document.querySelector('.region-conversation').scrollIntoView({ block: 'end' }));
    await page.waitForTimeout(200);
    const scrolled = await page.evaluate(() => window.scrollY);
    assert.ok(scrolled > 300, `the page scrolled down to the conversation (${scrolled})`);
    for (const step of [56, 57, 58, 57]) {
      const forward = step > Number((await page.textContent('.controls-position')).match(/Step (\d+)/)[1]);
      // A finger on the pinned button (a tap through Playwright's locator would first
      // scroll the button to where it sits in the page, which no finger does).
      const button = await page.locator(`.controls button[aria-label="${forward ? 'Step forward' : 'Step back'}"]`).boundingBox();
      assert.ok(button.y >= 0 && button.y + button.height <= 844, `the step buttons are in sight: ${JSON.stringify(button)}`);
      await page.touchscreen.tap(button.x + button.width / 2, button.y + button.height / 2);
      await page.waitForSelector(`.controls-position:has-text("Step ${step} of")`);
      await page.waitForTimeout(150);
      const seen = await page.evaluate(() => {
        const controls = document.querySelector('.region-controls').getBoundingClientRect();
        const line = document.querySelector('.conversation-log .line-current').getBoundingClientRect();
        return { y: window.scrollY, controlsTop: controls.top, controlsBottom: controls.bottom, lineTop: line.top, lineBottom: line.bottom };
      });
      const at = `step ${step}: ${JSON.stringify(seen)}`;
      assert.ok(Math.abs(seen.controlsTop) <= 1, `the controls are pinned to the top at ${at}`);
      assert.equal(seen.y, scrolled, `the page did not move at ${at}`);
      assert.ok(seen.lineTop >= seen.controlsBottom - 1 && seen.lineBottom <= 844 + 1, `the step's line is in sight under the controls at ${at}`);
    }
    await page.screenshot({ path: `${SHOTS}/phone-pinned.png` });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
  // So short a window (a screen zoomed to 400%) that pinned controls would cover most of it:
  // they scroll away with the page.
  const short = await openApp({ viewport: { width: 320, height: 256 } });
  try {
    await short.page.evaluate(() => document.querySelector('.region-conversation').scrollIntoView({ block: 'end' }));
    const top = await short.page.evaluate(() => document.querySelector('.region-controls').getBoundingClientRect().top);
    assert.ok(top < 0, `the controls scrolled away at 320x256 (top ${top})`);
    assert.deepEqual(short.errors, []);
  } finally {
    await short.context.close();
  }
});

await test('the step\'s lines stand out from their highlight in light and dark, a link in the details reads, and the bytes\' toggle fits a finger', async () => {
  for (const colorScheme of ['light', 'dark']) {
    const { context, page, errors } = await openApp({ viewport: { width: 1366, height: 768 }, colorScheme });
    try {
      await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=56'; });
      await page.waitForSelector('.controls-position:has-text("Step 56 of")');
      const pairs = await page.evaluate(() => {
        const line = document.querySelector('.conversation-log .line-current');
        const background = getComputedStyle(line).backgroundColor;
        return [...line.querySelectorAll('*')]
          .filter((element) => element.childElementCount === 0 && element.textContent.trim())
          .map((element) => [element.className, getComputedStyle(element).color, background]);
      });
      assert.ok(pairs.length >= 2, `the step's line has its parts: ${JSON.stringify(pairs)}`);
      const luminance = (css) => {
        const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map((v) => {
          const c = Number(v) / 255;
          return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      for (const [part, color, background] of pairs) {
        const [light, dark] = [luminance(color), luminance(background)].sort((a, b) => b - a);
        const ratio = (light + 0.05) / (dark + 0.05);
        // Above the 4.5:1 least (WCAG 1.4.3), for a washed-out projector.
        assert.ok(ratio >= 5.5, `${colorScheme}: ${part} ${color} on ${background} is ${ratio.toFixed(2)}:1`);
      }
      // The link to a scenario's file, in its introduction, reads as well as its text.
      await page.evaluate(() => { window.location.hash = '#scenario=unknown-user'; });
      await page.waitForSelector('.region-details a[download]');
      const [link, surface] = await page.evaluate(() => [
        getComputedStyle(document.querySelector('.region-details a[download]')).color,
        getComputedStyle(document.querySelector('.region-details')).backgroundColor,
      ]);
      const [lighter, darker] = [luminance(link), luminance(surface)].sort((a, b) => b - a);
      const ratio = (lighter + 0.05) / (darker + 0.05);
      assert.ok(ratio >= 4.5, `${colorScheme}: the link ${link} on ${surface} is ${ratio.toFixed(2)}:1`);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
  const { context, page, errors } = await openApp({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=56'; });
    await page.waitForSelector('.details-body summary');
    const toggle = await page.locator('.details-body summary').boundingBox();
    assert.ok(toggle.height >= 44, `the bytes' toggle is ${toggle.height} px high`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('a failure for now and one for good differ in pattern, not only in colour', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1366, height: 768 }, colorScheme: 'light' });
  try {
    const open = async (hash, position) => {
      await page.evaluate((hash) => { window.location.hash = hash; }, hash);
      await page.waitForSelector(`.controls-position:has-text("${position}")`);
    };
    // The current step's refusal: its bar in the conversation and the explanation's, and
    // what a screen reader hears before it.
    const bars = () => page.evaluate(() => ({
      line: getComputedStyle(document.querySelector('.conversation-log .line-current.line-refusal .line-text')).borderLeftStyle,
      note: getComputedStyle(document.querySelector('.region-details .explanation-temporary, .region-details .explanation-permanent')).borderLeftStyle,
      said: document.querySelector('.conversation-log .line-current.line-refusal .visually-hidden')?.textContent,
    }));
    // A refusing reply (451 4.7.1), a failure the sending host reports (a refused
    // connection: the first failure of primary-mx-down), and a refusal for good (550 5.1.1).
    await open('#scenario=greylisting&step=55', 'Step 55 of');
    assert.deepEqual(await bars(), { line: 'dashed', note: 'dashed', said: 'Refused for now: ' });
    await open('#scenario=primary-mx-down&step=0', 'Step 0 of');
    await page.keyboard.press('Shift+ArrowRight');
    await page.waitForSelector('.conversation-log .line-current.line-refusal:has-text("connection refused")');
    assert.deepEqual(await bars(), { line: 'dashed', note: 'dashed', said: 'Failed for now: ' });
    await open('#scenario=unknown-user&step=56', 'Step 56 of');
    assert.deepEqual(await bars(), { line: 'solid', note: 'solid', said: 'Refused for good: ' });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
  // On a phone the details repeat the step's lines over their explanation, with the same bar.
  const phone = await openApp({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const repeated = async (hash, position) => {
      await phone.page.evaluate((hash) => { window.location.hash = hash; }, hash);
      await phone.page.waitForSelector(`.controls-position:has-text("${position}")`);
      return phone.page.evaluate(() => getComputedStyle(document.querySelector('.details-step-lines .line-refusal')).borderLeftStyle);
    };
    assert.equal(await repeated('#scenario=greylisting&step=55', 'Step 55 of'), 'dashed');
    assert.equal(await repeated('#scenario=unknown-user&step=56', 'Step 56 of'), 'solid');
    assert.deepEqual(phone.errors, []);
  } finally {
    await phone.context.close();
  }
});

await test('a diagram wider than its box is a tab stop whose arrow keys scroll it, and one that fits is none', async () => {
  const states = [];
  for (const viewport of [{ width: 390, height: 844 }, { width: 1280, height: 800 }]) {
    const { context, page, errors } = await openApp({ viewport, isMobile: viewport.width < 500, hasTouch: viewport.width < 500 });
    try {
      await page.evaluate(() => { window.location.hash = '#scenario=basic-delivery&step=5'; });
      await page.waitForSelector('.controls-position:has-text("Step 5 of")');
      await page.waitForTimeout(100);
      const scroller = page.locator('.topology-scroll');
      const state = await scroller.evaluate((element) => ({
        overflows: element.scrollWidth > element.clientWidth + 1,
        tabindex: element.getAttribute('tabindex'),
        label: element.getAttribute('aria-label'),
      }));
      states.push(state);
      if (state.overflows) {
        assert.equal(state.tabindex, '0', `a diagram wider than its box is a tab stop: ${JSON.stringify(state)}`);
        assert.match(state.label, /arrow keys scroll it/);
        await scroller.evaluate((element) => { element.scrollLeft = 0; });
        await scroller.focus();
        await page.keyboard.press('ArrowRight');
        await page.keyboard.press('ArrowRight');
        // The browser may scroll smoothly: wait for the scroll to start (up to 2 s) rather
        // than read its position at once, which a busy machine reads as 0.
        const scrolled = await page
          .waitForFunction(() => document.querySelector('.topology-scroll').scrollLeft > 0, null, { timeout: 2000 })
          .then(() => true, () => false);
        const left = await scroller.evaluate((element) => element.scrollLeft);
        assert.ok(scrolled && left > 0, `the arrow keys scroll the diagram (scrollLeft ${left})`);
        assert.ok(await page.locator('.controls-position:has-text("Step 5 of")').isVisible(), 'and do not step');
      } else {
        assert.equal(state.tabindex, null, `a diagram that fits is no tab stop: ${JSON.stringify(state)}`);
      }
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
  assert.deepEqual(states.map((state) => state.overflows), [true, false], JSON.stringify(states));
});

await test('in forced colours the step stands out from every other line, and with wider text spacing no actor loses its end', async () => {
  for (const colorScheme of ['light', 'dark']) {
    const { context, page, errors } = await openApp({ viewport: { width: 1366, height: 768 }, colorScheme, forcedColors: 'active' });
    try {
      await page.evaluate(() => { window.location.hash = '#scenario=greylisting&step=55'; });
      await page.waitForSelector('.controls-position:has-text("Step 55 of")');
      const lines = await page.evaluate(() => [...document.querySelectorAll('.conversation-log .line')].map((line) => {
        const style = getComputedStyle(line);
        const text = line.querySelector('.line-text');
        return {
          current: line.classList.contains('line-current'),
          temporary: line.classList.contains('line-temporary'),
          background: style.backgroundColor,
          bar: style.borderLeftStyle,
          textBar: text ? getComputedStyle(text).borderLeftStyle : '',
        };
      }));
      const current = lines.filter((line) => line.current);
      const others = lines.filter((line) => !line.current);
      assert.ok(current.length >= 1 && others.length >= 5, JSON.stringify(lines.length));
      for (const line of others) {
        assert.equal(line.bar, 'none', `${colorScheme}: an ordinary line has no bar`);
        assert.notEqual(line.background, current[0].background, `${colorScheme}: the step's band is its own`);
      }
      assert.ok(current.every((line) => line.bar === 'solid'), JSON.stringify(current));
      const temporary = lines.find((line) => line.temporary);
      assert.equal(temporary?.textBar, 'dashed', `${colorScheme}: a temporary refusal's bar is dashed`);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
  for (const viewport of [{ width: 1366, height: 768 }, { width: 375, height: 667 }]) {
    const { context, page, errors } = await openApp({ viewport });
    try {
      await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=12'; });
      await page.waitForSelector('.controls-position:has-text("Step 12 of")');
      // WCAG 1.4.12's spacing, as a reader's style sheet sets it.
      await page.addStyleTag({ content: '* { line-height: 1.5 !important; letter-spacing: 0.12em !important; word-spacing: 0.16em !important; } p { margin-bottom: 2em !important; }' });
      const cut = await page.$$eval('.conversation-log .line-actor', (actors) => actors
        .filter((actor) => actor.scrollWidth > actor.clientWidth + 1)
        .map((actor) => actor.textContent));
      assert.deepEqual(cut, [], `${viewport.width} px: actors cut`);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
});

await test('a share link opened in a short one-column window shows its step under the controls', async () => {
  // A 1280x720 projector at 200%, a 1024x768 one at 150%, and a phone, where enough shows.
  for (const [viewport, scrolls] of [[{ width: 640, height: 360 }, true], [{ width: 683, height: 512 }, true], [{ width: 390, height: 844 }, false]]) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
    try {
      await page.goto(`${server.url}#scenario=unknown-user&step=56`, { waitUntil: 'load' });
      await page.waitForSelector('.controls-position:has-text("Step 56 of")');
      await page.waitForTimeout(300);
      const seen = await page.evaluate(() => {
        const box = (selector) => document.querySelector(selector).getBoundingClientRect();
        const heading = box('.details-body .explanation-permanent h3');
        return {
          y: window.scrollY,
          controlsTop: box('.region-controls').top,
          controlsBottom: box('.region-controls').bottom,
          headingTop: heading.top,
          headingBottom: heading.bottom,
        };
      });
      const at = `${viewport.width}x${viewport.height}: ${JSON.stringify(seen)}`;
      assert.ok(seen.headingTop >= seen.controlsBottom - 1 && seen.headingBottom <= viewport.height + 1,
        `the explanation of the step is in sight under the controls at ${at}`);
      assert.equal(seen.y > 0, scrolls, `the page scrolled only where it had to, at ${at}`);
      if (viewport.width === 640) {
        const conversation = await page.locator('.region-conversation').boundingBox();
        assert.ok(conversation.height >= 240, `the conversation keeps its least height: ${conversation.height}`);
      }
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
  // A reader scrolled down to the conversation follows another link: its step's details
  // come back into sight under the pinned controls.
  const { context, page, errors } = await openApp({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    await page.evaluate(() => { window.location.hash = '#scenario=greylisting&step=55'; });
    await page.waitForSelector('.controls-position:has-text("Step 55 of")');
    await page.evaluate(() => document.querySelector('.region-conversation').scrollIntoView({ block: 'end' }));
    await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=56'; });
    await page.waitForSelector('.controls-position:has-text("Step 56 of")');
    await page.waitForTimeout(300);
    const seen = await page.evaluate(() => {
      const heading = document.querySelector('.details-body .explanation-permanent h3').getBoundingClientRect();
      return { controlsBottom: document.querySelector('.region-controls').getBoundingClientRect().bottom, headingTop: heading.top, headingBottom: heading.bottom };
    });
    assert.ok(seen.headingTop >= seen.controlsBottom - 1 && seen.headingBottom <= 844 + 1,
      `the explanation is in sight under the controls after a link followed lower down: ${JSON.stringify(seen)}`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('a link\'s problem, and a step opened with larger text, show under the controls', async () => {
  // A phone held sideways: what is wrong with the link is said in the details, below the
  // window's bottom edge unless the page scrolls to it.
  for (const [hash, selector] of [
    ['#scenario=greylisting&step=abc&utm_source=chat', '.details-notice'],
    ['#scenario=nope', '.details-error'],
  ]) {
    const { context, page, errors } = await openApp({ viewport: { width: 640, height: 360 }, isMobile: true, hasTouch: true });
    try {
      await page.goto(`${server.url}${hash}`, { waitUntil: 'load' });
      await page.waitForFunction((s) => document.querySelector(s)?.textContent.length > 0, selector);
      await page.waitForTimeout(300);
      const seen = await page.evaluate((s) => {
        const said = document.querySelector(s).getBoundingClientRect();
        return { top: said.top, bottom: said.bottom, controlsBottom: document.querySelector('.region-controls').getBoundingClientRect().bottom };
      }, selector);
      assert.ok(seen.top >= seen.controlsBottom - 1 && seen.top + 40 <= 360,
        `${hash}: what the link got wrong is in sight under the controls: ${JSON.stringify(seen)}`);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
  // Text at twice the size (a phone's accessibility setting) makes the pinned controls taller
  // than the page's scroll padding expects: the details still open under them.
  const { context, page, errors } = await openApp({ viewport: { width: 360, height: 640 }, isMobile: true, hasTouch: true });
  try {
    await page.evaluate(() => { document.documentElement.style.fontSize = '200%'; });
    await page.evaluate(() => { window.location.hash = '#scenario=unknown-user&step=56'; });
    await page.waitForSelector('.controls-position:has-text("Step 56 of")');
    // The page scrolls once the step is laid out, later on a busy machine: given 5 s, and
    // then measured.
    await page.waitForFunction(() => window.scrollY > 0
      && Math.abs(document.querySelector('.region-details').getBoundingClientRect().top
        - document.querySelector('.region-controls').getBoundingClientRect().height) <= 2,
    null, { timeout: 5000 }).catch(() => {});
    const seen = await page.evaluate(() => ({
      y: window.scrollY,
      detailsTop: document.querySelector('.region-details').getBoundingClientRect().top,
      controls: document.querySelector('.region-controls').getBoundingClientRect().height,
    }));
    assert.ok(seen.controls > 200, `the controls grew with the text: ${JSON.stringify(seen)}`);
    assert.ok(seen.y > 0 && Math.abs(seen.detailsTop - seen.controls) <= 2,
      `the details open right under the controls: ${JSON.stringify(seen)}`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('the diagram scrolls sideways only over the drawing, and Play does not move the buttons', async () => {
  for (const [viewport, hash] of [
    [{ width: 844, height: 390 }, '#scenario=primary-mx-down&step=60'],
    [{ width: 640, height: 360 }, '#scenario=basic-delivery&step=12'],
    [{ width: 360, height: 640 }, '#scenario=two-domains&step=30'],
    [{ width: 1366, height: 768 }, '#scenario=unknown-user-after-relay&step=40'],
  ]) {
    const { context, page, errors } = await openApp({ viewport });
    try {
      await page.goto(`${server.url}${hash}`, { waitUntil: 'load' });
      await page.waitForSelector('svg.topology');
      await page.waitForTimeout(300);
      const seen = await page.evaluate(() => {
        const svg = document.querySelector('svg.topology');
        const box = svg.getBoundingClientRect();
        const view = svg.viewBox.baseVal;
        const scroller = document.querySelector('.topology-scroll');
        return { width: box.width, height: box.height, ratio: view.width / view.height, scrollWidth: scroller.scrollWidth, clientWidth: scroller.clientWidth };
      });
      const at = `${viewport.width}x${viewport.height}: ${JSON.stringify(seen)}`;
      // The drawing fills its box's width: no blank margins beside it to scroll through.
      assert.ok(seen.width <= seen.height * seen.ratio + 1, `no blank margins at ${at}`);
      assert.ok(seen.scrollWidth <= Math.max(seen.width, seen.clientWidth) + 1, `nothing but the drawing to scroll to at ${at}`);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
  // From 375 px (an iPhone SE) the speed button shares the step buttons' row, playing or not.
  for (const width of [360, 375, 412, 1024]) {
    const { context, page, errors } = await openApp({ viewport: { width, height: 640 }, isMobile: width < 720, hasTouch: width < 720 });
    try {
      await page.goto(`${server.url}#scenario=basic-delivery&step=3`, { waitUntil: 'load' });
      await page.waitForSelector('.controls-position:has-text("Step 3 of")');
      const seen = () => page.evaluate(() => ({
        forward: document.querySelector('.controls button[aria-label="Step forward"]').getBoundingClientRect().x,
        speed: document.querySelector('.controls button[title="Playback speed"]').getBoundingClientRect().top,
        play: document.querySelector('.controls button.play').getBoundingClientRect().top,
        controls: document.querySelector('.region-controls').getBoundingClientRect().height,
      }));
      const before = await seen();
      await page.click('.controls button.play');
      await page.waitForSelector('.controls button.play:has-text("Pause")');
      const playing = await seen();
      await page.click('.controls button.play');
      const at = `${width}: ${JSON.stringify({ before, playing })}`;
      assert.equal(playing.forward, before.forward, `the buttons after Play stay where they were when it says Pause at ${at}`);
      assert.equal(playing.controls, before.controls, `the controls keep their height at ${at}`);
      if (width >= 375) {
        assert.equal(before.speed, before.play, `the speed button is in the step buttons' row at ${at}`);
      }
      if (width >= 375 && width < 560) {
        assert.ok(before.controls <= 152, `the pinned controls keep no room for a second row at ${at}`);
      }
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
});

await test('a teacher downloads a scenario\'s file, and opens a changed one from the picker or drops one on the page', async () => {
  const file = (name, text) => ({ name, mimeType: 'application/json', buffer: Buffer.from(text) });
  for (const size of [
    { name: 'desktop', viewport: { width: 1280, height: 800 } },
    { name: 'phone', viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true },
  ]) {
    const { context, page, errors } = await openApp({ ...size, acceptDownloads: true });
    try {
      // The built-in scenario's own file, from its introduction, changed.
      await page.selectOption('#scenario-select', { label: 'Unknown user refused at RCPT' });
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click('.region-details a[download]'),
      ]);
      assert.equal(download.suggestedFilename(), 'unknown-user.json');
      const downloaded = await readFile(await download.path(), 'utf8');
      assert.equal(downloaded, await readFile('scenarios/unknown-user.json', 'utf8'));
      const scenario = JSON.parse(downloaded);
      scenario.title = 'Our class scenario';
      const chosen = () => page.$eval('#scenario-select', (select) => select.selectedOptions[0].text);
      // Every file dialog the page opens, from the start: a listener added just before a
      // dialog is asked for may be too late for it.
      const choosers = [];
      page.on('filechooser', (chooser) => choosers.push(chooser));
      const nextChooser = async () => {
        for (let wait = 0; wait < 500 && choosers.length === 0; wait += 1) await page.waitForTimeout(20);
        assert.ok(choosers.length > 0, 'a file dialog opened');
        return choosers.shift();
      };
      // From the picker's last entry on a wide screen, from the details' button on a phone
      // (the details offer it in a scenario's introduction and with a file's problems).
      const openFile = async (name, text) => {
        if (size.name === 'phone') {
          await page.click('.region-details .details-open-file');
        } else {
          // As a user's click on it would, the picker takes the focus.
          await page.focus('#scenario-select');
          await page.selectOption('#scenario-select', { label: 'Open a scenario file…' });
        }
        const chooser = await nextChooser();
        assert.ok(!chooser.isMultiple(), 'one file at a time');
        // Until a file is opened, the picker shows what is shown.
        const before = await chosen();
        assert.notEqual(before, 'Open a scenario file…');
        await chooser.setFiles(file(name, text));
        return before;
      };
      assert.equal(await openFile('class.json', JSON.stringify(scenario, null, 2)), 'Unknown user refused at RCPT');
      await page.waitForSelector('.region-details:has-text("From your file class.json.")');
      assert.match(await page.textContent('.region-details'), /Our class scenario/);
      assert.match(await page.textContent('.controls-position'), /^Step 0 of \d+/);
      assert.equal(await chosen(), 'Our class scenario (class.json)');
      const focused = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 80));
      assert.match(focused, /^<button[^>]*class="primary/, 'the focus moved on to Play, as for a scenario chosen in the picker');
      await page.click('button[title="To the end"]');
      assert.match(await page.textContent('.conversation-log'), /S: 550 5\.1\.1 User unknown/);
      // On a phone the file is opened from the introduction's button: back to it.
      if (size.name === 'phone') await page.click('button[title="Back to the start"]');
      // A file that is not a scenario: why, and where; what is shown stays.
      const at = await page.textContent('.controls-position');
      assert.equal(await openFile('broken.json', '{"name": "x",\n "title": }'), 'Our class scenario (class.json)');
      await page.waitForSelector('.details-error');
      assert.match(await page.textContent('.details-error'), /broken\.json is not a valid scenario:\s*title \(line 2, column \d+\): /);
      assert.equal(await page.textContent('.controls-position'), at);
      assert.equal(await chosen(), 'Our class scenario (class.json)');
      // A file of many problems, opened from the button under the last ones: they are
      // shown from their start, in a box that scrolls to the rest.
      const many = { ...scenario, fetches: [...Array(40).keys()].map((n) => ({ mailbox: `nobody${n}@receiver.test`, host: 'mx.receiver.test', at_s: 10 })) };
      await page.click('.region-details .details-open-file');
      await (await nextChooser()).setFiles(file('many.json', JSON.stringify(many)));
      await page.waitForSelector('.details-error:has-text("nobody39@receiver.test")');
      const box = await page.evaluate(() => {
        const body = document.querySelector('.region-details .details-body');
        const first = document.querySelector('.details-error').getBoundingClientRect().top;
        return { top: body.scrollTop, overflow: body.scrollHeight - body.clientHeight, first, boxTop: body.getBoundingClientRect().top };
      });
      assert.ok(box.overflow > 0 && box.top === 0 && box.first >= box.boxTop - 1, `the problems from their start: ${JSON.stringify(box)}`);
      // A file dropped on the page.
      const dropped = await page.evaluateHandle((text) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([text], 'dropped.json', { type: 'application/json' }));
        return transfer;
      }, JSON.stringify({ ...scenario, title: 'Dropped here' }));
      // While a file is dragged over the page, the page says it will open it; a drag that
      // moves from one region to another is still over the page; one that leaves it, or text
      // dragged, shows nothing.
      const overlaid = () => page.evaluate(() => document.querySelector('.drop-overlay')?.hidden === false);
      const text = await page.evaluateHandle(() => {
        const transfer = new DataTransfer();
        transfer.setData('text/plain', 'just text');
        return transfer;
      });
      await page.dispatchEvent('.region-conversation', 'dragenter', { dataTransfer: text });
      await page.dispatchEvent('.region-conversation', 'dragover', { dataTransfer: text });
      await page.waitForTimeout(100);
      assert.equal(await overlaid(), false, 'text dragged over the page is not a file to open');
      await page.dispatchEvent('.region-conversation', 'dragenter', { dataTransfer: dropped });
      await page.waitForSelector('.drop-overlay:has-text("Drop the file to open it as a scenario")');
      await page.dispatchEvent('.region-details', 'dragenter', { dataTransfer: dropped });
      await page.dispatchEvent('.region-conversation', 'dragleave', { dataTransfer: dropped });
      await page.waitForTimeout(100);
      assert.equal(await overlaid(), true, 'moved from one region to another, the file is still over the page');
      await page.dispatchEvent('.region-details', 'dragleave', { dataTransfer: dropped });
      await page.waitForSelector('.drop-overlay', { state: 'hidden' });
      await page.dispatchEvent('.region-conversation', 'dragenter', { dataTransfer: dropped });
      await page.dispatchEvent('.region-conversation', 'dragover', { dataTransfer: dropped });
      await page.waitForSelector('.drop-overlay');
      await page.dispatchEvent('.region-conversation', 'drop', { dataTransfer: dropped });
      await page.waitForSelector('.drop-overlay', { state: 'hidden' });
      await page.waitForSelector('.region-details:has-text("From your file dropped.json.")');
      assert.equal(await chosen(), 'Dropped here (dropped.json)');
      await page.waitForFunction(() => location.hash === '' && location.href.endsWith('/'));
      if (size.name === 'phone') {
        // Opened from the pinned picker with the page scrolled down to the conversation: the
        // problems come into sight under the controls.
        await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
        await page.selectOption('#scenario-select', { label: 'Open a scenario file…' });
        await (await nextChooser()).setFiles(file('late.json', '{"name": 1}'));
        await page.waitForSelector('.details-error:has-text("late.json is not a valid scenario")');
        await page.waitForTimeout(100);
        const [top, controls, height] = await page.evaluate(() => [
          document.querySelector('.details-error').getBoundingClientRect().top,
          document.querySelector('.region-controls').getBoundingClientRect().bottom,
          window.innerHeight,
        ]);
        assert.ok(top >= controls - 1 && top < height - 40, `the problems start at ${top}, under the controls' ${controls}, in a window ${height} high`);
      }
      if (size.name === 'desktop') {
        // With the keyboard, the arrows pass the entry by, and Enter on it opens the dialog.
        await page.click('button[title="Step forward"]');
        await page.focus('#scenario-select');
        const step = await page.textContent('.controls-position');
        await page.keyboard.press('ArrowDown');
        assert.equal(await chosen(), 'Open a scenario file…');
        await page.keyboard.press('ArrowUp');
        assert.equal(await chosen(), 'Dropped here (dropped.json)');
        assert.equal(await page.textContent('.controls-position'), step, 'back on what is shown, it stays at its step');
        await page.keyboard.press('ArrowDown');
        await page.keyboard.press('Enter');
        const chooser = await nextChooser();
        assert.equal(await chosen(), 'Dropped here (dropped.json)');
        await chooser.setFiles(file('class.json', JSON.stringify(scenario)));
        await page.waitForSelector('.region-details:has-text("From your file class.json.")');
      }
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling at ${size.name} size (overflow ${overflow}px)`);
      await page.screenshot({ path: `${SHOTS}/${size.name}-own-file.png` });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
});

await test('a small scenario file whose run is long does not hold the page: it says how far it has got, and stops for another scenario', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1280, height: 800 } });
  try {
    // Two kilobytes: a server down for good, retried every second for a year.
    const scenario = JSON.parse(await readFile('scenarios/server-down-for-good.json', 'utf8'));
    scenario.retry = { first_retry_s: 1, max_interval_s: 1, give_up_s: 31622399 };
    scenario.run_until_s = 31622400;
    scenario.fetches = [];
    const text = JSON.stringify(scenario);
    assert.ok(text.length < 4096, `${text.length} octets`);
    await page.goto(`${server.url}#scenario=basic-delivery&step=3`);
    await page.waitForSelector('.controls-position:has-text("Step 3 of")');
    // The longest wait between two frames the page draws, from now on.
    await page.evaluate(() => {
      window.__longestFrameGap = 0;
      let last = performance.now();
      const frame = (now) => {
        window.__longestFrameGap = Math.max(window.__longestFrameGap, now - last);
        last = now;
        requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
    });
    await page.setInputFiles('input[type="file"]', { name: 'storm.json', mimeType: 'application/json', buffer: Buffer.from(text) });
    await page.waitForSelector('.details-notice:has-text("Running the scenario of storm.json")', { timeout: 5000 });
    await page.waitForSelector('.details-progress:not([hidden])');
    const first = await page.textContent('.details-progress');
    assert.match(first, /^Running: \d+ events so far, at simulated time /);
    // The scenario shown before steps meanwhile.
    await page.keyboard.press('ArrowRight');
    await page.waitForSelector('.controls-position:has-text("Step 4 of")', { timeout: 2000 });
    await page.waitForTimeout(2000);
    const later = await page.textContent('.details-progress');
    assert.notEqual(later, first, 'the words say how far it has got');
    const gap = await page.evaluate(() => window.__longestFrameGap);
    assert.ok(gap < 1000, `the page drew at least every second; its longest wait was ${Math.round(gap)} ms`);
    // Another scenario chosen: the run is given up, and the file is not shown after all.
    await page.selectOption('#scenario-select', { label: 'A domain that takes no mail: null MX' });
    await page.waitForSelector('.details-progress', { state: 'hidden' });
    await page.waitForTimeout(1000);
    assert.doesNotMatch(await page.textContent('.region-details'), /storm\.json/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

await test('a student writes a message in a scenario\'s world and sees what the servers make of it', async () => {
  for (const size of [
    { name: 'desktop', viewport: { width: 1280, height: 800 } },
    { name: 'phone', viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true },
  ]) {
    const { context, page, errors } = await openApp(size);
    try {
      await page.selectOption('#scenario-select', { label: 'One message, delivered and read' });
      const chosen = () => page.$eval('#scenario-select', (select) => select.selectedOptions[0].text);
      const focused = () => page.evaluate(() => document.activeElement?.outerHTML.slice(0, 80));
      const open = () => page.$eval('dialog.compose', (dialog) => dialog.open);
      // From the picker's entry on a wide screen, from the introduction's button on a phone.
      const write = async () => {
        if (size.name === 'phone') {
          await page.click('.region-details .details-write');
        } else {
          await page.focus('#scenario-select');
          await page.selectOption('#scenario-select', { label: 'Write a message…' });
        }
        await page.waitForSelector('dialog.compose[open] #compose-to');
      };
      // Playing, the scenario pauses when the dialog opens, not to go on unseen behind it.
      if (size.name === 'desktop') await page.click('.controls button.play');
      await write();
      assert.equal(await page.textContent('.controls button.play'), 'Play', 'paused');
      // Where playing had got to when the dialog paused it (a slow machine may have taken a
      // step first): the keys below must leave it there.
      const position = await page.textContent('.controls-position');
      assert.equal(await chosen(), 'One message, delivered and read', 'the picker shows what is shown');
      assert.match(await focused(), /id="compose-title"/, 'the focus is on the dialog\'s title');
      await page.keyboard.press('Tab');
      assert.match(await focused(), /id="compose-from"/, 'Tab goes on to From');
      assert.equal(await page.inputValue('#compose-to'), 'bob@receiver.test');
      // Escape closes it, and the focus goes back to what opened it, or from the picker on
      // to Play, as after any choice there (so that an arrow key then steps rather than
      // changing the scenario); opened again on the same scenario, it holds what was written.
      await page.fill('#compose-subject', 'Lunch');
      await page.keyboard.press('Escape');
      assert.equal(await open(), false);
      if (size.name === 'phone') {
        assert.match(await focused(), /details-write/);
      } else {
        await page.waitForFunction(() => document.activeElement?.matches('.controls button.primary'));
        const at = (expected, same) => page.waitForFunction(([expected, same]) =>
          (document.querySelector('.controls-position').textContent === expected) === same, [expected, same]);
        await page.keyboard.press('ArrowRight');
        await at(position, false);
        assert.equal(await chosen(), 'One message, delivered and read', 'the arrow stepped, and did not change the scenario');
        await page.keyboard.press('ArrowLeft');
        await at(position, true);
      }
      assert.equal(await page.textContent('.controls-position'), position, 'the keys did not reach the player');
      await write();
      assert.equal(await page.inputValue('#compose-subject'), 'Lunch');
      // The whole dialog is in the window, and its Send button in sight however long the form.
      const [box, send, height, overflow] = await page.evaluate(() => [
        document.querySelector('dialog.compose').getBoundingClientRect().toJSON(),
        document.querySelector('.compose button.primary').getBoundingClientRect().toJSON(),
        window.innerHeight,
        document.documentElement.scrollWidth - window.innerWidth,
      ]);
      assert.ok(box.left >= 0 && box.right <= size.viewport.width && box.top >= 0 && box.bottom <= height, `the dialog in the window: ${JSON.stringify(box)}`);
      assert.ok(send.top >= box.top && send.bottom <= box.bottom && send.height >= 44, `Send in sight, big enough for a finger: ${JSON.stringify(send)}`);
      assert.ok(overflow <= 0, `no horizontal scrolling (overflow ${overflow}px)`);
      // A field given the focus is in sight, not under the buttons (the fields scroll
      // between the title and them).
      for (const id of ['compose-subject', 'compose-sample', 'compose-size']) {
        await page.focus(`#${id}`);
        const [field, fields] = await page.evaluate((id) => [
          document.getElementById(id).getBoundingClientRect().toJSON(),
          document.querySelector('.compose-fields').getBoundingClientRect().toJSON(),
        ], id);
        assert.ok(field.top >= fields.top - 1 && field.bottom <= fields.bottom + 1, `${id} in sight: ${JSON.stringify([field, fields])}`);
      }
      await page.fill('#compose-to', 'bob@receiver.test, nobody@receiver.test');
      await page.fill('#compose-cc', 'carol@receiver.test');
      await page.fill('#compose-subject', 'Lunch?');
      await page.selectOption('#compose-sample', { index: 0 });
      await page.fill('#compose-size', '3');
      await page.click('.compose-add button');
      assert.equal(await page.textContent('.compose-attachments li span'), 'photo.jpg (image/jpeg, 3 KiB)');
      const sideways = await page.$eval('dialog.compose', (dialog) => dialog.scrollWidth - dialog.clientWidth);
      assert.ok(sideways <= 0, `the dialog does not scroll sideways (by ${sideways}px)`);
      // Every choice of the dialog's lists shows whole in its closed list box (with room for
      // its arrow): a change's code is not cut off on a phone.
      const cut = await page.evaluate(() => [...document.querySelectorAll('dialog.compose select')].flatMap((select) => {
        const style = getComputedStyle(select);
        const context = document.createElement('canvas').getContext('2d');
        context.font = style.font;
        const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 24;
        return [...select.options]
          .filter((option) => context.measureText(option.textContent).width > room)
          .map((option) => `${select.id}: "${option.textContent}" in ${room} px`);
      }));
      assert.deepEqual(cut, [], 'every choice shows whole');
      // A change chosen is said whole under its list (not under the server's name), then
      // taken back.
      await page.selectOption('#compose-server-1', 'refuses-as-spam');
      const [list, said] = await page.evaluate(() => ['compose-server-1', 'compose-server-1-said']
        .map((id) => document.getElementById(id).getBoundingClientRect().toJSON()));
      assert.ok(Math.abs(said.left - list.left) <= 1 && said.top >= list.bottom - 1, `under its list: ${JSON.stringify([list, said])}`);
      await page.selectOption('#compose-server-1', '');
      assert.equal(await page.$('#compose-server-1-said'), null);
      await page.screenshot({ path: `${SHOTS}/${size.name}-compose.png` });
      await page.click('.compose button.primary');
      await page.waitForSelector('.region-details:has-text("Your message, in")');
      assert.equal(await open(), false);
      assert.equal(await chosen(), 'Your message, in “One message, delivered and read”');
      assert.match(await focused(), /^<button[^>]*class="primary/, 'the focus moved on to Play');
      // The address holds the written message's link: its world, its fields, its step.
      await page.waitForFunction(() => location.hash.startsWith('#scenario=basic-delivery&from=')
        && location.hash.includes('&cc=carol@receiver.test&')
        && location.hash.includes('&attach=photo.jpg;image%2Fjpeg;3072&'));
      // The user agent puts Cc in the envelope too; the unknown user is refused at RCPT, the
      // others are delivered; the photo makes the message multipart.
      await page.click('button[title="To the end"]');
      const log = await page.textContent('.conversation-log');
      assert.match(log, /C: RCPT TO:<nobody@receiver\.test>/);
      assert.match(log, /S: 550 5\.1\.1/);
      assert.match(log, /Cc: carol@receiver\.test/);
      assert.match(log, /composed m1: MAIL FROM:<alice@sender\.test> RCPT TO:<bob@receiver\.test>,<nobody@receiver\.test>,<carol@receiver\.test>/);
      assert.match(log, /Content-Type: multipart\/mixed;/);
      const end = await page.textContent('.region-details');
      for (const who of ['bob@receiver.test', 'carol@receiver.test', 'nobody@receiver.test']) {
        assert.ok(end.includes(who), `the end says where the mail to ${who} ended up: ${end.slice(0, 400)}`);
      }
      // Opened on the written message's run, the dialog has it again; opened on the scenario
      // chosen again, the scenario's own message.
      await page.click('button[title="Back to the start"]');
      await write();
      assert.equal(await page.inputValue('#compose-subject'), 'Lunch?');
      await page.keyboard.press('Escape');
      await page.selectOption('#scenario-select', { label: 'One message, delivered and read' });
      await page.waitForSelector('.region-details .details-write');
      await write();
      assert.equal(await page.inputValue('#compose-subject'), 'Hello');
      assert.equal(await page.inputValue('#compose-to'), 'bob@receiver.test');
      await page.keyboard.press('Escape');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
});

await test('a teacher downloads a run as text, as smtp-lab run prints it, from its introduction and from its end', async () => {
  const { context, page, errors } = await openApp({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  try {
    const downloaded = async () => {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click('.region-details button.details-run-text'),
      ]);
      return [download.suggestedFilename(), await readFile(await download.path(), 'utf8')];
    };
    for (const [name, title, outcome] of [
      ['basic-delivery', 'One message, delivered and read', '  m1 <bob@receiver.test>: delivered to bob@receiver.test on mx.receiver.test\n'],
      ['unknown-user', 'Unknown user refused at RCPT', '  m1 <nobody@receiver.test>: bounced'],
    ]) {
      await page.evaluate((name) => { window.location.hash = `#scenario=${name}`; }, name);
      await page.waitForSelector(`.region-details h3:has-text("${title}")`);
      const golden = await readFile(`tests/golden/${name}.txt`, 'utf8');
      const [file, text] = await downloaded();
      // Named with the run's seed, which its first event line says, so that two runs to
      // compare are two files.
      const seed = text.match(new RegExp(`^[^#].*scenario ${name}, seed (\\d+)$`, 'm'))?.[1];
      assert.ok(seed, text.slice(0, 400));
      assert.equal(file, `${name}-seed-${seed}.txt`);
      assert.ok(text.startsWith(`# ${name}: ${title}\n# `), text.slice(0, 200));
      // Under the scenario's text, the run as its golden file has it: the trace's text, then
      // every recipient's outcome.
      assert.ok(text.endsWith(`\n${golden}`), `${name}: the golden file's text at the end`);
      assert.ok(text.slice(0, -golden.length).split('\n').slice(0, -1).every((line) => line.startsWith('# ')), 'only the scenario\'s lines before it');
      assert.ok(text.split('\nOutcome:\n')[1].includes(outcome), text.split('\nOutcome:\n')[1]);
      // Said under the button, for a screen reader the download itself says nothing to.
      await page.waitForSelector(`.region-details [role="status"]:has-text("Downloading ${file}")`);
      // The same file from the last step, where the outcomes are listed.
      await page.focus('.controls button.primary');
      await page.keyboard.press('End');
      await page.waitForFunction(() => {
        const [, step, of] = document.querySelector('.controls-position').textContent.match(/Step (\d+) of (\d+)/) || [];
        return step && step === of;
      });
      await page.waitForSelector('.region-details button.details-run-text');
      assert.deepEqual(await downloaded(), [file, text]);
    }
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

// axe-core, the accessibility engine of browsers' own audits, in each kind of state a student
// reaches: every WCAG 2.x rule it has (A, AA and AAA: text at 7:1, WCAG 1.4.6, for a
// washed-out projector) and its best practices. Colours it cannot judge (text over a
// gradient or an image) it returns as "incomplete", which is not a failure.
const axeSource = await readFile('node_modules/axe-core/axe.min.js', 'utf8');
async function accessibilityViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: ['wcag2a', 'wcag2aa', 'wcag2aaa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'],
    resultTypes: ['violations'],
  }));
  return result.violations.map((violation) => `${violation.id} (${violation.impact}): ${violation.help}: ${
    violation.nodes.slice(0, 3).map((node) => `${node.target.join(' ')}: ${node.failureSummary.replace(/\s+/g, ' ')}`).join('; ')}`);
}

await test('axe finds no accessibility violation in any state a student reaches, light or dark, wide or phone', async () => {
  const problems = [];
  for (const [name, options] of [
    ['light', { viewport: { width: 1280, height: 800 } }],
    ['dark', { viewport: { width: 1280, height: 800 }, colorScheme: 'dark' }],
    ['phone', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }],
  ]) {
    const { context, page, errors } = await openApp(options);
    const audit = async (state) => {
      for (const violation of await accessibilityViolations(page)) problems.push(`${name}, ${state}: ${violation}`);
    };
    const open = async (hash, ready) => {
      await page.evaluate((hash) => { window.location.hash = hash; }, hash);
      await page.waitForSelector(ready);
    };
    try {
      await audit('the first page');
      // A refusal for good, its bytes opened.
      await open('#scenario=unknown-user&step=56', '.controls-position:has-text("Step 56 of")');
      await page.click('.details-body summary');
      await audit('a 550 at RCPT with its bytes');
      // A refusal for now, the diagram made larger.
      await open('#scenario=greylisting&step=55', '.controls-position:has-text("Step 55 of")');
      await page.click('button:has-text("Larger diagram")');
      await audit('a 451 for now, the diagram larger');
      await page.click('button:has-text("Smaller diagram")');
      await page.focus('.controls button.primary');
      await page.keyboard.press('End');
      await page.waitForFunction(() => {
        const [, step, of] = document.querySelector('.controls-position').textContent.match(/Step (\d+) of (\d+)/) || [];
        return step && step === of;
      });
      await audit('the last step');
      await open('#scenario=nope', '.details-error');
      await audit("a share link's problem");
      await open('#scenario=basic-delivery', '.region-details .details-write');
      await page.click('.region-details .details-write');
      await page.waitForSelector('dialog.compose[open] #compose-to');
      await audit('the message dialog');
      // No recipient at all: the one thing the dialog will not send (a bad address it sends,
      // for the servers to refuse).
      await page.fill('#compose-to', '');
      await page.fill('#compose-cc', '');
      await page.fill('#compose-bcc', '');
      await page.click('.compose button.primary');
      await page.waitForSelector('.compose-problem');
      await audit('the message dialog with its problem');
      await page.keyboard.press('Escape');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  }
  assert.deepEqual(problems, []);
});

await browser.close();
await server.close();
const failed = results.filter((r) => !r.ok).length;
console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
