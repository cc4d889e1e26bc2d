import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

// Built into console/dist, which the server serves at `/`. `npm run dev:console` proxies the API to
// a server started with `npm start`, so the console stays same-origin (the session cookie is
// SameSite=Strict and cookie mutations must come from the page's own origin).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1200 },
  server: {
    proxy: {
      '/api': { target: 'http://127.0.0.1:8080', changeOrigin: true },
      '/panopticon': { target: 'http://127.0.0.1:8080', changeOrigin: true },
    },
  },
});
