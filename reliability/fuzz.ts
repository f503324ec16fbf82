// Fuzzing the HTTP API with fast-check: every route the controllers declare (found from Nest's route
// metadata, so a new route that the table below does not know fails the run), plus the portal's static
// files, gets random and near-valid requests: path parameters, query strings, bodies (valid bodies mutated:
// fields dropped, retyped, stretched; random JSON; bytes), and headers (keys of every role, malformed and
// huge Authorization headers, lying Content-Types and lengths, Idempotency-Keys), some sent as raw bytes on
// a socket (malformed request lines and headers that an HTTP client would refuse to send).
// Checked for each case: no 5xx, an answer within 30 s, a 4xx is JSON {statusCode, message} with the
// status it was sent with, and the log (size and root, GET /v1/ledger/checkpoint) is unchanged by a
// rejected request. The service runs with ANCHORING=off and SERVICE_WORKER=off, so nothing else appends.
import fc from 'fast-check';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { defineFlags, type BenchOptions } from '../bench/lib/args';
import { Part, PartReport, progress } from './lib/part';
import { freshSeed } from './lib/prng';
import { CLASSES, FEATURES, TrialService, makeDataDir, serviceEnv, startTrialService, stopTrialService, trainModel } from './lib/service';
import { rmSync } from 'node:fs';

const flags = defineFlags({
  cases: { type: 'integer', min: 1, default: 10_000, help: 'fuzz cases (requests) to send' },
  fuzzSeed: { type: 'integer', min: 0, help: "fast-check's seed; a fresh one, printed, unless given" },
  fuzzTrace: { type: 'boolean', help: 'print every case and its answer' },
});

export type FuzzOptions = BenchOptions<typeof flags>;

/** The content of a file beside the portal's folder: no answer may hold it. */
const SECRET = 'fuzz-secret-beside-the-portal-7f3a9c';
const API_ROOT = join(__dirname, '..', 'apps', 'api', 'src');

/** Every route the service's controllers declare, as "METHOD /path/:param", from Nest's decorators. */
export function discoverRoutes(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (entry.name.endsWith('.controller.ts')) files.push(join(dir, entry.name));
    }
  };
  walk(API_ROOT);
  const routes: string[] = [];
  for (const file of files) {
    for (const exported of Object.values(require(file) as Record<string, unknown>)) {
      if (typeof exported !== 'function') continue;
      const base = Reflect.getMetadata(PATH_METADATA, exported) as string | undefined;
      if (base === undefined) continue;
      for (const name of Object.getOwnPropertyNames(exported.prototype)) {
        const handler = exported.prototype[name];
        if (typeof handler !== 'function' || Reflect.getMetadata(METHOD_METADATA, handler) === undefined) continue;
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number];
        const path = [base, Reflect.getMetadata(PATH_METADATA, handler) as string].filter((p) => p && p !== '/').join('/');
        routes.push(`${method} /${path.replace(/^\/+/, '').replace(/\/+/g, '/')}`);
      }
    }
  }
  if (routes.length === 0) throw new Error(`no routes found under ${relative(process.cwd(), API_ROOT)}`);
  return routes.sort();
}

/** What the fuzz knows of the service it fuzzes: keys of each role and ids of things that exist. */
interface Fixtures {
  keys: { admin: string; ml: string; auditor: string };
  datasetId: string;
  emptyDatasetId: string;
  externalIds: string[];
  subjectIds: string[];
  commitments: string[];
  modelId: string;
  jobId: string;
  forgetRequestId: string;
  /** Keys that may be revoked by a fuzz case (never the fixtures' own). */
  spareKeyIds: string[];
}

/** One request to send. */
interface FuzzCase {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Sent as these bytes on a socket instead (request line and headers that a client library refuses). */
  raw?: Buffer;
  /** What the case is, for the report. */
  label: string;
}

const garbageString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '-'.repeat(36), '00000000-0000-0000-0000-000000000000', 'null', 'undefined', '[]', '{}', '..', '%', '%00', '\u0000', 'NaN', '1e309', '-1', '0x10'),
  fc.integer({ min: 1, max: 5000 }).map((n) => 'a'.repeat(n)),
);

/** `arbitrary` in `percent`% of the cases, else undefined. */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(undefined) }, { weight: percent, arbitrary });

const jsonAnything: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, true, false, 0, -1, 1e308, -1e308, 2 ** 53, Number.MIN_VALUE, '', [], {}),
  garbageString,
);

/** A valid body for each POST route, given the fixtures (drawn so that many are accepted). */
function validBodies(f: Fixtures): Record<string, fc.Arbitrary<unknown>> {
  const sample = (i: number) =>
    fc.record({
      externalId: fc.oneof(fc.constant(`fuzz-${i}`), fc.string({ minLength: 1, maxLength: 20 })),
      subjectId: sometimes(fc.constantFrom(...f.subjectIds), 50),
      features: fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: FEATURES, maxLength: FEATURES }),
      label: fc.integer({ min: 0, max: CLASSES - 1 }),
      expiresAt: sometimes(fc.date({ min: new Date('2020-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()), 20),
    });
  return {
    'POST /v1/keys': fc.record({ role: fc.constantFrom('ml', 'auditor', 'admin'), name: fc.string({ maxLength: 30 }) }),
    'POST /v1/datasets': fc.record({
      name: fc.string({ minLength: 1, maxLength: 30 }),
      features: fc.integer({ min: 1, max: 20 }),
      classes: fc.integer({ min: 2, max: 10 }),
      retentionDays: sometimes(fc.double({ min: 0.001, max: 36_500, noNaN: true }), 20),
    }),
    'POST /v1/datasets/:id/samples': fc.array(fc.nat(1000).chain(sample), { minLength: 1, maxLength: 5 }),
    'POST /v1/forget-requests': fc.oneof(
      fc.record({ datasetId: fc.constant(f.datasetId), externalIds: fc.subarray(f.externalIds, { minLength: 1, maxLength: 3 }), reason: fc.constant('fuzz') }),
      fc.record({ datasetId: fc.constant(f.datasetId), subjectId: fc.constantFrom(...f.subjectIds), reason: fc.constant('fuzz') }),
      fc.record({
        datasetId: fc.constant(f.datasetId),
        externalIds: fc.subarray(f.externalIds, { minLength: 1, maxLength: 3 }),
        reason: fc.constant('fuzz'),
        mode: fc.constant('suspend'),
        graceDays: sometimes(fc.double({ min: 0.01, max: 90, noNaN: true }), 50),
      }),
    ),
    // Restore, shred, learn, bias-scan and release take no body: an empty one is what a client sends.
    'POST /v1/forget-requests/:id/restore': fc.constant({}),
    'POST /v1/forget-requests/:id/shred': fc.constant({}),
    'POST /v1/models/:id/learn': fc.constant({}),
    'POST /v1/models/:id/bias-scan': fc.constant({}),
    'POST /v1/models/:id/versions/:version/release': fc.constant({}),
    'POST /v1/models/:id/rollback': fc.record({ version: fc.integer({ min: 1, max: 5 }) }),
    'POST /v1/forget-requests/:id/extend': fc.record({ reason: fc.string({ minLength: 1, maxLength: 50 }), days: sometimes(fc.integer({ min: 1, max: 60 }), 50) }),
    'POST /v1/models': fc.record({
      datasetId: fc.constantFrom(f.datasetId, f.emptyDatasetId),
      method: fc.constantFrom('sisa', 'full'),
      shards: fc.integer({ min: 1, max: 4 }),
      slices: fc.integer({ min: 1, max: 4 }),
      architecture: fc.oneof(fc.constant({ type: 'logreg' }), fc.record({ type: fc.constant('mlp'), hidden: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 2 }) })),
      epochs: fc.integer({ min: 1, max: 3 }),
      batchSize: fc.integer({ min: 1, max: 64 }),
      learningRate: fc.double({ min: 0.001, max: 1, noNaN: true }),
      seed: fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), fc.nat()),
      evaluation: sometimes(fc.record({ holdoutFraction: fc.double({ min: 0, max: 0.5, noNaN: true }) }), 30),
    }),
    'POST /v1/models/:id/predict': fc.record({
      inputs: fc.array(fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: FEATURES, maxLength: FEATURES }), { minLength: 1, maxLength: 4 }),
      version: sometimes(fc.integer({ min: 1, max: 3 }), 50),
    }),
  };
}

/** A valid value mutated once or a few times: a field dropped, retyped, replaced by junk, an element stretched. */
function mutate(value: unknown): fc.Arbitrary<unknown> {
  const mutation = fc.tuple(fc.nat(), fc.constantFrom('drop', 'replace', 'add', 'wrap', 'stretch', 'stringify'), jsonAnything);
  return fc.array(mutation, { minLength: 1, maxLength: 3 }).map((steps) => {
    let out: any = structuredClone(value);
    for (const [at, kind, junk] of steps) {
      const paths = pathsOf(out);
      const path = paths[at % paths.length];
      out = applyAt(out, path, (v, parent, key) => {
        if (kind === 'drop' && parent !== undefined) return Array.isArray(parent) ? undefined : DROP;
        if (kind === 'add' && v !== null && typeof v === 'object' && !Array.isArray(v)) return { ...v, [`extra${at % 5}`]: junk };
        if (kind === 'wrap') return [v];
        if (kind === 'stretch') return Array.isArray(v) ? Array.from({ length: 1 + (at % 3000) }, () => v[0] ?? junk) : typeof v === 'string' ? stretchString(v, 1 + (at % 2000)) : v;
        if (kind === 'stringify') return typeof v === 'string' ? Number(v) : JSON.stringify(v);
        void key;
        return junk;
      });
    }
    return out;
  });
}

const DROP = Symbol('drop');

/** The longest string a stretch makes: past the service's body limits already, and stretches of a stretch (up to three per case) stay within what a JavaScript string can hold. */
const MAX_STRETCHED = 4 * 1024 * 1024;

function stretchString(v: string, times: number): string {
  return v.repeat(Math.max(1, Math.min(times, Math.floor(MAX_STRETCHED / Math.max(1, v.length)))));
}

/** Every path into a JSON value (the root being []). */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const paths = [prefix];
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) paths.push(...pathsOf(v, [...prefix, Array.isArray(value) ? Number(k) : k]));
  }
  return paths;
}

function applyAt(root: any, path: (string | number)[], change: (v: any, parent: any, key: string | number | undefined) => any): any {
  if (path.length === 0) return change(root, undefined, undefined);
  let parent = root;
  for (const key of path.slice(0, -1)) parent = parent[key];
  const key = path[path.length - 1];
  const next = change(parent[key], parent, key);
  if (next === DROP) delete parent[key];
  else parent[key] = next;
  return root;
}

/** A path segment percent-encoded, or (raw) with only what cannot go on a request line encoded: '/', '%', '..' stay. */
const encodeSegment = (s: string, raw: boolean) => (raw ? s.replace(/[^\x21-\x7e]|[?#]/gu, encodeURIComponent) : encodeURIComponent(s));

/** A value for a path parameter: one that exists, a well-formed one that does not, or junk. */
function paramValue(name: string, route: string, f: Fixtures): fc.Arbitrary<string> {
  const existing =
    name === 'commitment'
      ? f.commitments
      : name === 'version'
        ? ['1', '2']
        : route.startsWith('DELETE /v1/keys')
          ? f.spareKeyIds
          : route.includes('/datasets')
            ? [f.datasetId, f.emptyDatasetId]
            : route.includes('/models')
              ? [f.modelId]
              : route.includes('/jobs')
                ? [f.jobId]
                : route.includes('/forget-requests')
                  ? [f.forgetRequestId]
                  : [f.datasetId];
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...existing) },
    { weight: 2, arbitrary: name === 'commitment' ? fc.stringMatching(/^[0-9a-f]{64}$/) : name === 'version' ? fc.nat().map(String) : fc.uuid() },
    { weight: 3, arbitrary: garbageString },
  );
}

const QUERY_KEYS = ['start', 'limit', 'datasetId', 'index', 'treeSize', 'from', 'to', 'state', 'version'];

function queryString(f: Fixtures): fc.Arbitrary<string> {
  const value = fc.oneof(
    fc.nat(20).map(String),
    fc.constantFrom('0', '1', '1000', '1001', '-1', '1e3', '0x10', ' 5', '5.0', '99999999999999999999', f.datasetId, '-'.repeat(36), ''),
    fc.uuid(),
    garbageString,
  );
  const pair = fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...QUERY_KEYS) }, { weight: 1, arbitrary: garbageString }), value);
  return fc.array(pair, { maxLength: 4 }).map((pairs) =>
    pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`,
  );
}

function headersArb(f: Fixtures): fc.Arbitrary<Record<string, string>> {
  const authorization = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(f.keys.ml, f.keys.admin, f.keys.auditor).map((k) => `Bearer ${k}`) },
    { weight: 1, arbitrary: fc.constant('') },
    { weight: 2, arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'bearer x', 'Basic dXNlcjpwYXNz', `Bearer ${f.keys.ml} extra`, `Bearer ${f.keys.ml.slice(0, -1)}`) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 15_000 }).map((n) => `Bearer ${'k'.repeat(n)}`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((s) => `Bearer ${s.replace(/[^\x20-\x7e]/g, 'x')}`) },
  );
  const contentType = fc.oneof(
    { weight: 8, arbitrary: fc.constant('application/json') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'application/x-ndjson',
        'text/plain',
        'application/json; charset=utf-16',
        'application/json; charset=latin1',
        'multipart/form-data; boundary=x',
        'application/x-www-form-urlencoded',
        'application/octet-stream',
        '*/*',
        'json',
      ),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
  return fc
    .record({
      authorization: sometimes(authorization, 90),
      'content-type': contentType,
      'idempotency-key': sometimes(fc.oneof(fc.constantFrom('fuzz-1', 'fuzz-2'), fc.string({ maxLength: 300 }).map((s) => s.replace(/[^\x21-\x7e]/g, 'i'))), 15),
      accept: sometimes(fc.constantFrom('application/json', 'text/html', '*/*', 'application/x-ndjson'), 20),
      'x-forwarded-for': sometimes(fc.constantFrom('1.2.3.4', 'junk', '::1, 10.0.0.1'), 10),
    })
    .map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as Record<string, string>);
}

function bodyArb(route: string, valid: fc.Arbitrary<unknown> | undefined): fc.Arbitrary<Buffer | undefined> {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? 'undefined');
  const options: { weight: number; arbitrary: fc.Arbitrary<Buffer | undefined> }[] = [
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: jsonAnything.map(json) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.constantFrom('{', '[', '{"a":', 'null', '""', '[]', '{}', '\n\n', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}').map((s) => Buffer.from(s)) },
  ];
  if (valid) {
    options.push({ weight: 3, arbitrary: valid.map(json) });
    options.push({ weight: 8, arbitrary: valid.chain(mutate).map(json) });
    options.push({ weight: 1, arbitrary: valid.map((v) => Buffer.from(JSON.stringify(v).slice(0, -1))) });
    if (route.endsWith('/samples'))
      options.push({
        weight: 3,
        arbitrary: fc.tuple(valid, fc.array(jsonAnything, { maxLength: 2 })).map(([v, junk]) => Buffer.from([...(v as unknown[]), ...junk].map((s) => JSON.stringify(s)).join('\n'))),
      });
  }
  return fc.oneof(...options);
}

/** Raw requests a client library will not send: malformed request lines, header bytes, lengths that lie. */
function rawArb(f: Fixtures): fc.Arbitrary<Buffer> {
  const auth = `Authorization: Bearer ${f.keys.ml}\r\n`;
  return fc.oneof(
    fc.constantFrom(
      'GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v1/health\r\n\r\n',
      'GARBAGE\r\n\r\n',
      'GET /v1/datasets HTTP/9.9\r\nHost: x\r\n\r\n',
      `POST /v1/datasets HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":"x"}`,
      `POST /v1/datasets HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{"a":1}`,
      `POST /v1/datasets HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      `POST /v1/datasets HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
      `GET /v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \u0001\u0002\r\n\r\n`,
      `GET /v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\nb\r\n\r\n`,
      `GET /v1/datasets HTTP/1.1\r\nHost: x\r\nX-${'h'.repeat(20_000)}: 1\r\n\r\n`,
      `GET /v1/ledger/entries?start=%ZZ HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /v1/datasets/%E0%A4%A HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
      `GET /portal/%2e%2e/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /portal/../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /portal/..%2fsecret.txt HTTP/1.1\r\nHost: x\r\n\r\n`,
    ),
    fc.tuple(fc.constantFrom('GET', 'POST', 'DELETE'), fc.uint8Array({ minLength: 1, maxLength: 100 })).map(([m, b]) =>
      Buffer.concat([Buffer.from(`${m} /v1/datasets HTTP/1.1\r\nHost: x\r\n${auth}X-Junk: `), Buffer.from(b), Buffer.from('\r\n\r\n')]),
    ),
  ).map((r) => (typeof r === 'string' ? Buffer.from(r, 'latin1') : r));
}

/** The case generator over every route (and a wrong method now and then). */
function caseArb(routes: string[], f: Fixtures): fc.Arbitrary<FuzzCase> {
  const bodies = validBodies(f);
  const portal = fc.oneof(fc.constantFrom('', 'index.html', 'assets/x.js', '..%2F..%2Fsecret.txt', '%2e%2e/secret.txt', '..%2fsecret.txt', '.env'), garbageString.map((s) => encodeURIComponent(s)));
  const perRoute = routes.map((route) => {
    const [method, template] = route.split(' ');
    const names = [...template.matchAll(/:([a-zA-Z]+)/g)].map((m) => m[1]);
    const params = fc.tuple(...names.map((n) => paramValue(n, route, f)), fc.boolean());
    return fc
      .record({
        params,
        query: queryString(f),
        headers: headersArb(f),
        body: method === 'GET' || method === 'DELETE' ? sometimes(bodyArb(route, undefined), 15) : bodyArb(route, bodies[route]),
        wrongMethod: sometimes(fc.constantFrom('PUT', 'PATCH', 'DELETE', 'POST', 'OPTIONS', 'HEAD'), 7),
      })
      .map(({ params, query, headers, body, wrongMethod }): FuzzCase => {
        const raw = params[params.length - 1] as boolean;
        let path = template;
        names.forEach((n, i) => (path = path.replace(`:${n}`, encodeSegment(params[i] as string, raw) || '%20')));
        return { method: wrongMethod ?? method, path: `${path}${query}`, headers, body, label: `${route}${wrongMethod ? ` as ${wrongMethod}` : ''}` };
      });
  });
  const portalCase = fc.tuple(portal, headersArb(f)).map(([p, headers]): FuzzCase => ({ method: 'GET', path: `/portal/${p}`, headers, label: 'GET /portal/*' }));
  const rawCase = rawArb(f).map((raw): FuzzCase => ({ method: 'RAW', path: '', headers: {}, raw, label: 'raw bytes' }));
  return fc.oneof({ weight: 20, arbitrary: fc.oneof(...perRoute) }, { weight: 1, arbitrary: portalCase }, { weight: 1, arbitrary: rawCase });
}

/** Sends a case; its status (0 when the connection closed without an answer) and body text. */
function send(api: string, c: FuzzCase): Promise<{ status: number; body: string }> {
  const url = new URL(api);
  const raw = c.raw;
  if (raw) {
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => socket.end(raw));
      const chunks: Buffer[] = [];
      socket.on('data', (d) => chunks.push(d));
      socket.on('error', () => undefined); // a reset after the answer
      socket.setTimeout(30_000, () => {
        socket.destroy();
        reject(new Error('no answer in 30 s'));
      });
      socket.on('close', () => {
        const text = Buffer.concat(chunks).toString('latin1');
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
        resolve({ status: status ? Number(status[1]) : 0, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
      });
    });
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: c.method, path: c.path, headers: { ...c.headers, ...(c.body ? { 'content-length': String(c.body.length) } : {}), connection: 'close' }, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', (error: NodeJS.ErrnoException) => {
      // The service may answer early (a 4xx before the body was read) and close: that is an answer, seen above.
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') resolve({ status: 0, body: '' });
      else reject(error);
    });
    req.end(c.body);
  });
}

/** The fixtures: a dataset with samples and a trained model (the worker on), then the service again without a worker. */
async function prepare(service: TrialService): Promise<Fixtures> {
  const { admin, ml } = service;
  const auditor = (await admin.ok('POST', '/v1/keys', { role: 'auditor', name: 'fuzz' })).key;
  const spareKeyIds = await Promise.all([1, 2, 3].map(async (i) => (await admin.ok('POST', '/v1/keys', { role: 'ml', name: `spare ${i}` })).id as string));
  const datasetId = (await ml.ok('POST', '/v1/datasets', { name: 'fuzz', features: FEATURES, classes: CLASSES })).id;
  const emptyDatasetId = (await ml.ok('POST', '/v1/datasets', { name: 'fuzz-empty', features: FEATURES, classes: CLASSES })).id;
  const samples = Array.from({ length: 120 }, (_, i) => ({
    externalId: `s${i}`,
    subjectId: `subject-${i % 10}`,
    features: Array.from({ length: FEATURES }, (_, j) => ((i * 7 + j * 3) % 11) / 10),
    label: i % CLASSES,
  }));
  const upload = await ml.ok('POST', `/v1/datasets/${datasetId}/samples`, samples);
  const model = await trainModel(ml, datasetId);
  const forget = await ml.ok('POST', '/v1/forget-requests', { datasetId, externalIds: ['s0'], reason: 'fuzz fixture' });
  return {
    keys: { admin: admin.key!, ml: ml.key!, auditor },
    datasetId,
    emptyDatasetId,
    externalIds: samples.slice(1).map((s) => s.externalId),
    subjectIds: [...new Set(samples.map((s) => s.subjectId))],
    commitments: (upload.commitments as { commitment: string }[]).map((c) => c.commitment),
    modelId: model.modelId,
    jobId: model.jobId,
    forgetRequestId: forget.id,
    spareKeyIds,
  };
}

/** The failures of one answered case against the log before it, and the log after it. */
function judge(c: FuzzCase, answer: { status: number; body: string }, before: string, after: string): string[] {
  const failures: string[] = [];
  if (answer.status === 0 && !c.raw) failures.push('the connection closed without an answer');
  if (answer.body.includes(SECRET)) failures.push(`the answer holds the file beside the portal's folder`);
  if (answer.status >= 500) failures.push(`${answer.status}: ${answer.body.slice(0, 300)}`);
  if (answer.status >= 400 && answer.status < 500 && before !== after) failures.push(`rejected with ${answer.status}, yet the log moved from ${before} to ${after}`);
  if (answer.status >= 400 && answer.status < 600 && c.method !== 'HEAD') {
    let body: any;
    try {
      body = JSON.parse(answer.body);
    } catch {
      body = undefined;
    }
    if (body?.statusCode !== answer.status || typeof body?.message !== 'string') failures.push(`a ${answer.status} whose body is not the JSON error: ${answer.body.slice(0, 200)}`);
  }
  return failures;
}

function describeCase(c: FuzzCase): string {
  if (c.raw) return `raw ${JSON.stringify(c.raw.toString('latin1').slice(0, 300))}`;
  const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, v.length > 80 ? `${v.slice(0, 40)}…(${v.length} chars)` : v]));
  return `${c.method} ${c.path.slice(0, 200)} headers ${JSON.stringify(headers)} body ${c.body ? JSON.stringify(c.body.toString('utf8').slice(0, 300)) : '(none)'}`;
}

export async function runFuzz(options: FuzzOptions): Promise<PartReport> {
  const seed = options.fuzzSeed ?? freshSeed();
  const routes = discoverRoutes();
  progress(`fuzz: ${options.cases} cases over ${routes.length} routes (+ the portal's files, raw bytes) from fast-check seed ${seed} (repeat with --fuzz-seed ${seed})`);
  const dataDir = makeDataDir('lethe-fuzz-');
  const failures: string[] = [];
  // The portal's static serving is fuzzed on a stand-in bundle (the real one needs npm run build:portal), with a
  // file beside it that no path under /portal may reach.
  const portalDir = join(dataDir, 'portal');
  mkdirSync(join(portalDir, 'assets'), { recursive: true });
  writeFileSync(join(portalDir, 'index.html'), '<!doctype html><title>portal</title>');
  writeFileSync(join(portalDir, 'assets', 'x.js'), 'export {};');
  writeFileSync(join(dataDir, 'secret.txt'), SECRET);
  const env = await serviceEnv(dataDir, { ANCHORING: 'off', JOB_POLL_SECONDS: '1', PORTAL_DIR: portalDir });
  let service = await startTrialService(env);
  const byStatus = new Map<string, number>();
  const byRoute = new Map<string, number>();
  let rejected = 0;
  let accepted = 0;
  const t0 = performance.now();
  try {
    const fixtures = await prepare(service);
    // Again without a worker, so that nothing but the fuzz cases appends to the log.
    await stopTrialService(service.process);
    service = await startTrialService({ ...env, SERVICE_WORKER: 'off' }, { mlKey: fixtures.keys.ml });
    const checkpoint = async () => {
      const { treeSize, rootHash } = await service.anon.ok('GET', '/v1/ledger/checkpoint');
      return `${treeSize}:${rootHash}`;
    };
    // A route that takes a body but has no valid body in the table would get junk only: name it.
    for (const route of routes.filter((r) => r.startsWith('POST') && !(r in validBodies(fixtures))))
      failures.push(`${route}: a route with a body that the fuzz has no valid body for (add one to validBodies)`);
    const cases = fc.sample(caseArb(routes, fixtures), { numRuns: options.cases, seed });
    let before = await checkpoint();
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i];
      byRoute.set(c.label, (byRoute.get(c.label) ?? 0) + 1);
      let answer: { status: number; body: string };
      try {
        answer = await send(service.api, c);
      } catch (error) {
        failures.push(`case ${i}: ${(error as Error).message}: ${describeCase(c)}`);
        before = await checkpoint();
        continue;
      }
      const after = await checkpoint();
      byStatus.set(String(answer.status), (byStatus.get(String(answer.status)) ?? 0) + 1);
      if (options.fuzzTrace) progress(`fuzz case ${i}: ${answer.status} ${c.label} ${describeCase(c).slice(0, 200)}`);
      if (answer.status >= 400 || answer.status === 0) rejected++;
      else accepted++;
      for (const f of judge(c, answer, before, after)) failures.push(`case ${i} (${c.label}): ${f}; the case: ${describeCase(c)}`);
      before = after;
      if ((i + 1) % 1000 === 0) progress(`fuzz: ${i + 1}/${cases.length} cases, ${failures.length} failures`);
    }
    if (service.process.child.exitCode !== null) failures.push(`the service exited during the fuzz: ${service.process.output().slice(-2000)}`);
  } finally {
    await stopTrialService(service.process);
  }
  if (failures.length === 0) rmSync(dataDir, { recursive: true, force: true });
  const seconds = (performance.now() - t0) / 1000;
  const statuses = [...byStatus].sort().map(([s, n]) => `${s === '0' ? 'closed without an answer' : s} ${n}`);
  return {
    part: 'fuzz',
    failures,
    counts: { cases: rejected + accepted, rejected, accepted, routes: byRoute.size },
    summary: [
      `${options.cases} cases from fast-check seed ${seed} over ${routes.length} routes (${[...byRoute.keys()].length} kinds incl. the portal and raw bytes) in ${seconds.toFixed(0)} s`,
      `answers: ${statuses.join(', ')}`,
      `${rejected} rejected (the log unchanged by ${rejected - failures.filter((f) => f.includes('yet the log moved')).length}), ${accepted} accepted; ${failures.filter((f) => /: 5\d\d: /.test(f)).length} 5xx`,
    ],
  };
}

export const part: Part<typeof flags> = {
  summary: 'fast-check over every route: random and near-valid bodies, queries, headers; no 5xx, rejected requests change nothing',
  flags,
  run: runFuzz,
  // Every case answered; some rejected and some accepted (a generator that only makes junk, or only valid requests, tests half).
  least: (o) => ({ cases: o.cases, rejected: 1, accepted: 1 }),
};
