// Browser test for the Paved portal: sign in, search, filter, open a service page.
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

test('sign out ends the session', async () => {
    await page.goto(`${baseURL}/catalog`);
    await Promise.all([page.waitForURL(/\/login$/), page.click('#logout button[type=submit]')]);
    await page.goto(`${baseURL}/catalog`);
    assert.match(new URL(page.url()).pathname, /^\/login$/);
});

test('no page loaded anything from outside the portal', () => {
    assert.deepEqual(external, []);
});
