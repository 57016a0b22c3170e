import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "@gust/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkHaproxyConfig,
  findHaproxyBinary,
  haproxyConfig,
  parseServerStates,
} from "./haproxy.js";

const servers = [
  { name: "fe1", host: "127.0.0.1", port: 9001 },
  { name: "fe2", host: "127.0.0.1", port: 9002 },
];

describe("haproxyConfig", () => {
  it("health-checks every frontend's /readyz and names the server in each response", () => {
    const config = haproxyConfig({
      bindHost: "127.0.0.1",
      bindPort: 9000,
      servers,
      checkIntervalMs: 500,
    });
    expect(config).toContain("bind 127.0.0.1:9000");
    expect(config).toContain("http-check send meth GET uri /readyz");
    expect(config).toContain("default-server check inter 500 fall 2 rise 1");
    expect(config).toContain("server fe1 127.0.0.1:9001");
    expect(config).toContain("server fe2 127.0.0.1:9002");
    expect(config).toContain("http-response set-header X-Gust-Frontend %[srv_name]");
  });

  it("retries only connection failures, each on another frontend, and closes idle connections itself", () => {
    const config = haproxyConfig({ bindHost: "127.0.0.1", bindPort: 9000, servers });
    expect(config).toContain("option redispatch 1");
    expect(config).toContain("option http-keep-alive");
    expect(config).toContain("pool-purge-delay 1s");
    expect(config).not.toMatch(/retry-on/);
  });

  it("answers its own errors in Lambda's ServiceException shape", () => {
    const config = haproxyConfig({ bindHost: "127.0.0.1", bindPort: 9000, servers });
    for (const status of [502, 503, 504]) {
      const line = config.split("\n").find((l) => l.includes(`http-error status ${status} `));
      expect(line, `http-error ${status}`).toBeDefined();
      expect(line).toContain("hdr x-amzn-ErrorType ServiceException");
      const body = /string '(.*)'$/.exec(line!)?.[1];
      expect(JSON.parse(body!)).toMatchObject({ Type: "Service" });
    }
  });

  it("rejects what would make a broken config", () => {
    expect(() => haproxyConfig({ bindHost: "127.0.0.1", bindPort: 9000, servers: [] })).toThrow(
      ConfigError,
    );
    expect(() =>
      haproxyConfig({
        bindHost: "127.0.0.1",
        bindPort: 9000,
        servers: [{ name: "fe 1", host: "127.0.0.1", port: 1 }],
      }),
    ).toThrow(/server name/);
    expect(() =>
      haproxyConfig({ bindHost: "127.0.0.1", bindPort: 9000, servers, checkIntervalMs: 0 }),
    ).toThrow(/checkIntervalMs/);
  });
});

describe("haproxy -c", () => {
  let dir: string;
  let binary: string | undefined;
  beforeAll(async () => {
    binary = await findHaproxyBinary();
    dir = await mkdtemp(join(tmpdir(), "gust-haproxy-test-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("accepts the generated config, and would reject a broken one", async (context) => {
    if (binary === undefined) context.skip("haproxy is not installed (apt-get install -y haproxy)");
    const good = join(dir, "good.cfg");
    await writeFile(
      good,
      haproxyConfig({
        bindHost: "127.0.0.1",
        bindPort: 9000,
        servers,
        statsSocket: join(dir, "s.sock"),
      }),
    );
    const checked = await checkHaproxyConfig(good, binary);
    expect(checked.output).not.toMatch(/ALERT/);
    expect(checked.valid).toBe(true);

    const bad = join(dir, "bad.cfg");
    await writeFile(
      bad,
      haproxyConfig({ bindHost: "127.0.0.1", bindPort: 9000, servers }).replace(
        "balance leastconn",
        "balance fastest",
      ),
    );
    expect((await checkHaproxyConfig(bad, binary)).valid).toBe(false);
  });
});

describe("parseServerStates", () => {
  it("reads the backend's servers from `show stat`", () => {
    // Rows as HAProxy 2.6 prints them, cut after check_status.
    const csv = [
      "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,",
      "gust,FRONTEND,,,0,0,9985,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,",
      "gust_frontends,fe1,0,0,0,0,,7,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,2,0,,1,3,1,,7,,2,0,,0,L7OK,",
      "gust_frontends,fe2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,2,2,,1,3,2,,0,,2,0,,0,L4CON,",
      "gust_frontends,BACKEND,0,0,0,0,999,7,0,0,0,0,,0,0,0,0,UP,1,1,0,,1,2,2,,1,3,0,,7,,1,0,,0,,",
      "",
    ].join("\n");
    expect(parseServerStates(csv)).toEqual([
      { name: "fe1", status: "UP", sessionsTotal: 7, lastCheck: "L7OK" },
      { name: "fe2", status: "DOWN", sessionsTotal: 0, lastCheck: "L4CON" },
    ]);
    expect(parseServerStates("")).toEqual([]);
  });
});
