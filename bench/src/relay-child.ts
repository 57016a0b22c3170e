/**
 * One "sandbox" of relay-server.ts: reads frames (4-byte length, 4-byte
 * sleep in ms, the payload) on stdin, runs the benchmark's handler on the
 * parsed payload, and writes its JSON answer as a frame on stdout.
 */
const handler = async (_event: unknown, sleepMs: number): Promise<unknown> => {
  if (sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, sleepMs));
  return { ok: true };
};

let pending: Buffer = Buffer.alloc(0);
process.stdin.on("data", (chunk: Buffer) => {
  pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
  while (pending.length >= 4) {
    const length = pending.readUInt32BE(0);
    if (pending.length < 4 + length) break;
    const sleepMs = pending.readUInt32BE(4);
    const payload = pending.subarray(8, 4 + length).toString("utf8");
    pending = pending.subarray(4 + length);
    void handler(JSON.parse(payload), sleepMs).then((result) => {
      const body = Buffer.from(JSON.stringify(result));
      const header = Buffer.alloc(4);
      header.writeUInt32BE(body.length, 0);
      process.stdout.write(Buffer.concat([header, body]));
    });
  }
});
