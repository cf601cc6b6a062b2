import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * What the proxy process runs: it forwards 127.0.0.1:port to the target and obeys `cut` (every connection
 * dropped, new ones refused) and `restore` (listening again on the same port) on stdin, answering each
 * with a line on stdout (first the port).
 */
const PROXY = `
const net = require('node:net');
const [host, targetPort] = [process.argv[1], Number(process.argv[2])];
const sockets = new Set();
let server;
let port = 0;
const listen = () => {
  server = net.createServer((client) => {
    const upstream = net.connect(targetPort, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(port, '127.0.0.1', () => {
    port = server.address().port;
    process.stdout.write(port + '\\n');
  });
};
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'cut') {
    for (const s of sockets) s.destroy();
    server.close(() => process.stdout.write('cut\\n'));
  } else if (line === 'restore') {
    listen();
  }
});
listen();
`;

/**
 * A TCP proxy between the server and its state database, in a process of its own (the server's main
 * thread blocks on state calls, so it cannot pump a proxy's bytes itself). A test cuts and restores it:
 * the network between a replica and its database lost and back, without touching a database others use.
 */
export class TcpProxy {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  port = 0;

  private constructor(host: string, targetPort: number) {
    this.child = spawn(process.execPath, ['-e', PROXY, host, String(targetPort)]);
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  static async start(host: string, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(host, targetPort);
    proxy.port = Number(await proxy.next());
    return proxy;
  }

  /** The database is gone: open connections drop, new ones are refused. */
  async cut(): Promise<void> {
    this.child.stdin.write('cut\n');
    await this.next();
  }

  /** Reachable again, on the same port. */
  async restore(): Promise<void> {
    this.child.stdin.write('restore\n');
    await this.next();
  }

  stop(): void {
    this.child.kill();
  }

  private async next(): Promise<string> {
    const line = await this.lines.next();
    if (line.done === true) throw new Error('the proxy process ended');
    return line.value;
  }
}
