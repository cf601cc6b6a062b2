import { loadConfig } from '../config';
import { createLogger, setLogger } from '../logging/logger';
import { createServer } from '../server';
import type { CliCommand } from './command';
import { UsageError } from './command';

export const serveCommand: CliCommand = {
  name: 'serve',
  summary: 'run the FHIR server (configuration from environment variables, see README)',
  usage: 'norpain serve\n\nStarts the server on PORT (default 8080) with the FHIR base at /fhir.',
  run: async (args, env) => {
    if (args.length > 0) {
      throw new UsageError(
        `serve takes no arguments (configure it with environment variables), got "${args[0]}"`,
      );
    }
    const config = loadConfig(env);
    const logger = createLogger({ level: config.logLevel });
    setLogger(logger);
    logger.info('starting', {
      mode: config.mode,
      store: config.store.kind,
      port: config.port,
      dataDir: config.dataDir,
      node: process.version,
    });
    const server = await createServer(config, { logger, identityEnv: env });
    const listening = await server.listen(config.port);
    logger.info('listening', { url: `${listening.url}/fhir`, mode: config.mode, store: server.store.kind });

    // Finish in-flight requests and close the store cleanly (WAL checkpoint) on Ctrl-C or a container stop;
    // a second signal forces the exit.
    return new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) {
          logger.warn('second signal, exiting now', { signal });
          process.exit(1);
        }
        stopping = true;
        logger.info('shutting down', { signal });
        server.close().then(
          () => {
            logger.info('stopped');
            resolve(0);
          },
          () => {
            logger.error('shutdown failed');
            resolve(1);
          },
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};
