import { TxcError, type TxcErrorCode } from '../../coordinator/errors.js';

/** Longest field path put in a message: a client may send keys of any length. */
const MAX_FIELD = 120;

/** A field path shortened for messages. */
export function shortField(field: string): string {
  return field.length > MAX_FIELD ? `${field.slice(0, MAX_FIELD)}…` : field;
}

/**
 * The error for a request field that is wrong: `Field \`steps[0].participant\` <problem>`, with
 * the field in `details.field` so clients need not parse the message. Nothing was done.
 */
export function badRequest(field: string, problem: string, code: TxcErrorCode = 'TXC_BAD_REQUEST'): TxcError {
  const f = shortField(field);
  return new TxcError(code, `Field \`${f}\` ${problem}`, { details: { field: f } });
}
