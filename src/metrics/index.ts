import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Counter, Histogram, Registry } from 'prom-client';
import { routePatternOf } from '../logging/requestLog';

/**
 * Prometheus metrics of the HTTP API (DESIGN §6: /metrics outside /fhir), from prom-client. Labels are
 * the method, the route pattern (`/fhir/Patient/:id`, never a concrete URL: ids and search values are
 * identifiers) and the status, so the label set stays small and holds nothing about anyone. Each server
 * has its own registry, so servers in one process (the tests) do not share counts.
 */
export interface RequestMetrics {
  /** Counts and times every request; mount before the routes. */
  observe: RequestHandler;
  /** Serves the metrics in Prometheus' text format. */
  serve: RequestHandler;
}

export function createRequestMetrics(): RequestMetrics {
  const registry = new Registry();
  const labelNames = ['method', 'route', 'status'] as const;
  const requests = new Counter({
    name: 'norpain_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status.',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'norpain_http_request_duration_seconds',
    help: 'Time to answer HTTP requests, by method, route pattern and status.',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    observe: (req: Request, res: Response, next: NextFunction) => {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        const labels = {
          method: req.method,
          route: routePatternOf(req, res),
          status: String(res.statusCode),
        };
        requests.inc(labels);
        duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      });
      next();
    },
    serve: (_req: Request, res: Response, next: NextFunction) => {
      registry
        .metrics()
        .then((text) => {
          res.setHeader('Content-Type', registry.contentType);
          res.send(text);
        })
        .catch(next);
    },
  };
}
