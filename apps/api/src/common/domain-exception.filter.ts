import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { ArtifactError, ArtifactErrorCode } from '@lethe/artifacts';
import { LedgerError, LedgerErrorCode } from '@lethe/events';
import { MerkleError } from '@lethe/merkle';
import { UnlearningError, UnlearningErrorCode } from '@lethe/unlearning';
import type { Request, Response } from 'express';
import { closeInStages } from './close-in-stages';

const LEDGER_STATUS: Record<LedgerErrorCode, number> = {
  INVALID_ARGUMENT: HttpStatus.BAD_REQUEST,
  INVALID_EVENT: HttpStatus.BAD_REQUEST,
  OUT_OF_RANGE: HttpStatus.BAD_REQUEST,
  CORRUPT: HttpStatus.INTERNAL_SERVER_ERROR,
  UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
};

/** What the engine refuses because of the request is a 400; a wrong file or a runtime failure is ours. */
const UNLEARNING_STATUS: Record<UnlearningErrorCode, number> = {
  INVALID_SAMPLE: HttpStatus.BAD_REQUEST,
  INVALID_CONFIG: HttpStatus.BAD_REQUEST,
  INVALID_REQUEST: HttpStatus.BAD_REQUEST,
  INSUFFICIENT_DATA: HttpStatus.BAD_REQUEST,
  DUPLICATE_SAMPLE: HttpStatus.BAD_REQUEST,
  UNKNOWN_SAMPLE: HttpStatus.BAD_REQUEST,
  PARSE_ERROR: HttpStatus.BAD_REQUEST,
  HASH_MISMATCH: HttpStatus.INTERNAL_SERVER_ERROR,
  CHECKPOINT_MISSING: HttpStatus.INTERNAL_SERVER_ERROR,
  CHECKPOINT_CORRUPT: HttpStatus.INTERNAL_SERVER_ERROR,
  RUNTIME_ERROR: HttpStatus.INTERNAL_SERVER_ERROR,
};

/** The artifact store is ours: a file that does not hash right is a 500, a store out of reach a 503. */
const ARTIFACT_STATUS: Record<ArtifactErrorCode, number> = {
  INVALID_ARGUMENT: HttpStatus.INTERNAL_SERVER_ERROR,
  CORRUPT: HttpStatus.INTERNAL_SERVER_ERROR,
  UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
};

/**
 * Maps the libraries' domain errors (and Nest's own) to `{statusCode, error, message}` JSON. A request
 * refused before its body was read (a bad key, a wrong type, a timeout) gets `Connection: close`: the
 * connection ends with the answer instead of Node reading the rest of the body to reuse it — closed in
 * stages (`closeInStages`), so that a client still sending its body can finish and read the answer.
 */
@Catch()
export class DomainExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const request = host.switchToHttp().getRequest<Request>();
    const { statusCode, message } = this.describe(exception);
    if (statusCode >= 500) this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    if (!request.complete) {
      response.setHeader('Connection', 'close');
      closeInStages(request.socket);
    }
    response.status(statusCode).json({ statusCode, error: statusName(statusCode), message });
  }

  private describe(exception: unknown): { statusCode: number; message: string } {
    if (exception instanceof HttpException) {
      const body = exception.getResponse();
      const message =
        typeof body === 'string'
          ? body
          : Array.isArray((body as { message?: unknown }).message)
            ? ((body as { message: string[] }).message).join('; ')
            : String((body as { message?: unknown }).message ?? exception.message);
      return { statusCode: exception.getStatus(), message };
    }
    if (exception instanceof LedgerError) {
      const statusCode = LEDGER_STATUS[exception.code];
      return { statusCode, message: statusCode >= 500 ? 'internal error: the ledger failed a consistency check' : exception.message };
    }
    if (exception instanceof UnlearningError) {
      const statusCode = UNLEARNING_STATUS[exception.code] ?? HttpStatus.INTERNAL_SERVER_ERROR;
      return { statusCode, message: statusCode >= 500 ? 'internal error: a model file or the runtime failed' : exception.message };
    }
    if (exception instanceof ArtifactError) {
      const statusCode = ARTIFACT_STATUS[exception.code];
      return { statusCode, message: statusCode === HttpStatus.SERVICE_UNAVAILABLE ? 'the artifact store cannot be reached; retry later' : 'internal error: a model file failed its check' };
    }
    if (exception instanceof MerkleError && exception.code === 'INVALID_ARGUMENT') {
      return { statusCode: HttpStatus.BAD_REQUEST, message: exception.message };
    }
    return { statusCode: HttpStatus.INTERNAL_SERVER_ERROR, message: 'internal error' };
  }
}

export function statusName(statusCode: number): string {
  const names: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    408: 'Request Timeout',
    409: 'Conflict',
    410: 'Gone',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    422: 'Unprocessable Entity',
    429: 'Too Many Requests',
    431: 'Request Header Fields Too Large',
    500: 'Internal Server Error',
    503: 'Service Unavailable',
  };
  return names[statusCode] ?? (statusCode >= 500 ? 'Internal Server Error' : 'Bad Request');
}
