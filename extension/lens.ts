// The client side of the audit lens: starts dist/server.js (server/main.ts) as a language server for
// Python files. The extension's activate() calls startLens() with the directory its debug sessions keep
// their runs in (the workspace storage); the server watches it.

import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions, TransportKind } from 'vscode-languageclient/node';

/** The setting that turns the lens on and off (synchronized to the server). */
export const LENS_SETTING_SECTION = 'spython.lens';

export async function startLens(context: vscode.ExtensionContext, runsDir: string): Promise<LanguageClient> {
  const serverModule = context.asAbsolutePath('dist/server.js');
  const serverOptions: ServerOptions = {
    run: { module: serverModule, transport: TransportKind.ipc },
    debug: {
      module: serverModule,
      transport: TransportKind.ipc,
      options: { execArgv: ['--nolazy', '--inspect=6011'] },
    },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'python' },
      // Catalogue hovers work on unsaved files too.
      { scheme: 'untitled', language: 'python' },
    ],
    initializationOptions: {
      runsDir,
      enabled: vscode.workspace.getConfiguration(LENS_SETTING_SECTION).get<boolean>('enabled', true),
    },
    // Sends workspace/didChangeConfiguration with { spython: { lens: { enabled } } } on changes.
    synchronize: { configurationSection: LENS_SETTING_SECTION },
  };
  const client = new LanguageClient('spythonLens', 'SPython Audit Lens', serverOptions, clientOptions);
  await client.start();
  context.subscriptions.push({ dispose: () => void client.dispose() });
  return client;
}
