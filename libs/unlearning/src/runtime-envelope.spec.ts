import { readFileSync } from 'node:fs';
import { compareRuntimeEnvelopes, describeRuntimeEnvelope, detectRuntimeEnvelope, inferCpuKernels } from './runtime-envelope';
import { ONNXRUNTIME_VERSION } from './version';

// The `flags` / `Features` lines of /proc/cpuinfo on a few CPUs (trimmed of flags MLAS does not look at).
const X86 = {
  core2: 'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx lm constant_tsc pni monitor ssse3 cx16 xtpr lahf_lm',
  sandyBridge: 'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx rdtscp lm pni pclmulqdq ssse3 cx16 sse4_1 sse4_2 x2apic popcnt aes xsave avx lahf_lm',
  haswell: 'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx pdpe1gb rdtscp lm pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm abm fsgsbase bmi1 avx2 smep bmi2 erms invpcid xsaveopt',
  // Knights Landing: AVX-512 F/CD/ER/PF but not BW/DQ/VL.
  knightsLanding: 'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx lm pni ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand bmi1 avx2 bmi2 erms avx512f rdseed adx avx512pf avx512er avx512cd',
  skylakeServer: 'flags\t\t: fpu sse sse2 ssse3 fma cx16 sse4_1 sse4_2 popcnt aes xsave avx f16c avx2 bmi1 bmi2 avx512f avx512dq rdseed adx avx512cd avx512bw avx512vl xsaveopt xsavec',
  // This machine's kind: AMD EPYC (Zen 4), AVX-512 with VNNI and BF16.
  zen4: 'flags\t\t: fpu sse sse2 ssse3 fma cx16 sse4_1 sse4_2 popcnt aes xsave avx f16c avx2 bmi1 bmi2 avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vbmi2 gfni vaes avx512_vnni avx512_bitalg avx512_vpopcntdq',
  alderLake: 'flags\t\t: fpu sse sse2 ssse3 fma cx16 sse4_1 sse4_2 popcnt aes xsave avx f16c avx2 bmi1 bmi2 sha_ni gfni vaes vpclmulqdq avx_vnni umip waitpkg',
  sapphireRapids: 'flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 xsave avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx_vnni avx512_bf16 avx512vbmi avx512_vbmi2 avx512_vnni avx512_bitalg amx_bf16 avx512_fp16 amx_tile amx_int8',
};
const ARM64 = {
  cortexA72: 'Features\t: fp asimd evtstrm crc32 cpuid',
  neoverseN1: 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs',
  neoverseV1: 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng',
};

describe('inferCpuKernels', () => {
  it.each([
    ['Core 2 (SSE2 only)', X86.core2, 'sse2'],
    ['Sandy Bridge (AVX without AVX2)', X86.sandyBridge, 'avx'],
    ['Haswell (AVX2 + FMA3)', X86.haswell, 'avx2-fma3'],
    ['Knights Landing (AVX-512F without BW/DQ/VL)', X86.knightsLanding, 'avx512f'],
    ['Skylake-SP (AVX-512 core)', X86.skylakeServer, 'avx512core'],
    ['Zen 4 (AVX-512 core, VNNI, BF16)', X86.zen4, 'avx512core+avx512vnni+avx512bf16'],
    ['Alder Lake (AVX2 + FMA3, AVX-VNNI)', X86.alderLake, 'avx2-fma3+avxvnni'],
    ['Sapphire Rapids (AVX-512, VNNI, BF16, AMX)', X86.sapphireRapids, 'avx512core+avx512vnni+avxvnni+avx512bf16+amx'],
  ])('on x86-64, %s: %s', (_, flags, want) => {
    expect(inferCpuKernels('x64', `processor\t: 0\nvendor_id\t: x\n${flags}\nbogomips\t: 4000\n`)).toBe(want);
  });

  it.each([
    ['Cortex-A72 (NEON)', ARM64.cortexA72, 'neon'],
    ['Neoverse N1 (dot product)', ARM64.neoverseN1, 'neon+dot'],
    ['Neoverse V1 (dot, i8mm, SVE, BF16)', ARM64.neoverseV1, 'neon+dot+i8mm+sve+bf16'],
  ])('on arm64, %s: %s', (_, features, want) => {
    expect(inferCpuKernels('arm64', `processor\t: 0\nBogoMIPS\t: 243.75\n${features}\nCPU implementer\t: 0x41\n`)).toBe(want);
  });

  it('says unknown, with the CPU model, where it cannot tell', () => {
    expect(inferCpuKernels('x64', '', 'Apple M1')).toBe('unknown (Apple M1)');
    expect(inferCpuKernels('riscv64', 'isa\t\t: rv64imafdc\nFeatures\t: x', 'SiFive U74')).toBe('unknown (SiFive U74)');
    expect(inferCpuKernels('x64', 'processor\t: 0\n')).toBe('unknown');
  });
});

describe('detectRuntimeEnvelope', () => {
  it("names this process's onnxruntime, Node, platform, architecture and inferred kernels", () => {
    const envelope = detectRuntimeEnvelope();
    expect(envelope).toMatchObject({ onnxruntime: ONNXRUNTIME_VERSION, node: process.versions.node, platform: process.platform, arch: process.arch });
    if (process.platform === 'linux') expect(envelope.cpuKernels).toBe(inferCpuKernels(process.arch, readFileSync('/proc/cpuinfo', 'utf8')));
    expect(envelope.cpuKernels).not.toMatch(/^unknown$/);
    expect(describeRuntimeEnvelope(envelope)).toContain(`cpu kernels ${envelope.cpuKernels}`);
  });

  it('compares envelopes field by field', () => {
    const here = detectRuntimeEnvelope();
    expect(compareRuntimeEnvelopes(here, { ...here })).toEqual([]);
    expect(compareRuntimeEnvelopes(here, { ...here, cpuKernels: 'neon', node: '0.0.0' })).toEqual(['node', 'cpuKernels']);
  });
});
