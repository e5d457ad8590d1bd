// Regenerates reference/protocols.csv and reference/services.csv from the netbase package's
// /etc/protocols and /etc/services (Debian; IANA registries). Run: node scripts/generate-data.mjs
import { readFileSync, writeFileSync } from 'node:fs'

const field = (t) => (/[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t)
const out = (file, header, rows) =>
  writeFileSync(new URL(`../reference/${file}`, import.meta.url), [header, ...rows].map((r) => r.map(String).map(field).join(',')).join('\n') + '\n')

// /etc/protocols: "name number ALIAS... # comment"; the IANA keyword is the first alias.
const protocols = new Map()
for (const line of readFileSync('/etc/protocols', 'utf8').split('\n')) {
  const [data, ...comment] = line.split('#')
  const [name, number, alias] = data.trim().split(/\s+/)
  if (!name || number === undefined) continue
  // Protocol 0 is listed twice (the "ip" pseudo protocol, then HOPOPT): the IANA entry wins.
  protocols.set(Number(number), [Number(number), alias ?? name.toUpperCase(), comment.join('#').trim()])
}
out('protocols.csv', ['proto', 'name', 'description'], [...protocols.values()].sort((a, b) => a[0] - b[0]))

// /etc/services: "name port/proto aliases... # comment".
const numbers = { tcp: 6, udp: 17, sctp: 132 }
const services = new Map()
for (const line of readFileSync('/etc/services', 'utf8').split('\n')) {
  const [name, portProto] = line.split('#')[0].trim().split(/\s+/)
  if (!name || !portProto) continue
  const [port, proto] = portProto.split('/')
  if (!(proto in numbers)) continue
  const key = `${numbers[proto]}/${port}`
  if (!services.has(key)) services.set(key, [numbers[proto], Number(port), name])
}
out('services.csv', ['proto', 'port', 'name'], [...services.values()].sort((a, b) => a[0] - b[0] || a[1] - b[1]))
