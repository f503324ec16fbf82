// What of an RPC URL or a chain error may be shown: the one redaction that @lethe/chain (errors, the
// anchoring engine) and @lethe/verifier (CHAIN_ERROR messages, reports) share. No Node-only module: the
// portal bundles it with the verifier.
export { redactRpcUrl, secretPartsOf, MIN_SECRET_LENGTH } from './redact-url';
export { rememberRpcUrl, redactText } from './redact-text';
export { chainErrorText, redactCause, redactLine, MAX_ERROR_TEXT } from './error-text';
