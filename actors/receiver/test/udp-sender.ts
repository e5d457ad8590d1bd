// A UDP load generator run as its own process by the receive benchmark: sends fixed-size datagrams
// at an even rate to a loopback port, then prints how many it sent and over how long, as JSON.
// Usage: udp-sender.ts <host> <port> <packets/s> <seconds> <size> [sources]
import dgram from 'node:dgram'

const [host = '127.0.0.1', portText = '2055', rateText = '50000', secondsText = '3', sizeText = '1400', sourcesText = '4'] = process.argv.slice(2)
const port = Number(portText)
const rate = Number(rateText)
const seconds = Number(secondsText)
const size = Number(sizeText)
const sources = Number(sourcesText)

// NetFlow v9 header bytes, so the receiver sniffs a known protocol; the rest is filler.
const payload = Buffer.alloc(size, 0x5a)
payload.writeUInt16BE(9, 0)

// Several source sockets, 127.0.0.x, so the receiver sees several exporters as in production.
const sockets = await Promise.all(
  Array.from({ length: sources }, (_, i) => {
    const socket = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 })
    return new Promise<dgram.Socket>((resolve) =>
      socket.bind(0, `127.0.0.${i + 1}`, () => socket.connect(port, host, () => resolve(socket))),
    )
  }),
)

let sent = 0
let errors = 0
const total = Math.round(rate * seconds)
const start = process.hrtime.bigint()
const onSent = (error: Error | null): void => {
  if (error) errors++
}
await new Promise<void>((resolve) => {
  const step = (): void => {
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9
    // Catch up to where an even pace would be, at most 2 ms worth at once.
    const due = Math.min(total, Math.floor(elapsed * rate))
    const burst = Math.min(due - sent, Math.ceil(rate / 500))
    for (let i = 0; i < burst; i++) {
      sockets[sent % sockets.length]!.send(payload, onSent)
      sent++
    }
    if (sent >= total) resolve()
    else setImmediate(step)
  }
  step()
})
const elapsed = Number(process.hrtime.bigint() - start) / 1e9
// Let the last sends leave before closing.
await new Promise((r) => setTimeout(r, 50))
for (const s of sockets) s.close()
process.stdout.write(`${JSON.stringify({ sent, errors, seconds: elapsed })}\n`)
