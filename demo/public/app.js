// The demo app: a catalog page that records what you do with Hearth and shows the on-device
// ranking. Plain JavaScript on purpose: this is what an app embedding the script tag writes.
const $ = (id) => document.getElementById(id)
const catalog = await (await fetch('/catalog.json')).json()

function log(text) {
  const li = document.createElement('li')
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`
  $('log').prepend(li)
  while ($('log').children.length > 40) $('log').lastChild.remove()
}

function card(item, hearth, score) {
  const li = document.createElement('li')
  li.className = 'card'
  const scoreText = score === undefined ? '' : `<span class="score">${score.toFixed(2)}</span>`
  li.innerHTML = `${scoreText}<div class="genre"></div><strong></strong><div></div>`
  li.querySelector('.genre').textContent = item.genre
  li.querySelector('strong').textContent = item.title
  for (const [label, kind] of [['Read', 'click'], ['Like', 'like'], ['Not for me', 'dismiss']]) {
    const button = document.createElement('button')
    button.type = 'button'
    button.textContent = label
    button.setAttribute('aria-label', `${label}: ${item.title}`)
    button.addEventListener('click', () => {
      hearth.record({ item: item.id, kind })
      log(`${kind} “${item.title}”`)
      void refresh(hearth)
    })
    li.querySelector('div:last-child').append(button)
  }
  return li
}

async function refresh(hearth) {
  const stats = await hearth.stats()
  $('events').textContent = String(stats.events)
  $('rounds').textContent = String(stats.roundsJoined)
  $('version').textContent = hearth.modelVersion === null ? '–' : String(hearth.modelVersion)
  $('connection').textContent = hearth.connected ? 'connected, waiting for rounds' : 'offline'
  const scores = await hearth.score(catalog.map((item) => item.id))
  const ranked = catalog.map((item, i) => ({ item, score: scores[i] })).sort((a, b) => b.score - a.score).slice(0, 8)
  $('for-you').replaceChildren(...ranked.map(({ item, score }) => card(item, hearth, score)))
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
    void refresh(hearth)
  })
  hearth.addEventListener('round', (event) => {
    const { roundId, status, reason, version } = event.detail
    log(`round ${roundId}: ${status}${version === undefined ? '' : ` → version ${version}`}${reason === undefined ? '' : ` (${reason})`}`)
    if (status === 'accepted') void refresh(hearth)
  })
  hearth.addEventListener('error', (event) => log(`error ${event.detail.error.code}: ${event.detail.error.message}`))
  $('train').addEventListener('click', async () => {
    const result = await hearth.train()
    log(`trained on ${result.examples} examples in ${Math.round(result.durationMs)} ms (loss ${result.loss.toFixed(3)})`)
    void refresh(hearth)
  })
  browse(hearth)
  await refresh(hearth)
  setInterval(() => void refresh(hearth), 5000)
} catch (error) {
  $('connection').textContent = `could not start: ${error.message}`
}
