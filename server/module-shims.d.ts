// The language-server packages (vscode-languageserver 11, -protocol 3.18, vscode-jsonrpc 10,
// vscode-languageclient 11) publish their entry points only through package.json "exports", which
// TypeScript's "moduleResolution": "node" (tsconfig.json) does not read: without these declarations
// every type from them would silently be `any`. They point the compiler at the same files Node and
// webpack load through "exports". Drop this file if tsconfig moves to "node16"/"nodenext"/"bundler".

declare module 'vscode-jsonrpc' {
  export * from 'vscode-jsonrpc/lib/common/api';
}
declare module 'vscode-jsonrpc/node' {
  export * from 'vscode-jsonrpc/lib/node/main';
}
declare module 'vscode-languageserver-protocol' {
  export * from 'vscode-languageserver-protocol/lib/common/api';
}
declare module 'vscode-languageserver-protocol/node' {
  export * from 'vscode-languageserver-protocol/lib/node/main';
}
declare module 'vscode-languageserver' {
  export * from 'vscode-languageserver/lib/common/api';
}
declare module 'vscode-languageserver/node' {
  export * from 'vscode-languageserver/lib/node/main';
}
declare module 'vscode-languageclient' {
  export * from 'vscode-languageclient/lib/common/api';
}
declare module 'vscode-languageclient/node' {
  export * from 'vscode-languageclient/lib/node/main';
}
