// Browser test for the Paved portal: sign in, search, filter, open a service page, create a
// service from a template and follow its first pipeline run to the end, read the cost page's
// charts and budgets (the demo's billing samples), and see a refused API token become a
// security alert that is acknowledged through its form.
//
// Needs a running `pave server --demo` (tests/browser/run.sh starts one) and:
//   PAVE_URL    base URL, e.g. http://127.0.0.1:8123
//   PAVE_TOKEN  an API token (the admin token written by the server)
// Uses Debian's chromium through playwright-core; never downloads a browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const screenshot = join(repoRoot, 'build', 'portal-service.png');
const runScreenshot = join(repoRoot, 'build', 'portal-run.png');
const createScreenshot = join(repoRoot, 'build', 'portal-create.png');

const baseURL = (process.env.PAVE_URL || '').replace(/\/+$/, '');
const token = process.env.PAVE_TOKEN || '';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

let userDataDir;
let context;
let page;
const external = [];

before(async () => {
    assert.ok(baseURL, 'PAVE_URL must be set');
    assert.ok(token, 'PAVE_TOKEN must be set');
    userDataDir = mkdtempSync(join(tmpdir(), 'pave-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
        executablePath,
        headless: true,
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
        viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(10000);
    // The portal must load nothing from outside its own origin.
    page.on('request', (req) => {
        const url = req.url();
        if (!url.startsWith(baseURL) && !url.startsWith('data:') && !url.startsWith('about:')) {
            external.push(url);
        }
    });
});

after(async () => {
    if (context) await context.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

test('unauthenticated visitors are sent to the login page', async () => {
    await page.goto(`${baseURL}/catalog`);
    assert.match(new URL(page.url()).pathname, /^\/login$/);
    assert.equal(await page.getAttribute('input[name=token]', 'type'), 'password');
});

test('a wrong token is refused', async () => {
    await page.goto(`${baseURL}/login`);
    await page.fill('input[name=token]', 'pave_0000000000000000000000000000000000000000');
    const [resp] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'),
        page.click('#login button[type=submit]'),
    ]);
    assert.equal(resp.status(), 401);
    await page.waitForSelector('#login-error');
    assert.match(await page.textContent('#login-error'), /not accepted/);
});

test('sign in, search, filter and open a service', async () => {
    // Sign in.
    await page.goto(`${baseURL}/login`);
    await page.fill('input[name=token]', token);
    await Promise.all([page.waitForURL(/\/catalog$/), page.click('#login button[type=submit]')]);
    assert.equal(await page.locator('#services tr.service-row').count(), 3);
    const cookies = await context.cookies(baseURL);
    const session = cookies.find((c) => c.name === 'pave_session');
    assert.ok(session, 'session cookie set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');

    // Search for "ledger": exactly one row.
    await page.fill('#q', 'ledger');
    await Promise.all([page.waitForURL(/q=ledger/), page.click('#search button[type=submit]')]);
    const rows = page.locator('#services tr.service-row');
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().textContent(), /ledger/);

    // Clear the search, filter on team "identity".
    await page.fill('#q', '');
    await page.selectOption('#team', 'identity');
    await Promise.all([
        page.waitForURL(/team=identity/),
        page.click('#search button[type=submit]'),
    ]);
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().textContent(), /auth-service/);

    // Open the service page through its link.
    await Promise.all([
        page.waitForURL(/\/services\/auth-service$/),
        page.click('#services a[href="/services/auth-service"]'),
    ]);
    assert.equal((await page.textContent('#service-name')).trim(), 'auth-service');
    const owner = page.locator('#owner a');
    assert.equal((await owner.textContent()).trim(), 'identity');
    assert.equal(await owner.getAttribute('href'), '/catalog?team=identity');
    const audit = page.locator('#audit');
    await audit.waitFor();
    assert.ok((await audit.locator('table tbody tr.audit-row').count()) >= 1, 'audit rows');
    assert.match(await audit.textContent(), /service\.create/);
    assert.match(await page.textContent('#manifest pre'), /"apiVersion"/);

    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
});

test('create a service from a template and follow its first run', async () => {
    await page.goto(`${baseURL}/catalog`);
    await Promise.all([page.waitForURL(/\/create$/), page.click('nav a[href="/create"]')]);
    assert.match(await page.textContent('h1'), /Create a service/);

    // Choose the template (a GET form, so its variables are shown without JavaScript).
    await page.selectOption('#template', 'worker-shell');
    await Promise.all([
        page.waitForURL(/template=worker-shell/),
        page.click('#choose-template button[type=submit]'),
    ]);
    assert.equal(await page.inputValue('#create input[name=template]'), 'worker-shell');
    assert.equal(await page.inputValue('#var-interval'), '10');

    await page.fill('#name', 'browser-svc');
    await page.selectOption('#create #team', 'payments');
    await page.fill('#description', 'Created by the browser test');
    mkdirSync(dirname(createScreenshot), { recursive: true });
    await page.screenshot({ path: createScreenshot, fullPage: true });
    await Promise.all([
        page.waitForURL(/\/services\/browser-svc$/, { timeout: 30000 }),
        page.click('#create-submit'),
    ]);
    assert.equal((await page.textContent('#service-name')).trim(), 'browser-svc');
    assert.match(await page.textContent('#description'), /Created by the browser test/);
    assert.match(await page.textContent('#source'), /\/git\/browser-svc\.git/);

    // The import queued the first run; follow it.
    const firstRun = page.locator('#service-runs a.run-link').first();
    await firstRun.waitFor();
    const href = await firstRun.getAttribute('href');
    assert.match(href, /^\/runs\/\d+$/);
    await Promise.all([page.waitForURL(new RegExp(`${href}$`)), firstRun.click()]);

    // The page reloads itself while the run goes on; reload ourselves too, up to ~60 s.
    let state = '';
    for (let i = 0; i < 60; i++) {
        state = (await page.textContent('#run-state')).trim();
        if (state !== 'queued' && state !== 'running') break;
        await page.waitForTimeout(1000);
        await page.goto(`${baseURL}${href}`);
    }
    assert.equal(state, 'succeeded', `run ended ${state}: ${await page.textContent('#log')}`);
    const steps = await page.locator('#steps tr.step-row .step-name').allTextContents();
    assert.ok(steps.includes('build'), `steps: ${steps}`);
    assert.ok(steps.includes('test'), `steps: ${steps}`);
    assert.equal(await page.locator('meta[http-equiv=refresh]').count(), 0);
    assert.ok((await page.textContent('#log')).length > 0, 'the log is shown');
    assert.match(await page.getAttribute('#artifact-download', 'href'), /^\/runs\/\d+\/artifact$/);

    mkdirSync(dirname(runScreenshot), { recursive: true });
    await page.screenshot({ path: runScreenshot, fullPage: true });
});

test('the cost page charts the demo bills and shows the over-budget team', async () => {
    await page.goto(`${baseURL}/catalog`);
    await Promise.all([page.waitForURL(/\/cost$/), page.click('nav a[href="/cost"]')]);
    assert.equal(await page.locator('header nav a[aria-current=page]').getAttribute('href'), '/cost');
    // The demo imported the billing samples: a team chart with bars, a trend chart, budgets.
    assert.ok((await page.locator('#team-chart rect').count()) >= 2, 'team bars');
    assert.ok((await page.locator('#trend-chart').count()) === 1, 'trend chart');
    assert.match(await page.textContent('#team-table'), /payments/);
    assert.match(await page.textContent('#budget-table'), /payments[\s\S]*over budget/);
    assert.match(await page.textContent('#assumptions'), /discount/i);
    assert.match(await page.getAttribute('#export-csv', 'href'), /^\/cost\.csv/);
});

test('a refused API token becomes an alert on the security page', async () => {
    const r = await fetch(`${baseURL}/api/v1/services`, {
        headers: { Authorization: 'Bearer pave_not_a_real_token' },
    });
    assert.equal(r.status, 401);
    // The platform's own log goes through the pipeline's detections; reload until it shows.
    let rows = 0;
    for (let i = 0; i < 40 && rows === 0; i++) {
        await page.goto(`${baseURL}/security`);
        rows = await page.locator('tr.alert-row', { hasText: 'Platform refused a token' }).count();
        if (rows === 0) await page.waitForTimeout(250);
    }
    assert.equal(rows, 1, 'one alert for the refused token');
    assert.equal(await page.locator('header nav a[aria-current=page]').getAttribute('href'), '/security');
    const link = page.locator('tr.alert-row', { hasText: 'Platform refused a token' }).locator('a').first();
    const href = await link.getAttribute('href');
    await Promise.all([page.waitForURL(new RegExp(`${href}$`)), link.click()]);
    assert.match(await page.textContent('#events'), /token refused/);
    // Acknowledge it with a comment: the form posts with the session's CSRF token.
    await page.fill('#ack-comment', 'looking at it');
    await Promise.all([page.waitForURL(new RegExp(`${href}$`)), page.click('#ack-form button[type=submit]')]);
    assert.match(await page.textContent('h1 span.state'), /acknowledged/);
    assert.match(await page.textContent('#trail'), /security\.alert\.ack/);
});

test('sign out ends the session', async () => {
    await page.goto(`${baseURL}/catalog`);
    await Promise.all([page.waitForURL(/\/login$/), page.click('#logout button[type=submit]')]);
    await page.goto(`${baseURL}/catalog`);
    assert.match(new URL(page.url()).pathname, /^\/login$/);
});

test('no page loaded anything from outside the portal', () => {
    assert.deepEqual(external, []);
});
