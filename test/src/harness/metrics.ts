// Reading Prometheus text exposition in tests: actors are checked through /metrics or the
// registry's text, as an operator's scraper would see them.

/** Sum of the samples of `name` whose labels include every label given (0 when none match). */
export const metricSample = (text: string, name: string, labels: Record<string, string> = {}): number => {
  let total = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}
