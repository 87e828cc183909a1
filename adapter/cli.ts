export {};

process.stderr.write('spython-audit: not implemented yet\n');
process.exit(2);
