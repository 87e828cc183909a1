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
