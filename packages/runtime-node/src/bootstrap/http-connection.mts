/**
 * One keep-alive HTTP/1.1 connection to the Runtime API. Requests made in
 * the same tick leave in one write (pipelined), and answers are matched to
 * requests in order. node:http's client costs more per request than the rest
 * of a warm invocation inside the sandbox, and cannot pipeline.
 *
 * It speaks only what the Runtime API needs: requests with a string body,
 * responses framed by Content-Length, chunked encoding or the end of the
 * connection. The socket holds the process open only while a request is
 * outstanding (as node:http's idle keep-alive sockets do not), so an empty
 * event loop is still seen while a handler runs.
 *
 * Only node: builtins may be imported here (see runtime.mts).
 */
import net from "node:net";

export interface HttpReply {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

interface Pending {
  resolve: (reply: HttpReply) => void;
  reject: (error: Error) => void;
}

type Framing =
  | { kind: "length"; remaining: number }
  /** `remaining`: data left of the current chunk; `dataEnd`: its CRLF is still to come. */
  | { kind: "chunked"; remaining: number; dataEnd: boolean; trailers: boolean }
  | { kind: "close" };

interface Incoming {
  status: number;
  headers: Record<string, string>;
  framing: Framing;
  body: Buffer[];
  closes: boolean;
}

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");

export class HttpConnection {
  private socket: net.Socket | undefined;
  private readonly pending: Pending[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  private incoming: Incoming | undefined;
  private corked = false;

  /** `target`: a host and port, or a unix socket's path (a jailed sandbox's Runtime API). */
  constructor(
    private readonly target: { host: string; port: number } | { path: string },
    private readonly fixedHeaders: string,
  ) {}

  request(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
    return new Promise<HttpReply>((resolve, reject) => {
      const socket = this.connected();
      let head = `${method} ${path} HTTP/1.1\r\n${this.fixedHeaders}`;
      for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
      if (body !== undefined) {
        head += `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
      }
      this.pending.push({ resolve, reject });
      socket.ref();
      // Requests made in one tick leave in one write.
      if (!this.corked) {
        this.corked = true;
        socket.cork();
        process.nextTick(() => {
          this.corked = false;
          socket.uncork();
        });
      }
      socket.write(body === undefined ? `${head}\r\n` : `${head}\r\n${body}`);
    });
  }

  private connected(): net.Socket {
    if (this.socket !== undefined && !this.socket.destroyed && this.socket.writable) {
      return this.socket;
    }
    const socket =
      "path" in this.target
        ? net.connect({ path: this.target.path })
        : net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.incoming = undefined;
    socket.on("data", (chunk: Buffer) => this.onData(socket, chunk));
    socket.on("end", () => this.onEnd(socket));
    socket.on("error", (error) => this.fail(socket, error));
    socket.on("close", () => this.fail(socket, new Error("the Runtime API closed the connection")));
    return socket;
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.socket) return;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    try {
      while (this.parse(socket));
    } catch (error) {
      socket.destroy();
      this.fail(socket, error instanceof Error ? error : new Error(String(error)));
    }
  }

  private onEnd(socket: net.Socket): void {
    if (socket !== this.socket) return;
    const incoming = this.incoming;
    if (incoming?.framing.kind === "close") this.complete(socket, incoming);
    this.fail(socket, new Error("the Runtime API closed the connection"));
  }

  /** Every request still waiting fails; the next request opens a new connection. */
  private fail(socket: net.Socket, error: Error): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    socket.destroy();
    for (const pending of this.pending.splice(0)) pending.reject(error);
  }

  /** Consumes what it can of the buffer; true when there may be more to parse. */
  private parse(socket: net.Socket): boolean {
    let incoming = this.incoming;
    if (incoming === undefined) {
      const end = this.buffer.indexOf(HEAD_END);
      if (end === -1) return false;
      incoming = this.parseHead(this.buffer.toString("latin1", 0, end));
      this.buffer = this.buffer.subarray(end + HEAD_END.length);
      // An interim response (100 Continue) precedes the real one.
      if (incoming.status < 200) return true;
      this.incoming = incoming;
    }
    const framing = incoming.framing;
    if (framing.kind === "close") {
      if (this.buffer.length > 0) incoming.body.push(this.buffer);
      this.buffer = Buffer.alloc(0);
      return false;
    }
    if (framing.kind === "length") {
      const take = Math.min(framing.remaining, this.buffer.length);
      if (take > 0) incoming.body.push(this.buffer.subarray(0, take));
      this.buffer = this.buffer.subarray(take);
      framing.remaining -= take;
      if (framing.remaining > 0) return false;
      this.complete(socket, incoming);
      return true;
    }
    return this.parseChunks(socket, incoming, framing);
  }

  private parseChunks(
    socket: net.Socket,
    incoming: Incoming,
    framing: Extract<Framing, { kind: "chunked" }>,
  ): boolean {
    for (;;) {
      if (framing.trailers) {
        // Trailer lines until an empty one; their content is not needed.
        const end = this.buffer.indexOf(CRLF);
        if (end === -1) return false;
        this.buffer = this.buffer.subarray(end + CRLF.length);
        if (end === 0) {
          this.complete(socket, incoming);
          return true;
        }
        continue;
      }
      if (framing.remaining > 0) {
        const take = Math.min(framing.remaining, this.buffer.length);
        if (take > 0) incoming.body.push(this.buffer.subarray(0, take));
        this.buffer = this.buffer.subarray(take);
        framing.remaining -= take;
        if (framing.remaining > 0) return false;
      }
      if (framing.dataEnd) {
        // The CRLF that ends a chunk's data.
        if (this.buffer.length < CRLF.length) return false;
        this.buffer = this.buffer.subarray(CRLF.length);
        framing.dataEnd = false;
      }
      const end = this.buffer.indexOf(CRLF);
      if (end === -1) return false;
      const size = Number.parseInt(
        this.buffer.toString("latin1", 0, end).split(";", 1)[0] ?? "",
        16,
      );
      if (!Number.isInteger(size) || size < 0) throw new Error("malformed chunked response");
      this.buffer = this.buffer.subarray(end + CRLF.length);
      if (size === 0) framing.trailers = true;
      else {
        framing.remaining = size;
        framing.dataEnd = true;
      }
    }
  }

  private parseHead(head: string): Incoming {
    const lines = head.split("\r\n");
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
    if (status === null) throw new Error(`malformed response from the Runtime API: ${lines[0]}`);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const code = Number(status[1]);
    const closes = /(?:^|,)\s*close\s*(?:,|$)/i.test(headers["connection"] ?? "");
    let framing: Framing;
    if (code === 204 || code === 304) framing = { kind: "length", remaining: 0 };
    else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      framing = { kind: "chunked", remaining: 0, dataEnd: false, trailers: false };
    } else if (headers["content-length"] !== undefined) {
      const length = Number(headers["content-length"]);
      if (!Number.isSafeInteger(length) || length < 0) throw new Error("malformed content-length");
      framing = { kind: "length", remaining: length };
    } else framing = { kind: "close" };
    return { status: code, headers, framing, body: [], closes };
  }

  private complete(socket: net.Socket, incoming: Incoming): void {
    this.incoming = undefined;
    const pending = this.pending.shift();
    if (this.pending.length === 0) socket.unref();
    if (incoming.closes) {
      // Later requests go on a new connection; any already sent on this one fail with it.
      this.fail(socket, new Error("the Runtime API closed the connection"));
    }
    pending?.resolve({
      status: incoming.status,
      headers: incoming.headers,
      body: Buffer.concat(incoming.body).toString("utf8"),
    });
  }
}
