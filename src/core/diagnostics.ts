/**
 * Diagnostics: every phase (spec parsing, planning, preconditions) collects
 * all its problems, then stops. Each has a stable code, the field or flag it
 * concerns, and a hint a person can act on.
 */
export interface Diagnostic {
  code: string;
  /** The spec field, flag or tool the problem concerns, e.g. `replicas=4`. */
  subject: string;
  message: string;
  hint?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.code} ${d.subject}: ${d.message}${d.hint ? `; ${d.hint}` : ''}`;
}

/** Thrown by library code; only the CLI entry point turns it into an exit code. */
export class DiagnosticsError extends Error {
  constructor(public readonly diagnostics: Diagnostic[], public readonly phase = 'input') {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'DiagnosticsError';
  }
}

/** A single actionable error, e.g. "lab 'demo' is not up; run `electrode-lab up`". */
export class LabError extends Error {
  constructor(message: string, public readonly code = 'LAB_ERROR') {
    super(message);
    this.name = 'LabError';
  }
}
