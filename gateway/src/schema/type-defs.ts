// The public GraphQL schema of flowbus, with the descriptions GraphiQL and the UI show.
// Names follow the flow columns (SrcAS, DstPort…) and Akvorado's vocabulary.
export const typeDefs = /* GraphQL */ `
"""
A point in time: an ISO 8601 string on input ("2026-01-02T03:04:05Z") or Unix seconds;
always an ISO 8601 UTC string on output.
"""
scalar DateTime

"A JSON object: one flow, its columns by name (addresses as text, TimeReceived in Unix seconds)."
scalar JSONObject

"A time range; end is exclusive."
input TimeRange {
  start: DateTime!
  end: DateTime!
}

"What the values measure."
enum Unit {
  "bits per second at layer 3 (IP bytes × sampling rate × 8)"
  BPS_L3
  "bits per second at layer 2 (adds 18 bytes of Ethernet framing per packet)"
  BPS_L2
  "packets per second (× sampling rate)"
  PPS
  "flows per second, as exported (not scaled by the sampling rate)"
  FLOWS
  "L2 traffic as a percentage of the input interface's speed"
  IN_IF_PERCENT
  "L2 traffic as a percentage of the output interface's speed"
  OUT_IF_PERCENT
}

"How the top series are chosen."
enum TopBy {
  "highest average over the range"
  AVG
  "highest single point"
  MAX
  "highest last point"
  LAST
}

"How a client should draw a time series; the server returns it as given."
enum GraphType {
  STACKED
  STACKED_100
  LINES
  GRID
}

"Order of the flows query."
enum FlowOrder {
  TIME_DESC
  TIME_ASC
  BYTES_DESC
  PACKETS_DESC
}

"A column flows may be grouped by."
type Dimension {
  name: String!
  "ClickHouse type of the stored column."
  type: String!
  description: String!
  "Kept in the aggregated tables; false: grouping by it reads raw flows (shorter retention, slower)."
  aggregated: Boolean!
  "An address: truncatable with ipv4PrefixLength / ipv6PrefixLength."
  address: Boolean!
  "May be used in filters."
  filterable: Boolean!
}

"The flows table a query read."
type TableChoice {
  "flows_1h0m0s, flows_5m0s, flows_1m0s or flows (raw)."
  name: String!
  "Seconds each stored row covers (1 for raw flows)."
  resolution: Int!
  reason: String!
}

"Statistics of one series over the range, in the series' unit."
type SeriesStats {
  min: Float!
  max: Float!
  avg: Float!
  last: Float!
  "95th percentile of the points (nearest rank)."
  p95: Float!
  "Sum of value × step: bits, packets or flows over the range."
  total: Float!
}

type Series {
  "Values of the requested dimensions, in order; Other for the rest; empty without dimensions."
  dimensions: [String!]!
  "The dimension values joined with ', ' (Total without dimensions)."
  name: String!
  "1: flows as asked; 2: the reverse direction (bidirectional, values negative); 3: previous period."
  axis: Int!
  "The series holds everything outside the top."
  other: Boolean!
  "One value per time of the time series, 0 where no flow was stored."
  values: [Float!]!
  stats: SeriesStats!
}

type Timeseries {
  "Start of the first point (range start rounded down to the step)."
  start: DateTime!
  "End of the last point, exclusive."
  end: DateTime!
  "Seconds between points: at least range/points, a whole number of the table's resolution."
  step: Int!
  "Start of each point."
  times: [DateTime!]!
  unit: Unit!
  graphType: GraphType!
  table: TableChoice!
  dimensions: [String!]!
  "Top series (by topBy), then Other; with bidirectional, the reverse series follow (axis 2)."
  series: [Series!]!
  "All flows matching the filter one period earlier, aligned on times (previousPeriod: true)."
  previous: Series
  "How far back the previous period is, in seconds (1 h, 1 day, 1 week, 30 days or 365 days)."
  previousOffset: Int
}

type TopRow {
  dimensions: [String!]!
  name: String!
  "Average rate over the range, in the unit."
  value: Float!
  "value × range seconds (bits, packets or flows)."
  total: Float!
  "Share of all flows matching the filter, 0-100."
  percent: Float!
}

type TopN {
  start: DateTime!
  end: DateTime!
  unit: Unit!
  table: TableChoice!
  dimensions: [String!]!
  rows: [TopRow!]!
  "Everything outside the top rows (null when nothing is left)."
  other: TopRow
  "All flows matching the filter."
  all: TopRow!
}

type SankeyLink {
  source: String!
  target: String!
  "Average rate over the range, in the unit."
  value: Float!
}

type Sankey {
  start: DateTime!
  end: DateTime!
  unit: Unit!
  table: TableChoice!
  dimensions: [String!]!
  "One row per combination of dimension values (each dimension's own top, the rest Other)."
  rows: [TopRow!]!
  "Node labels: 'value (Dimension)'."
  nodes: [String!]!
  "Links between consecutive dimensions."
  links: [SankeyLink!]!
}

type FilterProblem {
  message: String!
  offset: Int!
  line: Int!
  column: Int!
  expected: [String!]!
}

type FilterValidation {
  valid: Boolean!
  problems: [FilterProblem!]!
  "Columns the filter reads."
  columns: [String!]!
  "The filter reads a column kept only in raw flows."
  rawOnly: Boolean!
}

type FilterSuggestion {
  label: String!
  "column, operator, value or keyword"
  kind: String!
  detail: String
  "Replace filter[from, to) with insertText."
  insertText: String!
  from: Int!
  to: Int!
}

type Interface {
  "SNMP ifIndex."
  index: Int!
  name: String!
  description: String!
  "Mbps."
  speed: Int!
  connectivity: String!
  provider: String!
  "external, internal or undefined."
  boundary: String!
  lastSeen: DateTime!
}

type Exporter {
  address: String!
  name: String!
  group: String!
  role: String!
  site: String!
  region: String!
  tenant: String!
  lastSeen: DateTime!
  interfaces: [Interface!]!
}

"Loss accounting of one exporter along the pipeline (counters since each process started)."
type ExporterHealth {
  exporter: String!
  "Datagrams the receiver took from the exporter."
  packetsReceived: Float!
  "Export units lost before reaching the collector, from sequence numbers."
  sequenceGaps: Float!
  "Datagrams or records the decoder could not decode."
  decodeErrors: Float!
  "Flows decoded."
  flowsDecoded: Float!
}

"Health of the pipeline: per exporter, and the shared stages."
type Health {
  exporters: [ExporterHealth!]!
  "Datagrams the kernel dropped because a receive buffer was full."
  socketDrops: Float!
  "Bus messages the writer holds and has not stored yet."
  busPendingMessages: Float!
  "Age of the oldest message the writer holds, in seconds: how far storage is behind the bus."
  busLagSeconds: Float!
  "Rows stored in ClickHouse."
  rowsStored: Float!
  "Sources read: 'local' and any gateway.metricsURLs; failures name the URL."
  sources: [String!]!
  errors: [String!]!
}

"The home page's widgets."
type Home {
  "Flows per second stored over the last minute."
  flowRate: Float!
  exporterCount: Int!
  "The last flow stored."
  lastFlow: JSONObject
  "Top values of a dimension over the last hour (e.g. SrcAS, DstPort, Proto, SrcCountry, ExporterName)."
  top(dimension: String!, limit: Int = 5, unit: Unit = BPS_L3): TopN!
}

type User {
  login: String!
  name: String
  email: String
}

"A filter saved by a user; shared filters are visible to every user."
type SavedFilter {
  id: ID!
  owner: String!
  description: String!
  filter: String!
  shared: Boolean!
}

type Query {
  "Dimensions flows may be grouped by, in flow column order."
  dimensions: [Dimension!]!
  "The last flows matching the filter, every stored column."
  flows(filter: String = "", range: TimeRange, limit: Int = 100, orderBy: FlowOrder = TIME_DESC): [JSONObject!]!
  "A time series per top value of the dimensions, the rest as Other."
  timeseries(
    range: TimeRange!
    "Number of points wanted; the step is range/points rounded up to the table's resolution."
    points: Int = 200
    dimensions: [String!] = []
    filter: String = ""
    "Series kept (the rest becomes Other)."
    limit: Int = 10
    topBy: TopBy = AVG
    unit: Unit = BPS_L3
    "IPv4 address dimensions truncated to this prefix length."
    ipv4PrefixLength: Int = 32
    ipv6PrefixLength: Int = 128
    "Also the reverse direction (Src↔Dst, In↔Out swapped), as negative values on axis 2."
    bidirectional: Boolean = false
    "Also all matching flows one period earlier (see previousOffset)."
    previousPeriod: Boolean = false
    graphType: GraphType = STACKED
  ): Timeseries!
  "The top values of the dimensions over the range, with totals."
  topN(
    range: TimeRange!
    dimensions: [String!]!
    filter: String = ""
    limit: Int = 10
    unit: Unit = BPS_L3
    ipv4PrefixLength: Int = 32
    ipv6PrefixLength: Int = 128
  ): TopN!
  "Flows between the values of two or more dimensions."
  sankey(
    range: TimeRange!
    dimensions: [String!]!
    filter: String = ""
    "Top values kept per dimension."
    limit: Int = 10
    unit: Unit = BPS_L3
    ipv4PrefixLength: Int = 32
    ipv6PrefixLength: Int = 128
  ): Sankey!
  "Problems of a filter, with positions."
  filterValidate(filter: String!): FilterValidation!
  "Completions at cursor (default: the end): columns, operators, and values seen in the last day."
  filterComplete(filter: String!, cursor: Int): [FilterSuggestion!]!
  exporters: [Exporter!]!
  health: Health!
  home: Home!
  "Who the gateway thinks you are."
  me: User!
  "Your saved filters and everyone's shared ones."
  savedFilters: [SavedFilter!]!
}

type Mutation {
  saveFilter(description: String!, filter: String!, shared: Boolean = false): SavedFilter!
  "Deletes one of your saved filters; true when it existed."
  deleteFilter(id: ID!): Boolean!
}

"A sample of live flows."
type LiveFlows {
  flows: [JSONObject!]!
  "Flows matching the filter not sent to you since the last event: sampling, your slow connection, or the per-event cap."
  dropped: Int!
  "Events lost because your connection was too slow (the queue was full)."
  droppedEvents: Int!
}

type LiveRate {
  dimensions: [String!]!
  name: String!
  bps: Float!
  pps: Float!
  flowsPerSecond: Float!
}

type LiveRates {
  "End of the interval the rates cover."
  time: DateTime!
  "Seconds the rates cover."
  interval: Float!
  rates: [LiveRate!]!
  "Events lost because your connection was too slow."
  droppedEvents: Int!
}

type Subscription {
  "Enriched flows as they pass the enricher's live fan-out, filtered; sampleRate 1 in N keeps 1/N of matching flows."
  liveFlows(filter: String = "", sampleRate: Int = 1): LiveFlows!
  "Rates per dimension values over each interval (seconds, 1-60), from the live fan-out."
  liveRates(filter: String = "", dimensions: [String!] = [], interval: Int = 5): LiveRates!
}
`
