// The orchestrator's HTTP endpoints under /api/v0/clickhouse/: the CSVWithNames files behind the
// dictionaries, the flow .proto files, and init.sh that a ClickHouse server runs to fetch them.
import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { HttpRouteHandler } from '@flowbus/runtime'
import type { DictionaryData, DictionaryName } from './dictionaries.js'

export const API_PREFIX = '/api/v0/clickhouse/'

const dictionaries: readonly DictionaryName[] = ['protocols', 'asns', 'icmp', 'services']

/** Protobuf schemas ClickHouse may read (format_schemas): flows and interface counters. */
const protoFiles = ['flow_batch.proto', 'counters.proto']

const protoDir = (): string => {
  const entry = createRequire(import.meta.url).resolve('@flowbus/bus-schemas')
  return join(dirname(entry), '..', 'proto', 'flowbus', 'v1')
}

/** The base URL a client used to reach us (Host header), for links in init.sh. */
const baseURL = (request: IncomingMessage): string => `http://${request.headers.host ?? '127.0.0.1'}`

/** Shell script for a ClickHouse server's /docker-entrypoint-initdb.d: fetches the files to local paths. */
export const initScript = (base: string): string => `#!/bin/sh
# flowbus: ClickHouse server initialisation, served by the orchestrator at ${base}${API_PREFIX}init.sh
# Fetches the flowbus protobuf schemas into format_schemas and the dictionary CSV files into
# user_files, so the server can read them without reaching the orchestrator later.
set -eu
BASE="\${FLOWBUS_ORCHESTRATOR_URL:-${base}}${API_PREFIX}"
SCHEMAS="\${CLICKHOUSE_FORMAT_SCHEMAS:-/var/lib/clickhouse/format_schemas}/flowbus"
FILES="\${CLICKHOUSE_USER_FILES:-/var/lib/clickhouse/user_files}/flowbus"
mkdir -p "$SCHEMAS" "$FILES"
fetch() {
  if command -v curl >/dev/null 2>&1; then curl -fsS --retry 5 --retry-delay 2 -o "$2.tmp" "$BASE$1"
  else wget -q -O "$2.tmp" "$BASE$1"; fi
  mv "$2.tmp" "$2"
}
${protoFiles.map((f) => `fetch ${f} "$SCHEMAS/${f}"`).join('\n')}
${dictionaries.map((d) => `fetch ${d}.csv "$FILES/${d}.csv"`).join('\n')}
echo "flowbus: fetched ${protoFiles.length} schemas into $SCHEMAS and ${dictionaries.length} dictionaries into $FILES"
`

const send = (response: ServerResponse, status: number, type: string, body: string) => {
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  response.end(body)
}

/** The handler of everything under API_PREFIX. */
export const clickHouseEndpoints = (data: DictionaryData): HttpRouteHandler => async (request, response) => {
  const name = (request.url ?? '').split('?')[0]!.slice(API_PREFIX.length)
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    send(response, 405, 'text/plain', `${API_PREFIX}${name}: only GET\n`)
    return
  }
  if (name === 'init.sh') return send(response, 200, 'text/x-shellscript', initScript(baseURL(request)))
  const dictionary = dictionaries.find((d) => `${d}.csv` === name)
  if (dictionary) return send(response, 200, 'text/csv; charset=utf-8', await data(dictionary))
  if (protoFiles.includes(name)) return send(response, 200, 'text/plain; charset=utf-8', await readFile(join(protoDir(), name), 'utf8'))
  send(
    response,
    404,
    'text/plain',
    `${API_PREFIX}${name}: not found; available: ${['init.sh', ...dictionaries.map((d) => `${d}.csv`), ...protoFiles].join(', ')}\n`,
  )
}
