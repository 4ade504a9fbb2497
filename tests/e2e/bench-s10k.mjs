// Measures the S10k simulation in the browser: serves dist/, opens the page with ?bench=s10k
// (the app then runs S10k in wasm and writes the figures into the page) and prints them.
import { serveStatic } from './static-server.mjs';
import { launchChromium } from './browser.mjs';

const server = await serveStatic(process.env.DIST_DIR || 'dist');
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${server.url}?bench=s10k`);
  const output = await page.waitForSelector('#bench-result', { timeout: 300000 });
  const text = await output.textContent();
  console.log(`summary: ${text}`);
  // A figure from a run that lost or duplicated a message is not a figure.
  if (text.includes('conservation VIOLATED')) {
    console.error('the S10k run in the browser broke the conservation check');
    process.exitCode = 1;
  }
  if (errors.length) {
    console.error(`errors in the page: ${errors.join('; ')}`);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
  await server.close();
}
