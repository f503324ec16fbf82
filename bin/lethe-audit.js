#!/usr/bin/env node
// lethe-audit: runs the CLI from its TypeScript sources (see scripts/register.js).
require('../scripts/register.js');
require('../apps/cli/src/main.ts');
