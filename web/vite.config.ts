import { resolve } from "node:path";
import { defineConfig } from "vite";

// Two pages from one build: the app (index.html, Preact) and the GraphQL playground
// (graphiql.html, React + GraphiQL). The output goes into the Python package so that proxyd
// serves it and the wheel carries it (proxyd/api/webui.py).
export default defineConfig({
  base: "/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: resolve(__dirname, "../proxyd/api/web_dist"),
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      // GraphiQL's Radix packages carry "use client" (a React Server Components hint): harmless here.
      onwarn(warning, warn) {
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
      input: {
        index: resolve(__dirname, "index.html"),
        graphiql: resolve(__dirname, "graphiql.html"),
      },
    },
  },
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:9000", ws: true },
      "/authorize": "http://127.0.0.1:9000",
      "/token": "http://127.0.0.1:9000",
      "/revoke": "http://127.0.0.1:9000",
    },
  },
});
