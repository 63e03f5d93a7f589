/**
 * `fn` run at most once at a time and, once it has succeeded, never again: callers share its
 * promise. A failure is forgotten, so the next call tries again (a database that was down when
 * the bookkeeping tables were first needed must not stay failed for the life of the process).
 */
export function onceUntilFailure(fn: () => Promise<void>): () => Promise<void> {
  let pending: Promise<void> | undefined;
  return () => {
    pending ??= fn().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
