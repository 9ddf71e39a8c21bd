/**
 * Runs async tasks one at a time in arrival order. Guards every read-modify-write of plugin state, so
 * that parallel requests from dockerd never interleave between reading and writing.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
