// SvelteKit configuration: a static single-page build (no Node server of its own) that the
// gateway serves at the origin of /graphql; unknown paths fall back to index.html.
import adapter from '@sveltejs/adapter-static'
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte'

/** @type {import('@sveltejs/kit').Config} */
export default {
  preprocess: vitePreprocess(),
  compilerOptions: { runes: true },
  kit: {
    adapter: adapter({ pages: 'build', assets: 'build', fallback: 'index.html', strict: true }),
    // Hashed file names under /_app/immutable: the gateway caches them for a year.
    appDir: '_app',
    version: { name: 'console' },
  },
}
