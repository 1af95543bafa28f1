// `npm run cycles`: madge's TypeScript parser (@typescript-eslint/typescript-estree)
// loads the TypeScript compiler API, which TypeScript 7 (our compiler, a native
// binary) no longer ships. So madge, and only madge, gets TypeScript 5 (the
// `typescript5` dev alias); our build keeps TypeScript 7.
const Module = require('node:module');
const path = require('node:path');

const ts5 = require.resolve('typescript5');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  if (request === 'typescript') return ts5;
  return resolve.call(this, request, parent, ...rest);
};

process.argv = [process.argv[0], 'madge', '--circular', '--extensions', 'ts', ...process.argv.slice(2)];
require(path.join(path.dirname(require.resolve('madge/package.json')), 'bin', 'cli.js'));
