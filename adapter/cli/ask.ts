// Questions on the terminal (breaks and prompts), one at a time, and the live output held back while
// one is open. Interactive only when stdin and stderr are both a terminal; the program shares that
// terminal (it is stopped, or the asking thread waits, while a question is open).

import * as tty from 'node:tty';

export type Answer = { kind: 'line'; text: string } | { kind: 'interrupt' } | { kind: 'end' };

export class Terminal {
  readonly interactive: boolean;
  private queue: Promise<unknown> = Promise.resolve();
  private asking = 0;
  private held: string[] = [];

  // process.stdin is only touched when it is a terminal: the program shares it, and a stream over a
  // pipe would be read by, or set non-blocking for, both.
  constructor(private readonly output: NodeJS.WriteStream = process.stderr) {
    this.interactive = tty.isatty(0) && output.isTTY === true;
  }

  /** Prints a line of the command line's own output (held back while a question is open). */
  print(line: string): void {
    if (this.asking > 0) this.held.push(line);
    else this.output.write(line + '\n');
  }

  /** Prints now, even while a question is open (the question's own text). */
  say(text: string): void {
    this.output.write(text);
  }

  /**
   * Runs `dialogue` once every earlier one is over: questions never overlap, and live output waits
   * until the dialogue ends.
   */
  converse<T>(dialogue: (ask: (prompt: string) => Promise<Answer>) => Promise<T>): Promise<T> {
    const run = async () => {
      this.asking++;
      try {
        return await dialogue((prompt) => this.question(prompt));
      } finally {
        this.asking--;
        if (this.asking === 0) {
          const held = this.held;
          this.held = [];
          for (const line of held) this.output.write(line + '\n');
        }
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** One line from the terminal: Ctrl-C is `interrupt`, Ctrl-D (end of input) is `end`. */
  private question(prompt: string): Promise<Answer> {
    return new Promise<Answer>((resolve) => {
      // Loaded at the first question: most runs never ask one.
      const readline: typeof import('node:readline') = require('node:readline');
      const rl = readline.createInterface({ input: process.stdin, output: this.output, terminal: true, historySize: 0 });
      let settled = false;
      const finish = (answer: Answer) => {
        if (settled) return;
        settled = true;
        rl.close();
        resolve(answer);
      };
      rl.on('SIGINT', () => {
        this.output.write('^C\n');
        finish({ kind: 'interrupt' });
      });
      rl.on('close', () => {
        if (!settled) this.output.write('\n');
        finish({ kind: 'end' });
      });
      rl.question(prompt, (text) => finish({ kind: 'line', text }));
    });
  }
}
