// Starts kinesalite on 127.0.0.1 only (its own cli.js listens on every interface), with its
// LevelDB store in --path, and exits on SIGTERM/SIGINT after closing the store. Run by
// scripts/infra/kinesis.sh with the modules of install-kinesalite.sh on NODE_PATH.
'use strict'
const argv = require('minimist')(process.argv.slice(2))
const kinesalite = require('kinesalite')

const port = Number(argv.port)
if (!port || !argv.path) {
  console.error('usage: server.js --port N --path DIR [--createStreamMs N] [--deleteStreamMs N] [--updateStreamMs N] [--shardLimit N]')
  process.exit(2)
}
const server = kinesalite({
  path: argv.path,
  createStreamMs: Number(argv.createStreamMs ?? 50),
  deleteStreamMs: Number(argv.deleteStreamMs ?? 50),
  updateStreamMs: Number(argv.updateStreamMs ?? 50),
  shardLimit: Number(argv.shardLimit ?? 50),
})
server.listen(port, '127.0.0.1', () => {
  const a = server.address()
  console.log(`kinesalite listening on http://${a.address}:${a.port}, store ${argv.path}`)
})
const stop = (signal) => {
  console.log(`kinesalite: ${signal}, closing the store`)
  // kinesalite's close() closes the LevelDB store, then stops accepting connections; open
  // keep-alive connections would go on being served, so they are closed too: a stopped server
  // answers nothing.
  server.close(() => process.exit(0))
  server.closeAllConnections()
  setTimeout(() => process.exit(0), 5000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
