// Bidirectional queries: the same filter seen from the reverse direction of traffic, Src↔Dst and
// In↔Out on every column it names (values stay as written).
import { allStorageColumns } from '@flowbus/runtime'
import type { FilterAst, FilterLiteral, FilterNode } from './ast.js'
import { swapColumnName } from './columns.js'

// Every column name any deployment may have: a bare value naming one is a column comparison.
const knownColumns = new Set([...allStorageColumns.map((c) => c.name.toLowerCase()), 'packetsize'])

const swapLiteral = (literal: FilterLiteral): FilterLiteral =>
  !literal.quoted && knownColumns.has(literal.text.toLowerCase()) ? { ...literal, text: swapColumnName(literal.text) } : literal

const swapNode = (node: FilterNode): FilterNode => {
  switch (node.type) {
    case 'condition':
      return {
        ...node,
        column: { ...node.column, name: swapColumnName(node.column.name) },
        value: node.value.type === 'list' ? node.value : swapLiteral(node.value),
      }
    case 'not':
      return { ...node, operand: swapNode(node.operand) }
    case 'and':
    case 'or':
      return { ...node, operands: node.operands.map(swapNode) }
  }
}

/**
 * The filter for the reverse direction: `SrcAS = 65000 AND InIfName = "et0"` becomes
 * `DstAS = 65000 AND OutIfName = "et0"`; spans still point at the text as written.
 * compileFilter's `swapDirection` option does the same and says which column has no counterpart.
 */
export const swapDirection = (ast: FilterAst): FilterAst => (ast.root === null ? ast : { text: ast.text, root: swapNode(ast.root) })
