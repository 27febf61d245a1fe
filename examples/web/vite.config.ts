import { defineConfig } from "vite";

// `npm run dev` serves the page at http://127.0.0.1:5173: the origin the README tells authd
// and downstream to allow (127.0.0.1 and localhost are different origins to a browser).
export default defineConfig({
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  preview: { host: "127.0.0.1", port: 5173, strictPort: true },
  build: { outDir: "dist", emptyOutDir: true },
});
