// A local DynamoDB-compatible server (dynalite, in memory) for tests.
//
// Usage: node tools/dynamodb/serve.js [PORT]   (default 0: the OS picks a free port)
// Listens on 127.0.0.1 only and prints one line, `listening 127.0.0.1:PORT`, once it accepts
// requests, so a test can read the port from the pipe instead of guessing one. Exits when its
// stdin closes, so a test that dies without cleaning up does not leave the server behind.
'use strict'

const dynalite = require('dynalite')

const port = Number(process.argv[2] || 0)
// Tables become ACTIVE at once: tests create one and use it immediately.
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })

server.listen(port, '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(`listening ${address.address}:${address.port}\n`)
})
server.on('error', (error) => {
  console.error(`dynalite: ${error.message}`)
  process.exit(1)
})

process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
process.on('SIGTERM', () => process.exit(0))
