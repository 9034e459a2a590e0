import { defineConfig } from 'vitest/config';
import vue from '@vitejs/plugin-vue';

// `npm run dev` proxies the API to a server (the mock in dev/ by default).
const api = process.env.ORCH_API ?? 'http://127.0.0.1:8765';

export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/health': api,
      '/ready': api,
    },
  },
  test: {
    environment: 'jsdom',
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
  },
});
