// Entry of a data-parallel worker thread (see data_parallel.ts): starts its own wasm backend, then runs the step loop.
import { workerData } from "worker_threads";
import { initBackend } from "../runtime/backend";
import { workerLoop, WorkerData } from "./data_parallel";

initBackend().then(
  () => workerLoop(workerData as WorkerData),
  (e) => {
    throw e;
  },
);
