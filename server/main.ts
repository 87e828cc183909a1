export {};

process.stderr.write('spython language server: not implemented yet\n');
process.exit(2);
