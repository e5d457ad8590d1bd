#!/usr/bin/env node
// Entry point of the `flowbus` command: runs the compiled CLI (built by `npm install`'s prepare step).
import { main } from '../dist/main.js'
await main(process.argv.slice(2))
