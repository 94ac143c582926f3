#!/usr/bin/env node
// Native solc cannot be fetched in offline environments, so forge is pointed at
// this shim, which speaks the subset of the solc command-line interface that forge
// uses (`--version` and `--standard-json`) on top of the pinned solc-js build.
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);

// Forge parses this exact banner to decide which compiler version it is talking to.
const VERSION_BANNER =
  'solc, the solidity compiler commandline interface\n' +
  'Version: 0.8.30+commit.73712a01.Linux.g++';

// Collects the values of path-like flags, accepting both `--flag value` and
// `--flag=value`, with comma-separated lists as solc does for `--allow-paths`.
function flagValues(name) {
  const values = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    let raw = null;
    if (arg === name && i + 1 < args.length) {
      raw = args[++i];
    } else if (arg.startsWith(name + '=')) {
      raw = arg.slice(name.length + 1);
    }
    if (raw !== null) {
      for (const part of raw.split(',')) {
        if (part.length > 0) values.push(path.resolve(part));
      }
    }
  }
  return values;
}

function isInside(file, root) {
  const rel = path.relative(root, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function main() {
  if (args.includes('--version') || args.includes('-v')) {
    process.stdout.write(VERSION_BANNER + '\n');
    return 0;
  }

  if (!args.includes('--standard-json')) {
    process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
    return 1;
  }

  const cwd = process.cwd();
  const basePaths = flagValues('--base-path');
  const includePaths = flagValues('--include-path');
  const searchRoots = [...(basePaths.length ? basePaths : [cwd]), ...includePaths];
  const allowedRoots = [cwd, ...searchRoots, ...flagValues('--allow-paths')];

  // Forge normally inlines every source, so this only runs for imports it did not resolve.
  function findImports(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : searchRoots.map((root) => path.resolve(root, importPath));
    for (const candidate of candidates) {
      if (!allowedRoots.some((root) => isInside(candidate, root))) continue;
      try {
        return { contents: fs.readFileSync(candidate, 'utf8') };
      } catch (_) {
        // Try the next root.
      }
    }
    return { error: `File not found inside allowed paths: ${importPath}` };
  }

  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: findImports });
  process.stdout.write(output);
  return 0;
}

process.exitCode = main();
