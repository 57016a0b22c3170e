import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { HttpConnection } from "./bootstrap/http-connection.mjs";

/** A raw TCP server: the test writes the Runtime API's answers byte for byte. */
interface RawServer {
  port: number;
  connections: net.Socket[];
  /** Resolves with everything a connection has sent once `text` appears in it. */
  received(connection: number, text: string): Promise<string>;
  close(): Promise<void>;
}

const servers: RawServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function rawServer(): Promise<RawServer> {
  const connections: net.Socket[] = [];
  const data: string[] = [];
  const waiters: Array<() => void> = [];
  const server = net.createServer((socket) => {
    const index = connections.push(socket) - 1;
    data[index] = "";
    socket.on("data", (chunk: Buffer) => {
      data[index] += chunk.toString("latin1");
      for (const wake of waiters.splice(0)) wake();
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const raw: RawServer = {
    port: (server.address() as AddressInfo).port,
    connections,
    async received(connection, text) {
      while (!(data[connection] ?? "").includes(text)) {
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
      return data[connection] ?? "";
    },
    async close() {
      for (const socket of connections) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  servers.push(raw);
  return raw;
}

function connect(server: RawServer): HttpConnection {
  return new HttpConnection(
    { host: "127.0.0.1", port: server.port },
    `host: 127.0.0.1:${server.port}\r\n`,
  );
}

describe("HttpConnection", () => {
  it("pipelines requests made together and pairs the answers in order", async () => {
    const server = await rawServer();
    const http = connect(server);
    const posted = http.request("POST", "/result", '{"ok":true}', { "x-extra": "1" });
    const polled = http.request("GET", "/next");
    const sent = await server.received(0, "GET /next");
    expect(sent).toBe(
      "POST /result HTTP/1.1\r\nhost: 127.0.0.1:" +
        server.port +
        "\r\nx-extra: 1\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n" +
        '{"ok":true}' +
        `GET /next HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\n\r\n`,
    );
    server.connections[0]!.write(
      'HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{"status":"OK"}',
    );
    expect(await posted).toEqual({
      status: 202,
      headers: { "content-length": "15" },
      body: '{"status":"OK"}',
    });
    server.connections[0]!.write(
      "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r1\r\nX-Twice: a\r\nX-Twice: b\r\n" +
        "Transfer-Encoding: chunked\r\n\r\n",
    );
    // A chunked body that arrives a byte at a time, with an extension and a trailer.
    const chunked = "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n";
    for (const byte of chunked) server.connections[0]!.write(byte);
    expect(await polled).toEqual({
      status: 200,
      headers: {
        "lambda-runtime-aws-request-id": "r1",
        "x-twice": "a, b",
        "transfer-encoding": "chunked",
      },
      body: "hello, world",
    });
    expect(server.connections).toHaveLength(1);
  });

  it("reads UTF-8 split across packets, and a body that ends with the connection", async () => {
    const server = await rawServer();
    const http = connect(server);
    const reply = http.request("GET", "/next");
    await server.received(0, "GET /next");
    const body = Buffer.from('{"text":"héllo €"}');
    server.connections[0]!.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n");
    server.connections[0]!.write(body.subarray(0, 12));
    server.connections[0]!.end(body.subarray(12));
    expect((await reply).body).toBe('{"text":"héllo €"}');
  });

  it("opens a new connection after one the server closes", async () => {
    const server = await rawServer();
    const http = connect(server);
    const first = http.request("GET", "/a");
    await server.received(0, "GET /a");
    server.connections[0]!.write(
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
    );
    expect((await first).body).toBe("a");
    const second = http.request("GET", "/b");
    await server.received(1, "GET /b");
    server.connections[1]!.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    expect(await second).toMatchObject({ status: 404, body: "" });
  });

  it("fails the requests still waiting when the connection breaks", async () => {
    const server = await rawServer();
    const http = connect(server);
    const waiting = http.request("GET", "/next");
    await server.received(0, "GET /next");
    server.connections[0]!.destroy();
    await expect(waiting).rejects.toThrow(/closed the connection/);
    // The next request gets a connection of its own.
    const again = http.request("GET", "/next");
    await server.received(1, "GET /next");
    server.connections[1]!.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    expect((await again).body).toBe("ok");
  });

  it("fails on an answer that is not HTTP", async () => {
    const server = await rawServer();
    const http = connect(server);
    const reply = http.request("GET", "/next");
    await server.received(0, "GET /next");
    server.connections[0]!.write("SSH-2.0-OpenSSH\r\n\r\n");
    await expect(reply).rejects.toThrow(/malformed response/);
  });

  it("fails when nothing listens", async () => {
    const server = await rawServer();
    const port = server.port;
    await server.close();
    servers.splice(0);
    const http = new HttpConnection({ host: "127.0.0.1", port }, "");
    await expect(http.request("GET", "/next")).rejects.toThrow();
  });
});
