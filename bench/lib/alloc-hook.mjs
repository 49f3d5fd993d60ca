// Loaded with `node --import bench/lib/alloc-hook.mjs` into the floor or a gateway
// (the profile item, --profile): the first SIGUSR2 starts V8's sampling heap
// profiler, counting every sampled allocation, including what the next young or
// full collection frees; the second stops it and writes the profile to
// $GWC_ALLOC_PROFILE. Bytes allocated per request are its total over the
// requests wrk completed in between: unlike time, a count no other process on
// the machine can move.
import { renameSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";

const session = new Session();
session.connect();
let sampling = false;
process.on("SIGUSR2", () => {
  if (!sampling) {
    sampling = true;
    session.post("HeapProfiler.startSampling", { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  session.post("HeapProfiler.stopSampling", (err, result) => {
    // Written whole, then renamed: the bench waits for the file to appear.
    const out = process.env.GWC_ALLOC_PROFILE;
    writeFileSync(`${out}.tmp`, err ? JSON.stringify({ error: err.message }) : JSON.stringify(result.profile));
    renameSync(`${out}.tmp`, out);
  });
});
