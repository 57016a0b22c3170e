/**
 * NATS request/reply round trips on a given server, as the fleet's frontends
 * and workers make them: the JS client, two connections (requester and
 * responder, here in one process), a 300-byte payload. The benchmark measures
 * it in the same run as the fleet, to compare what the fleet adds over
 * `gust dev` with one round trip.
 */
import { connect } from "@nats-io/transport-node";

/** The median round trip in ms over `count` sequential requests, after `warmup` unmeasured ones. */
export async function natsRoundTripMs(url: string, count = 2000, warmup = 200): Promise<number> {
  const responder = await connect({ servers: url });
  const requester = await connect({ servers: url });
  try {
    const subject = `bench.rtt.${process.pid}`;
    responder.subscribe(subject, {
      callback: (_error, message) => {
        message.respond(message.data);
      },
    });
    await responder.flush();
    const payload = new Uint8Array(300);
    const times: number[] = [];
    for (let i = 0; i < warmup + count; i++) {
      const began = performance.now();
      await requester.request(subject, payload, { timeout: 5000 });
      if (i >= warmup) times.push(performance.now() - began);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)] ?? Number.NaN;
  } finally {
    await requester.close();
    await responder.close();
  }
}
