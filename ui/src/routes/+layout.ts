// The console renders in the browser only: the gateway serves a static shell (adapter-static fallback).
export const ssr = false
export const prerender = false
