import { fileURLToPath, URL } from 'node:url'

import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

// The API prefixes, same origin in production (the runtime serves web/dist at `/`); in
// development Vite's server passes them to a running city (`make run`, or CITYCASE_URL). The
// same list as API_PREFIXES in services/runtime/console.py: a path there is never a console page.
const API_PREFIXES = [
  '/intake', '/dispatch', '/handling', '/closure', '/assessment', '/open311',
  '/auth', '/city', '/calendar', '/ops', '/healthz', '/readyz', '/metrics',
  '/openapi.json', '/docs', '/redoc', '/docs-assets', '/photos',
]
const target = process.env.CITYCASE_URL ?? 'http://127.0.0.1:8000'

export default defineConfig({
  base: '/',
  plugins: [vue()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  define: {
    // Compile-time flags: no Options API, no devtools hooks, no legacy vue-i18n in the bundle.
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
    __VUE_I18N_FULL_INSTALL__: 'false',
    __VUE_I18N_LEGACY_API__: 'false',
    __INTLIFY_PROD_DEVTOOLS__: 'false',
  },
  server: {
    host: '127.0.0.1',
    proxy: Object.fromEntries(API_PREFIXES.map((prefix) => [prefix, { target, changeOrigin: false }])),
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The ECharts chunk (map, bars, lines, tooltip, visual map) is ~600 kB before gzip, ~200 kB
    // after: known and measured (make bench), not a warning each build.
    chunkSizeWarningLimit: 700,
    // Nothing inline: every script and style is a file under /assets, so a strict
    // Content-Security-Policy (script-src 'self') fits the console as built.
    assetsInlineLimit: 0,
    rolldownOptions: {
      output: {
        // ECharts in a chunk of its own: the log-in page never loads it, and it is cached apart
        // from the console's code, which changes more often.
        // Vue, the router and vue-i18n in one more, shared by every page: without a name of its
        // own, the chunk every lazily loaded page shares is named after whichever module it met first.
        codeSplitting: {
          groups: [
            { name: 'echarts', test: /node_modules[\\/](echarts|zrender|tslib)[\\/]/ },
            { name: 'vue', test: /node_modules[\\/](vue|@vue|vue-router|vue-i18n|@intlify)[\\/]/ },
          ],
        },
        // Chunks keep the names they export to each other, a few hundred bytes: the browser
        // tests import the ECharts chunk and ask `getInstanceByDom` for a chart, instead of the
        // console exposing its charts on `window`.
        minifyInternalExports: false,
      },
    },
  },
})
