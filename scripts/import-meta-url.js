// Build helper, not part of the function: the production bundle (dist/handler/servo.cjs) is
// CommonJS, which Node loads in half the time of the same code as an ES module. esbuild injects
// this so `import.meta.url` keeps meaning the file's own URL there (see "build" in package.json).
export const import_meta_url = require("node:url").pathToFileURL(__filename).href;
