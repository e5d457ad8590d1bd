export { runCli, main, configJsonSchema, type CliContext } from './main.js'
export { knownActors } from './registry.js'
