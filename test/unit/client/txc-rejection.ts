import { expect } from 'vitest';
import { TxcError, type TxcErrorCode } from '../../../coordinator/errors.js';

/** Awaits `p`, expects it to reject with a TxcError of `code`, and returns that error. */
export async function txcRejection(p: Promise<unknown>, code: TxcErrorCode): Promise<TxcError> {
  try {
    await p;
  } catch (err) {
    expect(TxcError.is(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
    return err as TxcError;
  }
  throw new Error(`expected a rejection with ${code}`);
}
