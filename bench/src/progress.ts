/**
 * Progress on stderr: a bar redrawn in place on a terminal, one line per
 * step elsewhere (CI logs, files). Notes (a cell's figures) go above the bar.
 */

export class Progress {
  readonly #total: number;
  readonly #started = Date.now();
  readonly #tty = process.stderr.isTTY === true;
  #done = 0;
  #label = "";

  constructor(total: number) {
    this.#total = Math.max(1, total);
  }

  /** Starts the next step. */
  step(label: string): void {
    this.#label = label;
    if (this.#tty) this.#draw();
    else process.stderr.write(`[${this.#done + 1}/${this.#total}] ${label}\n`);
  }

  /** Finishes the current step. */
  done(): void {
    this.#done = Math.min(this.#total, this.#done + 1);
    if (this.#tty) this.#draw();
  }

  note(line: string): void {
    if (this.#tty) process.stderr.write("\r\x1b[2K");
    process.stderr.write(`  ${line}\n`);
    if (this.#tty) this.#draw();
  }

  finish(): void {
    if (this.#tty) process.stderr.write("\r\x1b[2K");
    const seconds = Math.round((Date.now() - this.#started) / 1000);
    process.stderr.write(`done in ${Math.floor(seconds / 60)} min ${seconds % 60} s\n`);
  }

  #draw(): void {
    const width = 30;
    const filled = Math.round((this.#done / this.#total) * width);
    const elapsed = (Date.now() - this.#started) / 1000;
    const eta = this.#done > 0 ? (elapsed / this.#done) * (this.#total - this.#done) : Number.NaN;
    const etaText = !Number.isFinite(eta)
      ? ""
      : eta < 90
        ? ` ~${Math.ceil(eta)} s left`
        : ` ~${Math.ceil(eta / 60)} min left`;
    const columns = process.stderr.columns ?? 100;
    const line =
      `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${this.#done}/${this.#total}` +
      `${etaText}  ${this.#label}`;
    process.stderr.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
  }
}
