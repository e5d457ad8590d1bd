// Splits a filter into coloured tokens for the editor (display only: the gateway's parser is the
// authority; filterValidate reports its problems with positions).
export interface Token {
  text: string
  kind: 'keyword' | 'operator' | 'column' | 'string' | 'number' | 'comment' | 'plain'
}

const keywords = new Set(['AND', 'OR', 'NOT', 'IN', 'NOTIN', 'LIKE', 'ILIKE', 'UNLIKE', 'IUNLIKE'])
const pattern = /(--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|("(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?)|(!<<|<<|!=|<>|<=|>=|==|=|<|>)|([A-Za-z_][A-Za-z0-9_]*)|(\d[\w.:/-]*)|(\s+|[(),]|[^\s(),"'=<>!]+|.)/g

export function highlight(filter: string): Token[] {
  const tokens: Token[] = []
  let expectColumn = true
  for (const m of filter.matchAll(pattern)) {
    const [text, comment, str, op, word, num] = m
    let kind: Token['kind'] = 'plain'
    if (comment) kind = 'comment'
    else if (str) kind = 'string'
    else if (op) kind = 'operator'
    else if (word && keywords.has(word.toUpperCase())) kind = 'keyword'
    else if (word) kind = expectColumn ? 'column' : 'plain'
    else if (num) kind = 'number'
    if (kind === 'column') expectColumn = false
    // After AND/OR/NOT or "(" a column comes next.
    if (kind === 'keyword' && ['AND', 'OR', 'NOT'].includes(text.toUpperCase())) expectColumn = true
    if (text === '(' && !expectColumn) expectColumn = false
    tokens.push({ text, kind })
  }
  return tokens
}
