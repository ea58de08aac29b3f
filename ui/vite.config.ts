import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build goes straight into the Python package (package data), served by the gateway at /ui.
export default defineConfig({
  base: "/ui/",
  plugins: [react()],
  build: {
    outDir: "../routeiq/admin_ui/static",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
  },
  server: {
    // `npx vite` during development: API calls go to a gateway on :4000 (`make run`).
    proxy: { "/admin": "http://127.0.0.1:4000" },
  },
});
