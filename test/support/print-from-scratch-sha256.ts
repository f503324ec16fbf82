// Trains each job of a JSON file (FromScratchJob[]) from scratch in this fresh process and prints their ONNX
// SHA-256s as one JSON array. Run: node -r ./scripts/register.js test/support/print-from-scratch-sha256.ts jobs.json
import { readFileSync } from 'node:fs';
import { fromScratchSha256, type FromScratchJob } from './from-scratch';

async function main(): Promise<void> {
  const jobs = JSON.parse(readFileSync(process.argv[2], 'utf8')) as FromScratchJob[];
  const hashes: string[] = [];
  for (const job of jobs) hashes.push(await fromScratchSha256(job.config, job.samples));
  process.stdout.write(`${JSON.stringify(hashes)}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
