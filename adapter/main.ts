export {};

process.stderr.write('spython adapter: not implemented yet\n');
process.exit(2);
