import { readFileSync } from 'node:fs';

/** The txcoord package version, read from its package.json (from the sources or from dist/). */
export function packageVersion(): string {
  // This file is api/package-version.ts, one level below the package root; compiled, two.
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'txcoord' && pkg.version) return pkg.version;
    } catch {
      // Not there: try the next level.
    }
  }
  return 'unknown';
}
