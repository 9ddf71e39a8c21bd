/** Worker thread entry of the model-based test: runs one share (see run.ts) and posts its result. */
import { parentPort, workerData } from "node:worker_threads";
import { runShard, type ShardOptions } from "./run.js";

parentPort!.postMessage(await runShard(workerData as ShardOptions));
