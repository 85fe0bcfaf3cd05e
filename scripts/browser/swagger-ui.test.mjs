// Browser test of the Swagger UI that `orderflow serve` publishes at /swagger-ui.html.
//
// Run by scripts/browser-test, which starts the server and sets:
//   ORDERFLOW_BASE_URL   e.g. http://127.0.0.1:40071 (required)
//   SCREENSHOT_PATH      where to save the final screenshot (default: a temp file)
//   CHROMIUM_PATH        the browser (default /usr/bin/chromium)
//
// Uses Node's own test runner (`node --test swagger-ui.test.mjs`) and playwright-core driving the
// system Chromium; playwright-core downloads no browser of its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE_URL = process.env.ORDERFLOW_BASE_URL;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SCREENSHOT =
  process.env.SCREENSHOT_PATH || join(mkdtempSync(join(tmpdir(), 'orderflow-swagger-')), 'swagger-ui.png');
const TIMEOUT_MS = 30_000;

let browser;
let page;
const pageErrors = [];

before(async () => {
  assert.ok(BASE_URL, 'ORDERFLOW_BASE_URL must be set (scripts/browser-test sets it)');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Playwright adds its own --headless; the flags below keep Chromium from reaching out to the
    // network on its own (no background updates, sync or QUIC probes).
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 1600 } });
  // The page must need nothing but the server under test.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    const base = new URL(BASE_URL);
    if (url.protocol === 'data:' || url.protocol === 'blob:' || url.origin === base.origin) {
      return route.continue();
    }
    pageErrors.push(`request to another origin blocked: ${url.href}`);
    return route.abort();
  });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
});

after(async () => {
  if (page) {
    try {
      await page.screenshot({ path: SCREENSHOT, fullPage: false });
      console.log(`screenshot: ${SCREENSHOT}`);
    } catch (error) {
      console.log(`no screenshot: ${error.message}`);
    }
  }
  await browser?.close();
});

/** The operation block Swagger UI renders for an operation id, e.g. #operations-Catalog-listProducts. */
const operation = (operationId) => page.locator(`.opblock[id^="operations-"][id$="-${operationId}"]`);

test('Swagger UI renders the API operations', async () => {
  const response = await page.goto(`${BASE_URL}/swagger-ui.html`, { waitUntil: 'load' });
  assert.equal(response.status(), 200, 'GET /swagger-ui.html');
  await page.locator('.swagger-ui .info .title').waitFor({ state: 'visible' });

  for (const id of ['listProducts', 'getProduct', 'placeOrder', 'getOrder', 'login', 'register']) {
    await operation(id).waitFor({ state: 'visible' });
  }
  // GET /api/v1/products is shown with its method and path.
  const listProducts = operation('listProducts');
  assert.equal((await listProducts.locator('.opblock-summary-method').innerText()).trim(), 'GET');
  assert.equal(
    (await listProducts.locator('.opblock-summary-path').getAttribute('data-path')) ??
      (await listProducts.locator('.opblock-summary-path').innerText()).trim(),
    '/api/v1/products',
  );
  const placeOrder = operation('placeOrder');
  assert.equal((await placeOrder.locator('.opblock-summary-method').innerText()).trim(), 'POST');

  // One block per operation in the document (28 of them), none rendered twice.
  const count = await page.locator('.opblock[id^="operations-"]').count();
  assert.ok(count >= 25, `expected every operation to render, found ${count} blocks`);
  assert.deepEqual(pageErrors, [], 'the page raised errors or reached another origin');
});

test('Try it out on GET /api/v1/products returns 200 with products', async () => {
  const block = operation('listProducts');
  await block.locator('.opblock-summary').first().click();
  await block.locator('button.try-out__btn').click();

  const executed = page.waitForResponse(
    (r) => new URL(r.url()).pathname === '/api/v1/products' && r.request().method() === 'GET',
  );
  await block.locator('button.execute').click();
  const apiResponse = await executed;
  assert.equal(apiResponse.status(), 200, 'the live request Swagger UI sent');

  // What the page shows for the live response: the status column and the body.
  const live = block.locator('.live-responses-table .response');
  await live.first().waitFor({ state: 'visible' });
  const status = (await live.first().locator('.response-col_status').innerText()).trim();
  assert.equal(status, '200', `live response status shown: ${status}`);
  const body = await block.locator('.live-responses-table .response-col_description pre').first().innerText();
  const parsed = JSON.parse(body);
  assert.ok(Array.isArray(parsed.items), 'body has items');
  assert.ok(parsed.items.length > 0, 'the demo catalog is listed');
  assert.match(parsed.items[0].sku, /^SKU-/);

  // The request URL Swagger UI shows is the server under test.
  const requestUrl = (await block.locator('.request-url pre').innerText()).trim();
  assert.ok(requestUrl.startsWith(`${BASE_URL}/api/v1/products`), `request URL shown: ${requestUrl}`);

  await live.first().scrollIntoViewIfNeeded();
  assert.deepEqual(pageErrors, [], 'the page raised errors or reached another origin');
});
