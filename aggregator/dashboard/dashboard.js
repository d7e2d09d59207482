// The privacy team's dashboard: live rounds and the audit log over /admin/live, each model's
// privacy ledger and versions over HTTP, rollback by POST. Plain DOM, no framework; every value
// is inserted as text, never as HTML.
const TOKEN_KEY = 'hearth-admin-token'
const $ = (selector) => document.querySelector(selector)
const ledgers = new Map() // model → { version, ledger }
const RECENT_VERSIONS = 10
let retryMs = 500

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value)
  node.append(...children)
  return node
}

function status(text) {
  $('#connection').textContent = text
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY)
  return token === null ? {} : { authorization: `Bearer ${token}` }
}

function connect() {
  const url = new URL('/admin/live', location.href)
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
  const socket = new WebSocket(url)
  socket.addEventListener('open', () => {
    socket.send(JSON.stringify({ type: 'auth', token: sessionStorage.getItem(TOKEN_KEY) ?? '' }))
    status('Connected')
  })
  socket.addEventListener('message', (event) => {
    retryMs = 500
    $('#login').hidden = true
    $('#main').hidden = false
    render(JSON.parse(event.data))
  })
  socket.addEventListener('close', (event) => {
    if (event.code === 4401) {
      sessionStorage.removeItem(TOKEN_KEY)
      status('Sign in to watch rounds')
      $('#main').hidden = true
      $('#login').hidden = false
      $('#token').focus()
      return
    }
    status(`Disconnected; retrying in ${Math.round(retryMs / 1000)} s`)
    setTimeout(connect, retryMs)
    retryMs = Math.min(retryMs * 2, 10_000)
  })
}

function render(snapshot) {
  status(`Live · updated ${new Date(snapshot.at).toLocaleTimeString()}`)
  renderRounds(snapshot.rounds)
  renderRejections(snapshot.counters.rejections)
  renderAudit(snapshot.audit)
  for (const model of snapshot.models) refreshModel(model)
}

function renderRounds(rounds) {
  const rows = rounds.map((round) => {
    const outcome = round.outcome ?? 'running'
    const clipped = round.privacy?.clipping
    const text = outcome === 'published' ? `published v${round.publishedVersion}` : outcome === 'aborted' ? 'aborted' : 'running'
    return el(
      'tr',
      { 'data-round': String(round.id) },
      el('td', {}, String(round.id)),
      el('td', {}, round.model),
      el('td', { class: outcome === 'running' ? 'running' : '' }, round.stage),
      el('td', {}, `${round.eligible} → ${round.participants} → ${round.uploadsAccepted}`),
      el('td', {}, String(round.dropped)),
      el('td', {}, clipped == null ? '–' : `${Math.round(clipped.clippedFraction * 100)}%${clipped.noised ? ' (noised)' : ''}`),
      el('td', { class: `reason ${outcome}`, title: round.reason ?? '' }, outcome === 'aborted' ? `${text}: ${round.reason ?? ''}` : text),
    )
  })
  $('#rounds tbody').replaceChildren(...rows)
}

function renderRejections(rejections) {
  const entries = Object.entries(rejections)
  $('#rejections').replaceChildren(...(entries.length === 0 ? [el('li', {}, 'None so far.')] : entries.map(([code, n]) => el('li', {}, `${code}: ${n}`))))
}

function renderAudit(entries) {
  const rows = entries.map((entry) =>
    el(
      'tr',
      { 'data-audit': String(entry.id), 'data-action': entry.action },
      el('td', {}, String(entry.id)),
      el('td', {}, new Date(entry.at).toLocaleString()),
      el('td', {}, entry.actor),
      el('td', {}, entry.action),
      el('td', {}, entry.subject),
      el('td', { class: 'details' }, describeAudit(entry)),
    ),
  )
  $('#audit tbody').replaceChildren(...(rows.length === 0 ? [el('tr', {}, el('td', { colspan: '6' }, 'Nothing recorded yet.'))] : rows))
}

function describeAudit({ action, details }) {
  if (action === 'model.rollback') return `v${details.newVersion} = weights of v${details.toVersion} (was v${details.fromVersion})`
  if (action.startsWith('round.')) {
    const dp = details.dp === null ? 'no DP' : `${details.dp.mode} DP${details.dp.charged ? `, ε → ${details.dp.epsilonIfPublished.toFixed(3)}` : ', not charged'}`
    const result = details.outcome === 'published' ? `published v${details.publishedVersion}` : `aborted: ${details.reason}`
    return `${details.model} · ${details.participants} participants · ${dp} · config ${String(details.configHash).slice(0, 12)}… · ${result}`
  }
  return JSON.stringify(details)
}

async function refreshModel(model) {
  const known = ledgers.get(model.name)
  if (known !== undefined && known.version === model.latestVersion) return
  ledgers.set(model.name, { version: model.latestVersion, ledger: known?.ledger })
  const base = `/admin/models/${encodeURIComponent(model.name)}`
  const [ledgerResponse, versionsResponse] = await Promise.all([
    fetch(`${base}/ledger`, { headers: authHeaders() }),
    fetch(`${base}/versions?limit=${RECENT_VERSIONS}`, { headers: authHeaders() }),
  ])
  if (!ledgerResponse.ok || !versionsResponse.ok) return
  const ledger = await ledgerResponse.json()
  const { versions } = await versionsResponse.json()
  ledgers.set(model.name, { version: model.latestVersion, ledger })
  renderModel(model, ledger, versions)
}

// Asks again before rolling back: the confirm step replaces the button in place.
function versionRow(model, version) {
  const origin = version.roundId !== null ? `round ${version.roundId}` : version.version === 1 ? 'initial weights' : 'rollback'
  const row = el(
    'li',
    { 'data-version': String(version.version) },
    el('span', {}, `v${version.version} · ${origin} · ${new Date(version.createdAt).toLocaleString()} · `, el('code', { title: version.sha256 }, version.sha256.slice(0, 12))),
  )
  if (version.version === model.latestVersion) {
    row.append(el('span', { class: 'hint' }, ' (serving)'))
    return row
  }
  const actions = el('span', { class: 'actions' })
  const ask = el('button', { type: 'button' }, 'Roll back to this version')
  ask.addEventListener('click', () => {
    const confirm = el('button', { type: 'button', class: 'danger' }, `Confirm: publish v${model.latestVersion + 1} with the weights of v${version.version}`)
    const cancel = el('button', { type: 'button' }, 'Cancel')
    cancel.addEventListener('click', () => actions.replaceChildren(ask))
    confirm.addEventListener('click', () => rollback(model, version.version, actions))
    actions.replaceChildren(confirm, cancel)
    confirm.focus()
  })
  actions.append(ask)
  row.append(actions)
  return row
}

async function rollback(model, toVersion, actions) {
  actions.replaceChildren(el('span', { class: 'hint' }, 'Rolling back…'))
  const response = await fetch(`/admin/models/${encodeURIComponent(model.name)}/rollback`, {
    method: 'POST',
    headers: { ...authHeaders(), 'content-type': 'application/json' },
    body: JSON.stringify({ toVersion }),
  })
  const body = await response.json().catch(() => ({}))
  // On success the next snapshot carries the new version and redraws the card.
  actions.replaceChildren(el('span', { class: response.ok ? 'published' : 'aborted', role: 'status' }, response.ok ? `Published v${body.newVersion}` : `Refused: ${body.message ?? response.status}`))
}

function renderModel(model, ledger, versions) {
  const id = `model-${model.name}`
  const card = el(
    'article',
    { class: 'model', id },
    el('h3', {}, `${model.name} · version ${model.latestVersion}`),
    el('p', { class: 'hint' }, `published ${new Date(model.latestVersionAt).toLocaleString()}`),
    el('p', { class: 'trust' }, el('strong', {}, `Privacy: ${ledger.mode}. `), ledger.trustAssumption),
  )
  if (ledger.budget !== null) {
    const spent = ledger.epsilon ?? 0
    card.append(
      el('p', {}, `ε spent ${spent.toFixed(3)} of ${ledger.budget.epsilon} (δ = ${ledger.budget.delta}) over ${ledger.rounds} DP round${ledger.rounds === 1 ? '' : 's'}`),
      budgetChart(ledger),
    )
  }
  if (ledger.refusal !== null) card.append(el('p', { class: 'aborted' }, `Next round refused: ${ledger.refusal.reason}`))
  card.append(el('h4', {}, 'Recent versions'), el('ul', { class: 'versions' }, ...versions.map((version) => versionRow(model, version))))
  const existing = document.getElementById(id)
  if (existing === null) $('#models').append(card)
  else existing.replaceWith(card)
}

// ε after each ledger entry against the budget, as an SVG line chart.
function budgetChart(ledger) {
  const ns = 'http://www.w3.org/2000/svg'
  const svg = document.createElementNS(ns, 'svg')
  const width = 400
  const height = 120
  const pad = 24
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.setAttribute('class', 'budget')
  svg.setAttribute('role', 'img')
  svg.setAttribute('aria-label', `Privacy budget spent over ${ledger.entries.length} rounds`)
  const top = Math.max(ledger.budget.epsilon, ...ledger.entries.map((e) => e.epsilon)) * 1.1
  const x = (i) => pad + ((width - 2 * pad) * i) / Math.max(1, ledger.entries.length)
  const y = (eps) => height - pad - ((height - 2 * pad) * eps) / top
  const line = (tag, attributes) => {
    const node = document.createElementNS(ns, tag)
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value))
    svg.append(node)
    return node
  }
  line('line', { class: 'limit', x1: pad, x2: width - pad, y1: y(ledger.budget.epsilon), y2: y(ledger.budget.epsilon) })
  line('text', { x: width - pad, y: y(ledger.budget.epsilon) - 4, 'text-anchor': 'end' }).textContent = `budget ε = ${ledger.budget.epsilon}`
  const points = [[x(0), y(0)], ...ledger.entries.map((entry, i) => [x(i + 1), y(entry.epsilon)])]
  line('polyline', { class: 'spent', points: points.map((p) => p.join(',')).join(' ') })
  line('text', { x: pad, y: height - 6 }).textContent = 'round 0'
  line('text', { x: width - pad, y: height - 6, 'text-anchor': 'end' }).textContent = `DP round ${ledger.entries.length}`
  return svg
}

$('#login').addEventListener('submit', (event) => {
  event.preventDefault()
  sessionStorage.setItem(TOKEN_KEY, $('#token').value)
  ledgers.clear()
  status('Connecting…')
  connect()
})

connect()
