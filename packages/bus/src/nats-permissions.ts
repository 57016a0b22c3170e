/**
 * Who may do what on a fleet's NATS server: the one permission table, from
 * which every nats-server config Gust writes (local fleets, tests,
 * `gust nats-config`) is generated. Sandboxes run strangers' code on the
 * same hosts as the services, so the bus must not trust a connection for
 * being able to reach the port: every process authenticates with its role's
 * nkey and may publish and subscribe only where its role needs to.
 *
 * Roles and what they do on the bus (subjects from @gust/protocol's
 * subjects.ts; "JetStream" lists the streams whose API each role calls):
 *
 *   frontend     publishes  invoke.<worker> (request), worker.discover,
 *                           worker.census.<worker> (request), gossip.demand,
 *                           gossip.loan.<fe>, gossip.probe.<fe> (request),
 *                           rollout.outcomes, events.<tenant> (JetStream)
 *                subscribes worker.heartbeat, worker.gone, gossip.demand,
 *                           gossip.loan.*, gossip.probe.* (answers: responses)
 *                JetStream  functions, code, runtime versions, rollouts: read,
 *                           write (the control and admin APIs); tenants: read;
 *                           the Event stream: create, publish, consume
 *   worker       publishes  worker.heartbeat, worker.gone
 *                subscribes invoke.*, worker.discover, worker.census.*
 *                           (answers both requests: responses)
 *                JetStream  functions, code, runtime versions: read only.
 *                           Never the tenants bucket (secret keys) nor the
 *                           Event stream
 *   coordinator  publishes  rollout.verdict
 *                subscribes rollout.outcomes
 *                JetStream  every bucket and store: create, read; every KV
 *                           bucket: write (code comes from frontends). Only
 *                           the coordinator creates buckets, so it starts
 *                           first; a worker or frontend that finds one missing
 *                           says so (nats-errors.ts) and is restarted
 *   admin        everything (">"): tests, benchmarks and operators' tools.
 *                No Gust service connects as admin, nor does the gust CLI:
 *                its admin commands (runtime, rollout, fleet) go through a
 *                frontend's HTTP admin API, never NATS.
 *
 * Each role has its own inbox prefix (`_INBOX_<role>`) and may subscribe to
 * no inbox but its own, so no role can read another's replies (a frontend's
 * invocation results, another process's JetStream API answers). Replies to
 * requests a role answers go out through `allow_responses` (once per
 * request), never through a publish permission on another role's inbox.
 *
 * Workers share one role, so each may subscribe to every worker's
 * invoke.<id>: what isolates tenants from each other is that no sandbox
 * holds a worker's key, not one key per worker. Per-process subjects
 * (gossip.loan.<fe>, invoke.<worker>) would need NATS's JWT permission
 * templates, which need an operator and a resolver.
 *
 * JetStream subjects (ADR-8 for KV, ADR-20 for the object store): a bucket
 * B is the stream KV_B on subjects $KV.B.>; an object store O is the stream
 * OBJ_O on $O.O.>. Reads go through $JS.API.DIRECT.GET (2.9's direct get)
 * or STREAM.MSG.GET; watches and key listings are ordered push consumers
 * (CONSUMER.CREATE, delivered to the role's inbox, with flow control on
 * $JS.FC); writes are acknowledged publishes on the stream's subjects.
 * Reads are granted in each form nats.js may use for them (direct get by
 * subject or with a body, STREAM.MSG.GET, named or unnamed consumers): they
 * give the same data, and which one nats.js picks depends on the server's
 * version and the bucket's config. Every write and create a role holds is
 * one it uses: the fleet tests, on a server tracing its clients' traffic,
 * used all of them but two rare paths, a frontend's loan of slots to
 * another (gossip.loan) and the purge when two frontends store one zip at
 * once.
 */
import { Buckets, Streams, Subjects } from "@gust/protocol";
import { DEFAULT_EVENT_CONSUMER } from "./nats-queue.js";

export const BusRoles = {
  frontend: "frontend",
  worker: "worker",
  coordinator: "coordinator",
  admin: "admin",
} as const;
export type BusRole = (typeof BusRoles)[keyof typeof BusRoles];
export const BUS_ROLES: readonly BusRole[] = Object.values(BusRoles);

export interface BusPermissions {
  /** The inbox prefix the role's connections use (nats.js `inboxPrefix`). */
  readonly inboxPrefix: string;
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** May answer requests it received (nats-server `allow_responses`). */
  readonly allowResponses: boolean;
}

export function isBusRole(value: string): value is BusRole {
  return (BUS_ROLES as readonly string[]).includes(value);
}

export function inboxPrefixFor(role: BusRole): string {
  return `_INBOX_${role}`;
}

const API = "$JS.API";

/** Account-level JetStream info: nats.js asks for it before managing streams. */
const JETSTREAM_INFO = [`${API}.INFO`];

/** Read a stream's messages and follow it with ordered consumers. */
function streamRead(stream: string): string[] {
  return [
    `${API}.STREAM.INFO.${stream}`,
    `${API}.STREAM.MSG.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}.>`,
    `${API}.CONSUMER.CREATE.${stream}`,
    `${API}.CONSUMER.CREATE.${stream}.>`,
    `${API}.CONSUMER.INFO.${stream}.>`,
    `${API}.CONSUMER.DELETE.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

const kvStream = (bucket: string) => `KV_${bucket}`;
const objectStream = (store: string) => `OBJ_${store}`;

interface Access {
  publish: string[];
  subscribe: string[];
}

/** Beyond reading: writing entries, and creating the bucket when it is missing. */
interface BucketAccess {
  write?: boolean;
  create?: boolean;
}

function kv(bucket: string, access: BucketAccess = {}): Access {
  const stream = kvStream(bucket);
  const publish = streamRead(stream);
  if (access.write === true) publish.push(`$KV.${bucket}.>`);
  if (access.create === true) publish.push(`${API}.STREAM.CREATE.${stream}`);
  return { publish, subscribe: [] };
}

function objects(store: string, access: BucketAccess = {}): Access {
  const stream = objectStream(store);
  const publish = streamRead(stream);
  // A put over an existing object (two frontends storing the same zip at
  // once) purges the old chunks by subject.
  if (access.write === true) publish.push(`$O.${store}.>`, `${API}.STREAM.PURGE.${stream}`);
  if (access.create === true) publish.push(`${API}.STREAM.CREATE.${stream}`);
  return { publish, subscribe: [] };
}

/** Publish Event invocations and pull them from the shared durable consumer. */
function eventQueue(): Access {
  const stream = Streams.events;
  const consumer = DEFAULT_EVENT_CONSUMER;
  return {
    publish: [
      Subjects.allEvents,
      `${API}.STREAM.INFO.${stream}`,
      `${API}.STREAM.CREATE.${stream}`,
      `${API}.CONSUMER.INFO.${stream}.${consumer}`,
      `${API}.CONSUMER.CREATE.${stream}.${consumer}`,
      `${API}.CONSUMER.CREATE.${stream}.${consumer}.>`,
      `${API}.CONSUMER.DURABLE.CREATE.${stream}.${consumer}`,
      `${API}.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
      `$JS.ACK.${stream}.${consumer}.>`,
    ],
    subscribe: [],
  };
}

function role(role: BusRole, allowResponses: boolean, ...grants: Access[]): BusPermissions {
  const inboxPrefix = inboxPrefixFor(role);
  const publish = new Set<string>();
  const subscribe = new Set<string>([`${inboxPrefix}.>`]);
  for (const grant of grants) {
    grant.publish.forEach((subject) => publish.add(subject));
    grant.subscribe.forEach((subject) => subscribe.add(subject));
  }
  return { inboxPrefix, publish: [...publish], subscribe: [...subscribe], allowResponses };
}

/** A subject builder's subjects for every value of its one token (`gust.v1.invoke.*`). */
function any(subject: (token: string) => string): string {
  const sample = subject("x");
  return `${sample.slice(0, sample.lastIndexOf("."))}.*`;
}

export const BUS_PERMISSIONS: Readonly<Record<BusRole, BusPermissions>> = {
  frontend: role(
    "frontend",
    true,
    {
      publish: [
        any(Subjects.invoke),
        Subjects.workerDiscover,
        any(Subjects.workerCensus),
        Subjects.gossipDemand,
        any(Subjects.gossipLoan),
        any(Subjects.gossipProbe),
        Subjects.rolloutOutcomes,
        ...JETSTREAM_INFO,
      ],
      subscribe: [
        Subjects.workerHeartbeat,
        Subjects.workerGone,
        Subjects.gossipDemand,
        any(Subjects.gossipLoan),
        any(Subjects.gossipProbe),
      ],
    },
    kv(Buckets.functions, { write: true }),
    objects(Buckets.code, { write: true }),
    kv(Buckets.runtimeVersions, { write: true }),
    kv(Buckets.rollouts, { write: true }),
    kv(Buckets.tenants),
    eventQueue(),
  ),
  worker: role(
    "worker",
    true,
    {
      publish: [Subjects.workerHeartbeat, Subjects.workerGone, ...JETSTREAM_INFO],
      subscribe: [any(Subjects.invoke), Subjects.workerDiscover, any(Subjects.workerCensus)],
    },
    kv(Buckets.functions),
    objects(Buckets.code),
    kv(Buckets.runtimeVersions),
  ),
  coordinator: role(
    "coordinator",
    false,
    {
      publish: [Subjects.rolloutVerdict, ...JETSTREAM_INFO],
      subscribe: [Subjects.rolloutOutcomes],
    },
    kv(Buckets.tenants, { write: true, create: true }),
    kv(Buckets.functions, { write: true, create: true }),
    // Code is stored by frontends (the control API); the coordinator only reads it.
    objects(Buckets.code, { create: true }),
    kv(Buckets.runtimeVersions, { write: true, create: true }),
    kv(Buckets.rollouts, { write: true, create: true }),
  ),
  admin: {
    inboxPrefix: inboxPrefixFor("admin"),
    publish: [">"],
    subscribe: [">"],
    allowResponses: false,
  },
};
