// The `flowbus` command line: start actors together or one alone, print the resolved
// configuration or its JSON Schema. Exit codes: 0 ok, 1 runtime failure, 2 usage/config error.
import { readFileSync } from 'node:fs'
import { catalogue } from '@flowbus/bus-schemas'
import {
  ConfigError,
  type ActorDefinition,
  configSchema,
  connectTransport,
  formatByteSize,
  formatConfig,
  formatDuration,
  provisionAll,
  provisioningPlan,
  runUntilSignal,
} from '@flowbus/runtime'
import { JSONSchema } from 'effect'
import { type CliContext, type Command, UsageError, configFlagHelp, parseArgs, resolveConfig } from './command.js'
import { decodeCommand } from './commands/decode.js'
import { replayCommand } from './commands/replay.js'
import { schemaCommand } from './commands/schema.js'
import { knownActors } from './registry.js'

export type { CliContext } from './command.js'

const actorList = (actors: readonly ActorDefinition<any>[]): string =>
  actors.length === 0 ? '  (none yet)' : actors.map((a) => `  ${a.name.padEnd(18)} ${a.description}`).join('\n')

// Commands in `flowbus --help` order; a command with its own options lives in ./commands/.
const commands: Record<string, Command> = {
  start: {
    summary: 'run every enabled actor in this process',
    usage: 'flowbus start [--config FILE] [--actors a,b]',
    help: `Runs all actors whose section is not \`enabled: false\` in one process, sharing one bus
connection and one HTTP endpoint (/metrics, /healthz, /readyz). Stops cleanly on Ctrl-C or
SIGTERM: intake stops, in-flight batches drain and are acknowledged, then the process exits 0.

Options:
${configFlagHelp}
  --actors a,b    run only these actors (enabled or not)`,
    run: async (args, context) => {
      const config = resolveConfig(args, context)
      const wanted = args.flags.get('actors')
      let selected: ActorDefinition<any>[]
      if (typeof wanted === 'string') {
        const names = wanted.split(',').map((n) => n.trim()).filter(Boolean)
        selected = names.map((name) => findActor(name, context.actors))
      } else {
        selected = context.actors.filter((a) => (config[a.name] as { enabled: boolean }).enabled)
      }
      return runUntilSignal({ actors: selected, config })
    },
  },
  actor: {
    summary: 'run one actor alone',
    usage: 'flowbus actor NAME [--config FILE]',
    help: `Runs a single actor, as its own service would in a multi-process deployment.

Options:
${configFlagHelp}

Actors:
${actorList(knownActors)}`,
    run: async (args, context) => {
      const name = args.positional[0]
      if (!name) throw new UsageError(`which actor? known actors:\n${actorList(context.actors)}`)
      const actor = findActor(name, context.actors)
      const config = resolveConfig(args, context)
      return runUntilSignal({ actors: [actor], config })
    },
  },
  config: {
    summary: 'print the resolved configuration (or its JSON Schema)',
    usage: 'flowbus config [--config FILE] [--json-schema]',
    help: `Prints the configuration as the actors will see it: the file, then environment overrides,
then defaults for everything left out. Secrets are masked. Exits 2, naming each bad key, when
the configuration is invalid.

Options:
${configFlagHelp}
  --json-schema   print the JSON Schema of the configuration file instead (for editors)`,
    run: async (args, context) => {
      const schema = configSchema(context.actors)
      if (args.flags.has('json-schema')) {
        context.stdout(`${JSON.stringify(configJsonSchema(context.actors), null, 2)}\n`)
        return 0
      }
      const config = resolveConfig(args, context)
      context.stdout(formatConfig(schema, config as never))
      return 0
    },
  },
  provision: {
    summary: 'create or update the bus streams, topics and buckets',
    usage: 'flowbus provision [--config FILE]',
    help: `Creates or updates, on the configured bus, every stream of the subject catalogue (with its
dead-letter stream) and every state bucket: partitions, replicas and retention from the bus
section. Idempotent. Actors also do this on first use unless bus.provision is false; run this
once instead when actors must not hold administrative rights on the broker.

Options:
${configFlagHelp}`,
    run: async (args, context) => {
      const config = resolveConfig(args, context)
      if (config.bus.transport === 'memory') {
        context.stdout('the memory bus lives inside each process: nothing to provision\n')
        return 0
      }
      const plan = provisioningPlan(catalogue, config.bus)
      const transport = await connectTransport(config.bus)
      try {
        await provisionAll(transport, plan)
      } finally {
        await transport.close()
      }
      const kafka = config.bus.transport === 'kafka'
      for (const s of plan.streams) {
        const retention = `${s.maxAgeSeconds > 0 ? formatDuration(s.maxAgeSeconds * 1000) : 'forever'}, ${s.maxBytes > 0 ? formatByteSize(s.maxBytes) : 'unlimited'}`
        context.stdout(`stream ${kafka ? s.kafkaTopic : `${s.natsStream} (${s.base}.*)`}: ${s.partitions} shards, ${s.replicas} replicas, keeps ${retention}\n`)
      }
      for (const b of plan.buckets) context.stdout(`bucket ${kafka ? b.kafkaTopic : b.natsBucket}\n`)
      return 0
    },
  },
  decode: decodeCommand,
  replay: replayCommand,
  schema: schemaCommand,
}

/** JSON Schema of the configuration file, titled, with the shared and actor sections. */
export const configJsonSchema = (actors: readonly ActorDefinition<any>[]) => ({
  ...JSONSchema.make(configSchema(actors) as never),
  title: 'flowbus configuration',
  description: 'One YAML file, a section per actor plus bus, http and log. See docs/configuration.md.',
})

const findActor = (name: string, actors: readonly ActorDefinition<any>[]): ActorDefinition<any> => {
  const actor = actors.find((a) => a.name === name)
  if (!actor) throw new UsageError(`unknown actor "${name}"; known actors:\n${actorList(actors)}`)
  return actor
}

const version = (): string => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

const topHelp = (actors: readonly ActorDefinition<any>[]): string => `flowbus — network flow collector, enricher and visualizer

Usage: flowbus <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Run "flowbus <command> --help" for a command's options.

Actors:
${actorList(actors)}

Options:
  -h, --help      show help
  --version       print the version
`

/** Runs the CLI and returns the exit code (no process.exit, so tests can call it). */
export const runCli = async (argv: readonly string[], context: CliContext): Promise<number> => {
  try {
    const valued = new Set(['config', 'actors', ...Object.values(commands).flatMap((c) => c.valuedFlags ?? [])])
    const args = parseArgs(argv, valued)
    const [name, ...rest] = args.positional
    if (args.flags.has('version')) {
      context.stdout(`flowbus ${version()}\n`)
      return 0
    }
    if (name === undefined || name === 'help') {
      if (name === 'help' && rest[0] && commands[rest[0]]) {
        const command = commands[rest[0]]!
        context.stdout(`Usage: ${command.usage}\n\n${command.help}\n`)
        return 0
      }
      context.stdout(topHelp(context.actors))
      return args.flags.has('help') || name === 'help' ? 0 : 2
    }
    const command = commands[name]
    if (!command) throw new UsageError(`unknown command "${name}"; try "flowbus --help"`)
    if (args.flags.has('help')) {
      context.stdout(`Usage: ${command.usage}\n\n${command.help}\n`)
      return 0
    }
    return await command.run({ positional: rest, flags: args.flags, values: args.values }, context)
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
      context.stderr(`flowbus: ${error.message}\n`)
      return 2
    }
    // Operational failures (broker unreachable…) are reported as one line; the stack only
    // helps developers, who can ask for it.
    const detail = context.env.FLOWBUS_DEBUG && error instanceof Error ? `\n${error.stack}` : ''
    context.stderr(`flowbus: ${error instanceof Error ? error.message : String(error)}${detail}\n`)
    return 1
  }
}

/** Process entry point used by bin/flowbus.js. */
export const main = async (argv: readonly string[]): Promise<void> => {
  const code = await runCli(argv, {
    actors: knownActors,
    env: process.env,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    isTTY: process.stdout.isTTY === true,
  })
  process.exitCode = code
}
