import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { RuntimeEnvelope } from '@lethe/events';
import { ONNXRUNTIME_VERSION } from './version';

export type { RuntimeEnvelope };
// One way to print and compare envelopes, shared with the verifier, the CLI and the portal.
export { compareRuntimeEnvelopes, describeRuntimeEnvelope } from '@lethe/events';

/**
 * The MLAS kernel family onnxruntime selects on this CPU, inferred from the CPU's features: onnxruntime does
 * not report which kernels it dispatches to. The rules follow MLAS's platform set-up (onnxruntime
 * core/mlas/lib/platform.cpp), which picks by CPUID at start:
 * - x86-64: SSE2 by default; AVX when the CPU and the OS support it; AVX2 + FMA3 ("avx2-fma3"); AVX-512F;
 *   AVX-512 core (F + BW + DQ + VL). Extras that select other (integer) kernels are appended: avx512vnni,
 *   avxvnni, avx512bf16, amx (AMX-TILE + AMX-INT8).
 * - arm64: NEON, with dot (ASIMD dot product), i8mm, sve, bf16 and sme appended where present.
 * `cpuinfo` is the text of Linux's /proc/cpuinfo (its `flags` or `Features` line; Linux lists AVX and
 * AVX-512 only when the kernel saves their state, MLAS's XCR0 check). Other architectures, or no feature
 * line: `unknown`, with the CPU model when one is given, so two different CPUs are not taken for one.
 */
export function inferCpuKernels(arch: string, cpuinfo: string, cpuModel?: string): string {
  const line = /^(?:flags|Features)\s*:(.*)$/m.exec(cpuinfo);
  const unknown = `unknown${cpuModel ? ` (${cpuModel.trim()})` : ''}`;
  if (!line) return unknown;
  const has = new Set(line[1].trim().split(/\s+/));
  const family: string[] = [];
  if (arch === 'x64' || arch === 'ia32') {
    if (has.has('avx512f')) family.push(['avx512bw', 'avx512dq', 'avx512vl'].every((f) => has.has(f)) ? 'avx512core' : 'avx512f');
    else if (has.has('avx2') && has.has('fma')) family.push('avx2-fma3');
    else if (has.has('avx')) family.push('avx');
    else family.push('sse2');
    if (family[0] === 'avx512core' && has.has('avx512_vnni')) family.push('avx512vnni');
    if (has.has('avx_vnni')) family.push('avxvnni');
    if (has.has('avx512_bf16')) family.push('avx512bf16');
    if (has.has('amx_tile') && has.has('amx_int8')) family.push('amx');
  } else if (arch === 'arm64') {
    family.push('neon');
    const extras: [string, string][] = [
      ['asimddp', 'dot'],
      ['i8mm', 'i8mm'],
      ['sve', 'sve'],
      ['bf16', 'bf16'],
      ['sme', 'sme'],
    ];
    for (const [flag, name] of extras) if (has.has(flag)) family.push(name);
  } else return unknown;
  return family.join('+');
}

let detected: RuntimeEnvelope | undefined;

/**
 * What, besides the code, the config and the data, fixes the bits a training computes in this process: the
 * onnxruntime version, Node's (its Math functions draw the initial weights), the platform and architecture,
 * and the inferred MLAS kernel family. Detected once, at first use.
 */
export function detectRuntimeEnvelope(): RuntimeEnvelope {
  if (!detected) {
    let cpuinfo = '';
    if (process.platform === 'linux') {
      try {
        cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
      } catch {
        cpuinfo = '';
      }
    }
    detected = {
      onnxruntime: ONNXRUNTIME_VERSION,
      node: process.versions.node,
      platform: process.platform,
      arch: process.arch,
      cpuKernels: inferCpuKernels(process.arch, cpuinfo, cpus()[0]?.model),
    };
  }
  return { ...detected };
}
