// The GraphQL gateway: flow queries, time series, top-N, sankey, the filter language compiled to parameterised SQL, live subscriptions
export {}
