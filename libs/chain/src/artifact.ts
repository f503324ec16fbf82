import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import type { InterfaceAbi } from 'ethers';
import { ChainError } from './errors';
import { resolveRepoRoot } from './repo-root';

/** The parts of a Hardhat artifact this library uses. */
export interface ContractArtifact {
  contractName: string;
  abi: InterfaceAbi;
  bytecode: string;
}

const COMPILE_TIMEOUT_MS = 300_000;

/**
 * Reads the compiled AuditAnchor artifact, compiling first (`hardhat compile --quiet` in a child process)
 * when artifacts/ is missing or older than the contract source. Works on a fresh clone.
 */
export async function loadAuditAnchorArtifact(): Promise<ContractArtifact> {
  return loadContractArtifact('contracts/AuditAnchor.sol', 'AuditAnchor');
}

/**
 * Reads the artifact of `contractName` declared in `sourcePath` (relative to the repo root, e.g.
 * `contracts/bench/EventOnly.sol`), compiling first when it is missing or stale.
 */
export async function loadContractArtifact(sourcePath: string, contractName: string): Promise<ContractArtifact> {
  const root = resolveRepoRoot();
  const artifactPath = join(root, 'artifacts', sourcePath, `${contractName}.json`);
  if (isStale(artifactPath, join(root, sourcePath))) {
    await compileContracts(root);
    // Hardhat skips sources whose content did not change (a mere touch); mark the artifact fresh then.
    if (existsSync(artifactPath)) utimesSync(artifactPath, new Date(), new Date());
  }
  if (!existsSync(artifactPath)) {
    throw new ChainError('ARTIFACT_UNAVAILABLE', `compiled, but ${artifactPath} is missing: is ${contractName} declared in ${sourcePath}?`);
  }
  const json = JSON.parse(readFileSync(artifactPath, 'utf8')) as ContractArtifact;
  return { contractName: json.contractName, abi: json.abi, bytecode: json.bytecode };
}

function isStale(artifactPath: string, sourcePath: string): boolean {
  if (!existsSync(artifactPath)) return true;
  return existsSync(sourcePath) && statSync(sourcePath).mtimeMs > statSync(artifactPath).mtimeMs;
}

/**
 * Runs `hardhat compile --quiet` once at a time across processes (jest runs suites in parallel workers):
 * a lock directory under cache/ serialises compiles; a process that finds it taken waits for it to go.
 */
async function compileContracts(root: string): Promise<void> {
  mkdirSync(join(root, 'cache'), { recursive: true });
  const lockDir = join(root, 'cache', 'lethe-compile.lock');
  const deadline = Date.now() + COMPILE_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() > deadline) {
        throw new ChainError('ARTIFACT_UNAVAILABLE', `waited ${COMPILE_TIMEOUT_MS} ms for ${lockDir}; remove it if no compile is running`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    await runHardhatCompile(root);
  } finally {
    rmdirSync(lockDir);
  }
}

function runHardhatCompile(root: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(join(root, 'node_modules', '.bin', 'hardhat'), ['compile', '--quiet'], {
      cwd: root,
      env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => reject(new ChainError('ARTIFACT_UNAVAILABLE', `cannot run hardhat compile: ${err.message}`, { cause: err })));
    child.on('exit', (code) => {
      if (code === 0) resolvePromise();
      else reject(new ChainError('ARTIFACT_UNAVAILABLE', `hardhat compile exited with ${code}:\n${output.slice(-4000)}`));
    });
  });
}
