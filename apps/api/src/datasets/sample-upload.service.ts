import {
  BadRequestException,
  ConflictException,
  Inject,
  Injectable,
  Logger,
  RequestTimeoutException,
  StreamableFile,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { Hash, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Request } from 'express';
import { LedgerError } from '@lethe/events';
import { CommittableSample, CommittedSample, SampleVault } from '@lethe/ledger';
import { AuthenticatedRequest } from '../auth/authenticated-request';
import { IdempotencyClaim, IdempotencyService, idempotencyRoute, idempotencyScope, readIdempotencyKey } from '../auth/idempotency.service';
import { readWithIdleTimeout } from '../common/idle-timeout';
import { NDJSON_TYPE } from '../common/media-types';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.provider';
import { DatasetEntity } from './dataset.entity';
import { DatasetService } from './dataset.service';
import { DatasetVersionService } from './dataset-version.service';
import { NdjsonLine, splitNdjsonLines } from './ndjson-lines';
import { RejectedSampleDto, SampleUploadResponseDto, validateSample } from './sample.dto';

/** Samples committed per SAMPLES_COMMITTED entry, at most. */
export const UPLOAD_CHUNK_SIZE = 5000;
/**
 * A chunk is also committed once its samples hold this many bytes (each its line's text plus 8 bytes per
 * feature, the parsed numbers): what an upload holds in memory at once, whatever the width of its samples.
 * README (Limits) has the arithmetic.
 */
export const UPLOAD_CHUNK_BYTES = 16 * 1024 * 1024;
/** Longest NDJSON line (a sample of 100,000 features written tersely fits). */
export const MAX_NDJSON_LINE_BYTES = 4 * 1024 * 1024;
/** Rejected lines listed in the answer (rejectedCount counts them all). */
export const MAX_REPORTED_REJECTIONS = 1000;

/** A parsed line (or JSON array element) and the length of its text (0 for an element of a JSON body already in memory). */
type UploadItem = { line: number; value: unknown; chars: number; error?: undefined } | { line: number; value?: undefined; error: string };

/** What an upload did so far; the commitments themselves are handed on chunk by chunk. */
class UploadReport {
  accepted = 0;
  rejectedCount = 0;
  readonly rejected: RejectedSampleDto[] = [];
  readonly ledgerIndices: number[] = [];
  /** The dataset version that covers the upload (set once its last chunk is committed). */
  datasetVersion: number | undefined;

  reject(line: number, error: string, externalId?: string): void {
    this.rejectedCount++;
    if (this.rejected.length < MAX_REPORTED_REJECTIONS) this.rejected.push(externalId === undefined ? { line, error } : { line, externalId, error });
  }

  summary(): Omit<SampleUploadResponseDto, 'commitments'> {
    return {
      accepted: this.accepted,
      rejectedCount: this.rejectedCount,
      rejected: [...this.rejected].sort((a, b) => a.line - b.line),
      ledgerIndices: this.ledgerIndices,
      ...(this.datasetVersion === undefined ? {} : { datasetVersion: this.datasetVersion }),
    };
  }
}

/**
 * Uploads of samples: a JSON array (up to the 1 MB JSON body limit) or an NDJSON stream of any size.
 * Each line is checked on its own (shape, finite features, label range, externalId unique in the dataset
 * and in the upload); bad lines are reported, good ones are committed by SampleVault in chunks of
 * UPLOAD_CHUNK_SIZE samples or UPLOAD_CHUNK_BYTES, whichever comes first, one SAMPLES_COMMITTED entry each. An NDJSON body is read line by line with
 * backpressure and the answer is streamed back chunk by chunk, so memory stays bounded by the chunk size;
 * a sender silent for BODY_TIMEOUT_SECONDS while its next bytes are awaited is cut off (what was committed
 * stays).
 * An Idempotency-Key is handled here (not by IdempotencyInterceptor) for NDJSON: the body's hash is known
 * only once it was read.
 */
@Injectable()
export class SampleUploadService {
  private readonly logger = new Logger('Samples');

  constructor(
    private readonly sampleVault: SampleVault,
    private readonly datasetService: DatasetService,
    private readonly idempotencyService: IdempotencyService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly datasetVersions: DatasetVersionService,
  ) {}

  async upload(datasetId: string, request: Request): Promise<SampleUploadResponseDto | StreamableFile> {
    const dataset = await this.datasetService.findRegistered(datasetId);
    if (request.is(NDJSON_TYPE)) return this.uploadNdjson(dataset, request as AuthenticatedRequest);
    if (request.is('application/json')) return this.uploadJson(dataset, request.body);
    throw new UnsupportedMediaTypeException(`send the samples as a JSON array (Content-Type: application/json) or as NDJSON (Content-Type: ${NDJSON_TYPE})`);
  }

  private async uploadJson(dataset: DatasetEntity, body: unknown): Promise<SampleUploadResponseDto> {
    if (!Array.isArray(body)) throw new BadRequestException(`body must be a JSON array of samples (or NDJSON with Content-Type: ${NDJSON_TYPE})`);
    if (body.length === 0) throw new BadRequestException('body has no samples');
    const report = new UploadReport();
    const commitments: CommittedSample[] = [];
    const items = body.map((value: unknown, i): UploadItem => ({ line: i + 1, value, chars: 0 }));
    for await (const committed of this.commitAll(dataset, toAsync(items), report)) commitments.push(...committed);
    await this.recordVersion(dataset.id, report);
    return { ...report.summary(), commitments };
  }

  private async uploadNdjson(dataset: DatasetEntity, request: AuthenticatedRequest): Promise<StreamableFile> {
    const key = readIdempotencyKey(request);
    const claim = key === undefined ? undefined : await this.idempotencyService.claimFor(idempotencyScope(request), key, idempotencyRoute(request));
    const bodyHash = createHash('sha256');
    const silence = this.config.http.bodyTimeoutMs;
    const received = readWithIdleTimeout(request as AsyncIterable<Buffer>, silence, () => new RequestTimeoutException(`no bytes of the upload arrived for ${silence / 1000} s`));
    const source = hashWhileReading(received, bodyHash);
    if (claim !== undefined) {
      const decision = await this.idempotencyService.beginStreamed(claim);
      if (decision.kind === 'replay-if-same') return this.replay(source, bodyHash, decision, request);
    }
    let finished = false;
    const release = async () => {
      if (claim !== undefined && !finished) await this.idempotencyService.release(claim);
    };
    let report: UploadReport;
    let commitAll: AsyncGenerator<CommittedSample[]>;
    try {
      const lines = splitNdjsonLines(source, MAX_NDJSON_LINE_BYTES);
      // The first line decides whether the body is NDJSON at all: if not, a 400 and nothing is committed.
      const first = await lines.next();
      if (first.done) throw new BadRequestException('body has no samples');
      const firstItem = parseLine(first.value);
      if (firstItem.error !== undefined) throw new BadRequestException(`body is not NDJSON: line ${firstItem.line}: ${firstItem.error}`);
      if (Array.isArray(firstItem.value))
        throw new BadRequestException('body is a JSON array, not NDJSON: send it with Content-Type: application/json, or one sample per line');
      const items = (async function* (): AsyncGenerator<UploadItem> {
        yield firstItem;
        for await (const line of lines) yield parseLine(line);
      })();
      report = new UploadReport();
      const committing = this.commitAll(dataset, items, report);
      const recordVersion = () => this.recordVersion(dataset.id, report);
      // The dataset version after the last chunk, before the summary (the answer's end) goes out.
      commitAll = (async function* () {
        yield* committing;
        await recordVersion();
      })();
    } catch (error) {
      await release();
      throw error;
    }
    const idempotencyService = this.idempotencyService;
    const body = async function* (): AsyncGenerator<string> {
      try {
        yield '{"commitments":[';
        let separator = '';
        for await (const committed of commitAll) {
          if (committed.length === 0) continue;
          yield separator + committed.map((c) => JSON.stringify({ externalId: c.externalId, commitment: c.commitment })).join(',');
          separator = ',';
        }
        const summary = report.summary();
        if (claim !== undefined) await idempotencyService.complete(claim, 200, summary, { requestDigest: bodyHash.digest('hex') });
        finished = true;
        yield `],${JSON.stringify(summary).slice(1)}`;
      } finally {
        await release(); // failed, or the client went away: a retry with the key runs anew
      }
    };
    return this.stream(body(), () => `upload to dataset ${dataset.id} failed after ${report.accepted} samples`);
  }

  /**
   * A retry of an upload that completed: the new body is read (and hashed) but not processed; if it is
   * the same, the first answer is sent again, its commitments read back (and opened) from the samples it
   * committed.
   */
  private async replay(
    source: AsyncIterable<Buffer>,
    bodyHash: Hash,
    decision: { claim: IdempotencyClaim; requestMac: string; body: unknown },
    request: Request,
  ): Promise<StreamableFile> {
    for await (const chunk of source) void chunk; // read to the end, hashing
    if (decision.claim.macOf(bodyHash.digest('hex')) !== decision.requestMac) throw new ConflictException('Idempotency-Key was already used with a different body');
    const summary = decision.body as Omit<SampleUploadResponseDto, 'commitments'>;
    const vault = this.sampleVault;
    const body = async function* (): AsyncGenerator<string> {
      yield '{"commitments":[';
      let separator = '';
      for (const index of summary.ledgerIndices) {
        // A sample forgotten since has lost its externalId: only its commitment is left.
        const rows = await vault.readBatch(index);
        yield separator + rows.map((r) => JSON.stringify(r)).join(',');
        separator = ',';
      }
      yield `],${JSON.stringify(summary).slice(1)}`;
    };
    request.res?.setHeader('Idempotent-Replayed', 'true');
    return this.stream(body(), () => 'replaying an upload failed');
  }

  /**
   * The answer as a stream. The status (200) goes out with the first bytes; a failure after that can only
   * cut the answer short, which the client sees as a broken connection (what was committed stays).
   */
  private stream(body: AsyncGenerator<string>, describe: () => string): StreamableFile {
    const file = new StreamableFile(Readable.from(body), { type: 'application/json' });
    file.setErrorHandler((error, response) => {
      this.logger.error(`${describe()}: ${error.message}`);
      response.destroy?.(error);
    });
    return file;
  }

  /** After an upload that committed samples: the dataset version covering them (DATASET_VERSIONED). */
  private async recordVersion(datasetId: string, report: UploadReport): Promise<void> {
    if (report.accepted > 0) report.datasetVersion = (await this.datasetVersions.recordVersion(datasetId)).version;
  }

  private async *commitAll(dataset: DatasetEntity, items: AsyncIterable<UploadItem>, report: UploadReport): AsyncGenerator<CommittedSample[]> {
    let chunk: { line: number; sample: CommittableSample }[] = [];
    let chunkBytes = 0;
    let externalIds = new Set<string>();
    for await (const item of items) {
      if (item.error !== undefined) {
        report.reject(item.line, item.error);
        continue;
      }
      const check = validateSample(item.value, dataset);
      if ('error' in check) {
        report.reject(item.line, check.error, check.externalId);
        continue;
      }
      const { externalId } = check.sample;
      if (dataset.retentionDays !== null) check.sample.expiresAt = expiryOf(check.sample.expiresAt, dataset.retentionDays);
      if (externalIds.has(externalId)) {
        report.reject(item.line, 'externalId: repeats an earlier line of this upload', externalId);
        continue;
      }
      externalIds.add(externalId);
      chunk.push({ line: item.line, sample: check.sample });
      chunkBytes += item.chars + 8 * check.sample.features.length;
      if (chunk.length >= UPLOAD_CHUNK_SIZE || chunkBytes >= UPLOAD_CHUNK_BYTES) {
        yield await this.commitChunk(dataset.id, chunk, report);
        chunk = [];
        chunkBytes = 0;
        externalIds = new Set();
      }
    }
    if (chunk.length > 0) yield await this.commitChunk(dataset.id, chunk, report);
  }

  /**
   * Commits one chunk, minus the samples whose externalId the dataset already has (earlier chunks of
   * this upload included). SampleVault refuses a whole chunk on a duplicate, which only a concurrent
   * upload of the same externalId can cause here: the check is then made again.
   */
  private async commitChunk(datasetId: string, chunk: { line: number; sample: CommittableSample }[], report: UploadReport): Promise<CommittedSample[]> {
    for (let attempt = 1; ; attempt++) {
      const existing = await this.findExisting(datasetId, chunk.map((c) => c.sample.externalId));
      chunk = chunk.filter((c) => {
        if (!existing.has(c.sample.externalId)) return true;
        report.reject(c.line, 'externalId: the dataset already has a sample with this externalId', c.sample.externalId);
        return false;
      });
      if (chunk.length === 0) return [];
      try {
        const result = await this.sampleVault.commit(datasetId, chunk.map((c) => c.sample));
        report.accepted += result.samples.length;
        report.ledgerIndices.push(result.ledgerIndex);
        return result.samples;
      } catch (error) {
        if (attempt < 3 && error instanceof LedgerError && error.field === 'externalId') continue;
        throw error;
      }
    }
  }

  private findExisting(datasetId: string, externalIds: string[]): Promise<Set<string>> {
    return this.sampleVault.findExternalIds(datasetId, externalIds);
  }
}

function parseLine(line: NdjsonLine): UploadItem {
  if (line.error !== undefined) return { line: line.line, error: line.error };
  try {
    return { line: line.line, value: JSON.parse(line.text), chars: line.text.length };
  } catch {
    return { line: line.line, error: 'not valid JSON' };
  }
}

async function* hashWhileReading(stream: AsyncIterable<Buffer | string>, hash: Hash): AsyncGenerator<Buffer> {
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    hash.update(buffer);
    yield buffer;
  }
}

async function* toAsync<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

/** A sample's expiry under its dataset's retention: its own expiresAt or `retentionDays` from now, the earlier. */
function expiryOf(expiresAt: string | undefined, retentionDays: number): string {
  const retained = new Date(Date.now() + retentionDays * 86_400_000).toISOString();
  return expiresAt !== undefined && expiresAt < retained ? expiresAt : retained;
}
