import { badRequest } from './bad-request.js';

/** Deepest nesting a request body may have; the deepest legitimate field (a saga step body's contents) sits well inside it. */
export const MAX_BODY_DEPTH = 32;

interface Node {
  readonly value: unknown;
  readonly depth: number;
  readonly parent?: Node;
  readonly key?: string | number;
}

// Built only when refusing, so a wide body costs no string per node.
function fieldOf(node: Node): string {
  const parts: (string | number)[] = [];
  for (let n: Node | undefined = node; n?.key !== undefined; n = n.parent) parts.unshift(n.key);
  return parts.reduce<string>((f, k) => (typeof k === 'number' ? `${f}[${k}]` : f ? `${f}.${k}` : k), '') || 'body';
}

/**
 * Refuses a parsed body nested deeper than `max` levels, naming the first field too deep.
 * JSON.parse copes with any depth, but the recursive code after it (ajv, JSON.stringify of a
 * saga record into the log) would overflow the stack: that must be a 400, not a 500.
 * Iterative, so the check itself cannot overflow.
 */
export function checkJsonDepth(body: unknown, max = MAX_BODY_DEPTH): void {
  const stack: Node[] = [{ value: body, depth: 0 }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const { value, depth } = node;
    if (value === null || typeof value !== 'object') continue;
    if (depth >= max) throw badRequest(fieldOf(node), `is nested too deeply (at most ${max} levels of objects and arrays)`);
    if (Array.isArray(value)) value.forEach((v: unknown, i) => stack.push({ value: v, depth: depth + 1, parent: node, key: i }));
    else for (const [k, v] of Object.entries(value)) stack.push({ value: v, depth: depth + 1, parent: node, key: k });
  }
}
