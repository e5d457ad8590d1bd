// Random filters for the adversarial and execution tests: a seeded generator over the grammar, with
// values drawn from pools that match the test rows, and optional hostile text in every value slot.

/** Deterministic PRNG (mulberry32): the same seed gives the same filters on every run. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!

/** Text that must only ever reach ClickHouse as a parameter value. */
export const hostileTexts = [
  "'; DROP TABLE flows; --",
  '"; DROP TABLE flows; --',
  "') OR 1=1 --",
  '{f0:String}',
  '} OR 1 = 1 OR {x:String',
  'UNION ALL SELECT * FROM system.users',
  '\\',
  "\\'",
  '/* open comment',
  '*/',
  '`backquoted`',
  '日本語 🚀 \u0000 \u202e',
  '%_%',
]

/** Quotes `text` the way the filter language reads it back (backslash escapes). */
export const quote = (text: string, q: '"' | "'" = '"'): string => q + text.replace(/\\/g, '\\\\').replace(new RegExp(q, 'g'), `\\${q}`) + q

type Gen = (rand: () => number) => string

const number = (values: readonly (number | string)[]): Gen => (rand) => String(pick(rand, values))

/** Per column: the operators and values a random condition on it may use (matching the test rows). */
export const conditionPools: Record<string, { ops: readonly string[]; value: Gen; peers?: readonly string[] }> = {
  SrcPort: { ops: ['=', '!=', '<', '<=', '>', '>='], value: number([22, 80, 443, 1024, 1025, 50000, 65535]), peers: ['DstPort'] },
  DstPort: { ops: ['=', '!=', '<', '<=', '>', '>='], value: number([22, 80, 443, 1024, 1025, 50000, 65535]), peers: ['SrcPort'] },
  InIfSpeed: { ops: ['=', '!=', '<', '>=', '>'], value: number([0, 1000, 10000, 100000]), peers: ['OutIfSpeed'] },
  OutIfSpeed: { ops: ['=', '<=', '>'], value: number([0, 1000, 10000, 100000]), peers: ['InIfSpeed'] },
  Proto: { ops: ['=', '!=', '<', '>'], value: (rand) => pick(rand, ['6', '17', 'tcp', 'udp', '"gre"', 'icmp', '47']) },
  EType: { ops: ['=', '!='], value: (rand) => pick(rand, ['IPv4', 'ipv6', '2048', '34525']) },
  PacketSize: { ops: ['<', '>=', '='], value: number([0, 64, 100, 1000, 1500]) },
  SrcAS: { ops: ['=', '!=', '<', '>'], value: (rand) => pick(rand, ['AS12322', '29447', 'as65000', '0', '4200000000']), peers: ['DstAS'] },
  DstAS: { ops: ['=', '!='], value: (rand) => pick(rand, ['AS12322', '29447', '65000']), peers: ['SrcAS'] },
  ExporterName: {
    ops: ['=', '!=', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE'],
    value: (rand) => quote(pick(rand, ['th2-edge1', 'par-core1', "o'brien", 'th2-%', 'TH2%', '%core%', '_ar-%', 'TH2-UPPER', '%\\%%']), pick(rand, ['"', "'"] as const)),
  },
  InIfProvider: { ops: ['=', '!='], value: (rand) => quote(pick(rand, ['', 'cogent', 'telia'])), peers: ['OutIfProvider'] },
  OutIfProvider: { ops: ['=', '!='], value: (rand) => quote(pick(rand, ['', 'cogent', 'telia'])), peers: ['InIfProvider'] },
  SrcCountry: { ops: ['=', '!='], value: (rand) => quote(pick(rand, ['FR', 'DE', ''])), peers: ['DstCountry'] },
  SrcAddr: {
    ops: ['=', '!=', '<<', '!<<'],
    value: (rand) => pick(rand, ['192.0.2.1', '192.0.2.0/24', '198.51.100.0/25', '198.51.100.128/25', '2001:db8::1', '2001:db8::/32', '2001:db8:1::/48', '10.0.0.0/8', '0.0.0.0/0', '::/0']),
    peers: ['DstAddr'],
  },
  DstAddr: { ops: ['=', '<<', '!<<'], value: (rand) => pick(rand, ['198.51.100.7', '198.51.100.0/24', '2001:db8::/32', '192.0.2.128/26']), peers: ['SrcAddr'] },
  SrcNetPrefix: { ops: ['=', '!='], value: (rand) => pick(rand, ['192.0.2.0/24', '198.51.100.0/25', '2001:db8::/48', '0.0.0.0/0']) },
  ExporterAddress: { ops: ['=', '!='], value: (rand) => pick(rand, ['192.0.2.1', '2001:db8::1', '192.0.2.0/31']) },
  InIfBoundary: { ops: ['=', '!='], value: (rand) => pick(rand, ['external', 'INTERNAL', 'undefined']), peers: ['OutIfBoundary'] },
  OutIfBoundary: { ops: ['=', '!='], value: (rand) => pick(rand, ['external', 'internal']), peers: ['InIfBoundary'] },
  FlowDirection: { ops: ['=', '!='], value: (rand) => pick(rand, ['ingress', 'egress', 'undefined']) },
  DstASPath: { ops: ['=', '!='], value: (rand) => pick(rand, ['AS1299', '174', 'AS12322', '64512']) },
  DstCommunities: { ops: ['=', '!='], value: (rand) => pick(rand, ['65000:100', '65000:200', '1:1', '65000:100:200', '65000:1:2']) },
  MPLSLabels: { ops: ['=', '!='], value: number([16000, 16001, 3]) },
  SrcMAC: { ops: ['=', '!='], value: (rand) => pick(rand, ['00:11:22:33:44:55', '02-00-00-00-00-01', '0011.2233.4455', 'ff:ff:ff:ff:ff:ff']) },
  TimeReceived: { ops: ['<', '>=', '=', '!='], value: (rand) => pick(rand, ['1700000000', '1700000100', '"2023-11-14 22:15:00"', '2023-11-14']) },
  FlowStartTime: { ops: ['<', '>='], value: (rand) => pick(rand, ['"2023-11-14 22:13:20.500"', '1700000050']) },
}

/** IN / NOTIN lists, per column that takes them. */
const listPools: Record<string, Gen> = {
  DstPort: (rand) => `(${[pick(rand, ['80', '443']), pick(rand, ['22', '1024'])].join(', ')})`,
  SrcAS: (rand) => `(${pick(rand, ['AS12322', '0'])}, ${pick(rand, ['29447', '65000'])})`,
  SrcCountry: (rand) => `(${quote(pick(rand, ['FR', 'DE']))}, '')`,
  SrcAddr: (rand) => `(${pick(rand, ['192.0.2.1', '2001:db8::1'])}, ${pick(rand, ['10.0.0.0/8', '198.51.100.7'])})`,
  InIfBoundary: (rand) => `(${pick(rand, ['external', 'internal'])}, undefined)`,
  Proto: (rand) => `(tcp, ${pick(rand, ['"udp"', '47'])})`,
  DstASPath: (rand) => `(AS1299, ${pick(rand, ['174', '64512'])})`,
  DstCommunities: (rand) => `(65000:100, ${pick(rand, ['65000:1:2', '1:1'])})`,
  SrcMAC: (rand) => `(00:11:22:33:44:55, ${pick(rand, ['02:00:00:00:00:01', 'aa:bb:cc:dd:ee:ff'])})`,
}

/** Blanks and comments between tokens; hostile mode adds comments that look like SQL. */
const gap = (rand: () => number, hostile: boolean): string => {
  if (!hostile || rand() < 0.7) return ' '
  return pick(rand, [' /* ; DROP TABLE flows */ ', ' -- \'"\n', '\n\t', ' /**/ ', ' /* {f0:String} */ '])
}

/** A random condition; hostile mode puts hostile text into value slots some of the time. */
export const randomCondition = (rand: () => number, hostile = false): string => {
  const column = pick(rand, Object.keys(conditionPools))
  const pool = conditionPools[column]!
  const written = rand() < 0.2 ? column.toLowerCase() : column
  const g = () => gap(rand, hostile)
  if (listPools[column] && rand() < 0.15) return `${written}${g()}${pick(rand, ['IN', 'NOTIN', 'in'])}${g()}${listPools[column]!(rand)}`
  const op = pick(rand, pool.ops)
  if (hostile && rand() < 0.3) return `${written}${g()}${op}${g()}${quote(pick(rand, hostileTexts), pick(rand, ['"', "'"] as const))}`
  // Two columns compare with = and != (numbers with every comparison).
  const peerOp = /Port|Speed|AS$/.test(column) ? op : pick(rand, ['=', '!='])
  if (pool.peers && rand() < 0.15) return `${written}${g()}${peerOp}${g()}${pick(rand, pool.peers)}`
  return `${written}${g()}${op}${g()}${pool.value(rand)}`
}

/** A random filter: conditions under AND, OR, NOT and parentheses, up to `depth` levels. */
export const randomFilter = (rand: () => number, depth = 3, hostile = false): string => {
  const g = () => gap(rand, hostile)
  const r = rand()
  if (depth === 0 || r < 0.35) return randomCondition(rand, hostile)
  if (r < 0.45) return `NOT${g()}${randomFilter(rand, depth - 1, hostile)}`
  if (r < 0.55) return `(${g()}${randomFilter(rand, depth - 1, hostile)}${g()})`
  const op = rand() < 0.5 ? pick(rand, ['AND', 'and']) : pick(rand, ['OR', 'or'])
  return `${randomFilter(rand, depth - 1, hostile)}${g()}${op}${g()}${randomFilter(rand, depth - 1, hostile)}`
}
