// What a `flowbus` command is, and the argument parsing every command shares. Commands with
// their own options live in ./commands/ and are listed in main.ts.
import { type ActorDefinition, type ResolvedConfig, configSchema, loadConfig } from '@flowbus/runtime'

/** A mistake in the command line: printed as one line, exit code 2. */
export class UsageError extends Error {}

export interface Command {
  readonly summary: string
  readonly usage: string
  readonly help: string
  /** Options of this command that take a value (`--pcap FILE`); others are boolean switches. */
  readonly valuedFlags?: readonly string[]
  readonly run: (args: ParsedArgs, context: CliContext) => Promise<number>
}

export interface ParsedArgs {
  readonly positional: string[]
  /** Last value of each option (`true` for a switch). */
  readonly flags: Map<string, string | true>
  /** Every value of each valued option, in command-line order (`--pcap a --pcap b`). */
  readonly values: Map<string, string[]>
}

export interface CliContext {
  readonly actors: readonly ActorDefinition<any>[]
  readonly env: Record<string, string | undefined>
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  /** Whether stdout is a terminal (progress bars); false when absent. */
  readonly isTTY?: boolean
}

export const configFlagHelp = `  --config FILE   YAML configuration (default: $FLOWBUS_CONFIG, else built-in defaults)
                  Any key can be overridden from the environment:
                  FLOWBUS_<SECTION>__<KEY>[__<SUBKEY>…]=value, e.g. FLOWBUS_BUS__TRANSPORT=nats`

export const parseArgs = (argv: readonly string[], valued: ReadonlySet<string>): ParsedArgs => {
  const positional: string[] = []
  const flags = new Map<string, string | true>()
  const values = new Map<string, string[]>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '-h') flags.set('help', true)
    else if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]
      if (valued.has(name)) {
        const value = inline ?? argv[++i]
        if (value === undefined) throw new UsageError(`--${name} needs a value`)
        flags.set(name, value)
        values.set(name, [...(values.get(name) ?? []), value])
      } else flags.set(name, true)
    } else positional.push(arg)
  }
  return { positional, flags, values }
}

export const resolveConfig = (args: ParsedArgs, context: CliContext): ResolvedConfig => {
  const file = (args.flags.get('config') as string | undefined) ?? context.env.FLOWBUS_CONFIG
  return loadConfig(configSchema(context.actors), { file, env: context.env }) as ResolvedConfig
}
