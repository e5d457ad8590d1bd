// Vite for the console: SvelteKit's plugin; in `vite dev` /graphql (HTTP, SSE and WebSocket)
// goes to a running gateway (FLOWBUS_GATEWAY, default http://127.0.0.1:8081).
import { sveltekit } from '@sveltejs/kit/vite'
import { defineConfig } from 'vite'

const gateway = process.env.FLOWBUS_GATEWAY ?? 'http://127.0.0.1:8081'

export default defineConfig({
  plugins: [sveltekit()],
  server: { proxy: { '/graphql': { target: gateway, ws: true, changeOrigin: true } } },
  // The timing report is noise in `npm start`'s output on a busy machine.
  build: { chunkSizeWarningLimit: 1500, rolldownOptions: { checks: { bundlerTimings: false } } },
})
