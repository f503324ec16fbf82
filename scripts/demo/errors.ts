/** A step of the demo failed: a one-line message naming what, and the lines that explain it (a log tail). */
export class DemoError extends Error {
  constructor(message: string, readonly details: string[] = []) {
    super(message);
    this.name = 'DemoError';
  }
}
