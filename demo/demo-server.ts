/**
 * Serves the demo app: its page (with the aggregator's URL filled in), its assets, the catalog,
 * and the built Hearth library under `/hearth/`, as an app's own web server would.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { CATALOG } from './catalog.ts'
import { startStaticServer } from './static-server.ts'
import type { StaticServer } from './static-server.ts'

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url))

export interface DemoServerOptions {
  readonly distDir: string
  readonly aggregatorUrl: string
  readonly appKey: string
  readonly host?: string
  readonly port?: number
}

export async function startDemoServer(options: DemoServerOptions): Promise<StaticServer> {
  const template = await readFile(new URL('./public/index.html', import.meta.url), 'utf8')
  const page = template
    .replaceAll('{{AGGREGATOR_URL}}', escapeAttribute(options.aggregatorUrl))
    .replaceAll('{{APP_KEY}}', escapeAttribute(options.appKey))
  return startStaticServer(
    [
      { prefix: '/hearth/', dir: options.distDir },
      { prefix: '/', dir: PUBLIC_DIR, index: false },
    ],
    options.host,
    options.port,
    (app) => {
      app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page))
      app.get('/catalog.json', async () => CATALOG)
    },
  )
}

function escapeAttribute(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;')
}
