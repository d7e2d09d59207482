// The demo app: a catalog page that records what you do with Hearth and shows the on-device
// ranking, each book with the reason Hearth gave for it, beside the user's preferences panel.
// Plain JavaScript on purpose: this is what an app embedding the script tag writes.
const $ = (id) => document.getElementById(id)
const catalog = await (await fetch('/catalog.json')).json()
const byId = new Map(catalog.map((item) => [item.id, item]))
const panel = document.querySelector('hearth-preferences')

function log(text) {
  const li = document.createElement('li')
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`
  $('log').prepend(li)
  while ($('log').children.length > 40) $('log').lastChild.remove()
}

function card(item, hearth, reason) {
  const li = document.createElement('li')
  li.className = 'card'
  li.innerHTML = '<div class="genre"></div><strong></strong><p class="reason"></p><div class="actions"></div>'
  li.querySelector('.genre').textContent = item.genre
  li.querySelector('strong').textContent = item.title
  if (reason === undefined) li.querySelector('.reason').remove()
  else li.querySelector('.reason').textContent = reason
  for (const [label, kind] of [['Read', 'click'], ['Like', 'like'], ['Not for me', 'dismiss']]) {
    const button = document.createElement('button')
    button.type = 'button'
    button.textContent = label
    button.setAttribute('aria-label', `${label}: ${item.title}`)
    button.addEventListener('click', () => {
      hearth.record({ item: item.id, kind })
      log(`${kind} “${item.title}”`)
      void refreshAll(hearth)
    })
    li.querySelector('.actions').append(button)
  }
  return li
}

async function refreshStatus(hearth) {
  const stats = await hearth.stats()
  $('events').textContent = String(stats.events)
  $('rounds').textContent = String(stats.roundsJoined)
  $('version').textContent = hearth.modelVersion === null ? '–' : String(hearth.modelVersion)
  $('connection').textContent = !hearth.federated ? 'federated learning off' : hearth.connected ? 'connected, waiting for rounds' : 'offline'
}

// rank() logs each ranking on the device, so the panel can say why a book was shown.
async function refreshShelf(hearth) {
  const { items } = await hearth.rank(catalog.map((item) => item.id), { surface: 'for-you' })
  $('for-you').replaceChildren(...items.slice(0, 8).map(({ item, reason }) => card(byId.get(item), hearth, reason.text)))
}

async function refreshAll(hearth) {
  await Promise.all([refreshStatus(hearth), refreshShelf(hearth), panel.refresh()])
}

function browse(hearth) {
  const genres = [...new Set(catalog.map((item) => item.genre))]
  $('browse').replaceChildren(
    ...genres.map((genre) => {
      const row = document.createElement('div')
      row.className = 'genre-row'
      const title = document.createElement('h3')
      title.textContent = genre
      const shelf = document.createElement('ol')
      shelf.className = 'shelf'
      shelf.append(...catalog.filter((item) => item.genre === genre).map((item) => card(item, hearth)))
      row.append(title, shelf)
      return row
    }),
  )
}

try {
  const hearth = await window.Hearth.ready
  window.hearth = hearth
  $('backend').textContent = hearth.backend
  hearth.addEventListener('model', (event) => {
    log(`installed model version ${event.detail.version}`)
    void refreshAll(hearth)
  })
  hearth.addEventListener('round', (event) => {
    const { roundId, status, reason, version } = event.detail
    log(`round ${roundId}: ${status}${version === undefined ? '' : ` → version ${version}`}${reason === undefined ? '' : ` (${reason})`}`)
    if (status === 'accepted') void refreshStatus(hearth)
  })
  // The panel's switches and delete button act on the same instance: follow them here too.
  for (const type of ['personalization', 'federated', 'delete']) hearth.addEventListener(type, () => void refreshAll(hearth))
  hearth.addEventListener('error', (event) => log(`error ${event.detail.error.code}: ${event.detail.error.message}`))
  $('train').addEventListener('click', async () => {
    const result = await hearth.train()
    log(`trained on ${result.examples} examples in ${Math.round(result.durationMs)} ms (loss ${result.loss.toFixed(3)})`)
    void refreshAll(hearth)
  })
  browse(hearth)
  await refreshAll(hearth)
  setInterval(() => void refreshStatus(hearth), 5000)
} catch (error) {
  $('connection').textContent = `could not start: ${error.message}`
}
