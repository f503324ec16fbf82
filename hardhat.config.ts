// Hardhat compiles offline: the compiler is the solc-js build shipped by the `solc` npm package, never a download.
import { subtask } from 'hardhat/config';
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from 'hardhat/builtin-tasks/task-names';
import type { HardhatUserConfig } from 'hardhat/types';
import '@nomicfoundation/hardhat-ethers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const SOLC_VERSION: string = require('solc/package.json').version;

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args: { solcVersion: string }) => {
  if (args.solcVersion !== SOLC_VERSION) {
    throw new Error(`hardhat.config.ts: only solc ${SOLC_VERSION} (npm package solc) is available offline, not ${args.solcVersion}`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const solc = require('solc') as { version(): string };
  return { compilerPath: require.resolve('solc/soljson.js'), isSolcJs: true, version: SOLC_VERSION, longVersion: solc.version() };
});

const config: HardhatUserConfig = {
  solidity: {
    version: SOLC_VERSION,
    settings: { optimizer: { enabled: true, runs: 10_000 }, evmVersion: 'cancun' },
  },
  paths: { sources: './contracts', artifacts: './artifacts', cache: './cache' },
  networks: { hardhat: { chainId: 31337 } },
};

export default config;
