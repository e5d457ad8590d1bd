// Resolvers of the public schema: arguments checked and converted, then handed to the query
// engine, the filter language, the live hub or the health reader.
import { type FlowBatch, type FlowColumnName, flowColumns, formatIP, formatMAC } from '@flowbus/bus-schemas'
import { GraphQLScalarType, Kind } from 'graphql'
import type { User } from '../auth.js'
import type { FilterLanguage } from '../filter-language.js'
import type { PipelineHealth } from '../health.js'
import { type LiveHub, subscribeLiveFlows, subscribeLiveRates } from '../live.js'
import type { QueryEngine, Range, TimeseriesInput, Unit } from '../query/engine.js'
import { QueryInputError } from '../query/errors.js'
import type { SavedFilters } from '../saved-filters.js'

export interface GatewayContext {
  readonly user: User
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal | undefined
  /**
   * True while the client's connection holds too much unsent data (WebSocket): live events then
   * wait in the subscriber's bounded queue, where the oldest are dropped. SSE needs none: the
   * response stream pulls events only as fast as the socket drains.
   */
  readonly congested?: () => boolean
}

/** Waits before each read while the connection is congested, so the bounded queue does the dropping. */
const paced = <T>(events: AsyncIterableIterator<T>, congested: (() => boolean) | undefined): AsyncIterableIterator<T> => {
  if (!congested) return events
  return {
    next: async () => {
      while (congested()) await new Promise((resolve) => setTimeout(resolve, 20))
      return events.next()
    },
    return: () => events.return?.() ?? Promise.resolve({ value: undefined, done: true }),
    [Symbol.asyncIterator]() {
      return this
    },
  }
}

export interface ResolverDependencies {
  readonly engine: QueryEngine
  readonly filters: FilterLanguage
  readonly hub: LiveHub
  readonly health: () => Promise<PipelineHealth>
  readonly saved: SavedFilters | undefined
  readonly live: {
    readonly queueLength: number
    readonly maxFlowsPerEvent: number
    readonly onDropped?: (events: number) => void
    readonly onError?: (error: unknown) => void
  }
}

const toSeconds = (value: unknown): number => {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.floor(value)
  if (typeof value === 'string') {
    if (/^\d+$/.test(value)) return Number(value)
    const ms = Date.parse(value)
    if (Number.isFinite(ms)) return Math.floor(ms / 1000)
  }
  throw new QueryInputError(`${JSON.stringify(String(value).slice(0, 60))} is not a date: use ISO 8601 (2026-01-02T03:04:05Z) or Unix seconds`, 'BAD_ARGUMENT')
}

export const DateTimeScalar = new GraphQLScalarType({
  name: 'DateTime',
  serialize: (value) => new Date(Number(value) * 1000).toISOString(),
  parseValue: toSeconds,
  parseLiteral: (ast) => {
    if (ast.kind === Kind.STRING) return toSeconds(ast.value)
    if (ast.kind === Kind.INT) return toSeconds(Number(ast.value))
    throw new QueryInputError('a DateTime is an ISO 8601 string or Unix seconds', 'BAD_ARGUMENT')
  },
})

const jsonLiteral = (ast: import('graphql').ValueNode): unknown => {
  switch (ast.kind) {
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, jsonLiteral(f.value)]))
    case Kind.LIST:
      return ast.values.map(jsonLiteral)
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value)
    case Kind.STRING:
    case Kind.ENUM:
      return ast.value
    case Kind.BOOLEAN:
      return ast.value
    default:
      return null
  }
}

export const JSONObjectScalar = new GraphQLScalarType({
  name: 'JSONObject',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: jsonLiteral,
})

const range = (value: { start: number; end: number }): Range => ({ start: value.start, end: value.end })

const flowColumnKinds = new Map(flowColumns.map((c) => [c.name as string, c.kind]))
const enumNames: Record<string, readonly string[]> = {
  InIfBoundary: ['undefined', 'external', 'internal'],
  OutIfBoundary: ['undefined', 'external', 'internal'],
  FlowDirection: ['undefined', 'ingress', 'egress'],
}

/** A live batch row's dimension values as the stored tables print them. */
export const batchDimensionText = (names: readonly string[]) => {
  const readers = names.map((name) => {
    const kind = flowColumnKinds.get(name)
    const column = name as FlowColumnName
    const labels = enumNames[name]
    switch (kind) {
      case 'ip':
        return (b: FlowBatch, r: number) => formatIP(b.getIP(column as never, r))
      case 'mac':
        return (b: FlowBatch, r: number) => formatMAC(b.getNumber(column as never, r))
      case 'string':
        return (b: FlowBatch, r: number) => b.getString(column as never, r)
      case 'u32list':
      case 'u32x3list':
        return (b: FlowBatch, r: number) => Array.from(b.getList(column as never, r)).join(' ')
      default:
        return (b: FlowBatch, r: number) => {
          const v = b.getNumber(column as never, r)
          return labels ? (labels[v] ?? String(v)) : String(v)
        }
    }
  })
  return (batch: FlowBatch, row: number) => readers.map((read) => read(batch, row))
}

export const makeResolvers = (deps: ResolverDependencies) => {
  const { engine, filters } = deps
  const options = (context: GatewayContext, purpose: string) => ({ user: context.user.login, signal: context.signal, purpose })
  const truncation = (args: { ipv4PrefixLength?: number; ipv6PrefixLength?: number }) => ({
    ipv4PrefixLength: args.ipv4PrefixLength ?? 32,
    ipv6PrefixLength: args.ipv6PrefixLength ?? 128,
  })
  // Live filters are evaluated by ClickHouse over each batch (see QueryEngine.liveSelector).
  const liveSelector = (filter: string, context: GatewayContext) =>
    engine.liveSelector(filter, { user: `live:${context.user.login}`, signal: undefined, purpose: 'live' })
  const tableOf = (choice: { table: string; resolution: number; reason: string }) => ({ name: choice.table, resolution: choice.resolution, reason: choice.reason })

  return {
    DateTime: DateTimeScalar,
    JSONObject: JSONObjectScalar,
    Timeseries: { table: (t: { table: Parameters<typeof tableOf>[0] }) => tableOf(t.table) },
    TopN: { table: (t: { table: Parameters<typeof tableOf>[0] }) => tableOf(t.table) },
    Sankey: { table: (t: { table: Parameters<typeof tableOf>[0] }) => tableOf(t.table) },
    Home: {
      flowRate: (_: unknown, __: unknown, context: GatewayContext) => engine.flowRate(60, options(context, 'home.flowRate')),
      exporterCount: async (_: unknown, __: unknown, context: GatewayContext) => (await engine.exporters(options(context, 'home.exporterCount'))).length,
      lastFlow: async (_: unknown, __: unknown, context: GatewayContext) =>
        (await engine.flows({ range: null, filter: '', limit: 1, orderBy: 'TIME_DESC' }, options(context, 'home.lastFlow')))[0] ?? null,
      top: (_: unknown, args: { dimension: string; limit: number; unit: Unit }, context: GatewayContext) => {
        const end = Math.floor(Date.now() / 1000)
        return engine.topN(
          { range: { start: end - 3600, end }, filter: '', dimensions: [args.dimension], truncation: truncation({}), unit: args.unit, limit: args.limit },
          options(context, 'home.top'),
        )
      },
    },
    Query: {
      dimensions: () =>
        engine.dimensions.dimensions.map((d) => ({
          name: d.name,
          type: d.column.type,
          description: d.column.flow.doc,
          aggregated: d.aggregated,
          address: d.address,
          filterable: d.column.filterable,
        })),
      flows: (
        _: unknown,
        args: { filter: string; range?: { start: number; end: number } | null; limit: number; orderBy: 'TIME_DESC' | 'TIME_ASC' | 'BYTES_DESC' | 'PACKETS_DESC' },
        context: GatewayContext,
      ) => engine.flows({ range: args.range ? range(args.range) : null, filter: args.filter, limit: args.limit, orderBy: args.orderBy }, options(context, 'flows')),
      timeseries: (_: unknown, args: Omit<TimeseriesInput, 'truncation' | 'range'> & { range: Range; ipv4PrefixLength: number; ipv6PrefixLength: number }, context: GatewayContext) =>
        engine.timeseries({ ...args, range: range(args.range), truncation: truncation(args) }, options(context, 'timeseries')),
      topN: (_: unknown, args: { range: Range; dimensions: string[]; filter: string; limit: number; unit: Unit; ipv4PrefixLength: number; ipv6PrefixLength: number }, context: GatewayContext) =>
        engine.topN({ ...args, range: range(args.range), truncation: truncation(args) }, options(context, 'topN')),
      sankey: (_: unknown, args: { range: Range; dimensions: string[]; filter: string; limit: number; unit: Unit; ipv4PrefixLength: number; ipv6PrefixLength: number }, context: GatewayContext) =>
        engine.sankey({ ...args, range: range(args.range), truncation: truncation(args) }, options(context, 'sankey')),
      filterValidate: (_: unknown, args: { filter: string }) => {
        const result = filters.validate(args.filter, engine.dimensions.filterColumns)
        return {
          valid: result.problems.length === 0,
          problems: result.problems,
          columns: result.columns,
          rawOnly: result.columns.some((c) => !engine.dimensions.isAggregated(c)),
        }
      },
      filterComplete: async (_: unknown, args: { filter: string; cursor?: number | null }, context: GatewayContext) => {
        const cursor = args.cursor ?? args.filter.length
        if (cursor < 0 || cursor > args.filter.length) throw new QueryInputError(`cursor ${cursor} is outside the filter (0-${args.filter.length})`, 'BAD_ARGUMENT')
        const { suggestions, values } = filters.complete(args.filter, cursor, engine.dimensions.filterColumns)
        if (!values) return suggestions
        const found = await engine.values(values.column, values.prefix, 20, options(context, 'filterComplete'))
        return [
          ...suggestions,
          ...found.map(({ value, name }) => ({
            label: value,
            kind: 'value',
            detail: name === '' ? values.column : name,
            insertText: values.quoted ? JSON.stringify(value) : value,
            from: values.from,
            to: values.to,
          })),
        ]
      },
      exporters: (_: unknown, __: unknown, context: GatewayContext) => engine.exporters(options(context, 'exporters')),
      health: () => deps.health(),
      home: () => ({}),
      me: (_: unknown, __: unknown, context: GatewayContext) => context.user,
      savedFilters: (_: unknown, __: unknown, context: GatewayContext) => savedOrFail(deps.saved).list(context.user.login, options(context, 'savedFilters')),
    },
    Mutation: {
      saveFilter: (_: unknown, args: { description: string; filter: string; shared: boolean }, context: GatewayContext) => {
        const validation = filters.validate(args.filter, engine.dimensions.filterColumns)
        if (validation.problems.length > 0) {
          const p = validation.problems[0]!
          throw new QueryInputError(`filter: ${p.message} (line ${p.line}, column ${p.column})`, 'BAD_FILTER', { offset: p.offset })
        }
        return savedOrFail(deps.saved).save(context.user.login, args)
      },
      deleteFilter: (_: unknown, args: { id: string }, context: GatewayContext) => savedOrFail(deps.saved).delete(context.user.login, args.id),
    },
    Subscription: {
      liveFlows: {
        subscribe: (_: unknown, args: { filter: string; sampleRate: number }, context: GatewayContext) => {
          if (!Number.isInteger(args.sampleRate) || args.sampleRate < 1) throw new QueryInputError('sampleRate must be a positive integer (1 keeps every flow)', 'BAD_ARGUMENT')
          return paced(subscribeLiveFlows(deps.hub, {
            select: liveSelector(args.filter, context),
            sampleRate: args.sampleRate,
            queueLength: deps.live.queueLength,
            maxFlowsPerEvent: deps.live.maxFlowsPerEvent,
            ...(deps.live.onDropped ? { onDropped: deps.live.onDropped } : {}),
            ...(deps.live.onError ? { onError: deps.live.onError } : {}),
          }), context.congested)
        },
        resolve: (event: unknown) => event,
      },
      liveRates: {
        subscribe: (_: unknown, args: { filter: string; dimensions: string[]; interval: number }, context: GatewayContext) => {
          if (!Number.isInteger(args.interval) || args.interval < 1 || args.interval > 60) throw new QueryInputError('interval must be 1 to 60 seconds', 'BAD_ARGUMENT')
          const dims = args.dimensions.map((d) => engine.dimensions.resolve(d).name)
          return paced(subscribeLiveRates(deps.hub, {
            select: liveSelector(args.filter, context),
            ...(deps.live.onError ? { onError: deps.live.onError } : {}),
            key: batchDimensionText(dims),
            intervalMs: args.interval * 1000,
            queueLength: deps.live.queueLength,
            limit: 10,
          }), context.congested)
        },
        resolve: (event: unknown) => event,
      },
    },
  }
}

const savedOrFail = (saved: SavedFilters | undefined): SavedFilters => {
  if (!saved) throw new QueryInputError('saved filters are not available: ClickHouse is not reachable from the gateway', 'STORAGE_UNAVAILABLE')
  return saved
}
