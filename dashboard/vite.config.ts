// The dashboard's build (npm run dashboard:build → dashboard/dist, served by the service at `/`) and its dev
// server (npm run dashboard:dev), which proxies the service's paths to a running `npm start`.
import react from '@vitejs/plugin-react';
import { defineConfig, type ProxyOptions } from 'vite';

const target = process.env.VDI_DEV_API ?? 'http://127.0.0.1:8080';
// The service accepts its session cookie only from its own Origin.
const sameOrigin: ProxyOptions = {
  target,
  configure: (proxy) => {
    proxy.on('proxyReq', (req) => req.setHeader('origin', target));
    proxy.on('proxyReqWs', (req) => req.setHeader('origin', target));
  },
};

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  server: {
    proxy: {
      '/graphql': { ...sameOrigin, ws: true },
      '/login': sameOrigin,
      '/callback': sameOrigin,
      '/logout': sameOrigin,
    },
  },
});
