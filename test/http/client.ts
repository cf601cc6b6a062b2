import type { Resource } from '@medplum/fhirtypes';
import type { TestServer } from '../helpers/testServer';

/** A thin FHIR client over Node's fetch for the HTTP tests: JSON in, status + headers + JSON out. */
export interface FhirReply<T = Resource> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface Client {
  request<T = Resource>(
    method: string,
    path: string,
    init?: { body?: unknown; headers?: Record<string, string>; raw?: string },
  ): Promise<FhirReply<T>>;
  get<T = Resource>(path: string, headers?: Record<string, string>): Promise<FhirReply<T>>;
  post<T = Resource>(path: string, body: unknown, headers?: Record<string, string>): Promise<FhirReply<T>>;
  put<T = Resource>(path: string, body: unknown, headers?: Record<string, string>): Promise<FhirReply<T>>;
  del<T = Resource>(path: string, headers?: Record<string, string>): Promise<FhirReply<T>>;
}

export async function clientFor(server: TestServer): Promise<Client> {
  const token = await server.token('registry-admin');
  const request = async <T>(
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string>; raw?: string } = {},
  ): Promise<FhirReply<T>> => {
    const url = path.startsWith('http') ? path : `${server.baseUrl}/${path.replace(/^\//, '')}`;
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...init.headers };
    let body: string | undefined = init.raw;
    if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers['content-type'] ??= 'application/fhir+json';
    }
    const response = await fetch(url, { method, headers, body });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      text,
      body: (text ? JSON.parse(text) : undefined) as T,
    };
  };
  return {
    request,
    get: (path, headers) => request('GET', path, { headers }),
    post: (path, body, headers) => request('POST', path, { body, headers }),
    put: (path, body, headers) => request('PUT', path, { body, headers }),
    del: (path, headers) => request('DELETE', path, { headers }),
  };
}
