// SvelteKit's ambient types for the console (no server-side locals: it is a static SPA).
declare global {
  namespace App {}
}
export {}
