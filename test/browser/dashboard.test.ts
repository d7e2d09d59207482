/**
 * The privacy team's dashboard in real Chromium against a real aggregator with central DP: it
 * asks for the admin token, then shows a round live as Node clients take part (WebSocket push),
 * the ε spent against the budget as a chart, the trust assumption in words, and rejections; then
 * rolls the model back from the page and finds the rollback and the round in the audit log. The
 * page carries a strict content security policy. Screenshots go to test-results/dashboard/.
 */
import { mkdirSync } from 'node:fs'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { clipForUpload } from '../../protocol/clip.ts'
import { fetchWeights, knownDelta, listen, TestClient } from '../aggregator/helpers.ts'
import type { RunningApp } from '../aggregator/helpers.ts'
import { launchChromium } from './chromium.ts'

const TOKEN = 'dashboard-test-token-0123'
const SHOTS = 'test-results/dashboard'
const CLIP = 0.5

describe('dashboard', () => {
  let running: RunningApp
  let browser: Browser
  let page: Page
  const clients: TestClient[] = []

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true })
    running = await listen({
      store: new MemoryStore(),
      adminToken: TOKEN,
      rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 50, uploadTimeoutMs: 20_000, pauseMs: 60_000, privacy: { mode: 'central', clipNorm: CLIP, noiseMultiplier: 2 } },
    })
    browser = await launchChromium()
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } })
  }, 60_000)

  afterAll(async () => {
    for (const client of clients) client.close()
    await browser?.close()
    await running?.close()
  })

  test('asks for the token, and serves the page with a strict content security policy', async () => {
    const response = await page.goto(`${running.url}/dashboard/`)
    expect(response?.status()).toBe(200)
    const csp = response?.headers()['content-security-policy'] ?? ''
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    await page.getByLabel('Admin token').waitFor()
    expect(await page.locator('#main').isHidden()).toBe(true)
    await page.getByLabel('Admin token').fill('wrong-token-wrong-token')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByLabel('Admin token').waitFor() // refused: asked again
    await page.getByLabel('Admin token').fill(TOKEN)
    await page.keyboard.press('Enter')
    await page.locator('#main').waitFor({ state: 'visible' })
    expect(await page.locator('#login').isVisible()).toBe(false)
    await page.screenshot({ path: `${SHOTS}/empty.png`, fullPage: true })
  })

  test('shows a round live, then the budget spent and the trust assumption', async () => {
    for (let i = 0; i < 3; i++) clients.push(await TestClient.checkedIn(running.wsUrl))
    const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
    const roundId = plans[0]!.roundId
    const row = page.locator(`tr[data-round="${roundId}"]`)
    await row.waitFor()
    expect(await row.locator('td').nth(3).textContent()).toBe('3 → 3 → 0')
    await page.screenshot({ path: `${SHOTS}/running.png`, fullPage: true })

    clients[0]!.upload(roundId, clipForUpload(knownDelta(1), CLIP).values)
    await expect.poll(() => row.locator('td').nth(3).textContent(), { timeout: 5_000 }).toBe('3 → 3 → 1')
    clients[1]!.upload(roundId, clipForUpload(knownDelta(2), CLIP).values)
    clients[2]!.sendBytes(new Uint8Array([1, 2, 3])) // malformed: rejected and counted
    clients[2]!.upload(roundId, clipForUpload(knownDelta(3).map((x) => x * 50), CLIP).values)
    await expect.poll(() => row.locator('td').nth(6).textContent(), { timeout: 10_000 }).toBe('published v2')
    expect(await row.locator('td').nth(5).textContent()).toMatch(/^\d+%$/)

    const card = page.locator('#model-tiny')
    await expect.poll(() => card.locator('h3').textContent(), { timeout: 5_000 }).toBe('tiny · version 2')
    const text = (await card.textContent()) ?? ''
    expect(text).toContain('Privacy: central.')
    expect(text).toContain('Central DP trusts the aggregator')
    expect(text).toMatch(/ε spent \d+\.\d{3} of 8 \(δ = 0\.000001\) over 1 DP round/)
    expect(await card.locator('svg.budget polyline').getAttribute('points')).toMatch(/^[\d.]+,[\d.]+ [\d.]+,[\d.]+$/)
    await expect.poll(() => page.locator('#rejections').textContent()).toContain('HEARTH_ERR_MALFORMED_FRAME: 1')
    await page.screenshot({ path: `${SHOTS}/published.png`, fullPage: true })
  })

  test('rolls back to version 1 after a confirm step; the audit log shows the rollback and the round', async () => {
    const card = page.locator('#model-tiny')
    const v1 = card.locator('li[data-version="1"]')
    await v1.waitFor()
    expect(await card.locator('li[data-version="2"]').textContent()).toContain('(serving)')
    await v1.getByRole('button', { name: 'Roll back to this version' }).click()
    await page.screenshot({ path: `${SHOTS}/rollback-confirm.png`, fullPage: true })
    await v1.getByRole('button', { name: 'Confirm: publish v3 with the weights of v1' }).click()
    await expect.poll(() => card.locator('h3').textContent(), { timeout: 5_000 }).toBe('tiny · version 3')
    expect(await card.locator('li[data-version="3"]').textContent()).toMatch(/^v3 · rollback · .+\(serving\)$/)

    const [restored, initial] = await Promise.all([fetchWeights(running.url, 'tiny', 3), fetchWeights(running.url, 'tiny', 1)])
    expect(restored.version).toBe(3)
    expect(Array.from(restored.values)).toEqual(Array.from(initial.values))

    const rollback = page.locator('#audit tr[data-action="model.rollback"]')
    await rollback.waitFor()
    expect(await rollback.textContent()).toContain('v3 = weights of v1 (was v2)')
    expect(await rollback.locator('td').nth(2).textContent()).toBe('admin')
    const round = page.locator('#audit tr[data-action="round.published"]')
    expect(await round.locator('td').nth(2).textContent()).toBe('system')
    expect(await round.textContent()).toMatch(/tiny · 3 participants · central DP, ε → \d+\.\d{3} · config [0-9a-f]{12}… · published v2/)
    await page.screenshot({ path: `${SHOTS}/rolled-back.png`, fullPage: true })
  })
})
