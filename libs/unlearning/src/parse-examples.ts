import { TrainingConfig } from './config';
import { throwIssues, UnlearningIssue } from './errors';
import { LabeledExample } from './samples';
import { describeSampleProblem } from './validate';

export type ExampleFormat = 'json' | 'ndjson' | 'csv';

/**
 * A parsed example, with the learn batch the data gives it (see Sample.batch; absent: 0) and, when the data has it,
 * its commitment (SHA-256(salt || canonical sample), as the upload answered it): with it a replay recomputes batch roots.
 */
export type ParsedExample = LabeledExample & { batch?: number; commitment?: string };

/**
 * Parses user data into labeled examples: a JSON array or NDJSON of {externalId, features, label, batch?, commitment?},
 * or CSV with a header naming `externalId` (or `id`), `label`, optionally `batch` and `commitment`, and the feature
 * columns in order.
 * `batch` (an integer >= 0) is the learn batch that appended the sample to a model (0 or absent: its first training). Collects every
 * bad line and throws one PARSE_ERROR listing them (1-based lines; JSON arrays give element indexes).
 * With `shape`, also checks feature count and label range per line.
 */
export function parseExamples(text: string, format: ExampleFormat, shape?: Pick<TrainingConfig, 'numFeatures' | 'numClasses'>): ParsedExample[] {
  const issues: UnlearningIssue[] = [];
  const examples: ParsedExample[] = [];
  const accept = (value: unknown, where: { line?: number; index?: number }) => {
    const problem = checkShape(value, shape) ?? checkBatch((value as ParsedExample).batch) ?? checkCommitment((value as ParsedExample).commitment);
    if (problem) issues.push({ ...where, message: problem });
    else {
      const v = value as ParsedExample;
      examples.push({
        externalId: v.externalId,
        features: v.features,
        label: v.label,
        ...(v.batch ? { batch: v.batch } : {}),
        ...(v.commitment !== undefined ? { commitment: v.commitment } : {}),
      });
    }
  };
  if (format === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throwIssues('PARSE_ERROR', 'invalid JSON', [{ message: (error as Error).message }]);
    }
    if (!Array.isArray(parsed)) throwIssues('PARSE_ERROR', 'invalid JSON', [{ message: 'the document must be an array of samples' }]);
    (parsed as unknown[]).forEach((value, index) => accept(value, { index }));
  } else if (format === 'ndjson') {
    splitLines(text).forEach(({ line, content }) => {
      if (content.trim() === '') return;
      try {
        accept(JSON.parse(content), { line });
      } catch (error) {
        issues.push({ line, message: `invalid JSON: ${(error as Error).message}` });
      }
    });
  } else if (format === 'csv') {
    parseCsv(text, accept, issues);
  } else {
    throwIssues('PARSE_ERROR', 'unknown format', [{ message: `format must be json, ndjson or csv, got ${String(format)}` }]);
  }
  if (issues.length > 0) throwIssues('PARSE_ERROR', `${issues.length} bad record(s)`, issues);
  if (examples.length === 0) throwIssues('PARSE_ERROR', 'no records', [{ message: 'the input holds no samples' }]);
  return examples;
}

function splitLines(text: string): { line: number; content: string }[] {
  return text.split(/\r?\n/).map((content, i) => ({ line: i + 1, content }));
}

function checkCommitment(commitment: unknown): string | undefined {
  if (commitment === undefined) return undefined;
  return typeof commitment === 'string' && /^[0-9a-f]{64}$/.test(commitment) ? undefined : `commitment must be 32 bytes of lowercase hex, got ${JSON.stringify(commitment)}`;
}

function checkBatch(batch: unknown): string | undefined {
  if (batch === undefined) return undefined;
  return typeof batch === 'number' && Number.isSafeInteger(batch) && batch >= 0 ? undefined : `batch must be an integer >= 0, got ${JSON.stringify(batch)}`;
}

function checkShape(value: unknown, shape: Pick<TrainingConfig, 'numFeatures' | 'numClasses'> | undefined): string | undefined {
  const lenient = { numFeatures: Array.isArray((value as LabeledExample)?.features) ? (value as LabeledExample).features.length : 0, numClasses: Number.MAX_SAFE_INTEGER };
  const problem = describeSampleProblem(value, shape ?? lenient, false);
  if (problem) return problem;
  if ((value as LabeledExample).features.length === 0) return 'features must not be empty';
  return undefined;
}

/** Minimal CSV: comma-separated, optional double quotes around a cell (no embedded commas or newlines). */
function parseCsv(text: string, accept: (value: unknown, where: { line: number }) => void, issues: UnlearningIssue[]): void {
  const lines = splitLines(text).filter((l) => l.content.trim() !== '');
  if (lines.length === 0) return;
  const header = splitCells(lines[0].content);
  const idColumn = header.findIndex((h) => h === 'externalId' || h === 'id');
  const labelColumn = header.indexOf('label');
  const batchColumn = header.indexOf('batch');
  if (idColumn < 0 || labelColumn < 0) {
    issues.push({ line: lines[0].line, message: 'the header must name an externalId (or id) column and a label column' });
    return;
  }
  const commitmentColumn = header.indexOf('commitment');
  const featureColumns = header.map((_, i) => i).filter((i) => i !== idColumn && i !== labelColumn && i !== batchColumn && i !== commitmentColumn);
  for (const { line, content } of lines.slice(1)) {
    const cells = splitCells(content);
    if (cells.length !== header.length) {
      issues.push({ line, message: `has ${cells.length} cells, the header has ${header.length}` });
      continue;
    }
    const badCell = featureColumns.find((i) => cells[i] === '');
    if (badCell !== undefined || cells[labelColumn] === '') {
      issues.push({ line, message: `cell '${header[badCell ?? labelColumn]}' is empty` });
      continue;
    }
    const batch = batchColumn < 0 || cells[batchColumn] === '' ? {} : { batch: Number(cells[batchColumn]) };
    const commitment = commitmentColumn < 0 || cells[commitmentColumn] === '' ? {} : { commitment: cells[commitmentColumn] };
    accept({ externalId: cells[idColumn], features: featureColumns.map((i) => Number(cells[i])), label: Number(cells[labelColumn]), ...batch, ...commitment }, { line });
  }
}

function splitCells(content: string): string[] {
  return content.split(',').map((cell) => {
    const trimmed = cell.trim();
    return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1) : trimmed;
  });
}
