// Where the lines of a recorded run are now. A run's line numbers describe the file as it was when it
// ran; once the editor's text is known to be that text (the "base"), every edit since is replayed on a
// map from base lines to current lines: lines after an edit shift, lines an edit touches are dropped.
// A line is kept only when its text is certainly unchanged, so a hint is never shown on a wrong line.

import { TextDocumentContentChangeEvent } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';

const LINE_BREAK = /\r\n|\r|\n/g;

function countLineBreaks(text: string): number {
  return text.match(LINE_BREAK)?.length ?? 0;
}

function endsWithLineBreak(text: string): boolean {
  return text.endsWith('\n') || text.endsWith('\r');
}

function startsWithLineBreak(text: string): boolean {
  return text.startsWith('\n') || text.startsWith('\r');
}

/** Length of a line without its line break. */
export function lineLength(doc: TextDocument, line: number): number {
  if (line < 0 || line >= doc.lineCount) return 0;
  const text = doc.getText({ start: { line, character: 0 }, end: { line: line + 1, character: 0 } });
  return text.replace(/(\r\n|\r|\n)$/, '').length;
}

export class LineMap {
  /** Base line (0-based) → current line, or -1 once the line was changed. */
  private readonly current: Int32Array;

  constructor(baseLineCount: number) {
    this.current = new Int32Array(baseLineCount);
    for (let i = 0; i < baseLineCount; i++) this.current[i] = i;
  }

  /** The current line of a base line, or undefined when it was changed or never existed. */
  map(baseLine: number): number | undefined {
    if (baseLine < 0 || baseLine >= this.current.length) return undefined;
    const line = this.current[baseLine];
    return line < 0 ? undefined : line;
  }

  /** Every base line still present, with its current line. */
  *entries(): IterableIterator<[base: number, current: number]> {
    for (let i = 0; i < this.current.length; i++) if (this.current[i] >= 0) yield [i, this.current[i]];
  }

  /** The base line now at `line`, if any. */
  baseOf(line: number): number | undefined {
    for (let i = 0; i < this.current.length; i++) if (this.current[i] === line) return i;
    return undefined;
  }

  /**
   * Replays one content change; `before` is the document as it was just before the change.
   * A change without a range (the whole text replaced) drops every line unless nothing changed.
   */
  apply(before: TextDocument, change: TextDocumentContentChangeEvent): void {
    if (!('range' in change) || change.range === undefined) {
      if (change.text !== before.getText()) this.current.fill(-1);
      return;
    }
    const { start, end } = change.range;
    const text = change.text;
    const sL = start.line;
    const eL = end.line;
    const added = countLineBreaks(text);
    const delta = added - (eL - sL);
    if (text === '' && sL === eL && start.character === end.character) return;

    // The last touched line keeps its text when the change ends at its start and the new text ends
    // with a line break (inserting or deleting whole lines above it): it moves to sL + added.
    const lastIntact = end.character === 0 && start.character === 0 && (text === '' || endsWithLineBreak(text));
    // The first touched line keeps its text when the change starts at its end and the new text starts
    // with a line break (Enter at the end of a line): it stays where it is.
    const firstIntact =
      startsWithLineBreak(text) && start.character >= lineLength(before, sL) && !(lastIntact && sL === eL);

    for (let i = 0; i < this.current.length; i++) {
      const L = this.current[i];
      if (L < 0 || L < sL) continue;
      if (L > eL) this.current[i] = L + delta;
      else if (L === eL && lastIntact) this.current[i] = sL + added;
      else if (L === sL && firstIntact) this.current[i] = sL;
      else this.current[i] = -1;
    }
  }
}
