/**
 * The plugin's memory across restarts: one JSON document in one file, owned by one StateFile. Every
 * change is a read-modify-write under a queue, written to a temporary file, fsynced and renamed over the
 * old one before the caller learns it succeeded, so a crash leaves either the old or the new document,
 * never a torn one.
 */
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { StateError } from "./errors.js";
import { SerialQueue } from "./serial-queue.js";

export type StateCodec<T> = {
  /** The document of a plugin that has never run. */
  empty(): T;
  /** Checks a parsed document; throws an Error describing the first problem. */
  validate(document: unknown): T;
};

export class StateFile<T> {
  private readonly queue = new SerialQueue();
  private document: T;
  /** The document as last written, to tell whether an update changed anything. */
  private serialized: string;

  private constructor(
    readonly path: string,
    document: T,
  ) {
    this.serialized = serialize(document);
    this.document = JSON.parse(this.serialized) as T;
  }

  /**
   * Loads the document, or starts empty when the file does not exist. A file that exists but cannot be
   * read or checked is an error: silently starting empty would hand out addresses containers still use.
   */
  static async open<T>(path: string, codec: StateCodec<T>): Promise<StateFile<T>> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new StateFile(path, codec.empty());
      throw new StateError(`cannot read state file ${path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      return new StateFile(path, codec.validate(JSON.parse(text)));
    } catch (error) {
      throw new StateError(`state file ${path} is corrupt: ${(error as Error).message}`, {
        cause: error,
        hint:
          "it records which addresses containers hold, so it is never replaced automatically. Repair it, or stop " +
          "every container on azure networks and move the file aside to start with an empty pool",
      });
    }
  }

  /** The current document; callers must not modify it. */
  get current(): Readonly<T> {
    return this.document;
  }

  /**
   * Applies `mutate` to a copy of the document and persists the copy before adopting it. If `mutate`
   * throws, or the write fails, the document stays as it was.
   */
  update<R>(mutate: (draft: T) => R): Promise<R> {
    return this.queue.run(async () => {
      const draft = structuredClone(this.document);
      const result = mutate(draft);
      const text = serialize(draft);
      if (text !== this.serialized) {
        await writeAtomically(this.path, text);
        this.serialized = text;
        this.document = draft;
      }
      return result;
    });
  }
}

/** Compact JSON: the file is rewritten whole on every change (`jq . state.json` to read it). */
function serialize(document: unknown): string {
  return JSON.stringify(document) + "\n";
}

/** Writes `content` to `path` so that readers see either the old or the new file, even after a crash. */
export async function writeAtomically(path: string, content: string): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  const handle = await open(temporary, "w", 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  const directory = await open(dirname(path), "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
