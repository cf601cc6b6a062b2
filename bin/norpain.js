#!/usr/bin/env node
// Production runs the compiled output; everywhere else the TypeScript sources run directly through tsx,
// so a fresh clone needs no build step.
const path = require('node:path');
const fs = require('node:fs');
const compiled = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (process.env.NODE_ENV === 'production' && fs.existsSync(compiled)) {
  require(compiled).runCli();
} else {
  require('tsx/cjs');
  require(path.join(__dirname, '..', 'src', 'cli', 'main.ts')).runCli();
}
