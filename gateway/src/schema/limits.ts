// Validation rules bounding a request before it runs: nesting depth and an estimated cost, each
// refused with a GraphQL error naming the limit.
import {
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  Kind,
  type SelectionSetNode,
  type ValidationContext,
  GraphQLError,
  valueFromASTUntyped,
} from 'graphql'

const walk = (
  selectionSet: SelectionSetNode | undefined,
  fragments: Record<string, FragmentDefinitionNode>,
  visit: (field: FieldNode, depth: number) => void,
  depth: number,
  seen: Set<string>,
): void => {
  if (!selectionSet) return
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      // Introspection (GraphiQL's schema query nests a dozen levels) is cheap and bounded.
      if (selection.name.value.startsWith('__')) continue
      visit(selection, depth)
      walk(selection.selectionSet, fragments, visit, depth + 1, seen)
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      walk(selection.selectionSet, fragments, visit, depth, seen)
    } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
      const name = selection.name.value
      if (seen.has(name)) continue // cycles are reported by graphql's own rule
      const fragment = fragments[name]
      if (fragment) walk(fragment.selectionSet, fragments, visit, depth, new Set([...seen, name]))
    }
  }
}

/** Fields reading ClickHouse, and the argument that multiplies their work. */
const expensive: Record<string, { base: number; per?: string; perDefault: number }> = {
  timeseries: { base: 10, per: 'limit', perDefault: 10 },
  topN: { base: 10, per: 'limit', perDefault: 10 },
  sankey: { base: 10, per: 'limit', perDefault: 10 },
  flows: { base: 10, per: 'limit', perDefault: 100 },
  exporters: { base: 10, perDefault: 1 },
  filterComplete: { base: 2, perDefault: 1 },
  top: { base: 10, per: 'limit', perDefault: 5 },
  flowRate: { base: 5, perDefault: 1 },
  exporterCount: { base: 5, perDefault: 1 },
  lastFlow: { base: 5, perDefault: 1 },
}

/**
 * Cost of one field: 1, or for a ClickHouse-backed field its base cost times 1 + its limit / 10
 * (a top-10 time series costs 20, the last 100 flows 110).
 */
export const fieldCost = (field: FieldNode, variables: Record<string, unknown> | undefined): number => {
  const rule = expensive[field.name.value]
  if (!rule) return 1
  let per = rule.perDefault
  const arg = rule.per ? field.arguments?.find((a) => a.name.value === rule.per) : undefined
  if (arg) {
    const value = valueFromASTUntyped(arg.value, variables)
    if (typeof value === 'number' && Number.isFinite(value)) per = value
  }
  return rule.base * (1 + Math.max(0, per) / 10)
}

export const limitsRule =
  (limits: { maxDepth: number; maxCost: number }, variables: () => Record<string, unknown> | undefined) =>
  (context: ValidationContext): ASTVisitor => ({
    Document: {
      leave(document) {
        const fragments: Record<string, FragmentDefinitionNode> = {}
        for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments[d.name.value] = d
        for (const d of document.definitions) {
          if (d.kind !== Kind.OPERATION_DEFINITION) continue
          let deepest = 0
          let cost = 0
          walk(
            d.selectionSet,
            fragments,
            (field, depth) => {
              deepest = Math.max(deepest, depth)
              cost += fieldCost(field, variables())
            },
            1,
            new Set(),
          )
          const name = d.name?.value ?? 'the operation'
          if (deepest > limits.maxDepth) {
            context.reportError(
              new GraphQLError(`${name} nests ${deepest} levels deep, more than gateway.limits.maxDepth (${limits.maxDepth})`, {
                extensions: { code: 'QUERY_TOO_DEEP' },
              }),
            )
          }
          if (cost > limits.maxCost) {
            context.reportError(
              new GraphQLError(`${name} costs ${Math.round(cost)}, more than gateway.limits.maxCost (${limits.maxCost}); ask for fewer fields or smaller limits`, {
                extensions: { code: 'QUERY_TOO_COSTLY' },
              }),
            )
          }
        }
      },
    },
  })

/**
 * Refuses __schema and __type when gateway.introspection is off. By field name only: graphql's
 * own rule checks types with instanceof, which fails when two copies of graphql are loaded.
 */
export const noIntrospectionRule = (context: ValidationContext): ASTVisitor => ({
  Field(node) {
    if (node.name.value === '__schema' || node.name.value === '__type') {
      context.reportError(
        new GraphQLError(`GraphQL introspection (${node.name.value}) is turned off on this gateway (gateway.introspection)`, {
          nodes: node,
          extensions: { code: 'FORBIDDEN' },
        }),
      )
    }
  },
})
