/**
 * Who this process is on the shared log: its coordinator id and the random token that tells
 * this process from any other (earlier or concurrent) process using the same id.
 */
export interface LogIdentity {
  readonly coordinatorId: string;
  /** Written into the instances row; a take-over of the id clears it, which fences this process. */
  readonly token: string;
  readonly host: string;
  readonly pid: number;
  readonly leaseMs: number;
}

/**
 * Thrown inside a log transaction when the instances row no longer carries this process's
 * token: another process declared it dead and claimed its coordinator id.
 */
export class IdentityLostError extends Error {
  constructor(readonly coordinatorId: string) {
    super(`coordinator id ${coordinatorId} was claimed by another process that presumed this one dead`);
    this.name = 'IdentityLostError';
  }
}

/** SQL for "now + the lease" with the lease in milliseconds bound as `$n`. */
export function leaseUntil(param: number): string {
  return `now() + $${param}::int * interval '1 millisecond'`;
}
