// Runs the TypeScript sources directly: ts-node without type checking (npm run typecheck does that)
// and the @lethe/* path aliases of tsconfig.json.
require('ts-node').register({ transpileOnly: true, project: require('path').join(__dirname, '..', 'tsconfig.json') });
require('tsconfig-paths').register();
