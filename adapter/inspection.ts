// Frame ids and variable references of stopped processes. Each launcher numbers its own (docs/protocol.md,
// "Debugging"); the session renumbers them so that a program and the children it forked can be
// inspected side by side, and forgets a process's numbers when its thread resumes.

export type ReferenceKind = 'frame' | 'variables';

export class RemoteReferences<Owner> {
  private next = 1;
  private readonly locals = new Map<number, { owner: Owner; kind: ReferenceKind; remote: number }>();
  private readonly byOwner = new Map<Owner, Map<string, number>>();

  /** The session's number for the owner's `remote` reference of that kind (0 stays 0: nothing to expand). */
  toLocal(owner: Owner, kind: ReferenceKind, remote: number): number {
    if (!remote) return 0;
    let known = this.byOwner.get(owner);
    if (!known) {
      known = new Map();
      this.byOwner.set(owner, known);
    }
    const key = `${kind}:${remote}`;
    let local = known.get(key);
    if (local === undefined) {
      local = this.next++;
      known.set(key, local);
      this.locals.set(local, { owner, kind, remote });
    }
    return local;
  }

  /** The owner and its number behind a session number, if it is still valid. */
  resolve(local: number, kind: ReferenceKind): { owner: Owner; remote: number } | undefined {
    const found = this.locals.get(local);
    return found && found.kind === kind ? { owner: found.owner, remote: found.remote } : undefined;
  }

  /** Invalidates every number of the owner (its thread resumed). */
  forget(owner: Owner): void {
    const known = this.byOwner.get(owner);
    if (!known) return;
    for (const local of known.values()) this.locals.delete(local);
    this.byOwner.delete(owner);
  }
}

/** Renumbers the ids a launcher put in the body of an inspection response, in place. */
export function localizeBody(
  command: string,
  body: Record<string, unknown>,
  toLocal: (kind: ReferenceKind, remote: number) => number,
): Record<string, unknown> {
  const each = (list: unknown, key: string, kind: ReferenceKind) => {
    if (!Array.isArray(list)) return;
    for (const item of list) {
      if (item && typeof item[key] === 'number') item[key] = toLocal(kind, item[key]);
    }
  };
  switch (command) {
    case 'stackTrace':
      each(body.stackFrames, 'id', 'frame');
      break;
    case 'scopes':
      each(body.scopes, 'variablesReference', 'variables');
      break;
    case 'variables':
      each(body.variables, 'variablesReference', 'variables');
      break;
    case 'evaluate':
      if (typeof body.variablesReference === 'number') {
        body.variablesReference = toLocal('variables', body.variablesReference);
      }
      break;
  }
  return body;
}
