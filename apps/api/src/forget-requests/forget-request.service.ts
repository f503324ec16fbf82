import {
  BadRequestException,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  OnApplicationBootstrap,
  ServiceUnavailableException,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppendedEntry, Ledger } from '@lethe/ledger';
import { Principal } from '../auth/role';
import { parseIntegerParam } from '../common/query-params';
import { parseUuidQueryParam } from '../common/uuid';
import { DatasetService } from '../datasets/dataset.service';
import { EntryReceiptService } from '../receipts/entry-receipt.service';
import {
  CreateForgetRequestDto,
  CreatedForgetRequestResponseDto,
  ForgetRequestResponseDto,
  ForgetRequestOutcome,
  ForgetRequestStepDto,
  ForgetRequestSummaryDto,
  approachOfBody,
  graceDaysOfBody,
  featuresOfBody,
  toCreatedForgetRequestResponse,
  toForgetRequestResponse,
  toForgetRequestSummary,
} from './forget-request.dto';
import { JobRepository } from '../jobs/job.repository';
import { ModelStore } from '../models/model.store';
import { ForgetApproach, ForgetRequestEntity } from './forget-request.entity';
import { ForgetRequestRepository } from './forget-request.repository';
import { FORGET_REQUEST_QUEUE, ForgetRequestQueue } from './forget-request.queue';

/** What a filed request is answered with. */
type CreatedRequest = Pick<ForgetRequestEntity, 'id' | 'state' | 'ledgerIndex' | 'leafHash' | 'jobId'>;

/** The reason of the forget requests the retention sweep files for expired samples. */
export const RETENTION_REASON = 'retention';

/** How long a request waits for an identical one in flight (another call) to be logged. */
const IN_FLIGHT_WAIT_MS = 10_000;
/** Unlogged rows older than this are finished at start-up (younger ones may be in flight elsewhere). */
const RECOVER_AFTER_MS = 60_000;

/**
 * Intake of forget requests. A request is durable before it is acknowledged: its row (with the
 * commitments) is committed, its FORGET_REQUESTED entry appended, and the row pointed at the entry,
 * all before the 202. Nothing is shredded here: that happens after unlearning (the engine, later).
 */
@Injectable()
export class ForgetRequestService implements OnApplicationBootstrap {
  private readonly logger = new Logger('ForgetRequests');

  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    private readonly requests: ForgetRequestRepository,
    private readonly datasetService: DatasetService,
    private readonly entryReceiptService: EntryReceiptService,
    private readonly modelStore: ModelStore,
    private readonly jobs: JobRepository,
    @Inject(FORGET_REQUEST_QUEUE) private readonly queue: ForgetRequestQueue,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.recoverUnlogged(RECOVER_AFTER_MS);
  }

  async create(body: CreateForgetRequestDto, principal: Principal | undefined): Promise<CreatedForgetRequestResponseDto> {
    if (body.features !== undefined) return this.createFeatureForget(body, principal);
    if ((body.externalIds === undefined) === (body.subjectId === undefined))
      throw new BadRequestException('give exactly one of externalIds and subjectId');
    const approach = approachOfBody(body);
    const graceDays = graceDaysOfBody(body, approach);
    const dataset = await this.datasetService.findRegistered(body.datasetId);
    if (approach) await this.checkApproximateApplies(dataset.id);
    if (graceDays !== null) await this.checkSuspendApplies(dataset.id);
    const commitments = await this.findCommitments(dataset.id, body);
    return this.file(dataset.id, commitments, { reason: body.reason, approach, graceDays, createdBy: principal?.keyId ?? null });
  }

  /**
   * Files a forget request for samples the retention sweep found expired (reason `retention`), less those a request
   * already names; null when every one is named already.
   */
  async fileForRetention(datasetId: string, commitments: string[]): Promise<CreatedForgetRequestResponseDto | null> {
    const covered = new Set((await this.requests.findCovering(this.dataSource.manager, commitments)).map((c) => c.commitment));
    const expired = commitments.filter((c) => !covered.has(c));
    if (expired.length === 0) return null;
    return this.file(datasetId, expired, { reason: RETENTION_REASON, approach: null, graceDays: null, createdBy: null });
  }

  /** Stores, logs (FORGET_REQUESTED) and queues a request for `commitments`; an identical one in flight is answered instead. */
  private async file(
    datasetId: string,
    commitments: string[],
    options: { reason: string; approach: ForgetApproach | null; graceDays: number | null; createdBy: string | null },
  ): Promise<CreatedForgetRequestResponseDto> {
    const { reason, approach, graceDays, createdBy } = options;
    const dataset = { id: datasetId };
    const decided = await this.dataSource.transaction(async (manager) => {
      // One intake per dataset at a time decides what is already requested, so two identical requests
      // racing each other make one request, not two.
      await this.requests.lockIntake(manager, dataset.id);
      const covering = await this.requests.findCovering(manager, commitments);
      const covered = new Set(covering.map((c) => c.commitment));
      if (commitments.every((c) => covered.has(c))) return { existing: covering[0].requestId };
      const id = randomUUID();
      const mode = graceDays === null ? 'forget' : 'suspend';
      await this.requests.insert(manager, { id, datasetId: dataset.id, reason, createdBy, approach, mode, graceDays }, commitments);
      return { created: id };
    });

    if (decided.existing !== undefined) return toCreatedForgetRequestResponse(await this.waitUntilLogged(decided.existing));
    const entry = await this.appendForgetRequested(decided.created, dataset.id, commitments, reason);
    return toCreatedForgetRequestResponse(await this.queueLogged(decided.created, dataset.id, createdBy, entry));
  }

  /**
   * A forget of columns: checked against the dataset (400 naming the field, nothing logged), stored, logged as
   * FORGET_REQUESTED with no commitments and its `features`, and served by the dataset's unlearning pass like any
   * other request (every ready model is trained again without the columns).
   */
  private async createFeatureForget(body: CreateForgetRequestDto, principal: Principal | undefined): Promise<CreatedForgetRequestResponseDto> {
    const dataset = await this.datasetService.findRegistered(body.datasetId);
    const features = featuresOfBody(body, dataset.features);
    const certified = await this.modelStore.findModelIdsOfMethod(dataset.id, 'certified');
    if (certified.length > 0)
      throw new BadRequestException(`features: dataset ${dataset.id} has certified model(s) ${certified.join(', ')}, which cannot mask columns; nothing was logged`);
    const id = randomUUID();
    await this.dataSource.transaction((manager) =>
      this.requests.insert(manager, { id, datasetId: dataset.id, reason: body.reason, createdBy: principal?.keyId ?? null, approach: null, features }, []),
    );
    const entry = await this.appendForgetRequested(id, dataset.id, [], body.reason, features);
    return toCreatedForgetRequestResponse(await this.queueLogged(id, dataset.id, principal?.keyId ?? null, entry));
  }

  /**
   * Points a stored request at its FORGET_REQUESTED entry `entry` and joins it to its dataset's waiting unlearning
   * pass (created if none waits), in one transaction, with the pass's job sent in it when the queue can (else right
   * after it commits): one commit on the way to the 202 instead of one per step. Returns what the 202 says.
   */
  private async queueLogged(id: string, datasetId: string, createdBy: string | null, entry: { index: number | string; leafHash: string }): Promise<CreatedRequest> {
    const within = this.queue.enqueueWithin?.bind(this.queue);
    const request = await this.dataSource.transaction(async (manager) => {
      // The waiting pass is locked (FOR SHARE) until this commits: it cannot start, and take its requests, without this one.
      const { jobId } = await this.jobs.findOrCreateWaitingPass(datasetId, createdBy, manager);
      const logged = await this.requests.markLoggedInPass(manager, id, entry, jobId);
      // Logged meanwhile (another process finishing it at its start): joined to the pass as before.
      const request = logged ?? { ...(await manager.getRepository(ForgetRequestEntity).findOneByOrFail({ id })), jobId: await this.requests.attachToPass(id, jobId, manager) };
      if (within) await within(manager, { requestId: id, datasetId, jobId: request.jobId! });
      return request;
    });
    if (!within) await this.queue.enqueue({ requestId: id, datasetId, jobId: request.jobId! });
    return request;
  }


  async get(id: string): Promise<ForgetRequestResponseDto> {
    const request = await this.requests.findLogged(id);
    if (!request) throw new NotFoundException(`no forget request with id ${id}`);
    const samples = await this.requests.findCommitments(id);
    const receipt = await this.entryReceiptService.build(Number(request.ledgerIndex));
    const job = request.jobId === null ? null : await this.jobs.findById(request.jobId);
    const steps: ForgetRequestStepDto[] = [];
    for (const [step, index] of [
      ['suspended', request.suspendLedgerIndex],
      ['restored', request.restoreLedgerIndex],
      ['shredded', request.shredLedgerIndex],
    ] as const)
      if (index !== null) steps.push({ step, ledgerIndex: Number(index), receipt: await this.entryReceiptService.build(Number(index)) });
    steps.sort((a, b) => a.ledgerIndex - b.ledgerIndex);
    return toForgetRequestResponse(request, samples, receipt, await this.findOutcome(id), job, steps);
  }

  async list(query: { datasetId?: unknown; start?: unknown; limit?: unknown }): Promise<ForgetRequestSummaryDto[]> {
    const start = parseIntegerParam(query.start, 'start', { default: 0 });
    const limit = parseIntegerParam(query.limit, 'limit', { default: 100, min: 1, max: 1000 });
    const datasetId = parseUuidQueryParam(query.datasetId, 'datasetId');
    const requests = await this.requests.listLogged({ datasetId, start, limit });
    return requests.map(toForgetRequestSummary);
  }

  /** The first version of each model that reflects the request (the one its unlearning published). */
  private async findOutcome(id: string): Promise<ForgetRequestOutcome> {
    const versions = await this.modelStore.findUnlearnedBy(id);
    if (versions.length === 0) return { modelVersions: [], evidence: null };
    return {
      modelVersions: versions.map(({ evidence: _, ...version }) => version),
      evidence: Object.fromEntries(versions.map((v) => [v.modelId, v.evidence])),
    };
  }

  /**
   * Finishes requests whose row was stored but whose acknowledgement never went out (a crash between
   * storing and logging): the entry is found in the log by requestId, or appended now.
   */
  async recoverUnlogged(olderThanMs: number): Promise<number> {
    const rows = await this.requests.findUnlogged(olderThanMs);
    for (const row of rows) {
      const entry =
        (await this.findForgetRequested(row.id)) ??
        (await this.appendForgetRequested(row.id, row.datasetId, await this.requests.findCommitments(row.id), row.reason, row.features));
      await this.queueLogged(row.id, row.datasetId, null, entry);
      this.logger.warn(`forget request ${row.id} was stored but not acknowledged before a stop; it is now logged`);
    }
    return rows.length;
  }

  /** The request's FORGET_REQUESTED entry, if the log has one. */
  private async findForgetRequested(requestId: string): Promise<{ index: number; leafHash: string } | undefined> {
    const [logged] = await this.ledger.findEntries({ type: 'FORGET_REQUESTED', fields: { requestId }, limit: 1 });
    return logged;
  }

  /** Appends FORGET_REQUESTED (queueLogged points the row at it); returns its entry once durable. */
  private async appendForgetRequested(id: string, datasetId: string, commitments: string[], reason: string, features?: number[] | null): Promise<AppendedEntry> {
    return this.ledger.appendOne({ type: 'FORGET_REQUESTED', version: 1, requestId: id, datasetId, commitments, reason, ...(features ? { features } : {}) });
  }

  /**
   * Approximate unlearning is for SISA and full models; a certified model removes samples by its certified Newton
   * step (or retrains), and a forget request reaches every model of its dataset: with a certified one, a 400.
   */
  private async checkApproximateApplies(datasetId: string): Promise<void> {
    const certified = await this.modelStore.findModelIdsOfMethod(datasetId, 'certified');
    if (certified.length > 0)
      throw new BadRequestException(
        `approach: dataset ${datasetId} has certified model(s) ${certified.join(', ')}, which remove samples by a certified Newton step; approach "approximate" does not apply to them`,
      );
  }

  /** A suspension is undone by learning the samples again, which certified removal cannot: with a certified model, a 400. */
  private async checkSuspendApplies(datasetId: string): Promise<void> {
    const certified = await this.modelStore.findModelIdsOfMethod(datasetId, 'certified');
    if (certified.length > 0)
      throw new BadRequestException(
        `mode: dataset ${datasetId} has certified model(s) ${certified.join(', ')}, which cannot learn samples again; mode "suspend" does not apply to them`,
      );
  }

  /**
   * The commitments of the named samples, in a stable order; a 404 naming the ones not found. Orphans (rows
   * an upload stored but never logged) are found too: forgetting them erases them and destroys their keys.
   */
  private async findCommitments(datasetId: string, by: { externalIds?: string[]; subjectId?: string }): Promise<string[]> {
    if (by.subjectId !== undefined) {
      const found = await this.datasetService.findSamples(datasetId, { subjectId: by.subjectId });
      if (found.length === 0)
        throw new NotFoundException(
          `subjectId: dataset ${datasetId} has no samples of subject ${JSON.stringify(by.subjectId)} ` +
            '(never uploaded, or already forgotten: its data key was destroyed); nothing was logged',
        );
      return found.map((s) => s.commitment);
    }
    const externalIds = [...new Set(by.externalIds)];
    const rows = await this.datasetService.findSamples(datasetId, { externalIds });
    const found = new Set(rows.map((r) => r.externalId));
    const unknown = externalIds.filter((e) => !found.has(e));
    if (unknown.length > 0) {
      const named = unknown
        .slice(0, 20)
        .map((e) => JSON.stringify(e))
        .join(', ');
      const more = unknown.length > 20 ? ` and ${unknown.length - 20} more` : '';
      throw new NotFoundException(
        `externalIds: dataset ${datasetId} has no samples ${named}${more} (never uploaded, or already forgotten and erased); nothing was logged`,
      );
    }
    return rows.map((r) => r.commitment);
  }

  /** An earlier request naming the same samples; if another call is still logging it, waits for that. */
  private async waitUntilLogged(id: string): Promise<ForgetRequestEntity> {
    const deadline = Date.now() + IN_FLIGHT_WAIT_MS;
    for (;;) {
      const request = await this.requests.getById(id);
      if (request.ledgerIndex !== null) return request;
      if (Date.now() > deadline)
        throw new ServiceUnavailableException(`an identical forget request (${id}) is still being recorded; retry shortly`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
