import { describe, expect, it } from "vitest";
import { LOG_TAIL_BYTES, LogBuffer, TailBuffer } from "./log-buffer.js";
import type { LogStream } from "./log-buffer.js";
import { describeExit, reportLine, timeoutMessage } from "./lambda-log.js";

describe("TailBuffer", () => {
  it("keeps only the last N bytes", () => {
    const tail = new TailBuffer(10);
    tail.append(Buffer.from("0123456789"));
    tail.append(Buffer.from("abcdef"));
    expect(tail.text()).toBe("6789abcdef");
    tail.append(Buffer.from("x".repeat(25)));
    expect(tail.text()).toBe("x".repeat(10));
  });

  it("never starts with half a UTF-8 character", () => {
    const tail = new TailBuffer(5);
    tail.append(Buffer.from("aé€€")); // 1 + 2 + 3 + 3 bytes
    expect(tail.text()).toBe("€");
  });
});

describe("LogBuffer", () => {
  it("passes complete lines on per stream and keeps the tail across streams", () => {
    const lines: Array<[string, LogStream]> = [];
    const log = new LogBuffer((line, stream) => lines.push([line, stream]));
    log.platform("START RequestId: r Version: $LATEST");
    log.write("stdout", Buffer.from("hel"));
    log.write("stderr", Buffer.from("oops\n"));
    log.write("stdout", Buffer.from("lo\nwor"));
    log.platform("END RequestId: r");
    expect(lines).toEqual([
      ["START RequestId: r Version: $LATEST", "platform"],
      ["oops", "stderr"],
      ["hello", "stdout"],
      ["wor", "stdout"],
      ["END RequestId: r", "platform"],
    ]);
    expect(log.takeTail()).toBe(
      "START RequestId: r Version: $LATEST\nheloops\nlo\nworEND RequestId: r\n",
    );
    expect(log.takeTail()).toBe("");
  });

  it("bounds the tail to Lambda's 4 KB however much a function prints", () => {
    const log = new LogBuffer(() => undefined);
    for (let i = 0; i < 1000; i++) log.write("stdout", Buffer.from(`${"x".repeat(100)}\n`));
    log.platform("END RequestId: r");
    const tail = log.takeTail();
    expect(Buffer.byteLength(tail)).toBeLessThanOrEqual(LOG_TAIL_BYTES);
    expect(tail.endsWith("END RequestId: r\n")).toBe(true);
  });
});

describe("Lambda's platform lines", () => {
  it("formats REPORT like Lambda", () => {
    expect(
      reportLine({
        requestId: "r",
        durationMs: 15.742,
        memoryMb: 128,
        maxMemoryUsedMb: 55.6,
        initDurationMs: 130.761,
      }),
    ).toBe(
      "REPORT RequestId: r\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.76 ms",
    );
    expect(
      reportLine({
        requestId: "r",
        durationMs: 3000,
        memoryMb: 256,
        maxMemoryUsedMb: 40,
        status: { kind: "timeout" },
      }),
    ).toBe(
      "REPORT RequestId: r\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 256 MB\tMax Memory Used: 40 MB\tStatus: timeout",
    );
  });

  it("describes exits and timeouts in Lambda's words", () => {
    expect(describeExit({ code: 1, signal: null })).toBe("exit status 1");
    expect(describeExit({ code: null, signal: "SIGKILL" })).toBe("signal: killed");
    expect(timeoutMessage("r", 3, new Date("2026-01-02T03:04:05.678Z"))).toBe(
      "2026-01-02T03:04:05.678Z r Task timed out after 3.00 seconds",
    );
  });
});
