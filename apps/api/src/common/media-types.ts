/** Newline-delimited JSON: sample uploads of any size, read line by line as they are committed. */
export const NDJSON_TYPE = 'application/x-ndjson';
