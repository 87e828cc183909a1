// Bundles the four Node entry points into dist/. The command line and the debug adapter are each two:
// a small starter (dist/cli.js, dist/adapter.js: adapter/start/) that runs the program's bundle
// (dist/cli-main.js, dist/adapter-main.js) with V8's code cache. dist/bin/ belongs to the native build
// (make -C native) and is never cleaned here.
'use strict';

const path = require('path');
const webpack = require('webpack');
const { name, version } = require('./package.json');

/**
 * dist/package.json: the bundles' package scope. Without it, Node reads and parses the 120 KB
 * package.json above dist/ to learn the type of every program it starts (and the command line read
 * it again for its version): a few milliseconds of each run.
 */
class PackageScopePlugin {
  apply(compiler) {
    compiler.hooks.thisCompilation.tap('PackageScopePlugin', (compilation) => {
      compilation.hooks.processAssets.tap(
        { name: 'PackageScopePlugin', stage: webpack.Compilation.PROCESS_ASSETS_STAGE_ADDITIONAL },
        () => {
          const scope = { name, version, private: true, type: 'commonjs' };
          compilation.emitAsset('package.json', new webpack.sources.RawSource(JSON.stringify(scope, null, 2) + '\n'));
        },
      );
    });
  }
}

/**
 * The Node programs' bundles in plain ASCII, every other character written as its \u escape: V8
 * makes a string of an ASCII file at copying speed, where decoding UTF-8 cost the command line ~15 M
 * instructions a run (6% of a short one). The escape means the same character in a string, a
 * template, a regular expression or a comment; only a template's raw text (`.raw`) tells them apart,
 * so a bundle reading one is left as it is.
 */
class AsciiBundlePlugin {
  constructor(names) {
    this.names = names;
  }

  apply(compiler) {
    compiler.hooks.thisCompilation.tap('AsciiBundlePlugin', (compilation) => {
      compilation.hooks.processAssets.tap(
        // Before the source maps are made (PROCESS_ASSETS_STAGE_DEV_TOOLING), so that they follow.
        { name: 'AsciiBundlePlugin', stage: webpack.Compilation.PROCESS_ASSETS_STAGE_OPTIMIZE_COMPATIBILITY },
        () => {
          for (const name of this.names) {
            const asset = compilation.getAsset(name);
            if (asset) this.escape(compilation, asset);
          }
        },
      );
    });
  }

  escape(compilation, asset) {
    const text = asset.source.source().toString();
    if (/\.raw\b/.test(text)) {
      compilation.warnings.push(new webpack.WebpackError(`${asset.name} reads templates' raw text: left in UTF-8`));
      return;
    }
    const source = new webpack.sources.ReplaceSource(asset.source);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code < 0x80) continue;
      const escape = `\\u${code.toString(16).padStart(4, '0')}`;
      let backslashes = 0;
      while (text[i - 1 - backslashes] === '\\') backslashes++;
      // An escaped character (`\’`) becomes its own escape, backslash included (end is inclusive).
      if (backslashes % 2 === 1) source.replace(i - 1, i, escape);
      else source.replace(i, i, escape);
    }
    compilation.updateAsset(asset.name, source);
  }
}

/** @type {import('webpack').Configuration} */
module.exports = {
  target: 'node',
  entry: {
    extension: './extension/extension.ts',
    adapter: './adapter/start/adapter.ts',
    'adapter-main': './adapter/main.ts',
    cli: './adapter/start/cli.ts',
    'cli-main': './adapter/cli.ts',
    server: './server/main.ts',
  },
  output: {
    path: path.resolve(__dirname, 'dist'),
    filename: '[name].js',
    library: { type: 'commonjs2' },
    // Source maps name the sources relative to dist/, so debuggers find adapter/*.ts from dist/*.js.
    devtoolModuleFilenameTemplate: (info) =>
      path.relative(path.join(__dirname, 'dist'), info.absoluteResourcePath).split(path.sep).join('/'),
    clean: { keep: /^bin\// },
  },
  devtool: 'source-map',
  externals: { vscode: 'commonjs vscode' },
  resolve: { extensions: ['.ts', '.js'] },
  module: {
    rules: [
      {
        test: /\.ts$/,
        exclude: /node_modules/,
        use: [{ loader: 'ts-loader', options: { transpileOnly: false } }],
      },
    ],
  },
  plugins: [
    new PackageScopePlugin(),
    new AsciiBundlePlugin(['adapter.js', 'adapter-main.js', 'cli.js', 'cli-main.js', 'server.js']),
    new webpack.BannerPlugin({
      banner: '#!/usr/bin/env node',
      raw: true,
      entryOnly: true,
      include: /^cli\.js$/,
    }),
  ],
  optimization: { minimize: false },
  performance: { hints: false },
  infrastructureLogging: { level: 'warn' },
};
