/**
 * The CLI's stdout and stderr as one ordered channel. Node writes to a
 * pipe asynchronously once the pipe is full, per stream: a later progress
 * line on stderr could then reach a shared pipe (`2>&1 | tee`) before the
 * results written to stdout before it, and process.exit() drops whatever
 * is still queued (65536 of 1 MB reached a slow reader). Each write here
 * starts when the one before it has been handed to the OS, and the CLI
 * waits for the last one before it exits.
 */

let last: Promise<void> = Promise.resolve();

export function writeOrdered(stream: NodeJS.WritableStream, chunk: string | Uint8Array): void {
  last = last.then(
    () =>
      new Promise<void>((resolve) => {
        // the callback runs once the chunk has left the process (or failed: EPIPE into `head`)
        stream.write(chunk, () => resolve());
      }),
  );
}

export const writeOut = (chunk: string | Uint8Array): void => writeOrdered(process.stdout, chunk);
export const writeErr = (chunk: string | Uint8Array): void => writeOrdered(process.stderr, chunk);

/** Resolves when everything written so far has left the process. */
export function outputFlushed(): Promise<void> {
  return last;
}
