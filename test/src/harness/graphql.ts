// Asking a running gateway a GraphQL question over HTTP, as an operator's tool would: the data,
// or an error carrying the gateway's messages.

// Answers are read field by field by the tests.
export type GraphqlData = Record<string, any>

/** POSTs `query` to the gateway on 127.0.0.1:`port` and returns its data; GraphQL errors throw. */
export async function askGraphql(port: number, query: string): Promise<GraphqlData> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  })
  const body = (await response.json()) as { data?: GraphqlData; errors?: { message: string }[] }
  if (body.errors?.length) throw new Error(`GraphQL: ${body.errors.map((e) => e.message).join('; ')}`)
  return body.data!
}
