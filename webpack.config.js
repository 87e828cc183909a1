// Bundles the four Node entry points into dist/. The command line and the debug adapter are each two:
// a small starter (dist/cli.js, dist/adapter.js: adapter/start/) that runs the program's bundle
// (dist/cli-main.js, dist/adapter-main.js) with V8's code cache. dist/bin/ belongs to the native build
// (make -C native) and is never cleaned here.
'use strict';

const path = require('path');
const webpack = require('webpack');

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
