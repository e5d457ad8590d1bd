// Starts a real Apache Kafka broker (KRaft, combined broker+controller) on free loopback ports,
// from the official jars on Maven Central run on the local JVM, for tests.
//
// Version: 3.9.1, the last 3.x line. kafkajs 2.2.4 speaks the older protocol versions that
// Kafka 4.x removed, so 4.x is not an option while the transport uses kafkajs.

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { installKafka, KAFKA_VERSION } from './kafka-install.js'
import { ensureExecutable, errorText, freePort, removeDir, startProcess, tempDir, waitForPort, type ServerProcess } from './process.js'

const execFileAsync = promisify(execFile)

export { KAFKA_VERSION } from './kafka-install.js'

export interface KafkaBrokerOptions {
  /** Broker-wide message.max.bytes (default 16 MiB, so topics may raise their own limit up to it). */
  readonly messageMaxBytes?: number
  /** JVM heap cap in MiB (default 512). */
  readonly heapMb?: number
  /** Extra `key=value` lines appended to server.properties. */
  readonly extraProperties?: Readonly<Record<string, string | number | boolean>>
}

export interface KafkaBroker {
  /** Bootstrap servers, e.g. `['127.0.0.1:41234']`. */
  readonly brokers: string[]
  readonly port: number
  /** The broker JVM's process id (for CPU figures); undefined once it exited. */
  readonly pid: number | undefined
  /** The broker's own log (log4j), inside the temp dir removed by stop. */
  readonly logFile: string
  /** SIGTERM (then SIGKILL), and remove the temp dir. */
  stop(): Promise<void>
  /** SIGKILL without cleanup, to simulate a crash; stop() still removes the dir afterwards. */
  kill(): void
  /**
   * Stops the broker cleanly (SIGTERM) and starts it again on the same ports and data, for
   * tests of clients riding through a restart; resolves once it serves metadata again.
   */
  restart(): Promise<void>
}

/**
 * Makes sure a broker can be started here (java, and the jars fetched once), for test files
 * that decide up front whether to run their Kafka tests. Returns why not, to skip with; throws
 * instead when CI=true, where a real broker is required.
 */
export async function kafkaUnavailable(): Promise<string | undefined> {
  try {
    await ensureExecutable('java', 'openjdk-17-jre-headless')
    await installKafka()
    return undefined
  } catch (error) {
    const reason = `kafka unavailable: ${errorText(error)}`
    if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: real servers are required, not skipped)`)
    console.warn(`skipping tests that need kafka: ${reason}`)
    return reason
  }
}

export async function startKafka(options: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
  const java = await ensureExecutable('java', 'openjdk-17-jre-headless')
  const libs = await installKafka()
  const dir = await tempDir('kafka')
  try {
    const port = await freePort()
    const controllerPort = await freePort()
    const propertiesFile = join(dir, 'server.properties')
    const log4jFile = join(dir, 'log4j.properties')
    const logFile = join(dir, 'server.log')
    await writeFile(propertiesFile, serverProperties(dir, port, controllerPort, options))
    await writeFile(log4jFile, log4jProperties(logFile))
    const jvm = [
      `-Xms128m`,
      `-Xmx${options.heapMb ?? 512}m`,
      // Serial GC and few compiler threads: a test broker on a 2-core machine must leave the
      // CPUs to the code under test. (Measured: Serial GC pauses were well under 1% of a
      // benchmark run, so a more elaborate collector buys nothing here.)
      '-XX:+UseSerialGC',
      '-XX:CICompilerCount=2',
      // The quick (C1) compiler only, as for any short-lived JVM: the optimising one spent
      // more CPU compiling during a test or benchmark run than it saved; broker CPU per
      // benchmark batch 1.5 ms instead of 2.5-3.3 ms in the first seconds.
      '-XX:TieredStopAtLevel=1',
      '-XX:+ExitOnOutOfMemoryError',
      '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${log4jFile}`,
      `-Dkafka.logs.dir=${dir}`,
      '-cp',
      join(libs, '*'),
    ]
    // A cluster id is 16 random bytes in base64url; one starting with '-' would be read as an
    // option by the storage tool (as Kafka's own Uuid.randomUuid, draw again).
    let clusterId = randomBytes(16).toString('base64url')
    while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url')
    try {
      await execFileAsync(java, [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propertiesFile], {
        cwd: dir,
        maxBuffer: 16 << 20,
      })
    } catch (error) {
      throw new Error(`kafka storage format failed in ${dir}: ${errorText(error)}`)
    }
    const brokers = [`127.0.0.1:${port}`]
    const launch = async (): Promise<ServerProcess> => {
      const server = startProcess({ name: 'kafka', command: java, args: [...jvm, 'kafka.Kafka', propertiesFile], cwd: dir })
      try {
        await waitForPort(port, { process: server, timeoutMs: 60_000 })
        await waitForMetadata(brokers, 60_000)
        return server
      } catch (error) {
        server.kill()
        await server.exited
        // The broker writes its story to the log file, not to the output waitForPort quotes.
        const log = await readFile(logFile, 'utf8').catch(() => '')
        throw new Error(`${errorText(error)}\n--- last lines of ${logFile} ---\n${log.slice(-6000)}`)
      }
    }
    let server = await launch()
    return {
      brokers,
      port,
      get pid() {
        return server.child.exitCode === null && server.child.signalCode === null ? server.child.pid : undefined
      },
      logFile,
      async stop() {
        await server.stop(10_000)
        await removeDir(dir)
      },
      kill() {
        server.kill()
      },
      async restart() {
        await server.stop(30_000)
        server = await launch()
      },
    }
  } catch (error) {
    await removeDir(dir)
    throw error
  }
}

/** The listener opens before the controller has elected itself; clients need metadata with a leader. */
async function waitForMetadata(brokers: string[], timeoutMs: number): Promise<void> {
  const kafka = new Kafka({ brokers, clientId: 'flowbus-harness', logLevel: logLevel.NOTHING, retry: { retries: 0 } })
  const admin = kafka.admin()
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  try {
    for (;;) {
      try {
        await admin.connect()
        const cluster = await admin.describeCluster()
        if (cluster.brokers.length > 0 && cluster.controller !== null) return
      } catch (error) {
        lastError = error
      }
      if (Date.now() > deadline) {
        throw new Error(`kafka on ${brokers.join(',')} answered no metadata in time: ${errorText(lastError)}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

function serverProperties(dir: string, port: number, controllerPort: number, options: KafkaBrokerOptions): string {
  const properties: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': join(dir, 'data'),
    // One node: internal topics cannot be replicated, and few partitions make them quick to create.
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'group.initial.rebalance.delay.ms': 0,
    // Lets tests use short session timeouts so a killed consumer's shards move quickly.
    'group.min.session.timeout.ms': 2_000,
    'auto.create.topics.enable': false,
    'message.max.bytes': options.messageMaxBytes ?? 16 * 1024 * 1024,
    'num.partitions': 1,
    'num.network.threads': 2,
    'num.io.threads': 2,
    'background.threads': 2,
    'num.recovery.threads.per.data.dir': 1,
    'log.cleaner.threads': 1,
    'log.cleaner.dedupe.buffer.size': 8 * 1024 * 1024,
    ...options.extraProperties,
  }
  return Object.entries(properties)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')
    .concat('\n')
}

function log4jProperties(logFile: string): string {
  return [
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${logFile}`,
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    // The request logger and the state-change log are very chatty at INFO.
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    '',
  ].join('\n')
}
